"""DynamoDB-only journal behaviour: guards and leases across processes, pages, TTL.

"Two processes" are two DynamoDbJournal objects with their own clients on one moto
table, so nothing is shared between them but the table, as with two Lambdas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from tenacity import Retrying

from responder import playbook
from responder.aws import ApiCall, RetryPolicy
from responder.errors import BadInput, LeaseHeld
from responder.journal import IncidentExists, base, open_journal
from responder.journal.dynamodb import DynamoDbJournal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
KEY = "AKIAIOSFODNN7EXAMPLE"
TABLE = "responder-journal"
REGION = "us-east-1"


@pytest.fixture
def table() -> Iterator[DynamoDBClient]:
    """An empty journal table on moto; yields a client for inspecting it."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        DynamoDbJournal.create_table(client, TABLE)
        yield client


def process() -> DynamoDbJournal:
    """A journal as a separate process would open it: its own client, nothing cached."""
    return DynamoDbJournal(TABLE, client=boto3.client("dynamodb", region_name=REGION))


STEPS = len(playbook.load("compromised-key").steps)
"""The shipped playbook's steps: an appended step's position is past them."""


def create(journal: DynamoDbJournal, incident_id: str, *, key: str = KEY, owner: str = "a",
           finding_id: str | None = None, steps: list[dict[str, Any]] | None = None,
           started_at: datetime = T0) -> None:
    book = playbook.load("compromised-key").to_dict()
    if steps is not None:
        book = {**book, "steps": steps}
    journal.create_incident(
        incident_id=incident_id, access_key_id=key, playbook=book, started_at=started_at,
        source="test", options={}, owner=owner, lease_seconds=60, finding_id=finding_id,
    )


def items(client: DynamoDBClient, pk_prefix: str = "") -> list[dict[str, Any]]:
    """Every item in the table (Scan), optionally only those whose pk starts so."""
    found = [item for page in client.get_paginator("scan").paginate(TableName=TABLE)
             for item in page["Items"]]
    return [i for i in found if str(i["pk"]["S"]).startswith(pk_prefix)]


@dataclass(frozen=True)
class NappingPolicy(RetryPolicy):
    """The project's RetryPolicy with its waits recorded instead of slept."""

    naps: list[float] = field(default_factory=list)

    def retrying(self, retry_on: Callable[[BaseException], bool]) -> Retrying:
        return super().retrying(retry_on).copy(sleep=self.naps.append)


def inject(client: DynamoDBClient, operation: str, errors: list[ClientError]) -> list[str]:
    """Make the next calls of `operation` fail with `errors`, in order, before they are
    sent; returns the list every call of the operation is appended to."""
    calls: list[str] = []

    def fail(**_: Any) -> None:
        calls.append(operation)
        if errors:
            raise errors.pop(0)

    client.meta.events.register(f"before-call.dynamodb.{operation}", fail)
    return calls


def conflict(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "TransactionConflictException",
                                  "Message": "injected"}}, operation)


def test_racing_creates_for_one_key_have_one_winner(table: DynamoDBClient) -> None:
    """Two processes that both saw no open incident: one creates it, the other must join."""
    first, second = process(), process()
    assert first.find_open(KEY) is None
    assert second.find_open(KEY) is None
    create(first, "inc-a", owner="a")
    with pytest.raises(IncidentExists) as exists:
        create(second, "inc-b", owner="b")
    assert exists.value.incident_id == "inc-a"
    assert items(table, "INCIDENT#inc-b") == []  # the loser wrote nothing at all
    found = second.find_open(KEY)
    assert found is not None
    assert (found.id, found.lease_owner) == ("inc-a", "a")


def test_same_finding_twice_across_processes(table: DynamoDBClient) -> None:
    """A finding delivered twice (EventBridge retries) yields one incident, for any key."""
    create(process(), "inc-a", finding_id="gd-1")
    with pytest.raises(IncidentExists) as exists:
        create(process(), "inc-b", key="AKIAOTHERKEY00000000", finding_id="gd-1")
    assert exists.value.incident_id == "inc-a"
    assert process().find_open("AKIAOTHERKEY00000000") is None  # nothing half-created


