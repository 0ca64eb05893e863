"""Sweeps are a schedule: each moment (containment + after_minutes) stays due until a
sweep read CloudTrail at or after it, whatever ran by hand before; one sweep after
several overdue moments covers them all. The view, `--watch` and schedule-sweeps read the
same function (incident/sweeps.py), so they never disagree."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cloudtrail_faults import FaultyCloudTrail
from conftest import REGION, Account, CliResult

from responder.context import RunContext, Scheduler
from responder.incident.sweeps import due_times, still_due
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.playbook import Playbook
from responder.report.document import document_of
from responder.run import followup, service
from responder.run.lease import Lease, acquire

CtxFactory = Callable[..., RunContext]
Cli = Callable[..., CliResult]
SETTINGS = {"after_minutes": [15, 60], "overlap_minutes": 30}
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    """Wall and monotonic time that move together, only when slept or moved: `--watch`
    waits for the 60-minute sweep in no time."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.mono = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def monotonic(self) -> float:
        with self._lock:
            return self.mono

    def sleep(self, seconds: float) -> None:
        self.move(timedelta(seconds=seconds))

    def move(self, by: timedelta) -> None:
        with self._lock:
            self.now += by
            self.mono += by.total_seconds()


def _playbook() -> Playbook:
    return Playbook.from_dict({
        "name": "sweep-schedule-test", "version": 1, "sweeps": SETTINGS, "steps": [
            {"name": "identify", "action": "identify"},
            {"name": "disable-key", "action": "disable_access_key"},
            {"name": "revoke-sessions", "action": "attach_deny_policy"},
            {"name": "collect-evidence", "action": "collect_cloudtrail",
             "on_failure": "continue", "with": {"regions": [REGION]}},
            {"name": "contain-attacker", "action": "contain_attacker"},
        ]}, "test")


@pytest.fixture
def trail(account: Account) -> Any:
    fake = FaultyCloudTrail()
    with fake.installed():
        yield fake


def _contained(account: Account, trail: FaultyCloudTrail, journal: SqliteJournal,
               ctx: RunContext) -> IncidentView:
    trail.record(REGION, "ListBuckets", account.leaked_key,
                 event_time=ctx.clock() - timedelta(minutes=3))
    record = service.respond(ctx, journal, _playbook(), account.leaked_key)
    assert record.status == "completed", record.error
    view = IncidentView.load(journal, record.id)
    assert view.contained_at is not None
    return view


def test_still_due_keeps_each_moment_until_a_sweep_at_or_after_it() -> None:
    """Sweeps before a moment do not use it up; a sweep at or after it does, and one
    sweep after several moments covers all of them."""
    at15, at60 = T0 + timedelta(minutes=15), T0 + timedelta(minutes=60)
    assert due_times(SETTINGS, T0) == [at15, at60]
    assert still_due(SETTINGS, T0, []) == [at15, at60]
    early = [T0 + timedelta(seconds=20), T0 + timedelta(seconds=40)]
    assert still_due(SETTINGS, T0, early) == [at15, at60]
    assert still_due(SETTINGS, T0, [at15]) == [at60]
    assert still_due(SETTINGS, T0, [*early, T0 + timedelta(minutes=20)]) == [at60]
    assert still_due(SETTINGS, T0, [T0 + timedelta(minutes=61)]) == []
    assert still_due({}, T0, [T0 + timedelta(minutes=14)]) == [at15, at60]  # the defaults


