"""report.html's memory against the size of the evidence file: 1,000 vs 100,000 events.

    python benchmarks/html_memory.py [--small 1000] [--large 100000] [--quick]

One real incident is made with the drill (the production pipeline against its fake
account, in a temporary RESPONDER_HOME); then, for each size, its cloudtrail.jsonl is
replaced by that many synthetic CloudTrail records (CloudTrail's record shape: a key used
over 33 hours, ending just before the response, with a 20-minute burst of high-risk calls
1h30m before it, some refused), and a fresh process runs `respond report ID --output html`
in-process under tracemalloc (after one warm-up page without events, so imports and
first-call caches are not counted), then `page(view)` alone. Goal (issue 31): the peak at
the large size is at most 1.5x the peak at the small one: the page streams the file and
keeps only aggregates of a fixed size.

Results: benchmarks/results/html_memory.json. `--quick` uses 200 and 2,000 events (CI:
it runs and writes valid JSON; the figures are not checked).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
ACCOUNT = "123456789012"
KEY = "AKIAEXAMPLELEAKED001"
HOURS = 33
ORDINARY = (("ListBuckets", "s3"), ("DescribeInstances", "ec2"), ("GetCallerIdentity", "sts"),
            ("ListUsers", "iam"), ("DescribeDBInstances", "rds"), ("GetBucketAcl", "s3"))
HIGH_RISK = (("CreateUser", "iam"), ("CreateAccessKey", "iam"), ("AttachUserPolicy", "iam"),
             ("CreateLoginProfile", "iam"), ("PutBucketPolicy", "s3"),
             ("GetSecretValue", "secretsmanager"), ("StopLogging", "cloudtrail"),
             ("DeleteTrail", "cloudtrail"))
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2")
AGENTS = ("aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64", "Boto3/1.34.0 md/Botocore#1.34.0",
          "python-requests/2.31.0")


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(rng: random.Random, at: datetime, name: str, source: str, *, attacker: bool
            ) -> dict[str, Any]:
    """One record in CloudTrail's shape (management event, IAM user's access key)."""
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEALICE00001",
                         "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT,
                         "accessKeyId": KEY, "userName": "alice"},
        "eventTime": _when(at), "eventSource": f"{source}.amazonaws.com", "eventName": name,
        "awsRegion": rng.choice(REGIONS),
        "sourceIPAddress": "203.0.113.66" if attacker else f"198.51.100.{rng.randrange(1, 30)}",
        "userAgent": AGENTS[0] if attacker else rng.choice(AGENTS),
        "requestParameters": {"userName": f"backdoor{rng.randrange(100)}"} if attacker else None,
        "responseElements": None,
        "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "readOnly": not attacker, "eventType": "AwsApiCall", "managementEvent": True,
        "recipientAccountId": ACCOUNT, "eventCategory": "Management"}
    if attacker and rng.random() < 0.15:
        record["errorCode"] = "AccessDenied"
        record["errorMessage"] = f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized"
    return record


def records(count: int, end: datetime, seed: int = 31) -> Iterator[dict[str, Any]]:
    """`count` records over HOURS hours up to 5 minutes before `end`, newest first (as
    LookupEvents returns them): ordinary reads evenly spread, and a 20-minute burst of
    high-risk calls 1h30m before `end` (one in a hundred records, 12 at least)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic records, reproducible
    burst = min(count, max(12, count // 100))
    last, first = end - timedelta(minutes=5), end - timedelta(hours=HOURS)
    attack = end - timedelta(minutes=90)
    step = (last - first) / max(count - burst, 1)

    def ordinary() -> Iterator[tuple[datetime, str, str, bool]]:
        for i in range(count - burst):
            yield (last - step * i, *ORDINARY[i % len(ORDINARY)], False)

    def high() -> Iterator[tuple[datetime, str, str, bool]]:
        for i in range(burst):
            yield (attack - timedelta(minutes=20) * i / max(burst - 1, 1),
                   *HIGH_RISK[i % len(HIGH_RISK)], True)

    for at, name, source, attacker in heapq.merge(ordinary(), high(), key=lambda r: r[0],
                                                   reverse=True):
        yield _record(rng, at, name, source, attacker=attacker)


def write(path: Path, count: int, end: datetime) -> None:
    with path.open("w", encoding="utf-8") as out:
        for record in records(count, end):
            out.write(json.dumps(record) + "\n")


def _child(state: str, incident: str) -> dict[str, Any]:
    """In a fresh process: the CLI's peak, then page(view)'s, both under tracemalloc."""
    from common import peak_rss_mib  # noqa: PLC0415 - run as a script (tests import this)

    from responder.cli import main  # noqa: PLC0415 - the child only
    from responder.incident.view import IncidentView  # noqa: PLC0415
    from responder.journal.sqlite import SqliteJournal  # noqa: PLC0415
    from responder.report.document import report_of  # noqa: PLC0415
    from responder.report.html import html_of, page  # noqa: PLC0415

    journal = SqliteJournal(Path(state))
    view = IncidentView.load(journal, incident, calls=True)
    html_of(report_of(view))  # warm-up: imports and first-call caches, no events
    sink = io.StringIO()
    tracemalloc.start()
    with contextlib.redirect_stdout(sink):
        code = main(["report", incident, "--output", "html", "--state", state])
    cli_peak = tracemalloc.get_traced_memory()[1]
    chars = len(sink.getvalue())
    del sink
    tracemalloc.reset_peak()
    page(view)
    page_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    journal.close()
    return {"exit_code": code, "cli_peak_bytes": cli_peak, "page_peak_bytes": page_peak,
            "page_chars": chars,
            "peak_rss_mib": peak_rss_mib()}


def _incident(home: Path) -> tuple[str, str, Path, datetime]:
    """A real incident (the drill's), its journal, its evidence file and when it began."""
    os.environ["RESPONDER_HOME"] = str(home)
    from responder.drill import run  # noqa: PLC0415 - after RESPONDER_HOME is set
    from responder.report.document import report_of  # noqa: PLC0415

    with contextlib.redirect_stderr(io.StringIO()):
        result = run()
    doc = report_of(result.view).document
    if doc.evidence is None or not doc.evidence.path or not doc.started_at:
        raise RuntimeError("the drill's incident has no evidence file")
    return (str(Path(result.home) / "responder.db"), result.view.id, Path(doc.evidence.path),
            datetime.fromisoformat(doc.started_at.replace("Z", "+00:00")))


def measure(sizes: list[int]) -> list[dict[str, Any]]:
    out = []
    with tempfile.TemporaryDirectory() as home:
        state, incident, evidence, started = _incident(Path(home))
        for count in sizes:
            write(evidence, count, started)
            child = subprocess.run(  # noqa: S603 - this interpreter, this file
                [sys.executable, __file__, "--child", state, incident], check=True,
                capture_output=True, text=True, env={**os.environ, "RESPONDER_HOME": home})
            found = json.loads(child.stdout)
            if found["exit_code"] != 0:
                raise RuntimeError(f"respond report failed: {child.stderr}")
            out.append({"events": count, "file_mib": round(evidence.stat().st_size / 2**20, 1),
                        **found})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="200 and 2,000 events")
    parser.add_argument("--child", nargs=2, metavar=("STATE", "INCIDENT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.stdout.write(json.dumps(_child(*args.child)) + "\n")
        return 0
    small, large = (200, 2_000) if args.quick else (args.small, args.large)
    low, high = measure([small, large])
    results = {
        "quick": args.quick, "command": "respond report ID --output html",
        "small": low, "large": high,
        "small_peak_mib": round(low["cli_peak_bytes"] / 2**20, 2),
        "large_peak_mib": round(high["cli_peak_bytes"] / 2**20, 2),
        "ratio": round(high["cli_peak_bytes"] / low["cli_peak_bytes"], 3),
        "page_ratio": round(high["page_peak_bytes"] / low["page_peak_bytes"], 3),
        "goal": 1.5}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "html_memory.json").write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
