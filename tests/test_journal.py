"""Both journal backends: incidents, steps, write-ahead call records, the lease.

Every test here runs against SQLite and against DynamoDB (moto), so the two backends
keep the same semantics; DynamoDB-only behaviour is in test_journal_dynamodb.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from responder import playbook
from responder.aws import ApiCall
from responder.errors import LeaseHeld, UnknownIncident
from responder.journal import CallHandle, IncidentExists, Journal
from responder.journal.dynamodb import DynamoDbJournal
from responder.journal.sqlite import SCHEMA, SqliteJournal

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
KEY = "AKIAIOSFODNN7EXAMPLE"
TABLE = "responder-journal"


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def journal(backend: str, tmp_path: Path) -> Iterator[Journal]:
    """Overrides conftest's SQLite-only journal: each test runs on both backends."""
    if backend == "sqlite":
        sqlite_journal = SqliteJournal(tmp_path / "journal.db")
        yield sqlite_journal
        sqlite_journal.close()
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        DynamoDbJournal.create_table(client, TABLE)
        dynamo_journal = DynamoDbJournal(TABLE, client=client)
        yield dynamo_journal
        dynamo_journal.close()


def stored_text(journal: Journal) -> bytes:
    """Everything the backend has persisted, as bytes to search for leaked secrets."""
    if isinstance(journal, SqliteJournal):
        wal = journal.path.parent / f"{journal.path.name}-wal"
        return journal.path.read_bytes() + wal.read_bytes()
    assert isinstance(journal, DynamoDbJournal)
    client = boto3.client("dynamodb", region_name="us-east-1")
    items = [item for page in client.get_paginator("scan").paginate(TableName=TABLE)
             for item in page["Items"]]
    assert items, "the scan found the journal table empty"
    return json.dumps(items).encode()


def _open(journal: Journal, incident_id: str = "inc-1", owner: str = "a",
          key: str = KEY) -> str:
    journal.create_incident(
        incident_id=incident_id, access_key_id=key,
        playbook=playbook.load("compromised-key").to_dict(), started_at=T0, source="test",
        options={}, owner=owner, lease_seconds=60,
    )
    return incident_id


def test_new_incident_has_every_step_pending(journal: Journal) -> None:
    """Creating an incident journals all playbook steps as pending, in order."""
    _open(journal)
    record = journal.get("inc-1")
    assert record.status == "running"
    assert record.lease_owner == "a"
    assert [(s.name, s.status) for s in journal.steps("inc-1")] == [
        ("identify", "pending"), ("disable-key", "pending"), ("revoke-sessions", "pending"),
        ("collect-evidence", "pending"), ("contain-attacker", "pending"),
        ("replace-key", "pending"), ("notify", "pending"), ("harden", "pending"),
    ]


