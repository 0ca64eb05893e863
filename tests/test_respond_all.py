"""`trigger.respond_all`: every finding of a document answered on its own, in-process.

The issue: one bad finding made the whole run fail, leaving the valid finding's key
Active, or contained while the output said "refused, nothing changed". Each test here
checks the key in IAM as well as the outcomes, so a run that stops early fails them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Account, Faults
from finding_docs import UNKNOWN_KEY, asff_finding, guardduty_event, securityhub_event

from responder import findings, playbook
from responder.context import RunContext
from responder.errors import Interrupted
from responder.journal.sqlite import SqliteJournal
from responder.run import trigger
from responder.run.trigger import Outcome

Ctx = Callable[..., RunContext]


def _status(account: Account, user: str, key: str) -> str:
    """Active, Inactive, or Deleted (replace-key deletes alice's leaked key: she has two)."""
    keys = account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return next((k["Status"] for k in keys if k["AccessKeyId"] == key), "Deleted")


def _answer(ctx: RunContext, journal: SqliteJournal, document: Any) -> list[Outcome]:
    return trigger.respond_all(ctx, journal, findings.parse_each(document))


def _row(outcome: Outcome) -> tuple[str | None, str, int, str | None]:
    doc = outcome.document.to_json()
    return (doc["finding_id"], doc["status"], doc["exit_code"], doc["access_key_id"])


@pytest.mark.parametrize("unknown_first", [True, False])
def test_unknown_key_does_not_sink_the_valid_finding(
    account: Account, journal: SqliteJournal, make_ctx: Ctx, unknown_first: bool
) -> None:
    """A Security Hub event naming an unknown key and bob's key: bob's key ends Inactive
    whichever comes first, both outcomes are listed, and the exit code is 2."""
    unknown = asff_finding(UNKNOWN_KEY, "unknown-1")
    valid = asff_finding(account.bob_key, "valid-1")
    event = securityhub_event(*((unknown, valid) if unknown_first else (valid, unknown)))
    outcomes = _answer(make_ctx(), journal, event)
    rows = {o.finding_id: _row(o) for o in outcomes}
    assert rows == {
        "securityhub:unknown-1": ("securityhub:unknown-1", "refused", 2, UNKNOWN_KEY),
        "securityhub:valid-1": ("securityhub:valid-1", "completed", 0, account.bob_key),
    }
    assert [o.finding_id for o in outcomes] == (
        ["securityhub:unknown-1", "securityhub:valid-1"] if unknown_first
        else ["securityhub:valid-1", "securityhub:unknown-1"])
    assert _status(account, "bob", account.bob_key) == "Inactive"
    bad = rows_by_id(outcomes)["securityhub:unknown-1"]
    assert bad.document.to_json()["incident_id"] is None
    assert bad.error is not None
    assert UNKNOWN_KEY in bad.error
    assert not bad.ran
    assert rows_by_id(outcomes)["securityhub:valid-1"].ran
    assert trigger.worst(outcomes) == 2
    assert [d["finding_id"] for d in trigger.result_document(outcomes)["incidents"]] == [
        o.finding_id for o in outcomes]
    assert len(journal.recent()) == 1


def rows_by_id(outcomes: list[Outcome]) -> dict[str | None, Outcome]:
    return {o.finding_id: o for o in outcomes}


def test_sample_next_to_a_real_finding(account: Account, journal: SqliteJournal,
                                       make_ctx: Ctx) -> None:
    """The sample is refused (3) and touches nothing; the real finding is contained."""
    event = securityhub_event(asff_finding(account.leaked_key, "sample-1", sample=True),
                              asff_finding(account.bob_key, "real-1"))
    outcomes = _answer(make_ctx(), journal, event)
    assert [_row(o) for o in outcomes] == [
        ("securityhub:sample-1", "refused", 3, account.leaked_key),
        ("securityhub:real-1", "completed", 0, account.bob_key),
    ]
    assert "sample" in (outcomes[0].error or "")
    assert _status(account, "alice", account.leaked_key) == "Active"
    assert _status(account, "bob", account.bob_key) == "Inactive"
    assert trigger.worst(outcomes) == 3


def test_duplicate_next_to_a_new_finding(account: Account, journal: SqliteJournal,
                                         make_ctx: Ctx) -> None:
    """A finding already handled is refused naming its incident; the new one still runs."""
    ctx = make_ctx()
    [first] = _answer(ctx, journal, guardduty_event(account.bob_key, "gd-bob"))
    assert first.exit_code == 0
    outcomes = _answer(ctx, journal, [guardduty_event(account.bob_key, "gd-bob"),
                                      guardduty_event(account.leaked_key, "gd-alice")])
    assert [_row(o) for o in outcomes] == [
        ("guardduty:gd-bob", "refused", 3, account.bob_key),
        ("guardduty:gd-alice", "completed", 0, account.leaked_key),
    ]
    assert outcomes[0].document.to_json()["incident_id"] == \
        first.document.to_json()["incident_id"]
    assert first.document.to_json()["incident_id"] in (outcomes[0].error or "")
    assert _status(account, "alice", account.leaked_key) != "Active"
    assert len(journal.recent()) == 2


def test_a_halted_finding_does_not_stop_the_next(account: Account, journal: SqliteJournal,
                                                 make_ctx: Ctx, faults: Faults) -> None:
    """The first key's disable is denied: that incident halts (1) and the second finding
    is still contained; the run's exit code is 1, which no other code may hide."""
    faults.fail("UpdateAccessKey", "AccessDenied", times=1)
    ctx = make_ctx(session_factory=faults.session_factory())
    outcomes = _answer(ctx, journal, [
        guardduty_event(account.leaked_key, "gd-alice"),
        guardduty_event(account.bob_key, "gd-bob"),
        guardduty_event(account.leaked_key, "sample-alice", sample=True),
    ])
    assert [_row(o) for o in outcomes] == [
        ("guardduty:gd-alice", "halted", 1, account.leaked_key),
        ("guardduty:gd-bob", "completed", 0, account.bob_key),
        ("guardduty:sample-alice", "refused", 3, account.leaked_key),
    ]
    halted = outcomes[0]
    assert halted.ran
    assert halted.retryable
    assert halted.document.to_json()["incident_id"] is not None
    assert "disable-key" in (halted.error or "")
    assert _status(account, "alice", account.leaked_key) == "Active"
    assert _status(account, "bob", account.bob_key) == "Inactive"
    assert trigger.worst(outcomes) == 1


def test_a_held_lease_does_not_stop_the_next(account: Account, journal: SqliteJournal,
                                             make_ctx: Ctx) -> None:
    """Another live runner holds alice's open incident: exit 4 for that finding, and bob's
    finding is answered all the same."""
    held = journal.create_incident(
        incident_id="inc-held", access_key_id=account.leaked_key,
        playbook=playbook.load("compromised-key").to_dict(),
        started_at=datetime.now(UTC), source="cli", options={},
        owner="another-host:1:abcdef", lease_seconds=3600)
    outcomes = _answer(make_ctx(), journal, [guardduty_event(account.leaked_key, "gd-alice"),
                                             guardduty_event(account.bob_key, "gd-bob")])
    assert [(o.finding_id, o.exit_code) for o in outcomes] == [
        ("guardduty:gd-alice", 4), ("guardduty:gd-bob", 0)]
    assert outcomes[0].document.to_json()["incident_id"] == held.id
    assert outcomes[0].retryable
    assert _status(account, "bob", account.bob_key) == "Inactive"
    assert trigger.worst(outcomes) == 4


def test_an_unexpected_error_in_one_finding_does_not_stop_the_next(
    account: Account, journal: SqliteJournal, make_ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash while answering one finding is that finding's outcome (1), not the run's."""
    real = trigger.respond

    def crash_on_alice(ctx: RunContext, journal: Any, found: findings.Trigger) -> Any:
        if found.access_key_id == account.leaked_key:
            raise RuntimeError("boom")
        return real(ctx, journal, found)

    monkeypatch.setattr(trigger, "respond", crash_on_alice)
    outcomes = _answer(make_ctx(), journal, [guardduty_event(account.leaked_key, "gd-alice"),
                                             guardduty_event(account.bob_key, "gd-bob")])
    assert [(o.finding_id, o.exit_code) for o in outcomes] == [
        ("guardduty:gd-alice", 1), ("guardduty:gd-bob", 0)]
    assert "RuntimeError: boom" in (outcomes[0].error or "")
    assert _status(account, "bob", account.bob_key) == "Inactive"


def test_an_interruption_stops_the_run_but_lists_every_finding(
    account: Account, journal: SqliteJournal, make_ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during the first finding: nothing more is started, yet each finding has an
    outcome (the ones not reached: interrupted, nothing changed; a rejected one: its
    rejection), so the output still says what happened to all of them."""

    def interrupted(*_: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(trigger, "respond", interrupted)
    outcomes = _answer(make_ctx(), journal, [
        guardduty_event(account.leaked_key, "gd-alice"),
        guardduty_event(account.bob_key, "gd-bob"),
        guardduty_event(account.bob_key, "sample-bob", sample=True),
    ])
    assert [(o.finding_id, o.exit_code) for o in outcomes] == [
        ("guardduty:gd-alice", 1), ("guardduty:gd-bob", 1), ("guardduty:sample-bob", 3)]
    assert all("interrupted by SIGINT" in (o.error or "") for o in outcomes[:2])
    assert _status(account, "bob", account.bob_key) == "Active"
    assert trigger.worst(outcomes) == 1
    assert journal.recent() == []


def test_interrupted_incident_is_shown_halted(account: Account, journal: SqliteJournal,
                                              make_ctx: Ctx,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An Interrupted naming an incident becomes that incident's document."""
    real = trigger.respond

    def stop_after(ctx: RunContext, journal: Any, found: findings.Trigger) -> Any:
        record = real(ctx, journal, found)
        raise Interrupted("SIGTERM", record.id)

    monkeypatch.setattr(trigger, "respond", stop_after)
    outcomes = _answer(make_ctx(), journal, [guardduty_event(account.bob_key, "gd-bob"),
                                             guardduty_event(account.leaked_key, "gd-alice")])
    assert outcomes[0].ran
    assert outcomes[0].document.to_json()["incident_id"] == journal.recent()[0].id
    assert outcomes[1].document.to_json()["incident_id"] is None
    assert "SIGTERM" in (outcomes[1].error or "")
    assert _status(account, "alice", account.leaked_key) == "Active"


def test_rejected_findings_need_no_aws(journal: SqliteJournal, make_ctx: Ctx,
                                       faults: Faults) -> None:
    """Answering only rejected findings makes no AWS call and opens no incident."""
    archived = asff_finding("AKIAEXAMPLEALICE0002", "t-1")
    archived["RecordState"] = "ARCHIVED"
    event = securityhub_event(asff_finding("AKIAEXAMPLEALICE0001", "s-1", sample=True),
                              archived)
    outcomes = _answer(make_ctx(session_factory=faults.session_factory()), journal, event)
    assert [o.exit_code for o in outcomes] == [3, 3]
    assert faults.calls == []
    assert journal.recent() == []


@pytest.mark.parametrize(("codes", "worst"), [
    ([0], 0), ([0, 2], 2), ([2, 3], 3), ([0, 5], 5), ([3, 4], 4), ([4, 5], 5),
    ([5, 1, 3], 1), ([3, 1], 1), ([], 0),
])
def test_worst_exit_code(codes: list[int], worst: int) -> None:
    """Halted (1) outranks every other code; otherwise the highest code wins."""
    outcomes = [Outcome(f"f{i}", code, {}) for i, code in enumerate(codes)]
    assert trigger.worst(outcomes) == worst


class _Json(dict[str, Any]):
    """A finding's document already in its JSON form: result_document prints it as is."""

    def to_json(self) -> dict[str, Any]:
        return dict(self)


def test_result_document_is_the_one_document_or_a_list() -> None:
    """One finding: its own §2 object; several: {"incidents": [...]} in order."""
    one = Outcome("a", 0, _Json({"incident_id": "inc-a"}))  # type: ignore[arg-type]
    two = Outcome("b", 3, _Json({"incident_id": None}))  # type: ignore[arg-type]
    assert trigger.result_document([one]) == {"incident_id": "inc-a"}
    assert trigger.result_document([one, two]) == {
        "incidents": [{"incident_id": "inc-a"}, {"incident_id": None}]}
