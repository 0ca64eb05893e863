"""How harden reads CloudTrail (issue 32): paced like collect-evidence, every page or an
explicit window, and inside an incident the leaked key's events taken from the evidence.

The account throttles LookupEvents at 2 requests/s per region, as AWS does: the fake,
the parallel virtual clock it keeps time with, and the botocore hooks that count the
calls are benchmarks/harden.py's (one fake for the benchmark and these tests). Nothing
sleeps: the rate limiters wait in virtual time. Calls are counted by botocore event hooks
on the sessions the product makes, never by patching product code.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import REGION, Account, iam_state, make_account
from moto import mock_aws

from responder import playbook
from responder.context import RunContext, iso, parse_iso
from responder.errors import StepFailed
from responder.hardening.history import History, RegionRead, from_evidence
from responder.hardening.usage import Tally
from responder.incident.facts_hardening import Hardened, HistoryWindow
from responder.journal.sqlite import SqliteJournal
from responder.report import hardening as report_hardening
from responder.report import story
from responder.run import followup, service
from responder.run import harden as run_harden
from responder.steps.harden import IN_INCIDENT_EVENTS


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "harden.py"
    spec = importlib.util.spec_from_file_location("benchmark_harden", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module's names
    spec.loader.exec_module(module)
    return module


bench = _bench()
CtxFactory = Callable[..., RunContext]
EU, AP = "eu-west-1", "ap-southeast-2"
PAGE = 50


@dataclass(frozen=True)
class World:
    account: Account
    trail: Any
    """benchmarks/harden.py's ThrottlingTrail: 2 LookupEvents/s per region."""
    lookups: Any
    """benchmarks/harden.py's Lookups: the calls botocore made, by lookup attribute."""
    ctx: RunContext


@pytest.fixture
def world(make_ctx: CtxFactory) -> Iterator[World]:
    clock = bench.ParallelClock()
    trail = bench.ThrottlingTrail(clock=clock)
    lookups = bench.Lookups(clock)
    with mock_aws(), trail.installed():
        account = make_account(boto3.Session(region_name=REGION))
        ctx = make_ctx(session_factory=lookups.session_factory(), monotonic=clock.monotonic,
                       sleep=clock.sleep)
        yield World(account, trail, lookups, ctx)


def _record(w: World, region: str, name: str, source: str, key: str, *, at: datetime,
            **params: Any) -> None:
    w.trail.record(region, name, key, event_time=at, event_source=f"{source}.amazonaws.com",
                   source_ip="192.0.2.10", request_parameters=params or None)


def _spread(w: World, region: str, name: str, source: str, key: str, *, count: int,
            newest: datetime, step: timedelta, **params: Any) -> None:
    for n in range(count):
        _record(w, region, name, source, key, at=newest - n * step, **params)


def _hardened(doc: Any) -> tuple[Any, HistoryWindow]:
    hard = doc.hardening
    assert hard is not None
    assert hard.window is not None
    return hard, hard.window


