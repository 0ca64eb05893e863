"""`respond audit` on a small and a big account: AWS calls and seconds, 10 vs 5,000 users.

    python benchmarks/audit.py [--small 10] [--big 5000] [--quick]

Each account is built in-process (moto) with every user holding one key; one user in
fifty also holds a second Active key, so the audit has flagged users whose keys it must
name (ListAccessKeys, for flagged users only). Building the accounts is not timed; the
audit is (credential report generation, reading, ranking). The goal (issue 20): the
number of calls grows with the flagged users, not with the account, and the time stays
well under a linear ratio.

Results: benchmarks/results/audit.json. `--quick` uses 10 and 200 users (CI: it runs and
writes valid JSON; the figures are not checked).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from responder.audit import credential_report as audit
from responder.aws import Api, RetryPolicy
from responder.logging import configure

RESULTS = Path(__file__).resolve().parent / "results"
REGION = "us-east-1"


def _account(users: int) -> boto3.Session:
    session = boto3.Session(region_name=REGION)
    iam = session.client("iam")
    for n in range(users):
        name = f"user{n:05d}"
        iam.create_user(UserName=name)
        iam.create_access_key(UserName=name)
        if n % 50 == 0:
            iam.create_access_key(UserName=name)
    return session


def measure(users: int) -> dict[str, Any]:
    with mock_aws():
        session = _account(users)
        calls: Counter[str] = Counter()
        session.events.register("before-call", lambda model, **_: calls.update([model.name]))
        started = time.perf_counter()
        found = audit.audit(Api(session, RetryPolicy()), datetime.now(UTC), audit.Settings(),
                            None, sleep=lambda _s: None)
        seconds = time.perf_counter() - started
    return {"users": users, "seconds": round(seconds, 4), "calls": sum(calls.values()),
            "by_operation": dict(sorted(calls.items())), "findings": len(found)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--big", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="10 and 200 users")
    args = parser.parse_args()
    configure(verbose=False)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    big = 200 if args.quick else args.big
    small, large = measure(args.small), measure(big)
    result = {"small": small, "big": large,
              "users_ratio": round(large["users"] / small["users"], 1),
              "seconds_ratio": round(large["seconds"] / max(small["seconds"], 1e-9), 1),
              "calls_ratio": round(large["calls"] / max(small["calls"], 1), 1),
              "quick": args.quick}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
