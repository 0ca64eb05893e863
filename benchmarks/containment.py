"""Time to contain, as ratios: `respond compromised` against a floor script that only
imports boto3 and makes the two containment calls (and aws_ir, when it is installed).

    python benchmarks/containment.py [--runs 20] [--quick] [--respond PATH]

What it measures is a responder's first run on a fresh laptop, or a Lambda cold start:
every timed run of `respond` gets a fresh, empty RESPONDER_HOME, nothing runs untimed
before it, and it prints `--output json` as a script or the Lambda would. The local moto
server runs in a process of its own and logs each request's arrival with
time.monotonic() (CLOCK_MONOTONIC: one clock for every process on Linux); time to
contain is from the spawn until both UpdateAccessKey and PutUserPolicy have reached it.
Every run gets a fresh user and key; setting them up is not timed. `respond` and the
floor alternate, so a slow minute of a shared machine slows both, and the floor runs on
`respond`'s own interpreter (its #! line), so both pay the same Python start-up. Goals (issue 18):
respond <= 1.25x the floor and <= 0.5x aws_ir, medians of >= 10 runs.

`--iam-latency-ms N` holds every IAM request N ms (AWS's IAM is not local), and
`--one-at-a-time` times respond with its containment pair off (patched here): together
they measure what sending disable-key and revoke-sessions at once saves. The pair is sent
only when the credentials' account is known without a call (decision 36):
`--account-known` gives the run AWS_ACCOUNT_ID, as SSO, assumed roles and the Lambda have.

`--home shared --warm-up --server thread --output human` is the method used before
issue 27 (one RESPONDER_HOME for all runs, one untimed run first, moto in a thread of
this process, human output); each option alone is there to measure what it changes
(docs/benchmarks.md). `--respond PATH` times another `respond` (a checkout before a
change, in its own virtualenv) against the same floor.

Results: benchmarks/results/containment.json. `--quick` makes one run of each, to check
the benchmark works (CI), not to measure.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from common import interpreter_of

RESULTS = Path(__file__).resolve().parent / "results"
ONE_AT_A_TIME = """\
import sys
from responder.run.runner import IncidentRun
IncidentRun._partner = lambda self, spec: None  # the pair off: one step after the other
from responder.cli import main
sys.exit(main(sys.argv[1:]))
"""
CONTAINMENT = frozenset({"UpdateAccessKey", "PutUserPolicy"})
LOG_PATH = "/__benchmark__/log"
FLOOR = """\
import sys, boto3
iam = boto3.client("iam")
iam.update_access_key(UserName=sys.argv[1], AccessKeyId=sys.argv[2], Status="Inactive")
iam.put_user_policy(UserName=sys.argv[1], PolicyName="floor", PolicyDocument=sys.argv[3])
"""
DENY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Action": "*", "Resource": "*",
    "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2030-01-01T00:00:00Z"}}}]})


class LoggedServer:
    """moto's WSGI app (LookupEvents answered by the drill's CloudTrail fake), every
    request's action logged with the time it arrived; GET LOG_PATH returns the log."""

    def __init__(self, iam_latency: float = 0.0) -> None:
        from moto.server import (  # type: ignore[attr-defined]  # noqa: PLC0415
            DomainDispatcherApplication,
            create_backend_app,
        )
        from werkzeug.serving import make_server  # noqa: PLC0415

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self.app = DomainDispatcherApplication(create_backend_app)
        self.log: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.iam_latency = iam_latency

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        arrived = time.monotonic()
        if environ.get("PATH_INFO") == LOG_PATH:
            with self._lock:
                body = json.dumps(self.log).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        with self._lock:
            self.log.append((arrived, action or target.rsplit(".", 1)[-1]))
        if self.iam_latency and "/iam/aws4_request" in environ.get("HTTP_AUTHORIZATION", ""):
            time.sleep(self.iam_latency)  # an IAM endpoint as far away as AWS's
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def serve_forever(self) -> None:
        from responder.drill.cloudtrail import CloudTrailFake  # noqa: PLC0415

        with CloudTrailFake().installed():
            self._server.serve_forever()

    def shutdown(self) -> None:
        self._server.shutdown()


class Server(Protocol):
    url: str


@contextmanager
def thread_server(iam_latency: float) -> Iterator[Server]:
    """The server in a thread of this process (the method before issue 27)."""
    server = LoggedServer(iam_latency)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()