def test_the_fake_throttles_a_reader_that_does_not_pace(world: World) -> None:
    """The control: without a rate limiter the third request of the same second is
    throttled, so a run without throttles below proves the pacing, not a lenient fake."""
    client = boto3.client("cloudtrail", region_name=REGION,
                          config=Config(retries={"total_max_attempts": 1}))
    ask = {"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "alice"}]}
    client.lookup_events(**ask)
    client.lookup_events(**ask)
    with pytest.raises(ClientError, match="ThrottlingException"):
        client.lookup_events(**ask)


def test_every_page_of_every_region_in_parallel_and_nothing_throttled(world: World) -> None:
    """Three regions read at once, each at 2 requests/s: no call throttled, every page
    read (16 lookups for 16 pages), and the window said: the whole lookback."""
    newest = datetime.now(UTC) - timedelta(hours=30)
    key = world.account.other_key
    _spread(world, REGION, "GetObject", "s3", key, count=320, newest=newest,
            step=timedelta(hours=6), bucketName="reports")
    _spread(world, EU, "Query", "dynamodb", key, count=260, newest=newest,
            step=timedelta(hours=7), tableName="orders")
    _spread(world, AP, "DescribeInstances", "ec2", key, count=139, newest=newest,
            step=timedelta(hours=12))
    _record(world, AP, "DescribeImages", "ec2", key, at=newest - timedelta(days=85))

    done = run_harden.standalone(world.ctx, "alice", {"regions": [REGION, EU, AP]})

    assert dict(world.lookups.throttled) == {}
    assert sum(world.trail.throttled.values()) == 0
    assert world.lookups.calls["Username"] == 7 + 6 + 3  # every page, each once
    hard, window = _hardened(done.document)
    assert set(window.regions) == {REGION, EU, AP}
    assert hard.truncated is False
    assert window.events_read == window.events_estimated == 320 + 260 + 140
    assert window.lookups == 16
    assert window.read_limit is None
    assert window.read_all is None
    at = parse_iso(hard.compromised_at)
    assert at is not None
    assert window.read_from == iso(at - timedelta(days=90))  # the whole lookback
    assert {"s3:GetObject", "dynamodb:Query", "ec2:DescribeInstances",
            "ec2:DescribeImages"} <= set(hard.used_actions)  # the oldest page's too
    lines = report_hardening.human_lines(hard)
    assert any(f"from {window.read_from} to {window.read_to}: every page, 720 events" in line
               for line in lines), lines


def test_a_limit_reports_the_window_it_read_and_is_never_applied(world: World) -> None:
    """max_events stops a region early: the facts say from when to when, how many, of
    about how many, and the command that reads it all; --apply refuses such a proposal."""
    now = datetime.now(UTC)
    newest = now - timedelta(hours=25)
    step = timedelta(days=88) / 600
    _spread(world, REGION, "GetObject", "s3", world.account.other_key, count=600,
            newest=newest, step=step, bucketName="reports")
    before = iam_state(world.account.iam)

    done = run_harden.standalone(world.ctx, "alice", {"max_events": 100})

    hard, window = _hardened(done.document)
    assert hard.truncated is True
    assert window.events_read == 100
    assert world.lookups.calls["Username"] == 2  # stopped: 10 more pages were left
    assert dict(world.lookups.throttled) == {}
    oldest_read = (newest - 99 * step).replace(microsecond=0)
    assert parse_iso(window.read_from) == oldest_read
    assert window.read_to is not None
    assert window.events_estimated is not None
    assert 480 <= window.events_estimated <= 720  # "of about 600"
    assert window.read_limit == "max_events 100 per region"
    assert window.read_all == "respond harden alice"
    told = "\n".join(report_hardening.human_lines(hard))
    assert f"from {window.read_from} to {window.read_to}: 100 events of about" in told
    assert f"actions used only before {window.read_from} may be missing" in told
    assert "respond harden alice reads every page" in told
    brief = "\n".join(story._hardening(hard))
    assert f"history read only from {window.read_from}" in brief
    md = "\n".join(report_hardening.markdown(hard))
    assert "100 events of about" in md

    with pytest.raises(StepFailed, match="read only from"):
        run_harden.standalone(world.ctx, "alice", {"max_events": 100, "apply": True})
    assert iam_state(world.account.iam) == before


def _incident_world(w: World) -> datetime:
    """alice's history before the compromise time (24 h before the incident): the
    leaked key used ec2:DescribeImages 60 days ago, which only the evidence holds once
    the lookup by user name stops at its budget; her application key made 1,200 calls
    in the last 25 days (24 pages), a DynamoDB Query among the newest (found only by
    user name: not the leaked key's), and an SQS SendMessage 80 days ago, older than
    the budget reaches."""
    newest = datetime.now(UTC) - timedelta(hours=26)
    leaked, other = w.account.leaked_key, w.account.other_key
    _record(w, REGION, "DescribeImages", "ec2", leaked, at=newest - timedelta(days=60))
    _record(w, REGION, "ListBuckets", "s3", leaked, at=newest - timedelta(days=2))
    _spread(w, REGION, "GetObject", "s3", other, count=1200, newest=newest,
            step=timedelta(minutes=30), bucketName="reports")
    _record(w, REGION, "Query", "dynamodb", other, at=newest + timedelta(minutes=1),
            tableName="orders")
    _record(w, REGION, "SendMessage", "sqs", other, at=newest - timedelta(days=80))
    return newest


def test_inside_an_incident_the_evidence_is_reused_and_the_budget_holds(
    world: World, journal: SqliteJournal
) -> None:
    """The playbook's harden takes the leaked key's events from cloudtrail.jsonl (no
    lookup by key id of its own), reads ten pages by user name (its budget: the incident
    completes in seconds), says the window, and no call anywhere is throttled. The
    proposal keeps what only the lookup by user name finds (the other key's Query) and
    what only the evidence holds (the leaked key's DescribeImages, 60 days back)."""
    _incident_world(world)
    record = service.respond(world.ctx, journal, playbook.load("compromised-key"),
                             world.account.leaked_key)

    assert record.status == "completed"
    steps = {s.name: s for s in journal.steps(record.id)}
    assert steps["harden"].status == "done"
    assert dict(world.lookups.throttled) == {}
    assert sum(world.trail.throttled.values()) == 0
    by_key = [c for c in journal.calls(record.id) if c.operation == "LookupEvents"
              and c.params["LookupAttributes"][0]["AttributeKey"] == "AccessKeyId"]
    assert by_key
    assert {c.step for c in by_key} == {"collect-evidence"}
    assert world.lookups.calls["AccessKeyId"] == len(by_key)  # harden read none again
    assert world.lookups.calls["Username"] == IN_INCIDENT_EVENTS // PAGE

    hard = Hardened.from_detail(steps["harden"].detail)
    window = hard.window
    assert window is not None
    assert hard.truncated is True
    assert window.events_read == IN_INCIDENT_EVENTS
    assert window.evidence_events == 2  # the leaked key's two, taken from the file
    assert window.read_to == hard.compromised_at  # the rest is in the evidence
    assert window.read_all == f"respond harden alice --incident {record.id}"
    assert window.events_estimated is not None
    assert window.events_estimated > window.events_read
    assert "dynamodb:Query" in hard.used_actions  # the other key's: user name only
    assert "ec2:DescribeImages" in hard.used_actions  # beyond the budget: the evidence's
    assert "sqs:SendMessage" not in hard.used_actions  # beyond both: and said so
    assert "s3:ListAllMyBuckets" in hard.used_actions  # the evidence's too


def test_respond_harden_incident_reads_every_page_and_keeps_the_evidence(
    world: World, journal: SqliteJournal
) -> None:
    """`respond harden alice --incident ID` reads every page by user name up to the
    compromise time (nothing by key id: the evidence holds the key's events), so what
    only the whole history shows is in the proposal."""
    _incident_world(world)
    record = service.respond(world.ctx, journal, playbook.load("compromised-key"),
                             world.account.leaked_key)
    by_key = world.lookups.calls["AccessKeyId"]
    before = world.lookups.calls["Username"]

    done = followup.harden(world.ctx, journal, record.id, {})

    assert done.status == "done", done.error
    assert world.lookups.calls["AccessKeyId"] == by_key
    users = 1200 + 1 + 1 + 2  # the application key's, and the leaked key's two
    assert world.lookups.calls["Username"] - before == -(-users // PAGE)
    assert dict(world.lookups.throttled) == {}
    step = {s.name: s for s in journal.steps(record.id)}[done.step]
    hard = Hardened.from_detail(step.detail)
    assert hard.window is not None
    assert hard.truncated is False
    assert hard.window.events_read == users
    assert hard.window.evidence_events == 2
    assert hard.events == users  # each event once, from whichever source
    at = parse_iso(hard.compromised_at)
    assert at is not None
    assert hard.window.read_from == iso(at - timedelta(days=90))
    assert {"sqs:SendMessage", "dynamodb:Query", "ec2:DescribeImages",
            "s3:GetObject"} <= set(hard.used_actions)


def test_only_the_users_own_events_are_taken_from_the_evidence(tmp_path: Path) -> None:
    """The evidence also holds the sessions the key minted: a role's session acts under
    the role's policies, and another user's events are not alice's usage."""
    since = datetime(2026, 9, 1, tzinfo=UTC)

    def event(n: int, name: str, identity: dict[str, Any], at: datetime) -> str:
        return json.dumps({"eventID": f"e{n}", "eventName": name,
                           "eventSource": "ec2.amazonaws.com", "eventTime": iso(at),
                           "userIdentity": identity, "sourceIPAddress": "192.0.2.1"})

    alice = {"type": "IAMUser", "userName": "alice", "accountId": "123456789012"}
    role = {"type": "AssumedRole", "accountId": "123456789012",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "alice"}}}
    bob = {"type": "IAMUser", "userName": "bob", "accountId": "123456789012"}
    path = tmp_path / "cloudtrail.jsonl"
    path.write_text("\n".join([
        event(1, "DescribeInstances", alice, since + timedelta(days=1)),
        event(2, "RunInstances", role, since + timedelta(days=1)),
        event(3, "TerminateInstances", bob, since + timedelta(days=1)),
        event(4, "DescribeImages", alice, since - timedelta(days=1)),
    ]) + "\n")
    tally = Tally()
    assert from_evidence(path, "alice", since, tally) == 1
    assert [u.action for u in tally.usages()] == ["ec2:DescribeInstances"]
    assert tally.add(json.loads(path.read_text().splitlines()[0])) is False  # seen once