def test_lease_is_a_conditional_write_across_processes(table: DynamoDBClient) -> None:
    """Only one process holds the lease; expiry, take-over and release work between them."""
    a, b, c = process(), process(), process()
    create(a, "inc-1", owner="a")
    with pytest.raises(LeaseHeld) as held:
        b.acquire_lease("inc-1", "b", T0 + timedelta(seconds=30), 60)
    assert (held.value.owner, held.value.expires_at) == ("a", "2026-11-25T09:01:00.000Z")
    a.acquire_lease("inc-1", "a", T0 + timedelta(seconds=30), 60)  # ours: re-acquire
    b.acquire_lease("inc-1", "b", T0 + timedelta(seconds=91), 60)  # expired: taken
    with pytest.raises(LeaseHeld):
        a.renew_lease("inc-1", "a", T0 + timedelta(seconds=92), 60)
    with pytest.raises(LeaseHeld):
        c.take_over_lease("inc-1", "a", "c", T0 + timedelta(seconds=93), 60)
    c.take_over_lease("inc-1", "b", "c", T0 + timedelta(seconds=93), 60)
    b.release_lease("inc-1", "b")  # not b's any more: no effect
    assert a.get("inc-1").lease_owner == "c"
    c.release_lease("inc-1", "c")
    record = a.get("inc-1")
    assert (record.lease_owner, record.lease_expires) == (None, None)
    a.acquire_lease("inc-1", "a", T0 + timedelta(seconds=94), 60)


def test_calls_and_steps_span_query_pages(table: DynamoDBClient) -> None:
    """steps() and calls() follow LastEvaluatedKey: nothing is lost past the first 1 MB."""
    client = boto3.client("dynamodb", region_name=REGION)
    queries: list[str] = []
    client.meta.events.register("before-call.dynamodb.Query",
                                lambda **_: queries.append("Query"))
    journal = DynamoDbJournal(TABLE, client=client)
    steps = [{"name": f"step-{n}", "action": "notify"} for n in range(12)]
    create(journal, "inc-1", steps=steps)
    for n in range(12):
        journal.step_finished("inc-1", f"step-{n}", status="done", now=T0,
                              detail={"blob": "x" * 100_000}, error=None)
    bulky = {"PolicyDocument": "y" * 8_000}
    ids = [journal.intent("inc-1", "evidence" if n % 3 else "disable-key",
                          ApiCall("iam", "PutUserPolicy", bulky, mutating=True), T0)
           for n in range(150)]
    queries.clear()
    assert [s.name for s in journal.steps("inc-1")] == [f"step-{n}" for n in range(12)]
    assert len(queries) > 1
    queries.clear()
    calls = journal.calls("inc-1")
    assert len(queries) > 1
    assert [c.id for c in calls] == [h.call_id for h in ids]
    assert [c.id for c in journal.calls("inc-1", "disable-key")] == [
        h.call_id for h in ids[::3]]


def test_closing_an_incident_frees_its_key(table: DynamoDBClient) -> None:
    """A halted incident keeps the key; a completed one frees it for a new incident."""
    a = process()
    create(a, "inc-1")
    a.update_incident("inc-1", T0, status="halted")
    with pytest.raises(IncidentExists):
        create(process(), "inc-2")
    a.update_incident("inc-1", T0, status="completed")
    assert items(table, "OPENKEY#") == []
    a.update_incident("inc-1", T0, status="completed")  # again: still fine
    b = process()
    create(b, "inc-2", started_at=T0 + timedelta(hours=1))
    found = b.find_open(KEY)
    assert found is not None
    assert found.id == "inc-2"
    assert [r.id for r in b.history_for_key(KEY)] == ["inc-1", "inc-2"]


