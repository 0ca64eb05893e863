"""Time to contain, as ratios: `respond compromised` against a floor script that only
imports boto3 and makes the two containment calls (and aws_ir, when it is installed).

    python benchmarks/containment.py [--runs 20] [--quick]

Each run spawns the command against a local moto server (in this process) whose
requests are logged with this process's monotonic clock: time to contain is from the
spawn until both UpdateAccessKey and PutUserPolicy have reached the server. Every run
gets a fresh user and key; setting them up is not timed. Goals (issue 18): respond
<= 1.25x the floor and <= 0.5x aws_ir, medians of >= 10 runs.

Results: benchmarks/results/containment.json. `--quick` makes one run of each, to check
the benchmark works (CI), not to measure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from responder.drill.cloudtrail import CloudTrailFake

RESULTS = Path(__file__).resolve().parent / "results"
CONTAINMENT = frozenset({"UpdateAccessKey", "PutUserPolicy"})
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
    """moto's WSGI app, every request's action logged with the time it arrived."""

    def __init__(self) -> None:
        self.app = DomainDispatcherApplication(create_backend_app)
        self.log: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        arrived = time.monotonic()
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        with self._lock:
            self.log.append((arrived, action or target.rsplit(".", 1)[-1]))
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def contained_after(self, start: float) -> float | None:
        """Seconds from `start` until both containment calls had arrived."""
        with self._lock:
            seen = {name: at for at, name in self.log if at >= start and name in CONTAINMENT}
        return max(seen.values()) - start if set(seen) == CONTAINMENT else None

    def stop(self) -> None:
        self._server.shutdown()


def _victim(server: LoggedServer, n: int) -> tuple[str, str]:
    iam = boto3.client("iam", endpoint_url=server.url, region_name="us-east-1",
                       aws_access_key_id="AKIABENCHSETUP000001",
                       aws_secret_access_key="x")  # noqa: S106 - local moto only
    user = f"victim{n}"
    iam.create_user(UserName=user)
    return user, str(iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"])


def _time(server: LoggedServer, argv: list[str], env: dict[str, str]) -> float | None:
    start = time.monotonic()
    subprocess.run(argv, env=env, capture_output=True, timeout=300, check=False)  # noqa: S603
    return server.contained_after(start)


def _summary(samples: list[float]) -> dict[str, Any]:
    return {"runs": len(samples), "median_s": round(statistics.median(samples), 4),
            "min_s": round(min(samples), 4), "max_s": round(max(samples), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="one run each: check, not measure")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    server = LoggedServer()
    home = Path(tempfile.mkdtemp())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RESPONDER_"))}
    env.update(AWS_ENDPOINT_URL=server.url, AWS_ACCESS_KEY_ID="AKIABENCHRESPONDER01",
               AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",  # noqa: S106
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               RESPONDER_HOME=str(home))
    respond = shutil.which("respond") or str(Path(sys.executable).parent / "respond")
    aws_ir = shutil.which("aws_ir")
    samples: dict[str, list[float]] = {"respond": [], "floor": [], "aws_ir": []}
    n = 0
    with CloudTrailFake().installed():
        # One untimed run first: a playbook is validated (and its parse kept) on the
        # first run only, once per content, which a responder's first run ever pays.
        n += 1
        _time(server, [respond, "compromised", _victim(server, n)[1], "--yes", "--no-replace"],
              env)
        for _ in range(runs):
            for name in ("respond", "floor", "aws_ir"):
                if name == "aws_ir" and aws_ir is None:
                    continue
                n += 1
                user, key = _victim(server, n)
                argv = {"respond": [respond, "compromised", key, "--yes", "--no-replace"],
                        "floor": [sys.executable, "-c", FLOOR, user, key, DENY],
                        "aws_ir": [aws_ir or "aws_ir", "key-compromise", "--access-key-id",
                                   key]}[name]
                took = _time(server, argv, env)
                if took is not None:
                    samples[name].append(took)
    server.stop()
    shutil.rmtree(home, ignore_errors=True)
    result: dict[str, Any] = {"quick": args.quick, "python": sys.version.split()[0],
                              **{k: _summary(v) for k, v in samples.items() if v}}
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
