"""No silent evidence gaps: a region whose CloudTrail cannot be read is read again within
the run; still unread, the incident completes with exit 5 and says so first; replace-key
never deletes the leaked key meanwhile; the next sweep or `respond resume` reads the
region again over the whole lookback, contains what it finds, and closes the gap.

Faults are botocore hooks on the sessions the run makes (LookupEvents in one region
answers 503), never a patch of product code; events are recorded in the CloudTrail
fake in the shape AWS writes them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cloudtrail_faults import FaultyCloudTrail
from conftest import REGION, Account

from responder.context import Options, RunContext
from responder.errors import StepFailed
from responder.incident.facts import EvidenceCollected, SweepFound
from responder.incident.shapes import TemporaryKey
from responder.incident.sweeps import regions_unread_after
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.playbook import Playbook
from responder.report.document import document_of, summary
from responder.run import followup, service

CtxFactory = Callable[..., RunContext]
OTHER = "eu-west-1"


class RegionDown:
    """A botocore before-call hook: LookupEvents sent to `region` answers 503
    ServiceUnavailableException (the next `times` calls, or every call while `down`)."""

    def __init__(self, region: str, *, times: int | None = None) -> None:
        self.region = region
        self.times = times
        self.down = True
        self.failed = 0
        self._lock = threading.Lock()

    def __call__(self, model: Any, request_signer: Any, **_: Any) -> None:
        if request_signer.region_name != self.region:
            return
        with self._lock:
            if not self.down or self.times == 0:
                return
            if self.times is not None:
                self.times -= 1
            self.failed += 1
        raise ClientError({"Error": {"Code": "ServiceUnavailableException",
                                     "Message": f"CloudTrail is unavailable in {self.region}"},
                           "ResponseMetadata": {"HTTPStatusCode": 503}}, model.name)

    def session_factory(self) -> Callable[[], boto3.Session]:
        def make() -> boto3.Session:
            session = boto3.Session(region_name=REGION)
            session.events.register("before-call.cloudtrail.LookupEvents", self)
            return session

        return make


def _playbook(*, replace: bool = True) -> Playbook:
    steps: list[dict[str, Any]] = [
        {"name": "identify", "action": "identify"},
        {"name": "disable-key", "action": "disable_access_key"},
        {"name": "revoke-sessions", "action": "attach_deny_policy"},
        {"name": "collect-evidence", "action": "collect_cloudtrail", "on_failure": "continue",
         "with": {"lookback_days": 90, "regions": [REGION, OTHER]}},
        {"name": "contain-attacker", "action": "contain_attacker"},
    ]
    if replace:
        steps.append({"name": "replace-key", "action": "replace_access_key",
                      "with": {"store": "secretsmanager"}})
    return Playbook.from_dict({"name": "evidence-gap-test", "version": 1, "steps": steps,
                               "sweeps": {"after_minutes": [15, 60],
                                          "overlap_minutes": 30}}, "test")


@pytest.fixture
def trail(account: Account) -> Iterator[FaultyCloudTrail]:
    fake = FaultyCloudTrail()
    with fake.installed():
        yield fake


def _attacker(account: Account, trail: FaultyCloudTrail) -> str:
    """The leaked key listed buckets in eu-west-1 and, three hours ago (long before any
    sweep's overlap window), made carol a key: IAM records that in us-east-1. Returns
    carol's key, made for real in moto."""
    now = datetime.now(UTC)
    trail.record(OTHER, "DescribeInstances", account.leaked_key,
                 event_time=now - timedelta(minutes=5))
    account.iam.create_user(UserName="carol")
    made = account.iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"]
    trail.record(REGION, "CreateAccessKey", account.leaked_key,
                 event_time=now - timedelta(hours=3),
                 request_parameters={"userName": "carol"},
                 response_elements={"accessKey": {"accessKeyId": made, "userName": "carol",
                                                  "status": "Active",
                                                  "createDate": "Mar 1, 2026 9:00:00 AM"}})
    return str(made)


def _keys(account: Account, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"]
            for k in account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def _event_ids(path: str | None) -> list[str]:
    assert path is not None
    return [json.loads(line)["eventID"] for line in Path(path).read_text().splitlines()]


def test_regions_unread_after_the_reads_in_the_order_they_ran() -> None:
    """The evidence step's failures (the key's and a temporary key's) are unread; a sweep
    closes those it read and leaves unread those it failed in, its own window's too."""
    evidence = EvidenceCollected(
        regions_failed={REGION: "ServiceUnavailableException: down"},
        temporary_keys=(TemporaryKey("ASIAGAPEXAMPLE000001", 3, {OTHER: "InternalError: x"}),))
    still = SweepFound(regions_failed={f"AKIAGAPEXAMPLE000001 {REGION}": "Throttling: again"})
    closed = SweepFound(regions_failed={"ASIAGAPEXAMPLE000001 ap-south-1": "InternalError: y"})
    unread, reread = regions_unread_after([("collect-evidence", evidence)])
    assert unread == {OTHER: "InternalError: x", REGION: "ServiceUnavailableException: down"}
    assert reread == {}
    unread, reread = regions_unread_after([("collect-evidence", evidence), ("sweep-1", still),
                                           ("sweep-2", closed)])
    assert unread == {"ap-south-1": "InternalError: y"}
    assert reread == {"sweep-1": (OTHER,), "sweep-2": (REGION,)}
    assert regions_unread_after([("sweep-1", closed), ("collect-evidence", evidence)])[0] == \
        {OTHER: "InternalError: x", REGION: "ServiceUnavailableException: down"}


def test_a_region_that_fails_once_is_read_again_within_the_step(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """us-east-1 fails every retry of the first lookup, then recovers: the step reads it
    again after the other regions, so the evidence is whole and nothing is unread."""
    carol_key = _attacker(account, trail)
    ctx = make_ctx()
    down = RegionDown(REGION, times=ctx.retry.max_attempts)
    ctx = make_ctx(session_factory=down.session_factory(), options=Options(replace=False))
    record = service.respond(ctx, journal, _playbook(replace=False), account.leaked_key)
    assert down.failed == ctx.retry.max_attempts
    view = IncidentView.load(journal, record.id)
    assert view.regions_unread == {}
    assert view.evidence is not None
    assert view.evidence.regions == (OTHER, REGION)
    assert view.evidence.regions_failed == {}
    assert view.exit_code == 0
    assert _keys(account, "carol")[carol_key] == "Inactive"


def test_a_region_still_unread_completes_with_exit_5_and_says_so_first(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """us-east-1 down for the whole run: completed, exit 5; the summary's headline names
    the region and what containment may have missed, and the evidence step's line says
    a region is unread; the JSON names it too."""
    carol_key = _attacker(account, trail)
    down = RegionDown(REGION)
    ctx = make_ctx(session_factory=down.session_factory(), options=Options(replace=False))
    record = service.respond(ctx, journal, _playbook(replace=False), account.leaked_key)
    view = IncidentView.load(journal, record.id)
    assert view.status == "completed"
    assert list(view.regions_unread) == [REGION]
    assert "ServiceUnavailable" in view.regions_unread[REGION]
    assert view.exit_code == 5
    assert _keys(account, "carol")[carol_key] == "Active"  # unseen: not contained yet
    doc = document_of(view)
    text = summary(doc)
    headline = "\n".join(text.splitlines()[:4])
    assert REGION in headline, text
    assert "containment may be incomplete" in headline, text
    assert f"respond sweep {record.id}" in headline, text
    line = next(x for x in text.splitlines() if "collect-evidence" in x)
    assert "[ok]" in line
    assert "1 region unread" in line, line
    assert REGION in line, line
    evidence = doc.to_json()["evidence"]
    assert list(evidence["regions_unread"]) == [REGION]


def test_replace_key_never_deletes_the_leaked_key_while_a_region_is_unread(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """The reported case: alice has two keys and us-east-1 cannot be read. replace-key
    halts before deleting anything, naming the region and the ways out; once us-east-1
    is back, `respond resume` reads it again over the whole lookback, contains carol's
    key, then deletes the leaked key and stores the new one: exit 0."""
    carol_key = _attacker(account, trail)
    down = RegionDown(REGION)
    ctx = make_ctx(session_factory=down.session_factory())
    with pytest.raises(StepFailed) as halted:
        service.respond(ctx, journal, _playbook(), account.leaked_key)
    message = str(halted.value)
    assert REGION in message
    assert "respond sweep" in message
    assert "respond resume" in message
    assert "by hand" in message
    assert _keys(account, "alice") == {account.leaked_key: "Inactive",
                                       account.other_key: "Active"}
    (incident,) = journal.recent()
    view = IncidentView.load(journal, incident.id)
    assert (view.status, view.failing_step) == ("halted", "replace-key")
    assert view.exit_code == 1

    down.down = False
    record = service.resume(ctx, journal, incident.id)
    view = IncidentView.load(journal, record.id)
    assert record.status == "completed", record.error
    assert view.regions_unread == {}
    assert view.exit_code == 0
    assert _keys(account, "carol")[carol_key] == "Inactive"
    replaced = view.replacement
    assert replaced is not None
    assert replaced.deleted_compromised is True
    assert set(_keys(account, "alice")) == {account.other_key, replaced.access_key_id}
    ids = _event_ids(view.evidence.path if view.evidence else None)
    assert len(ids) == len(set(ids)) == 2


def test_the_next_sweep_reads_the_unread_region_over_the_whole_lookback(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """Completed with us-east-1 unread (exit 5); the region back, the next sweep reads it
    from the start of the lookback (the event is three hours old, far outside the overlap
    window), merges it once, disables carol's key and closes the gap (exit 0); a sweep
    after it merges nothing twice."""
    carol_key = _attacker(account, trail)
    down = RegionDown(REGION)
    ctx = make_ctx(session_factory=down.session_factory(), options=Options(replace=False))
    record = service.respond(ctx, journal, _playbook(replace=False), account.leaked_key)
    assert IncidentView.load(journal, record.id).exit_code == 5

    down.down = False
    swept = followup.sweep(ctx, journal, record.id)
    assert swept.status == "done", swept.error
    view = IncidentView.load(journal, record.id)
    assert view.regions_unread == {}
    assert view.exit_code == 0
    assert view.sweeps_reread == {"sweep-1": (REGION,)}
    assert _keys(account, "carol")[carol_key] == "Inactive"
    found = view.sweeps_found[-1]
    assert found.new_events == 1
    assert found.attacker is not None
    assert [k.access_key_id for k in found.attacker.keys_disabled] == [carol_key]
    ids = _event_ids(view.evidence.path if view.evidence else None)
    assert len(ids) == len(set(ids)) == 2

    again = followup.sweep(ctx, journal, record.id)
    assert again.status == "done"
    after = IncidentView.load(journal, record.id)
    assert after.sweeps_found[-1].new_events == 0
    assert _event_ids(after.evidence.path if after.evidence else None) == ids


def test_a_sweep_that_still_cannot_read_the_region_keeps_the_gap_open(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """us-east-1 still down at the sweep: the gap stays open (exit 5, the region named),
    and the sweep read eu-west-1 as usual."""
    _attacker(account, trail)
    down = RegionDown(REGION)
    ctx = make_ctx(session_factory=down.session_factory(), options=Options(replace=False))
    record = service.respond(ctx, journal, _playbook(replace=False), account.leaked_key)
    swept = followup.sweep(ctx, journal, record.id)
    assert swept.status == "done", swept.error
    view = IncidentView.load(journal, record.id)
    assert list(view.regions_unread) == [REGION]
    assert view.sweeps_reread == {"sweep-1": ()}
    assert view.exit_code == 5


def test_every_region_unread_is_never_a_clean_exit(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, trail: FaultyCloudTrail
) -> None:
    """CloudTrail down in every region for a user with one key: the evidence step fails,
    and contain-attacker halts (exit 1) rather than say it saw nothing; `respond resume`
    collects again."""
    _attacker(account, trail)

    class Everywhere(RegionDown):
        def __call__(self, model: Any, request_signer: Any, **_: Any) -> None:
            self.region = request_signer.region_name
            super().__call__(model, request_signer)

    account.iam.delete_access_key(UserName="alice", AccessKeyId=account.other_key)
    ctx = make_ctx(session_factory=Everywhere(REGION).session_factory())
    with pytest.raises(StepFailed, match="respond resume") as halted:
        service.respond(ctx, journal, _playbook(), account.leaked_key)
    assert halted.value.exit_code == 1
    (incident,) = journal.recent()
    assert incident.status == "halted"
    assert incident.contained_at is not None  # the key itself is contained, and verified