def test_the_window_of_regions_partly_read_stopped_or_failed() -> None:
    """The window holds in every region read: from the latest point a stopped region
    reached back to; a failed region is left to regions_failed, and with none read there
    is no window to claim. The estimate scales a stopped region's count to the lookback."""
    start = datetime(2026, 9, 1, tzinfo=UTC)
    end = start + timedelta(days=90)
    reads = (RegionRead(REGION, events=900, pages=18),
             RegionRead(EU, events=100, pages=2, reached=end - timedelta(days=9)),
             RegionRead(AP, events=50, pages=1, error="ServiceUnavailable: down"))
    found = History(regions=(REGION, EU, AP), failed={AP: "ServiceUnavailable: down"},
                    truncated=True, window=(start, end), reads=reads)
    assert found.read == (REGION, EU)
    assert found.read_from == end - timedelta(days=9)
    assert found.events == 1050
    assert found.estimated == 900 + 1000 + 50
    nothing = History(regions=(AP,), failed={AP: "x"}, window=(start, end),
                      reads=(RegionRead(AP, error="x"),))
    assert nothing.read_from is None
    entry = report_hardening.hardening_of(Hardened(user_name="alice", window=HistoryWindow(
        regions=(), read_to=iso(end), evidence_events=3, evidence_from=iso(start),
        evidence_to=iso(end)), regions_failed={AP: "x"}))
    assert entry is not None
    lines = report_hardening.window_lines(entry)
    assert len(lines) == 1
    assert lines[0].startswith("the leaked key's 3 events in the lookback came from")


def test_a_journal_from_before_the_window_still_reads_and_says_so() -> None:
    """Old journals have no window: they read back with none, and a truncated one says
    its window was not recorded rather than inventing one."""
    old = {"user_name": "alice", "events": 50000, "truncated": True,
           "regions": ["us-east-1"], "used_actions": ["s3:GetObject"], "lookback_days": 90}
    facts = Hardened.from_detail(old)
    assert facts.window is None
    entry = report_hardening.hardening_of(facts)
    assert entry is not None
    assert any("window was not recorded" in line for line in report_hardening.human_lines(entry))
    assert "only the newest events were read (window not recorded)" in story._hardening(entry)
    assert entry.to_json()["window"] is None

    new = Hardened(user_name="alice", window=HistoryWindow(
        regions=("us-east-1",), read_from="2026-09-01T00:00:00Z",
        read_to="2026-11-30T00:00:00Z", events_read=10, events_estimated=10, lookups=1))
    assert Hardened.from_detail(json.loads(json.dumps(new.to_detail()))) == new
