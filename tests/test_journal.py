"""The SQLite journal: incidents, steps, write-ahead call records, the lease."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from responder import playbook
from responder.aws import ApiCall
from responder.errors import LeaseHeld, UnknownIncident
from responder.journal import IncidentExists
from responder.journal.sqlite import SqliteJournal

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
KEY = "AKIAIOSFODNN7EXAMPLE"


def _open(journal: SqliteJournal, incident_id: str = "inc-1", owner: str = "a",
          key: str = KEY) -> str:
    journal.create_incident(
        incident_id=incident_id, access_key_id=key,
        playbook=playbook.load("compromised-key").to_dict(), started_at=T0, source="test",
        options={}, owner=owner, lease_seconds=60,
    )
    return incident_id


def test_new_incident_has_every_step_pending(journal: SqliteJournal) -> None:
    """Creating an incident journals all playbook steps as pending, in order."""
    _open(journal)
    record = journal.get("inc-1")
    assert record.status == "running"
    assert record.lease_owner == "a"
    assert [(s.name, s.status) for s in journal.steps("inc-1")] == [
        ("identify", "pending"), ("disable-key", "pending"), ("revoke-sessions", "pending"),
        ("collect-evidence", "pending"), ("replace-key", "pending"), ("notify", "pending"),
    ]


def test_wal_mode(journal: SqliteJournal) -> None:
    """The journal file is in WAL mode so readers never block the runner."""
    mode = sqlite3.connect(journal.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_one_open_incident_per_key(journal: SqliteJournal) -> None:
    """A second open incident for the same key is refused and names the open one."""
    _open(journal)
    with pytest.raises(IncidentExists) as exists:
        _open(journal, "inc-2", owner="b")
    assert exists.value.incident_id == "inc-1"
    _open(journal, "inc-3", key="AKIAOTHERKEY00000000")
    journal.update_incident("inc-1", T0, status="completed")
    _open(journal, "inc-2")
    assert journal.find_open(KEY) is not None
    assert [r.id for r in journal.history_for_key(KEY)] == ["inc-1", "inc-2"]


def test_lease_excludes_a_second_owner_until_expiry(journal: SqliteJournal) -> None:
    """While the lease is live another owner gets LeaseHeld; after expiry it takes over."""
    _open(journal)
    with pytest.raises(LeaseHeld) as held:
        journal.acquire_lease("inc-1", "b", T0 + timedelta(seconds=30), 60)
    assert held.value.owner == "a"
    assert held.value.exit_code == 4
    journal.acquire_lease("inc-1", "b", T0 + timedelta(seconds=61), 60)
    with pytest.raises(LeaseHeld):
        journal.renew_lease("inc-1", "a", T0 + timedelta(seconds=62), 60)
    journal.renew_lease("inc-1", "b", T0 + timedelta(seconds=62), 60)
    journal.release_lease("inc-1", "b")
    journal.acquire_lease("inc-1", "c", T0 + timedelta(seconds=63), 60)


def test_intent_then_result_and_secrets_never_stored(journal: SqliteJournal) -> None:
    """A call is journaled pending before it runs and ok after; secret fields are dropped."""
    _open(journal)
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    token = journal.intent("inc-1", "replace-key",
                           ApiCall("secretsmanager", "PutSecretValue",
                                   {"SecretId": "s", "SecretString": secret}, mutating=True), T0)
    (pending,) = journal.calls("inc-1")
    assert pending.outcome == "pending"
    assert pending.mutating is True
    journal.result(token, ok=True, attempts=2, now=T0, result={"ARN": "arn:x"})
    (done,) = journal.calls("inc-1", "replace-key")
    assert (done.outcome, done.attempts, done.result) == ("ok", 2, {"ARN": "arn:x"})
    assert secret.encode() not in journal.path.read_bytes()
    assert secret.encode() not in (journal.path.parent / "journal.db-wal").read_bytes()


def test_step_lifecycle(journal: SqliteJournal) -> None:
    """running keeps the first start time across restarts; finished stores detail and error."""
    _open(journal)
    journal.step_started("inc-1", "disable-key", T0)
    journal.step_started("inc-1", "disable-key", T0 + timedelta(seconds=5))
    journal.step_finished("inc-1", "disable-key", status="failed", now=T0 + timedelta(seconds=6),
                          detail={"x": 1}, error="boom")
    step = journal.steps("inc-1")[1]
    assert (step.status, step.started_at, step.detail, step.error) == (
        "failed", T0, {"x": 1}, "boom")


def test_unknown_incident(journal: SqliteJournal) -> None:
    """get() of an unknown id is bad input (exit 2) that points at `respond status`."""
    with pytest.raises(UnknownIncident, match="respond status") as failure:
        journal.get("inc-nope")
    assert failure.value.exit_code == 2


def test_update_incident_rejects_unknown_fields(journal: SqliteJournal) -> None:
    """Only known columns can be set, so a typo cannot silently write nothing."""
    _open(journal)
    with pytest.raises(ValueError, match="not incident fields"):
        journal.update_incident("inc-1", T0, colour="red")
