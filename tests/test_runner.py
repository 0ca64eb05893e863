"""The runner end to end in-process (moto): containment, resume, retries, refusals."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Account, Crash, Faults, crash, iam_state
from structlog.testing import capture_logs

from responder import playbook
from responder.context import Options, RunContext, parse_iso
from responder.errors import BadInput, Refused, StepFailed
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.run import service
from responder.run.lease import Lease
from responder.steps.deny import POLICY_NAME, deny_policy

CtxFactory = Callable[..., RunContext]


@pytest.fixture
def make_ctx(make_ctx: CtxFactory) -> CtxFactory:
    """Containment tests keep the key (no replacement) so its state can be asserted."""
    return lambda **kw: make_ctx(**{"options": Options(replace=False), **kw})


def _policy(account: Account) -> dict[str, Any]:
    doc = account.iam.get_user_policy(UserName="alice", PolicyName=POLICY_NAME)["PolicyDocument"]
    return json.loads(doc) if isinstance(doc, str) else dict(doc)


def _status(account: Account, key: str, user: str = "alice") -> str:
    keys = account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return next(k["Status"] for k in keys if k["AccessKeyId"] == key)


def _cutoff(journal: SqliteJournal, incident_id: str) -> datetime:
    """The cutoff revoke-sessions journaled (after the key was disabled, plus the margin)."""
    revoked = IncidentView.load(journal, incident_id).sessions_revoked
    assert revoked is not None
    cutoff = parse_iso(revoked.token_issue_time_before)
    assert cutoff is not None
    return cutoff


def _respond(ctx: RunContext, journal: SqliteJournal, key: str) -> Any:
    return service.respond(ctx, journal, playbook.load("compromised-key"), key)


def test_contains_the_key_and_nothing_else(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """The leaked key ends Inactive with the deny policy; other keys and users untouched."""
    record = _respond(make_ctx(session_factory=faults.session_factory()), journal,
                      account.leaked_key)
    assert record.status == "completed"
    assert record.user_name == "alice"
    assert record.contained_at is not None
    assert _status(account, account.leaked_key) == "Inactive"
    assert _status(account, account.other_key) == "Active"
    assert _status(account, account.bob_key, "bob") == "Active"
    assert _policy(account) == deny_policy(_cutoff(journal, record.id))
    assert account.iam.list_user_policies(UserName="bob")["PolicyNames"] == []


def test_at_most_two_calls_before_the_key_is_disabled(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """DESIGN §3: UpdateAccessKey is the third call at the latest, and no user listing."""
    _respond(make_ctx(session_factory=faults.session_factory()), journal, account.leaked_key)
    assert "UpdateAccessKey" in faults.calls
    assert faults.calls.index("UpdateAccessKey") <= 2
    assert "ListUsers" not in faults.calls
    assert faults.count("UpdateAccessKey") == 1


def test_policy_condition_is_after_the_key_was_disabled(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """Sessions issued before the key was disabled plus the 300 s propagation margin are
    denied; the time is rounded up to the second."""
    record = _respond(make_ctx(), journal, account.leaked_key)
    statement = _policy(account)["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "*"
    disabled = next(s for s in IncidentView.load(journal, record.id).steps
                    if s.name == "disable-key").effective_at
    assert disabled is not None
    cutoff = parse_iso(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"])
    assert cutoff is not None
    assert timedelta(seconds=300) <= cutoff - disabled <= timedelta(seconds=301)  # ms in journal


def test_halt_then_resume_does_not_repeat_done_steps(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """A step failure halts (resumable); resume finishes without re-running done steps."""
    faults.fail("PutUserPolicy", "AccessDenied")
    ctx = make_ctx(session_factory=faults.session_factory())
    with pytest.raises(StepFailed, match="iam:PutUserPolicy") as failure:
        _respond(ctx, journal, account.leaked_key)
    incident_id = failure.value.incident_id
    assert incident_id is not None
    record = journal.get(incident_id)
    assert record.status == "halted"
    assert {s.name: s.status for s in journal.steps(incident_id)} == {
        "identify": "done", "disable-key": "done", "revoke-sessions": "failed",
        "collect-evidence": "pending", "contain-attacker": "pending", "replace-key": "pending",
        "notify": "pending", "harden": "pending",
    }
    assert _status(account, account.leaked_key) == "Inactive"
    assert faults.count("PutUserPolicy") == 1  # AccessDenied is never retried

    faults.clear()
    resumed = service.resume(ctx, journal, incident_id)
    assert resumed.status == "completed"
    assert faults.count("UpdateAccessKey") == 1
    assert faults.count("GetAccessKeyLastUsed") == 1
    assert _policy(account) == deny_policy(_cutoff(journal, incident_id))
    assert resumed.contained_at is not None


def test_respond_again_joins_the_halted_incident(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """A second `respond compromised` for a key with an open incident continues that one."""
    faults.fail("PutUserPolicy", "AccessDenied", times=1)
    ctx = make_ctx(session_factory=faults.session_factory())
    with pytest.raises(StepFailed) as failure:
        _respond(ctx, journal, account.leaked_key)
    again = _respond(ctx, journal, account.leaked_key)
    assert again.id == failure.value.incident_id
    assert again.status == "completed"
    assert len(journal.history_for_key(account.leaked_key)) == 1


def test_throttling_is_retried_and_attempts_journaled(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """Throttling only slows the run down; the journal records how many attempts it took."""
    faults.fail("UpdateAccessKey", "Throttling", times=3)
    record = _respond(make_ctx(session_factory=faults.session_factory()), journal,
                      account.leaked_key)
    assert record.status == "completed"
    (update,) = [c for c in journal.calls(record.id) if c.operation == "UpdateAccessKey"]
    assert update.attempts == 4
    assert update.outcome == "ok"
    assert faults.count("UpdateAccessKey") == 4


def test_retries_are_bounded(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """A storm that never ends halts after the policy's attempts, not botocore's times ours."""
    faults.fail("UpdateAccessKey", "Throttling")
    ctx = make_ctx(session_factory=faults.session_factory())
    with pytest.raises(StepFailed, match="Throttling"):
        _respond(ctx, journal, account.leaked_key)
    assert faults.count("UpdateAccessKey") == ctx.retry.max_attempts


def test_repeat_on_contained_key_answers_with_the_finished_incident(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """Responding again to a key still Inactive changes nothing and opens no incident."""
    ctx = make_ctx(session_factory=faults.session_factory())
    first = _respond(ctx, journal, account.leaked_key)
    before = iam_state(account.iam)
    calls_before = len(faults.calls)
    second = _respond(ctx, journal, account.leaked_key)
    assert second.id == first.id
    assert faults.calls[calls_before:] == ["ListAccessKeys"]
    assert iam_state(account.iam) == before
    assert len(journal.recent()) == 1


def test_reenabled_key_gets_a_new_incident_that_observes_first(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """A key re-enabled after its incident is live again: a new incident disables it, and
    the deny policy (same name) now carries the new cutoff: still one policy."""
    ctx = make_ctx(session_factory=faults.session_factory())
    first = _respond(ctx, journal, account.leaked_key)
    account.iam.update_access_key(UserName="alice", AccessKeyId=account.leaked_key,
                                  Status="Active")
    second = _respond(ctx, journal, account.leaked_key)
    assert second.id != first.id
    assert _status(account, account.leaked_key) == "Inactive"
    steps = {s.name: s for s in journal.steps(second.id)}
    assert steps["disable-key"].detail["already"] is False
    assert account.iam.list_user_policies(UserName="alice")["PolicyNames"] == [POLICY_NAME]
    assert _policy(account) == deny_policy(_cutoff(journal, second.id))
    assert _cutoff(journal, second.id) >= _cutoff(journal, first.id)  # to the second


def test_root_key_is_refused_without_trace(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """A key with no IAM user (the root user's) is refused (exit 3) and opens no incident."""
    faults.rewrite("GetAccessKeyLastUsed", lambda parsed: parsed.pop("UserName", None))
    before = iam_state(account.iam)
    with pytest.raises(Refused, match="root") as refusal:
        _respond(make_ctx(session_factory=faults.session_factory()), journal,
                 account.leaked_key)
    assert refusal.value.exit_code == 3
    assert journal.recent() == []
    assert iam_state(account.iam) == before


def test_key_of_another_account_is_refused(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """A key that GetAccessKeyInfo places in another account is refused with --role-arn advice."""
    faults.fail("GetAccessKeyLastUsed", "NoSuchEntity", status=404)
    faults.rewrite("GetAccessKeyInfo", lambda parsed: parsed.update(Account="210987654321"))
    with pytest.raises(Refused, match="--role-arn"):
        _respond(make_ctx(session_factory=faults.session_factory()), journal,
                 "AKIAAAAAAAAAAAAAAAAA")
    assert "UpdateAccessKey" not in faults.calls


def test_unknown_key_is_bad_input(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A key this account does not have is bad input (exit 2), not a halted incident."""
    with pytest.raises(BadInput, match="not found") as failure:
        _respond(make_ctx(), journal, "AKIAAAAAAAAAAAAAAAAA")
    assert failure.value.exit_code == 2
    assert journal.recent() == []


def test_steps_log_start_and_end_with_duration(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """Each step run logs one start and one end event carrying step and duration_ms."""
    with capture_logs() as logs:
        _respond(make_ctx(), journal, account.leaked_key)
    ends = [e for e in logs if e["event"] == "step.end"]
    assert [e["step"] for e in ends] == [
        "identify", "disable-key", "revoke-sessions", "collect-evidence", "contain-attacker",
        "replace-key", "notify", "harden"]
    assert all(isinstance(e["duration_ms"], int) for e in ends)
    assert len([e for e in logs if e["event"] == "step.start"]) == len(ends)


def test_log_jsonl_written_per_incident(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """The incident's log.jsonl holds JSON lines tagged with its incident id."""
    ctx = make_ctx()
    record = _respond(ctx, journal, account.leaked_key)
    lines = (ctx.incident_dir(record.id) / "log.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert {e["incident_id"] for e in events} == {record.id}
    assert "incident.contained" in {e["event"] for e in events}


def test_dry_run_plan_changes_nothing(
    account: Account, make_ctx: CtxFactory, faults: Faults
) -> None:
    """The plan names the real user and the exact UpdateAccessKey call, and only reads."""
    before = iam_state(account.iam)
    plan = service.plan(make_ctx(session_factory=faults.session_factory()),
                        playbook.load("compromised-key"), account.leaked_key)
    assert plan.identified.target.user_name == "alice"
    calls = {spec.name: calls for spec, calls in plan.steps}
    (update,) = calls["disable-key"]
    assert update.operation == "UpdateAccessKey"
    assert dict(update.params) == {"UserName": "alice", "AccessKeyId": account.leaked_key,
                                   "Status": "Inactive"}
    # A plan has no call budget: it asks which account these credentials act in, to say
    # whether the run would be refused (a key of another account, issue 28).
    assert set(faults.calls) == {"GetAccessKeyLastUsed", "GetAccessKeyInfo", "GetCallerIdentity"}
    assert iam_state(account.iam) == before



@pytest.mark.parametrize("case", [("UpdateAccessKey", "disable-key"),
                                  ("PutUserPolicy", "revoke-sessions")])
def test_resumed_containment_reports_when_it_took_hold(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults,
    case: tuple[str, str],
) -> None:
    """Killed right after a containment call took effect and resumed an hour later: the
    step's effect is dated when AWS applied it (the journal has it), not when resume looked
    again; contained_at is the later of the two steps' moments."""
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]

    def clock() -> datetime:
        now[0] += timedelta(milliseconds=10)
        return now[0]

    operation, step = case
    # Credentials whose account is known without a call: containment goes as a pair.
    ctx = make_ctx(session_factory=faults.session_factory(), clock=clock,
                   home_account="123456789012")
    faults.rewrite(operation, crash)
    with pytest.raises(Crash):
        _respond(ctx, journal, account.leaked_key)
    (incident,) = journal.recent()
    faults.clear()
    now[0] += timedelta(hours=1)
    record = service.resume(ctx, journal, incident.id)
    assert record.status == "completed"
    steps = {s.name: s for s in journal.steps(incident.id)}
    took_hold = datetime.fromisoformat(steps[step].detail["effective_at"])
    assert took_hold - record.started_at < timedelta(minutes=1)
    assert record.contained_at is not None
    # Both containment calls went out at once before the crash (the deny does not wait
    # for UpdateAccessKey's answer): contained when the first run sent them.
    assert record.contained_at - record.started_at < timedelta(minutes=1)


def test_confirmed_plan_is_not_identified_again(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """The plan shown at the prompt is the incident that runs: same id, and identify's two
    calls are not made a second time before UpdateAccessKey."""
    ctx = make_ctx(session_factory=faults.session_factory())
    pb = playbook.load("compromised-key")
    planned = service.plan(ctx, pb, account.leaked_key)
    record = service.respond(ctx, journal, pb, account.leaked_key,
                             identified=planned.identified)
    assert record.id == planned.identified.incident.id
    assert record.status == "completed"
    before_update = faults.calls[: faults.calls.index("UpdateAccessKey")]
    # identify's two reads (sent at once) and the plan's account check, all before the
    # prompt: nothing more once the human said yes.
    assert sorted(before_update) == ["GetAccessKeyInfo", "GetAccessKeyLastUsed",
                                     "GetCallerIdentity"]


def test_lease_is_renewed_while_a_call_is_in_flight(
    make_ctx: CtxFactory, tmp_path: Path
) -> None:
    """A runner blocked in one long call still renews its lease in the background, so no
    other runner can take the incident over meanwhile."""
    renewed = threading.Event()

    class Watched(SqliteJournal):
        def renew_lease(self, incident_id: str, owner: str, now: datetime,
                        seconds: float) -> None:
            super().renew_lease(incident_id, owner, now, seconds)
            renewed.set()

    watched = Watched(tmp_path / "watched.db")
    ctx = make_ctx(lease_seconds=0.2, monotonic=time.monotonic)
    started = datetime.now(UTC)
    watched.create_incident(incident_id="inc-1", access_key_id="AKIAIOSFODNN7EXAMPLE",
                            playbook=playbook.load("compromised-key").to_dict(),
                            started_at=started, source="test", options={}, owner="me",
                            lease_seconds=0.2)
    lease = Lease(ctx, watched, "inc-1", "me")
    with lease.kept_alive():
        assert renewed.wait(timeout=30), "no renewal while the call was in flight"
    assert watched.get("inc-1").lease_owner == "me"
    watched.close()