def test_an_older_sqlite_journal_gets_the_open_index_with_waiting(tmp_path: Path) -> None:
    """A journal made before `waiting` existed had an index of running and halted only:
    opening it replaces that index, so a waiting rotation still holds its key."""
    path = tmp_path / "old.db"
    before = SCHEMA.replace("DROP INDEX IF EXISTS one_open_incident_per_key;", "").replace(
        "one_open_incident_per_key_v2", "one_open_incident_per_key").replace(
        "('running', 'halted', 'waiting')", "('running', 'halted')")
    old = sqlite3.connect(path)
    old.executescript(before)
    old.close()
    SqliteJournal(path).close()
    indexes = {row[0] for row in sqlite3.connect(path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'incidents'")}
    assert "one_open_incident_per_key" not in indexes
    assert "one_open_incident_per_key_v2" in indexes


def test_an_older_sqlite_journal_gains_the_verification_column(tmp_path: Path) -> None:
    """A journal made before verification existed opens, keeps its incident, and can
    record what the incident observed."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace(",\n    verification TEXT", ""))
    old.close()
    journal = SqliteJournal(path)
    _open(journal)
    assert journal.get("inc-1").verification is None
    journal.update_incident("inc-1", T0, verification={"ok": True, "checks": []})
    assert journal.get("inc-1").verification == {"ok": True, "checks": []}
    journal.close()


def test_verification_round_trips(journal: Journal) -> None:
    """What an incident observed is kept as the mapping it was given, in every backend."""
    _open(journal)
    seen = {"moment": "after containment", "ok": False,
            "checks": [{"subject": "key", "expected": "Inactive", "observed": "Active"}]}
    journal.update_incident("inc-1", T0, verification=seen)
    assert journal.get("inc-1").verification == seen
    journal.update_incident("inc-1", T0, verification=None)
    assert journal.get("inc-1").verification is None


def test_sqlite_wal_mode(tmp_path: Path) -> None:
    """The SQLite journal file is in WAL mode so readers never block the runner."""
    journal = SqliteJournal(tmp_path / "journal.db")
    mode = sqlite3.connect(journal.path).execute("PRAGMA journal_mode").fetchone()[0]
    journal.close()
    assert mode == "wal"


def test_one_open_incident_per_key(journal: Journal) -> None:
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


def test_a_waiting_incident_is_open(journal: Journal) -> None:
    """A rotation waiting for the applications holds the key's one open incident, like a
    halted one; a waiting step is not finished and reads back as such."""
    _open(journal)
    journal.step_started("inc-1", "identify", T0)
    journal.step_finished("inc-1", "identify", status="waiting", now=T0,
                          detail={"waiting_for": "applications"}, error=None)
    journal.update_incident("inc-1", T0, status="waiting")
    assert journal.find_open(KEY) is not None
    with pytest.raises(IncidentExists):
        _open(journal, "inc-2", owner="b")
    step = journal.steps("inc-1")[0]
    assert (step.status, step.detail) == ("waiting", {"waiting_for": "applications"})
    journal.update_incident("inc-1", T0, status="completed")
    _open(journal, "inc-2", owner="b")


def test_lease_excludes_a_second_owner_until_expiry(journal: Journal) -> None:
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


def test_intent_then_result_and_secrets_never_stored(journal: Journal) -> None:
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
    stored = stored_text(journal)
    assert b"PutSecretValue" in stored  # the search below looks at the right data
    assert secret.encode() not in stored


def test_step_lifecycle(journal: Journal) -> None:
    """running keeps the first start time across restarts; finished stores detail and error."""
    _open(journal)
    journal.step_started("inc-1", "disable-key", T0)
    journal.step_started("inc-1", "disable-key", T0 + timedelta(seconds=5))
    journal.step_finished("inc-1", "disable-key", status="failed", now=T0 + timedelta(seconds=6),
                          detail={"x": 1}, error="boom")
    step = journal.steps("inc-1")[1]
    assert (step.status, step.started_at, step.detail, step.error) == (
        "failed", T0, {"x": 1}, "boom")


def test_unknown_incident(journal: Journal) -> None:
    """get() of an unknown id is bad input (exit 2) that points at `respond status`."""
    with pytest.raises(UnknownIncident, match="respond status") as failure:
        journal.get("inc-nope")
    assert failure.value.exit_code == 2


def test_update_incident_rejects_unknown_fields(journal: Journal) -> None:
    """Only known columns can be set, so a typo cannot silently write nothing."""
    _open(journal)
    with pytest.raises(ValueError, match="not incident fields"):
        journal.update_incident("inc-1", T0, colour="red")


def test_sending_marks_only_pending_calls(journal: Journal) -> None:
    """sending moves pending → sending, and never rewrites a call that already has a result."""
    _open(journal)
    first = journal.intent("inc-1", "disable-key", ApiCall("iam", "UpdateAccessKey"), T0)
    second = journal.intent("inc-1", "disable-key", ApiCall("iam", "UpdateAccessKey"), T0)
    assert second > first
    journal.sending(first)
    journal.result(second, ok=False, attempts=1, now=T0, error="AccessDenied")
    journal.sending(second)
    assert [(c.id, c.outcome, c.error) for c in journal.calls("inc-1")] == [
        (first.call_id, "sending", None), (second.call_id, "error", "AccessDenied")]


def test_recent_is_newest_first(journal: Journal) -> None:
    """recent() lists the newest incidents first, at most `limit` of them."""
    for n in range(3):
        journal.create_incident(
            incident_id=f"inc-{n}", access_key_id=f"AKIAKEY{n:013d}",
            playbook=playbook.load("compromised-key").to_dict(),
            started_at=T0 + timedelta(minutes=n), source="test", options={}, owner="a",
            lease_seconds=60,
        )
    assert [r.id for r in journal.recent(2)] == ["inc-2", "inc-1"]
    assert [r.id for r in journal.recent()] == ["inc-2", "inc-1", "inc-0"]


def test_fields_can_be_set_and_cleared(journal: Journal) -> None:
    """update_incident stores datetimes and clears a field set to None; updated_at moves."""
    _open(journal)
    later = T0 + timedelta(minutes=5)
    journal.update_incident("inc-1", later, contained_at=later, user_name="alice",
                            error="boom")
    journal.update_incident("inc-1", later, error=None)
    record = journal.get("inc-1")
    assert (record.contained_at, record.user_name, record.error, record.updated_at) == (
        later, "alice", None, later)


def test_writes_to_an_unknown_incident_change_nothing(journal: Journal) -> None:
    """Updating, touching steps of or releasing an unknown incident creates nothing."""
    journal.update_incident("inc-nope", T0, status="completed")
    journal.update_incident("inc-nope", T0, report="r.md")
    journal.step_started("inc-nope", "identify", T0)
    journal.release_lease("inc-nope", "a")
    journal.sending(CallHandle("inc-nope", "000000012345"))
    journal.result(CallHandle("inc-nope", "000000012345"), ok=True, attempts=1, now=T0)
    with pytest.raises(UnknownIncident):
        journal.get("inc-nope")
    assert journal.recent() == []
    assert journal.steps("inc-nope") == []


def test_finding_id_names_one_incident(journal: Journal) -> None:
    """A finding opens at most one incident, even once that incident is closed."""
    journal.create_incident(
        incident_id="inc-1", access_key_id=KEY,
        playbook=playbook.load("compromised-key").to_dict(), started_at=T0, source="test",
        options={}, owner="a", lease_seconds=60, finding_id="gd-1",
    )
    journal.update_incident("inc-1", T0, status="completed")
    with pytest.raises(IncidentExists) as exists:
        journal.create_incident(
            incident_id="inc-2", access_key_id="AKIAOTHERKEY00000000",
            playbook=playbook.load("compromised-key").to_dict(), started_at=T0,
            source="test", options={}, owner="a", lease_seconds=60, finding_id="gd-1",
        )
    assert exists.value.incident_id == "inc-1"
    found = journal.find_by_finding("gd-1")
    assert found is not None
    assert found.id == "inc-1"
    assert journal.find_by_finding("gd-2") is None


def test_concurrent_intents_come_back_in_intent_order(journal: Journal) -> None:
    """Threads journaling at once (evidence collection, one per region) lose no call; each
    thread's calls come back in the order it made them, and ids sort as calls() lists."""
    _open(journal)
    threads, each = 4, 12

    def collect(thread: int) -> list[CallHandle]:
        return [
            journal.intent("inc-1", "collect-evidence",
                           ApiCall("cloudtrail", "LookupEvents", {"thread": thread, "page": n}),
                           T0 + timedelta(milliseconds=n))
            for n in range(each)
        ]

    with ThreadPoolExecutor(threads) as pool:
        made = list(pool.map(collect, range(threads)))
    calls = journal.calls("inc-1")
    ids = [c.id for c in calls]
    assert len(set(ids)) == len(ids) == threads * each
    assert ids == sorted(ids)
    for thread, handles in enumerate(made):
        assert [c.id for c in calls if c.params["thread"] == thread] == [
            h.call_id for h in handles]
        assert [c.params["page"] for c in calls if c.params["thread"] == thread] == list(
            range(each))


def test_reopening_is_refused_while_another_incident_has_the_key(journal: Journal) -> None:
    """Setting a closed incident back to running cannot give a key two open incidents:
    the update names the open incident to join, as create_incident does."""
    _open(journal)
    journal.update_incident("inc-1", T0, status="refused")
    _open(journal, "inc-2")
    with pytest.raises(IncidentExists) as exists:
        journal.update_incident("inc-1", T0, status="running")
    assert exists.value.incident_id == "inc-2"
    assert journal.get("inc-1").status == "refused"


PLAYBOOK_STEPS = 8
"""compromised-key's steps, at positions 0..6: an appended step comes at 7."""


def test_added_step_comes_last_with_its_fields(journal: Journal) -> None:
    """A follow-up step added after the incident completed is pending, after the playbook's
    steps, with the given action and on_failure, and it touches the incident."""
    _open(journal)
    journal.update_incident("inc-1", T0, status="completed")
    later = T0 + timedelta(minutes=10)
    journal.add_step("inc-1", "cloudtrail-sweep", "sweep", later)
    steps = journal.steps("inc-1")
    assert len(steps) == PLAYBOOK_STEPS + 1
    added = steps[-1]
    assert (added.incident_id, added.position, added.name, added.action, added.on_failure,
            added.status, added.started_at, added.ended_at, added.detail, added.error) == (
        "inc-1", PLAYBOOK_STEPS, "cloudtrail-sweep", "sweep", "continue", "pending", None,
        None, {}, None)
    record = journal.get("inc-1")
    assert (record.updated_at, record.status) == (later, "completed")
    journal.add_step("inc-1", "upload", "upload-evidence", later, on_failure="halt")
    assert journal.steps("inc-1")[-1].on_failure == "halt"


def test_adding_a_step_twice_keeps_one(journal: Journal) -> None:
    """Adding a name that exists changes nothing, not even a step already finished, so a
    resumed follow-up finds its step as it left it."""
    _open(journal)
    first = T0 + timedelta(minutes=1)
    journal.add_step("inc-1", "cloudtrail-sweep", "sweep", first)
    journal.step_finished("inc-1", "cloudtrail-sweep", status="done", now=first,
                          detail={"events": 3}, error=None)
    journal.add_step("inc-1", "cloudtrail-sweep", "other-action", T0 + timedelta(minutes=2),
                     on_failure="halt")
    journal.add_step("inc-1", "notify", "notify", T0 + timedelta(minutes=3))  # a playbook step
    steps = journal.steps("inc-1")
    assert [s.name for s in steps].count("cloudtrail-sweep") == 1
    assert [s.name for s in steps].count("notify") == 1
    assert len(steps) == PLAYBOOK_STEPS + 1
    sweep = steps[-1]
    assert (sweep.action, sweep.on_failure, sweep.status, sweep.detail) == (
        "sweep", "continue", "done", {"events": 3})
    assert journal.get("inc-1").updated_at == first


def test_added_steps_get_consecutive_positions(journal: Journal) -> None:
    """Each added step goes one past the incident's highest position; another incident's
    steps do not count."""
    _open(journal)
    _open(journal, "inc-2", key="AKIAOTHERKEY00000000")
    journal.add_step("inc-1", "sweep-1", "sweep", T0)
    journal.add_step("inc-1", "sweep-2", "sweep", T0)
    journal.add_step("inc-2", "upload", "upload-evidence", T0)
    assert [(s.name, s.position) for s in journal.steps("inc-1")[-2:]] == [
        ("sweep-1", PLAYBOOK_STEPS), ("sweep-2", PLAYBOOK_STEPS + 1)]
    assert [(s.name, s.position) for s in journal.steps("inc-2")[-2:]] == [
        ("harden", PLAYBOOK_STEPS - 1), ("upload", PLAYBOOK_STEPS)]
    assert [s.position for s in journal.steps("inc-1")] == list(range(PLAYBOOK_STEPS + 2))


def test_added_step_runs_like_a_playbook_step(journal: Journal) -> None:
    """started, intent, sending, result and finished work on an added step and read back,
    its calls filed under its name."""
    _open(journal)
    start = T0 + timedelta(minutes=5)
    journal.add_step("inc-1", "cloudtrail-sweep", "sweep", start)
    journal.step_started("inc-1", "cloudtrail-sweep", start)
    handle = journal.intent("inc-1", "cloudtrail-sweep",
                            ApiCall("cloudtrail", "LookupEvents", {"MaxResults": 50}), start)
    journal.sending(handle)
    journal.result(handle, ok=True, attempts=1, now=start, result={"events": 2})
    journal.step_finished("inc-1", "cloudtrail-sweep", status="failed",
                          now=start + timedelta(seconds=9), detail={"events": 2},
                          error="throttled")
    sweep = journal.steps("inc-1")[-1]
    assert (sweep.name, sweep.status, sweep.started_at, sweep.ended_at, sweep.detail,
            sweep.error) == ("cloudtrail-sweep", "failed", start, start + timedelta(seconds=9),
                             {"events": 2}, "throttled")
    (call,) = journal.calls("inc-1", "cloudtrail-sweep")
    assert (call.id, call.step, call.operation, call.params, call.outcome, call.result) == (
        handle.call_id, "cloudtrail-sweep", "LookupEvents", {"MaxResults": 50}, "ok",
        {"events": 2})
    assert journal.calls("inc-1", "identify") == []
    assert journal.get("inc-1").updated_at == start + timedelta(seconds=9)


def test_adding_a_step_to_an_unknown_incident_raises(journal: Journal) -> None:
    """An unknown id is UnknownIncident, as for get(), and nothing is written."""
    with pytest.raises(UnknownIncident, match="respond status"):
        journal.add_step("inc-nope", "cloudtrail-sweep", "sweep", T0)
    assert journal.steps("inc-nope") == []
    assert journal.recent() == []


def test_added_step_on_failure_must_be_known(journal: Journal) -> None:
    """on_failure is halt or continue: a typo is refused before anything is written."""
    _open(journal)
    with pytest.raises(ValueError, match="on_failure"):
        journal.add_step("inc-1", "cloudtrail-sweep", "sweep", T0, on_failure="carry-on")
    assert len(journal.steps("inc-1")) == PLAYBOOK_STEPS