@contextmanager
def process_server(iam_latency: float) -> Iterator[Server]:
    """The server in a process of its own: nothing it does competes with this one."""
    child = subprocess.Popen([sys.executable, __file__, "--serve",  # noqa: S603
                              "--iam-latency-ms", str(iam_latency * 1000)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the moto server did not start: {url!r}")
        server = argparse.Namespace(url=url)
        yield server
    finally:
        child.terminate()
        child.wait(timeout=30)


def _serve(iam_latency: float) -> int:
    server = LoggedServer(iam_latency)
    print(server.url, flush=True)
    server.serve_forever()
    return 0


def contained_after(server: Server, start: float) -> float | None:
    """Seconds from `start` until both containment calls had arrived."""
    with urllib.request.urlopen(server.url + LOG_PATH) as answer:  # noqa: S310 - loopback
        log = json.loads(answer.read())
    seen = {name: at for at, name in log if at >= start and name in CONTAINMENT}
    return max(seen.values()) - start if set(seen) == CONTAINMENT else None


def _victim(server: Server, n: int) -> tuple[str, str]:
    import boto3  # noqa: PLC0415

    iam = boto3.client("iam", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="AKIABENCHSETUP000001",
                       aws_secret_access_key="x")  # noqa: S106 - local moto only
    user = f"victim{n}"
    iam.create_user(UserName=user)
    return user, str(iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"])


def _time(server: Server, argv: list[str], env: dict[str, str]) -> float | None:
    start = time.monotonic()
    subprocess.run(argv, env=env, capture_output=True, timeout=300, check=False)  # noqa: S603
    return contained_after(server, start)


def _summary(samples: list[float]) -> dict[str, Any]:
    return {"runs": len(samples), "median_s": round(statistics.median(samples), 4),
            "min_s": round(min(samples), 4), "max_s": round(max(samples), 4)}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="one run each: check, not measure")
    parser.add_argument("--respond", help="the respond to time (default: this virtualenv's)")
    parser.add_argument("--home", choices=["fresh", "shared"], default="fresh",
                        help="a fresh RESPONDER_HOME for every run (default) or one for all")
    parser.add_argument("--warm-up", action="store_true",
                        help="one untimed run of respond first (only matters with a shared home)")
    parser.add_argument("--server", choices=["process", "thread"], default="process",
                        help="moto in a process of its own (default) or in a thread of this one")
    parser.add_argument("--output", choices=["json", "human"], default="json",
                        help="respond's --output")
    parser.add_argument("--iam-latency-ms", type=float, default=0.0,
                        help="hold every IAM request this long before answering (AWS's IAM "
                        "answers in tens to hundreds of ms; moto at once)")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="time respond with its containment pair turned off (patched "
                        "here, not a product option): revoke-sessions waits for "
                        "disable-key's answer")
    parser.add_argument("--account-known", action="store_true",
                        help="credentials that carry their account (AWS_ACCOUNT_ID, as SSO, "
                        "assumed roles and the Lambda have): identify compares the key's "
                        "account at once and containment goes as a pair; without it the "
                        "pair waits for UpdateAccessKey's answer (decision 36)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    if args.serve:
        return _serve(args.iam_latency_ms / 1000)
    runs = 1 if args.quick else args.runs
    respond = args.respond or shutil.which("respond") or str(Path(sys.executable).parent
                                                              / "respond")
    python = interpreter_of(respond)
    aws_ir = shutil.which("aws_ir")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RESPONDER_"))}
    shared = Path(tempfile.mkdtemp())
    samples: dict[str, list[float]] = {"respond": [], "floor": [], "aws_ir": []}
    latency = args.iam_latency_ms / 1000
    with (process_server(latency) if args.server == "process" else thread_server(latency)
          ) as server:
        base_env.update(AWS_ENDPOINT_URL=server.url, AWS_ACCESS_KEY_ID="AKIABENCHRESPONDER01",
                        AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",  # noqa: S106
                        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        if args.account_known:
            base_env["AWS_ACCOUNT_ID"] = "123456789012"  # moto's account
        n = 0

        def timed(name: str) -> float | None:
            nonlocal n
            n += 1
            user, key = _victim(server, n)
            home = shared if args.home == "shared" else Path(tempfile.mkdtemp())
            env = {**base_env, "RESPONDER_HOME": str(home)}
            command = ["compromised", key, "--yes", "--no-replace", "--output", args.output]
            argv = {"respond": ([python, "-c", ONE_AT_A_TIME, *command] if args.one_at_a_time
                                else [respond, *command]),
                    "floor": [python, "-c", FLOOR, user, key, DENY],
                    "aws_ir": [aws_ir or "aws_ir", "key-compromise", "--access-key-id",
                               key]}[name]
            try:
                return _time(server, argv, env)
            finally:
                if home != shared:
                    shutil.rmtree(home, ignore_errors=True)

        if args.warm_up:
            timed("respond")
        for _ in range(runs):
            for name in ("respond", "floor", "aws_ir"):
                if name == "aws_ir" and aws_ir is None:
                    continue
                took = timed(name)
                if took is not None:
                    samples[name].append(took)
    shutil.rmtree(shared, ignore_errors=True)
    result: dict[str, Any] = {
        "quick": args.quick, "python": sys.version.split()[0], "respond_path": respond,
        "floor_python": python,
        "method": {"home": args.home, "warm_up": args.warm_up, "server": args.server,
                   "output": args.output, "iam_latency_ms": args.iam_latency_ms,
                   "containment_pair": not args.one_at_a_time,
                   "account_known": args.account_known},
        **{k: _summary(v) for k, v in samples.items() if v},
    }
    if samples["respond"] and samples["floor"]:
        result["respond_vs_floor"] = round(result["respond"]["median_s"]
                                           / result["floor"]["median_s"], 3)
        # The fastest runs, least disturbed by the rest of the machine: a second opinion
        # when the medians move between invocations (shared virtual machines do).
        result["respond_vs_floor_best"] = round(result["respond"]["min_s"]
                                                / result["floor"]["min_s"], 3)
    if samples["respond"] and samples["aws_ir"]:
        result["respond_vs_aws_ir"] = round(result["respond"]["median_s"]
                                            / result["aws_ir"]["median_s"], 3)
    else:
        result["aws_ir"] = "not installed" if aws_ir is None else "did not contain"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "containment.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if samples["respond"] and samples["floor"] else 1


if __name__ == "__main__":
    sys.exit(main())