def test_sweeps_by_hand_in_the_first_minute_leave_both_sweeps_due(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """The reported case: two `respond sweep` right after containment are two sweeps done,
    but the 15- and 60-minute sweeps are still due, in the view and in the document; then
    `--watch` waits for each and runs it, and nothing is due after the second."""
    clock = Clock(datetime.now(UTC))
    ctx = make_ctx(clock=clock, monotonic=clock.monotonic, sleep=clock.sleep)
    view = _contained(account, trail, journal, ctx)
    contained = view.contained_at
    assert contained is not None
    for _ in range(2):
        clock.move(timedelta(seconds=20))
        assert followup.sweep(ctx, journal, view.id).status == "done"
    view = IncidentView.load(journal, view.id)
    assert len(view.sweeps_found) == 2
    moments = (contained + timedelta(minutes=15), contained + timedelta(minutes=60))
    assert view.sweeps_due == moments
    sweeps = document_of(view).sweeps
    assert sweeps is not None
    assert len(sweeps.due) == 2
    assert sweeps.next is not None

    waited: list[tuple[str, datetime]] = []
    watched = followup.watch(ctx, journal, view.id,
                             lambda step, due: waited.append((step, due)))
    assert [w.status for w in watched] == ["done", "done"]
    assert waited == [("sweep-3", moments[0]), ("sweep-4", moments[1])]
    assert clock() >= moments[1]
    after = IncidentView.load(journal, view.id)
    assert after.sweeps_due == ()
    assert len(after.sweeps_found) == 4


def test_two_sweeps_by_hand_leave_both_sweeps_due_in_status(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """The reported case through the installed `respond`: two `respond sweep` in the
    first minute, then `respond status` says 2 done and the 15-minute sweep next, and its
    JSON still lists both sweeps due."""
    server_trail.record(REGION, "ListBuckets", server_account.leaked_key,
                        event_time=datetime.now(UTC) - timedelta(minutes=3))
    ran = cli("compromised", server_account.leaked_key, "--yes", "--no-replace",
              "--output", "json")
    assert ran.code == 0, ran.stderr[-3000:]
    doc = ran.json()
    for _ in range(2):
        swept = cli("sweep", doc["incident_id"], "--output", "json")
        assert swept.code == 0, swept.stderr[-3000:]
    listed = cli("status")
    assert "2 done, next" in listed.stdout, listed.stdout
    shown = cli("status", doc["incident_id"], "--output", "json").json()
    assert [s["step"] for s in shown["sweeps"]["done"]] == ["sweep-1", "sweep-2"]
    assert shown["sweeps"]["due"] == doc["sweeps"]["due"]
    assert len(shown["sweeps"]["due"]) == 2
    assert shown["sweeps"]["next"]["at"] == doc["sweeps"]["due"][0]


def test_one_late_sweep_covers_every_moment_before_it(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A sweep an hour and a minute after containment covers both moments: `--watch`
    then has nothing to wait for."""
    clock = Clock(datetime.now(UTC))
    ctx = make_ctx(clock=clock, monotonic=clock.monotonic, sleep=clock.sleep)
    view = _contained(account, trail, journal, ctx)
    clock.move(timedelta(minutes=20))
    followup.sweep(ctx, journal, view.id)
    assert len(IncidentView.load(journal, view.id).sweeps_due) == 1
    clock.move(timedelta(minutes=41))
    followup.sweep(ctx, journal, view.id)
    assert IncidentView.load(journal, view.id).sweeps_due == ()
    assert followup.watch(ctx, journal, view.id, lambda step, due: None) == []


def test_schedule_sweeps_skips_the_moments_a_sweep_already_covered(
    account: Account, trail: FaultyCloudTrail, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """schedule-sweeps (Lambda) reads the same function as the view: after a sweep 20
    minutes in, only the 60-minute sweep is scheduled, under its own number."""
    clock = Clock(datetime.now(UTC))
    ctx = make_ctx(clock=clock, monotonic=clock.monotonic, sleep=clock.sleep)
    view = _contained(account, trail, journal, ctx)
    clock.move(timedelta(minutes=20))
    followup.sweep(ctx, journal, view.id)
    function = "arn:aws:lambda:us-east-1:123456789012:function:responder"
    role = "arn:aws:iam::123456789012:role/ResponderScheduler"
    lambda_ctx = make_ctx(clock=clock, monotonic=clock.monotonic, sleep=clock.sleep,
                          scheduler=Scheduler(function, role))
    acquire(lambda_ctx, journal, view.id, "test-owner")
    lease = Lease(lambda_ctx, journal, view.id, "test-owner")
    try:
        followup.schedule(lambda_ctx, journal, lease, view.id, SETTINGS)
    finally:
        lease.release()
    scheduler = account.session.client("scheduler", region_name=REGION)
    listed = [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
    assert listed == [f"responder-{view.id}-sweep-2"]
    after = IncidentView.load(journal, view.id)
    scheduled = after.sweeps_scheduled
    assert scheduled is not None
    assert scheduled.schedules == (f"responder-{view.id}-sweep-2",)
    assert len(after.sweeps_due) == 1