def test_a_guard_left_by_an_expired_incident_does_not_block(table: DynamoDBClient) -> None:
    """TTL deletes items one by one; an OPENKEY guard that outlived its incident is cleared."""
    create(process(), "inc-old")
    table.delete_item(TableName=TABLE, Key={"pk": {"S": "INCIDENT#inc-old"},
                                            "sk": {"S": "META"}})
    journal = process()
    assert journal.find_open(KEY) is None
    create(journal, "inc-new")
    found = journal.find_open(KEY)
    assert found is not None
    assert found.id == "inc-new"


def test_results_of_a_call_are_found_from_another_process(table: DynamoDBClient) -> None:
    """sending/result need only the handle: another process finds the call from it."""
    first, second = process(), process()
    create(first, "inc-1")
    token = first.intent("inc-1", "disable-key", ApiCall("iam", "UpdateAccessKey"), T0)
    other = second.intent("inc-1", "disable-key", ApiCall("iam", "UpdateAccessKey"),
                          T0 + timedelta(milliseconds=1))
    assert other > token  # the later intent, whichever process wrote it
    second.sending(token)
    second.result(token, ok=True, attempts=1, now=T0, result={"ok": 1.5})
    (done, pending) = first.calls("inc-1")
    assert (done.id, done.outcome, done.result) == (token.call_id, "ok", {"ok": 1.5})
    assert (pending.id, pending.outcome) == (other.call_id, "pending")


def test_every_item_expires_after_retention(table: DynamoDBClient) -> None:
    """TTL is on, and every item expires 90 days after the start."""
    journal = process()
    create(journal, "inc-1", finding_id="gd-1")
    journal.intent("inc-1", "identify", ApiCall("iam", "GetAccessKeyLastUsed"), T0)
    ttl = table.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")) == ("ENABLED", "expires_at")
    expected = str(int((T0 + timedelta(days=90)).timestamp()))
    kinds = {(i["pk"]["S"].split("#")[0], i["sk"]["S"].split("#")[0]): i.get("expires_at")
             for i in items(table)}
    assert set(kinds) == {("INCIDENT", "META"), ("INCIDENT", "STEP"), ("INCIDENT", "CALL"),
                          ("OPENKEY", "LOCK"), ("FINDING", "LOCK")}
    assert all(value == {"N": expected} for value in kinds.values())


def test_write_lost_to_a_transaction_is_retried(table: DynamoDBClient) -> None:
    """A write that collides with an in-flight transaction is retried, with backoff."""
    policy = NappingPolicy(initial_seconds=0.05, max_seconds=0.1)
    client = boto3.client("dynamodb", region_name=REGION)
    journal = DynamoDbJournal(TABLE, client=client, retry=policy)
    create(journal, "inc-1")
    inject(client, "UpdateItem", [conflict("UpdateItem"), conflict("UpdateItem")])
    journal.renew_lease("inc-1", "a", T0, 60)
    assert len(policy.naps) == 2
    assert 0 <= policy.naps[0] <= 0.05
    assert 0 <= policy.naps[1] <= 0.1
    assert journal.get("inc-1").lease_expires == T0 + timedelta(seconds=60)


def test_transaction_cancelled_by_a_conflict_is_retried(table: DynamoDBClient) -> None:
    """A transaction cancelled only because another transaction held an item is tried
    again under the RetryPolicy; one cancelled by its own condition is not (IncidentExists)."""
    policy = NappingPolicy(initial_seconds=0, max_seconds=0)
    client = boto3.client("dynamodb", region_name=REGION)
    journal = DynamoDbJournal(TABLE, client=client, retry=policy)
    cancelled = ClientError({
        "Error": {"Code": "TransactionCanceledException", "Message": "injected"},
        "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
    }, "TransactWriteItems")
    attempts = inject(client, "TransactWriteItems", [cancelled])
    create(journal, "inc-1")
    assert (len(attempts), len(policy.naps)) == (2, 1)
    assert journal.get("inc-1").status == "running"
    attempts.clear()
    with pytest.raises(IncidentExists):
        create(journal, "inc-2")
    assert (len(attempts), len(policy.naps)) == (1, 1)


