"""Evidence collection speed and memory, as ratios (run on demand, not in CI).

    python benchmarks/evidence.py [--regions 4] [--pages 10]
                                  [--small 1000] [--large 100000]

1. Wall time of the collect-evidence step (journal start to end) to collect `pages`
   pages in each of `regions` regions with the real 2/s limiter, against the bound
   ceil(pages / 2) seconds (regions in parallel).
   Goal: ratio <= 1.15.
2. Peak traced Python memory of the whole step for `small` vs `large` events (virtual
   clock, so the limiter does not wait). Goal: ratio <= 1.2 (flat).

Results are written to benchmarks/results/evidence.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from responder.aws import RetryPolicy
from responder.aws.ratelimit import VirtualClock
from responder.context import RunContext
from responder.drill.cloudtrail import CloudTrailFake
from responder.journal.sqlite import SqliteJournal
from responder.playbook import Playbook
from responder.run import service

REGION = "us-east-1"


def _playbook(regions: list[str]) -> Playbook:
    return Playbook.from_dict({"name": "bench", "version": 1, "steps": [
        {"name": "identify", "action": "identify"},
        {"name": "collect-evidence", "action": "collect_cloudtrail",
         "with": {"regions": regions}},
    ]}, "benchmark")


def _collect(regions: list[str], per_region: int, *, virtual: bool) -> dict[str, Any]:
    """Run identify + collect-evidence over a fake trail; returns seconds, peak, events."""
    os.environ.update(AWS_ACCESS_KEY_ID="AKIABENCHRESPONDER01", AWS_SECRET_ACCESS_KEY="x",  # noqa: S106
                      AWS_DEFAULT_REGION=REGION)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    fake = CloudTrailFake()
    with tempfile.TemporaryDirectory() as home, mock_aws(), fake.installed():
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="alice")
        key = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
        start = datetime.now(UTC) - timedelta(hours=1)
        for region in regions:
            for i in range(per_region):
                fake.record(region, "DescribeInstances", key,
                            event_time=start + timedelta(milliseconds=i))
        for region in regions:  # build the fake's index outside the measurement
            fake.lookup(region, {"LookupAttributes": [
                {"AttributeKey": "AccessKeyId", "AttributeValue": key}], "MaxResults": 1})
        clock = VirtualClock()
        ctx = RunContext(
            session_factory=lambda: boto3.Session(region_name=REGION), home=Path(home),
            retry=RetryPolicy(max_attempts=6, initial_seconds=0.05, max_seconds=0.5),
            **({"monotonic": clock.monotonic, "sleep": clock.sleep} if virtual else {}),
        )
        journal = SqliteJournal(Path(home) / "j.db")
        if virtual:  # tracing slows Python down: only for the memory runs
            tracemalloc.start()
        record = service.respond(ctx, journal, _playbook(regions), key)
        peak = tracemalloc.get_traced_memory()[1] if virtual else 0
        tracemalloc.stop()
        step = journal.steps(record.id)[1]
        journal.close()
    if step.started_at is None or step.ended_at is None:
        raise RuntimeError(f"collect-evidence did not run: {step}")
    return {"seconds": (step.ended_at - step.started_at).total_seconds(), "peak_bytes": peak,
            "events": step.detail.get("events"), "pages": step.detail.get("pages"),
            "status": step.status}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args(argv)
    names = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1", "eu-central-1",
             "us-west-2", "ap-northeast-1", "ca-central-1"][: args.regions]

    timed = _collect(names, args.pages * 50, virtual=False)
    bound = math.ceil(args.pages / 2)
    mem_names = names[:4]
    small = _collect(mem_names, args.small // len(mem_names), virtual=True)
    large = _collect(mem_names, args.large // len(mem_names), virtual=True)
    results = {
        "speed": {"regions": len(names), "pages_per_region": args.pages,
                  "seconds": round(timed["seconds"], 3), "bound_seconds": bound,
                  "ratio": round(timed["seconds"] / bound, 3), "goal": 1.15,
                  "events": timed["events"]},
        "memory": {"small_events": small["events"], "large_events": large["events"],
                   "small_peak_mib": round(small["peak_bytes"] / 2**20, 2),
                   "large_peak_mib": round(large["peak_bytes"] / 2**20, 2),
                   "ratio": round(large["peak_bytes"] / small["peak_bytes"], 3), "goal": 1.2},
    }
    out = Path(__file__).resolve().parent / "results" / "evidence.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
