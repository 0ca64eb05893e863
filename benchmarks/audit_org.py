"""`respond audit --org` on an organization of 1 and of 50 member accounts: wall seconds
against the slowest account and the sum of all accounts.

    python benchmarks/audit_org.py [--accounts 50] [--latency-ms 200] [--slow-ms 1000]
                                   [--workers 8] [--runs 3] [--fresh-sessions] [--quick]

The organization is built in-process (moto): a management account and N members, each
member with three users holding one key apiece (so every account has findings whose
key ids must be listed). Each member is reached as the CLI reaches it, through
org.through_role (AssumeRole from the management account). moto hands out a credential
report at once where AWS takes its time, so the fake's
GetCredentialReport is held `--latency-ms` in every member and `--slow-ms` in one of them
(a botocore before-send hook: the fake AWS's latency, not the product's). The organization
of 1 is that slow account alone, so both runs contain the slowest account: if the audit
takes as long as its slowest account, wall(50)/wall(1) is near 1; if it took the sum,
near (49 * latency + slow) / slow: 10.8 with the defaults.

The 50 accounts are audited twice: with the product's pool (`--workers`, default
org.WORKERS) and with one worker per account. With a pool of W, the expected wall is
about max(slowest, sum / W): the pool bounds it, not the number of accounts. moto runs
in this process, so its work and botocore's share one GIL with the product's:
`--latency-ms 0 --slow-ms 0` measures that floor, which AWS itself would not add.

`--fresh-sessions` gives each account a Session of its own loader, as before accounts
shared botocore's data loader (Session(shared_loader=True)): what parsing botocore's
files again per account costs.

Building the organization is not timed; members() (ListAccounts) is timed apart.
Results: benchmarks/results/audit_org.json. `--quick` uses 1 and 5 accounts (CI: it
runs and writes valid JSON; the figures are not checked).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws

from responder.audit import org
from responder.audit.credential_report import Settings
from responder.aws import Api, ApiCall, RetryPolicy, Session
from responder.logging import configure

RESULTS = Path(__file__).resolve().parent / "results"
REGION = "us-east-1"
TEMPLATE = "arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"
USERS = 3


def _organization(accounts: int) -> tuple[Api, list[str]]:
    """The management account's Api and the member account ids, members populated."""
    session = boto3.Session(region_name=REGION)
    orgs = session.client("organizations")
    orgs.create_organization(FeatureSet="ALL")
    sts = session.client("sts")
    ids: list[str] = []
    for n in range(accounts):
        made = orgs.create_account(Email=f"member{n}@example.test", AccountName=f"member{n}")
        account_id = made["CreateAccountStatus"]["AccountId"]
        creds = sts.assume_role(RoleArn=TEMPLATE.format(account_id=account_id),
                                RoleSessionName="setup")["Credentials"]
        iam = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"],
                            region_name=REGION).client("iam")
        for u in range(USERS):
            iam.create_user(UserName=f"user{u}")
            iam.create_access_key(UserName=f"user{u}")
        ids.append(account_id)
    return Api(session, RetryPolicy()), ids


def _held(seconds: float) -> Callable[..., None]:
    def hold(**_: Any) -> None:
        time.sleep(seconds)  # the fake AWS taking its time over the report
    return hold


def _once(accounts: int, workers: int, latency: float, slow: float) -> dict[str, float]:
    """A fresh organization of `accounts` members (so every run generates its reports
    afresh), listed and audited with a pool of `workers`."""
    with mock_aws():
        api, ids = _organization(accounts)
        started = time.perf_counter()
        listed = org.members(api)
        list_seconds = time.perf_counter() - started
        home = api.call(ApiCall("sts", "GetCallerIdentity"))["Account"]
        targets = [m for m in listed if m.account_id != home]
        assert sorted(m.account_id for m in targets) == sorted(ids)
        slowest_id = ids[0]
        reach = org.through_role(api, TEMPLATE, home=home)

        def api_for(account_id: str) -> Api:
            member = reach(account_id)
            member.session.events.register(
                "before-send.iam.GetCredentialReport",
                _held(slow if account_id == slowest_id else latency))
            return member

        started = time.perf_counter()
        results = org.audit_org(targets, api_for, datetime.now(UTC) + timedelta(days=120),
                                Settings(), workers=workers, sleep=lambda _s: None)
        wall = time.perf_counter() - started
    assert all(r.error is None for r in results), [r.error for r in results]
    assert len(org.ranked(results)) == USERS * accounts
    return {"wall": wall, "slowest": max(r.seconds for r in results),
            "sum": sum(r.seconds for r in results), "members": list_seconds}


def measure(accounts: int, workers: int, latency: float, slow: float,
            runs: int) -> dict[str, Any]:
    """Medians of `runs` runs (a shared machine slows some runs, not all)."""
    each = [_once(accounts, workers, latency, slow) for _ in range(runs)]

    def median(name: str) -> float:
        return round(statistics.median(e[name] for e in each), 3)

    wall, slowest = median("wall"), median("slowest")
    return {"accounts": accounts, "workers": workers, "runs": runs,
            "wall_seconds": wall, "walls": [round(e["wall"], 3) for e in each],
            "slowest_account_seconds": slowest,
            "sum_of_accounts_seconds": median("sum"),
            "members_seconds": median("members"),
            "wall_over_slowest": round(wall / slowest, 2)}


class _OwnLoader(Session):
    """A member's session as before the loader was shared."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**{**options, "shared_loader": False})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--slow-ms", type=float, default=1000.0)
    parser.add_argument("--workers", type=int, default=org.WORKERS)
    parser.add_argument("--runs", type=int, default=3, help="medians of this many runs")
    parser.add_argument("--fresh-sessions", action="store_true",
                        help="no shared botocore loader between the accounts' sessions")
    parser.add_argument("--quick", action="store_true", help="1 and 5 accounts")
    args = parser.parse_args()
    configure(verbose=False)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    many = 5 if args.quick else args.accounts
    runs = 1 if args.quick else args.runs
    latency, slow = args.latency_ms / 1000, args.slow_ms / 1000
    fresh = mock.patch.object(org, "Session", _OwnLoader) if args.fresh_sessions \
        else nullcontext()
    with fresh:
        one = measure(1, args.workers, latency, slow, runs)
        big = [measure(many, w, latency, slow, runs) for w in sorted({args.workers, many})]
    result = {
        "latency_ms": args.latency_ms, "slow_ms": args.slow_ms, "users_per_account": USERS,
        "one": one, "many": big,
        "ratios": [{"workers": r["workers"],
                    "wall_many_over_wall_one": round(r["wall_seconds"] / one["wall_seconds"],
                                                     2),
                    "wall_many_over_slowest": r["wall_over_slowest"],
                    "sum_over_wall_many": round(r["sum_of_accounts_seconds"]
                                                / r["wall_seconds"], 1),
                    "wall_floor": round(max(r["slowest_account_seconds"],
                                            r["sum_of_accounts_seconds"] / r["workers"]), 3)}
                   for r in big],
        "fresh_sessions": args.fresh_sessions, "quick": args.quick,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit_org.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