def test_conflict_retries_stop_where_the_policy_says(table: DynamoDBClient) -> None:
    """The RetryPolicy's attempt limit holds: past it, the conflict is raised."""
    client = boto3.client("dynamodb", region_name=REGION)
    journal = DynamoDbJournal(
        TABLE, client=client, retry=RetryPolicy(max_attempts=2, initial_seconds=0,
                                                max_seconds=0))
    create(journal, "inc-1")
    attempts = inject(client, "UpdateItem", [conflict("UpdateItem") for _ in range(3)])
    with pytest.raises(ClientError, match="TransactionConflict"):
        journal.renew_lease("inc-1", "a", T0, 60)
    assert len(attempts) == 2


def test_calls_need_no_counter_or_pointer_items(table: DynamoDBClient) -> None:
    """An intent is one PutItem; sending and result, even from another process, are one
    UpdateItem each, with nothing read first; no counter or pointer item is left."""
    operations: list[str] = []

    def recorded() -> DynamoDbJournal:
        client = boto3.client("dynamodb", region_name=REGION)
        client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: operations.append(model.name))
        return DynamoDbJournal(TABLE, client=client)

    first, second = recorded(), recorded()
    create(first, "inc-1")
    operations.clear()
    handles = [first.intent("inc-1", "disable-key", ApiCall("iam", "UpdateAccessKey"),
                            T0 + timedelta(seconds=n)) for n in range(3)]
    assert operations == ["PutItem"] * 3
    operations.clear()
    for handle in handles:
        second.sending(handle)
        second.result(handle, ok=True, attempts=1, now=T0)
    assert operations == ["UpdateItem"] * 6
    assert [c.outcome for c in first.calls("inc-1")] == ["ok"] * 3
    keys = {(i["pk"]["S"].split("#")[0], i["sk"]["S"].split("#")[0]) for i in items(table)}
    assert keys == {("INCIDENT", "META"), ("INCIDENT", "STEP"), ("INCIDENT", "CALL"),
                    ("OPENKEY", "LOCK")}


def test_huge_results_are_journaled_as_a_marker(table: DynamoDBClient) -> None:
    """A result too big for a 400 KB item is replaced by a marker instead of failing."""
    journal = process()
    create(journal, "inc-1")
    token = journal.intent("inc-1", "collect-evidence", ApiCall("iam", "GetUser"), T0)
    journal.result(token, ok=True, attempts=1, now=T0, result={"blob": "z" * 500_000})
    (call,) = journal.calls("inc-1")
    assert call.result is not None
    assert (call.outcome, call.result["journal_truncated"]) == ("ok", True)


def test_too_many_steps_for_one_transaction(table: DynamoDBClient) -> None:
    """A playbook that cannot be created atomically is refused before anything is written."""
    with pytest.raises(ValueError, match="one DynamoDB transaction"):
        create(process(), "inc-1", steps=[{"name": f"s{n}", "action": "notify"}
                                          for n in range(98)])
    assert items(table) == []


def test_state_url_opens_the_dynamodb_journal(table: DynamoDBClient, tmp_path: Path) -> None:
    """`--state dynamodb://TABLE` opens this backend on that table; a bad name is exit 2."""
    journal = open_journal(f"dynamodb://{TABLE}", tmp_path)
    assert isinstance(journal, DynamoDbJournal)
    assert journal.table_name == TABLE
    create(journal, "inc-1")
    assert journal.get("inc-1").source == "test"
    with pytest.raises(BadInput, match="dynamodb://TABLE"):
        open_journal("dynamodb://", tmp_path)
    with pytest.raises(BadInput):
        DynamoDbJournal.from_url("dynamodb://no/such")


