"""collect-evidence against the CloudTrail fake: completeness, pivot, throttling, failures."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cloudtrail_faults import FaultyCloudTrail
from conftest import Account, Faults

from responder.aws.ratelimit import VirtualClock
from responder.context import RunContext
from responder.journal.sqlite import SqliteJournal
from responder.playbook import Playbook
from responder.run import service

REGIONS = ["ap-southeast-2", "eu-west-1", "us-east-1"]
ASIA = "ASIAPIVOTEXAMPLE0001"
CtxFactory = Callable[..., RunContext]


def _playbook(regions: list[str] | str) -> Playbook:
    return Playbook.from_dict({
        "name": "evidence-test", "version": 1, "steps": [
            {"name": "identify", "action": "identify"},
            {"name": "disable-key", "action": "disable_access_key"},
            {"name": "collect-evidence", "action": "collect_cloudtrail",
             "on_failure": "continue", "with": {"lookback_days": 90, "regions": regions}},
        ]}, "test")


@pytest.fixture
def trail(account: Account) -> Iterator[FaultyCloudTrail]:
    """230 events of the leaked key over 3 regions (5 pages in eu-west-1), 40 of other
    keys, and a GetSessionToken whose ASIA key made 7 calls of its own."""
    fake = FaultyCloudTrail()
    now = datetime.now(UTC) - timedelta(minutes=5)
    spread = {"eu-west-1": 210, "us-east-1": 15, "ap-southeast-2": 4}
    for region, count in spread.items():
        for i in range(count):
            fake.record(region, "DescribeInstances" if i % 3 else "ListBuckets",
                        account.leaked_key, event_time=now - timedelta(seconds=i),
                        source_ip="198.51.100.9")
    fake.record("us-east-1", "GetSessionToken", account.leaked_key,
                event_time=now + timedelta(seconds=1), source_ip="198.51.100.9",
                response_elements={"credentials": {"accessKeyId": ASIA,
                                                   "sessionToken": "x", "expiration": "y"}})
    for i in range(7):
        fake.record("eu-west-1", "CreateUser", ASIA, event_time=now + timedelta(seconds=2 + i),
                    source_ip="192.0.2.66")
    for region in REGIONS:
        for i in range(40 // len(REGIONS)):
            fake.record(region, "ListUsers", account.other_key,
                        event_time=now - timedelta(seconds=i))
    with fake.installed():
        yield fake


def _run(ctx: RunContext, journal: SqliteJournal, key: str,
         regions: list[str] | str = REGIONS) -> dict[str, Any]:
    record = service.respond(ctx, journal, _playbook(regions), key)
    step = {s.name: s for s in journal.steps(record.id)}["collect-evidence"]
    assert step.status == "done", step.error
    return dict(step.detail)


def _lines(detail: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(detail["path"]).read_text().splitlines()]


def test_every_event_of_the_key_once_and_nothing_else(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """All 230 events of the key plus the pivot's 7, each exactly once; no other key's."""
    detail = _run(make_ctx(), journal, account.leaked_key)
    records = _lines(detail)
    ids = Counter(r["eventID"] for r in records)
    assert len(ids) == 230 + 7
    assert set(ids.values()) == {1}
    keys = Counter(r["userIdentity"]["accessKeyId"] for r in records)
    assert keys == {account.leaked_key: 230, ASIA: 7}
    assert all(r["pivotFrom"] == account.leaked_key for r in records
               if r["userIdentity"]["accessKeyId"] == ASIA)
    assert all(r["lookupRegion"] == r["awsRegion"] for r in records)
    assert detail["events"] == 237
    assert detail["regions"] == REGIONS
    assert detail["regions_failed"] == {}
    assert trail.calls["eu-west-1"] == 5 + 1  # five pages for the key, one for the ASIA key


def test_sha256_and_summary(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """The journaled sha256 is the file's; the summary counts names, IPs, risky actions."""
    detail = _run(make_ctx(), journal, account.leaked_key)
    path = Path(detail["path"])
    assert detail["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.name == "cloudtrail.jsonl"
    summary = detail["summary"]
    assert summary["events"] == 237
    assert summary["by_event_name"]["CreateUser"] == 7
    assert summary["by_event_name"]["GetSessionToken"] == 1
    assert sum(summary["by_event_name"].values()) == 237
    assert summary["source_ips"] == {"198.51.100.9": 230, "192.0.2.66": 7}
    assert summary["regions"] == {"ap-southeast-2": 4, "eu-west-1": 217, "us-east-1": 16}
    risky = Counter(e["eventName"] for e in summary["high_risk"])
    assert risky == {"CreateUser": 7, "GetSessionToken": 1}
    assert all(e["region"] and e["sourceIPAddress"] and e["eventTime"]
               for e in summary["high_risk"])
    assert summary["first_event"] < summary["last_event"]
    assert detail["temporary_keys"][0]["access_key_id"] == ASIA
    assert detail["temporary_keys"][0]["events"] == 7


def test_throttling_storm_gives_the_same_file(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory,
    tmp_path: Path,
) -> None:
    """With 30% of LookupEvents throttled, the evidence file is byte-for-byte the same."""
    calm = _run(make_ctx(home=tmp_path / "calm"), journal, account.leaked_key)
    calm_calls = sum(trail.calls.values())
    trail.throttle_rate = 0.3
    account.iam.update_access_key(UserName="alice", AccessKeyId=account.leaked_key,
                                  Status="Active")  # live again: a second full response
    stormy = _run(make_ctx(home=tmp_path / "storm"), journal, account.leaked_key)
    assert sum(trail.calls.values()) - calm_calls > calm_calls  # throttles really happened
    assert stormy["sha256"] == calm["sha256"]
    assert Path(stormy["path"]).read_bytes() == Path(calm["path"]).read_bytes()


def test_a_failing_region_is_listed_and_the_rest_complete(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A region that keeps failing is recorded as failed; the others' events are all there."""
    trail.failing_regions = frozenset({"ap-southeast-2"})
    detail = _run(make_ctx(), journal, account.leaked_key)
    assert list(detail["regions_failed"]) == ["ap-southeast-2"]
    assert "ServiceUnavailable" in detail["regions_failed"]["ap-southeast-2"]
    assert detail["regions"] == ["eu-west-1", "us-east-1"]
    assert detail["events"] == 210 + 15 + 1 + 7


def test_every_region_failing_fails_the_step_but_the_playbook_continues(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """on_failure: continue: evidence failure is recorded and the incident still completes."""
    trail.failing_regions = frozenset(REGIONS)
    record = service.respond(make_ctx(), journal, _playbook(REGIONS), account.leaked_key)
    assert record.status == "completed"
    step = {s.name: s for s in journal.steps(record.id)}["collect-evidence"]
    assert step.status == "failed"
    assert "every region" in (step.error or "")


def test_rate_limit_holds_per_region(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """Six LookupEvents in eu-west-1 at 2/s (burst 2) wait at least 2 s (virtual time)."""
    clock = VirtualClock()
    _run(make_ctx(monotonic=clock.monotonic, sleep=clock.sleep), journal, account.leaked_key)
    assert clock.slept >= 2.0


def test_all_regions_comes_from_describe_regions(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory,
    faults: Faults,
) -> None:
    """regions: all asks EC2 for the enabled regions and always includes us-east-1."""
    detail = _run(make_ctx(session_factory=faults.session_factory()), journal,
                  account.leaked_key, regions="all")
    assert faults.count("DescribeRegions") == 1
    assert "us-east-1" in detail["regions"]
    assert set(REGIONS) <= set(detail["regions"])
    assert detail["events"] == 237


def test_lookup_results_are_not_copied_into_the_journal(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """The journal keeps each page's size, not its events (they live in the JSONL)."""
    record = service.respond(make_ctx(), journal, _playbook(REGIONS), account.leaked_key)
    lookups = [c for c in journal.calls(record.id) if c.operation == "LookupEvents"]
    assert lookups
    assert all(c.result is not None and isinstance(c.result["Events"], int) for c in lookups)
    assert sum(c.result["Events"] for c in lookups if c.result) == 237