def test_state_url_uses_the_run_session(tmp_path: Path) -> None:
    """`--state dynamodb://TABLE` reaches the table through the run's boto3 session, so
    --profile and --region choose where the journal is, as for every other call."""
    journal = open_journal(f"dynamodb://{TABLE}", tmp_path,
                           session=boto3.Session(region_name="eu-west-1"))
    assert isinstance(journal, DynamoDbJournal)
    assert journal.client.meta.region_name == "eu-west-1"


def before_put(journal: DynamoDbJournal, meanwhile: list[Callable[[], None]]) -> None:
    """Run the next of `meanwhile` (another process's write) just before each PutItem of
    `journal` is sent: the other writer wins the race for the position it read."""

    def interleave(**_: Any) -> None:
        if meanwhile:
            meanwhile.pop(0)()

    journal.client.meta.events.register("before-call.dynamodb.PutItem", interleave)


def test_step_added_by_another_process_is_found(table: DynamoDBClient) -> None:
    """A process that cached the playbook's positions still finds a step another process
    appended later, and writes it under its own key; the item reads back as a created one."""
    first, second = process(), process()
    create(first, "inc-1")
    first.step_started("inc-1", "identify", T0)  # caches first's positions
    second.add_step("inc-1", "cloudtrail-sweep", "sweep", T0)
    first.step_finished("inc-1", "cloudtrail-sweep", status="done", now=T0,
                        detail={"events": 0}, error=None)
    sweep = second.steps("inc-1")[-1]
    assert (sweep.name, sweep.position, sweep.status) == ("cloudtrail-sweep", STEPS, "done")
    stored = {i["sk"]["S"]: set(i) for i in items(table, "INCIDENT#inc-1")}
    assert stored[f"STEP#{STEPS:03d}"] == stored[f"STEP#{STEPS - 1:03d}"] | {"ended_at"}


def test_add_step_retries_when_another_writer_takes_the_position(
        table: DynamoDBClient) -> None:
    """Two processes appending at once: the loser's conditional put fails, it reads again
    and appends after the winner's step, overwriting nothing."""
    first, second = process(), process()
    create(first, "inc-1")
    before_put(second, [lambda: first.add_step("inc-1", "upload", "upload-evidence", T0)])
    second.add_step("inc-1", "cloudtrail-sweep", "sweep", T0)
    assert [(s.name, s.position, s.action) for s in first.steps("inc-1")[-2:]] == [
        ("upload", STEPS, "upload-evidence"), ("cloudtrail-sweep", STEPS + 1, "sweep")]


def test_add_step_racing_the_same_name_keeps_one(table: DynamoDBClient) -> None:
    """Two processes adding the same step: the loser finds the winner's and adds nothing."""
    first, second = process(), process()
    create(first, "inc-1")
    before_put(second, [lambda: first.add_step("inc-1", "cloudtrail-sweep", "winner", T0)])
    second.add_step("inc-1", "cloudtrail-sweep", "loser", T0)
    second.step_started("inc-1", "cloudtrail-sweep", T0)
    steps = first.steps("inc-1")
    assert [(s.name, s.action, s.status) for s in steps if s.position >= STEPS] == [
        ("cloudtrail-sweep", "winner", "running")]


def test_add_step_gives_up_after_losing_every_attempt(table: DynamoDBClient) -> None:
    """A writer that loses the position every time stops after APPEND_ATTEMPTS with an
    error instead of looping; the winners' steps stay."""
    first, second = process(), process()
    create(first, "inc-1")

    def rival(n: int) -> Callable[[], None]:
        return lambda: first.add_step("inc-1", f"rival-{n}", "sweep", T0)

    before_put(second, [rival(n) for n in range(base.APPEND_ATTEMPTS)])
    with pytest.raises(base.Collision, match="cloudtrail-sweep"):
        second.add_step("inc-1", "cloudtrail-sweep", "sweep", T0)
    assert [s.name for s in first.steps("inc-1")[STEPS:]] == [
        f"rival-{n}" for n in range(base.APPEND_ATTEMPTS)]
