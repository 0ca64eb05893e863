"""The Lambda path's journal round trips (issue 30): what a run sends to its DynamoDB
table and when, and that write-back keeps every write-ahead guarantee.

- A whole Lambda incident (topic, bucket, scheduler) against moto, counted with botocore
  hooks on the handler's sessions: at most 4 DynamoDB calls before UpdateAccessKey, at
  most 60 in all; and at the moment moto carries out each mutation, the journal table
  already holds its call as `sending` (moto's backends are wrapped here, the product is
  not touched).
- WriteBackJournal (what open_journal gives a run) against the protocol: every test of
  tests/test_journal.py that reads back through the journal passes on it; what it holds
  reaches the table exactly as the per-call journal would have written it; sending,
  renewal, release, a lost lease, the key's guard, large batches.
- `respond` killed (os._exit) right before and right after the journal write each
  mutation waits for, and (slow) every call of a run, with `--state dynamodb://TABLE`,
  then resumed: the same end state as a clean run.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
import test_journal
from conftest import (
    REGION,
    Account,
    CliResult,
    Pager,
    logged_calls,
    make_account,
    make_pager,
    reference_run,
)
from finding_docs import guardduty_event
from moto import mock_aws

from responder import aws, lambda_handler, playbook
from responder.aws import ApiCall
from responder.drill.cloudtrail import CloudTrailFake
from responder.errors import LeaseHeld
from responder.journal import IncidentExists, open_journal
from responder.journal import dynamodb_held as held_module
from responder.journal.dynamodb import DynamoDbJournal
from responder.journal.dynamodb_writeback import WriteBackJournal

Cli = Callable[..., CliResult]
TABLE = "journal"
BUCKET = "evidence-bucket"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:responder"
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/ResponderScheduler"
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
KEY = "AKIAIOSFODNN7EXAMPLE"
MAX_BEFORE_CONTAINMENT = 4
MAX_PER_INCIDENT = 60


# -- a whole Lambda incident -----------------------------------------------------------


WRAPPED = {  # moto backend method → the operation it carries out
    ("moto.iam.models", "IAMBackend", "update_access_key"): "UpdateAccessKey",
    ("moto.iam.models", "IAMBackend", "put_user_policy"): "PutUserPolicy",
    ("moto.iam.models", "IAMBackend", "create_access_key"): "CreateAccessKey",
    ("moto.iam.models", "IAMBackend", "tag_user"): "TagUser",
    ("moto.secretsmanager.models", "SecretsManagerBackend", "create_secret"): "CreateSecret",
    ("moto.sns.models", "SNSBackend", "publish"): "Publish",
    ("moto.s3.models", "S3Backend", "put_object"): "PutObject",
    ("moto.scheduler.models", "EventBridgeSchedulerBackend", "create_schedule"):
        "CreateSchedule",
}


@dataclass
class Observed:
    """The order of the handler's calls (DynamoDB's, and UpdateAccessKey), and what the
    journal table held each time moto carried out a mutation."""

    order: list[str] = field(default_factory=list)
    acted: list[tuple[str, str | None]] = field(default_factory=list)
    """(operation, the outcome its newest journaled call had in the table then)."""
    watching: bool = False

    def dynamodb(self, model: Any, **_: Any) -> None:
        self.order.append(f"dynamodb:{model.name}")

    def containment(self, model: Any, **_: Any) -> None:
        self.order.append(f"iam:{model.name}")

    def journaled(self, operation: str) -> str | None:
        client = boto3.client("dynamodb", region_name=REGION)
        items = [i for page in client.get_paginator("scan").paginate(TableName=TABLE)
                 for i in page["Items"]
                 if i["sk"]["S"].startswith("CALL#") and i["operation"]["S"] == operation]
        items.sort(key=lambda i: i["sk"]["S"])
        return items[-1]["outcome"]["S"] if items else None


@pytest.fixture
def lambda_world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Account]:
    """In-process moto with the journal table, a topic, an evidence bucket and the
    scheduler role, as a deployment has them; the handler's sessions carry the counting
    hooks, and moto's mutating backends look at the journal table as they act."""
    for name in ("RESPONDER_STATE", "RESPONDER_SCHEDULER_TARGET_ARN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), CloudTrailFake().installed():
        session = boto3.Session(region_name=REGION)
        account = make_account(session)
        DynamoDbJournal.create_table(session.client("dynamodb"), TABLE)
        topic = session.client("sns").create_topic(Name="incidents")["TopicArn"]
        session.client("s3").create_bucket(Bucket=BUCKET)
        for name, value in {"RESPONDER_TABLE": TABLE, "RESPONDER_NOTIFY_TOPIC": topic,
                            "RESPONDER_EVIDENCE_BUCKET": BUCKET,
                            "RESPONDER_SCHEDULER_ROLE_ARN": SCHEDULER_ROLE,
                            "RESPONDER_HOME": str(tmp_path / "lambda"),
                            "RESPONDER_RETRY_INITIAL_SECONDS": "0",
                            "RESPONDER_RETRY_MAX_SECONDS": "0"}.items():
            monkeypatch.setenv(name, value)
        yield account


def _observe(monkeypatch: pytest.MonkeyPatch) -> Observed:
    seen = Observed()
    real_factory = aws.session_factory

    def factory(*args: Any, **kwargs: Any) -> Callable[[], Any]:
        make = real_factory(*args, **kwargs)
        hooked: set[int] = set()

        def session() -> Any:
            made = make()
            if id(made) not in hooked:
                hooked.add(id(made))
                made.events.register("before-call.dynamodb", seen.dynamodb)
                made.events.register("before-call.iam.UpdateAccessKey", seen.containment)
            return made

        return session

    monkeypatch.setattr(lambda_handler, "session_factory", factory)
    for (module, cls, method), operation in WRAPPED.items():
        owner = getattr(__import__(module, fromlist=[cls]), cls)
        monkeypatch.setattr(owner, method, _looking(seen, getattr(owner, method), operation))
    return seen


def _looking(seen: Observed, real: Callable[..., Any], operation: str) -> Callable[..., Any]:
    def act(*args: Any, **kwargs: Any) -> Any:
        if seen.watching:
            seen.acted.append((operation, seen.journaled(operation)))
        return real(*args, **kwargs)

    return act


def test_lambda_incident_round_trips(lambda_world: Account,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A GuardDuty finding through the handler: at most 4 DynamoDB calls before
    UpdateAccessKey, at most 60 for the whole incident (evidence copied, sweeps
    scheduled, notified); each mutation's call is in the table, `sending`, when moto
    carries it out; and the table ends as the incident did, its lease released."""
    seen = _observe(monkeypatch)
    seen.watching = True
    doc = lambda_handler.handler(guardduty_event(lambda_world.bob_key, "gd-rt"),
                                 SimpleNamespace(invoked_function_arn=FUNCTION_ARN))
    seen.watching = False
    assert doc["status"] == "completed", doc
    assert doc["contained_at"] is not None
    assert doc["evidence"]["s3_uri"] is not None
    assert doc["sweeps"]["scheduler"] == "eventbridge-scheduler"

    first = seen.order.index("iam:UpdateAccessKey")
    before = [c for c in seen.order[:first] if c.startswith("dynamodb:")]
    total = [c for c in seen.order if c.startswith("dynamodb:")]
    assert len(before) <= MAX_BEFORE_CONTAINMENT, before
    assert len(total) <= MAX_PER_INCIDENT, Counter(total)

    acted = {operation for operation, _ in seen.acted}
    assert acted == set(WRAPPED.values()), acted
    assert [a for a in seen.acted if a[1] != "sending"] == []

    table = DynamoDbJournal(TABLE, client=boto3.client("dynamodb", region_name=REGION))
    record = table.get(doc["incident_id"])
    assert (record.status, record.lease_owner, record.lease_expires) == ("completed", None,
                                                                         None)
    assert record.contained_at is not None
    steps = table.steps(doc["incident_id"])
    assert {s.status for s in steps} == {"done"}, [(s.name, s.status) for s in steps]
    assert {c.outcome for c in table.calls(doc["incident_id"])} <= {"ok", "error"}
    assert table.find_open(lambda_world.bob_key) is None


# -- the write-back journal against the protocol ------------------------------------------


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        DynamoDbJournal.create_table(client, TABLE)
        yield client


def process() -> DynamoDbJournal:
    """Another process's per-call journal: it reads only what reached the table."""
    return DynamoDbJournal(TABLE, client=boto3.client("dynamodb", region_name=REGION))


@dataclass
class Counting:
    journal: WriteBackJournal
    calls: list[str]


def write_back() -> Counting:
    client = boto3.client("dynamodb", region_name=REGION)
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(
        model.name))
    return Counting(WriteBackJournal(TABLE, client=client), calls)


def create(journal: DynamoDbJournal, incident_id: str = "inc-1", *, owner: str = "a",
           key: str = KEY, lease_seconds: float = 60) -> None:
    journal.create_incident(
        incident_id=incident_id, access_key_id=key,
        playbook=playbook.load("compromised-key").to_dict(), started_at=T0, source="test",
        options={}, owner=owner, lease_seconds=lease_seconds)


def _reads_through_the_journal(test: Callable[..., None]) -> bool:
    """A test of test_journal.py that takes only the journal and inspects nothing but what
    the journal returns (one that scans the table checks what only a flush puts there)."""
    return list(inspect.signature(test).parameters) == ["journal"] and \
        "stored_text" not in inspect.getsource(test)


PROTOCOL = sorted((name, test) for name, test in vars(test_journal).items()
                  if name.startswith("test_") and callable(test)
                  and _reads_through_the_journal(test))


@pytest.mark.parametrize(("name", "test"), PROTOCOL, ids=[n for n, _ in PROTOCOL])
def test_write_back_keeps_the_protocol(table: Any, name: str,
                                       test: Callable[..., None]) -> None:
    """Every read-back test of the journal protocol passes on the write-back journal."""
    assert name
    journal = write_back().journal
    test(journal)
    journal.close()


def test_open_journal_gives_a_run_the_write_back_journal(table: Any, tmp_path: Path) -> None:
    assert isinstance(open_journal(f"dynamodb://{TABLE}", tmp_path), WriteBackJournal)


def _a_run(journal: DynamoDbJournal) -> None:
    """What a run journals, in the order it does: identify replayed, a mutation, evidence
    reads, a failed read, an appended step, the fields, the end."""
    create(journal)
    journal.step_started("inc-1", "identify", T0)
    read = journal.intent("inc-1", "identify", ApiCall("iam", "GetAccessKeyLastUsed",
                                                       {"AccessKeyId": KEY}), T0)
    journal.result(read, ok=True, attempts=1, now=T0, result={"UserName": "bob"})
    journal.step_finished("inc-1", "identify", status="done", now=T0,
                          detail={"user": "bob"}, error=None)
    journal.update_incident("inc-1", T0, user_name="bob", account_id="123456789012")
    journal.update_incident("inc-1", T0, status="running", error=None)
    at = T0 + timedelta(seconds=1)
    journal.step_started("inc-1", "disable-key", at)
    write = journal.intent("inc-1", "disable-key", ApiCall(
        "iam", "UpdateAccessKey", {"AccessKeyId": KEY, "Status": "Inactive"},
        mutating=True), at)
    journal.sending(write)
    journal.result(write, ok=True, attempts=2, now=at, result={})
    journal.step_finished("inc-1", "disable-key", status="done", now=at, detail={},
                          error=None)
    failed = journal.intent("inc-1", "collect-evidence", ApiCall("cloudtrail", "LookupEvents"),
                            at)
    journal.result(failed, ok=False, attempts=3, now=at, error="Throttling: slow down")
    journal.add_step("inc-1", "archive", "archive_evidence", at)
    journal.step_started("inc-1", "archive", at)
    journal.update_incident("inc-1", at, contained_at=at, verification={"ok": True})
    journal.update_incident("inc-1", at, status="completed", error=None)
    journal.release_lease("inc-1", "a")


def test_what_is_held_reaches_the_table_as_the_per_call_journal_writes_it(
        table: Any) -> None:
    """The same run through both journals (one table each time): the records read back
    from the table afterwards are the same, field by field, but for the call ids."""
    def stored() -> list[Any]:
        reader = process()
        calls = [c.__class__(**{**vars(c), "id": ""}) for c in reader.calls("inc-1")]
        return [reader.get("inc-1"), reader.steps("inc-1"), calls]

    counted = write_back()
    _a_run(counted.journal)
    sent = list(counted.calls)
    held = stored()
    for page in table.get_paginator("scan").paginate(TableName=TABLE):
        for item in page["Items"]:
            table.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})
    _a_run(process())
    assert held == stored()
    assert held[0].status == "completed"
    assert process().find_open(KEY) is None  # the guard went with the status
    assert Counter(sent) == {"TransactWriteItems": 3}  # create, sending, release


def test_sending_puts_everything_before_it_in_the_table(table: Any) -> None:
    """Nothing of a held incident is in the table until a mutation's request is about to
    leave; then its call (sending) and every write before it are, in one request."""
    counted = write_back()
    journal = counted.journal
    create(journal)
    journal.step_started("inc-1", "disable-key", T0)
    read = journal.intent("inc-1", "disable-key", ApiCall("iam", "ListAccessKeys"), T0)
    journal.result(read, ok=True, attempts=1, now=T0, result={"AccessKeyMetadata": []})
    write = journal.intent("inc-1", "disable-key", ApiCall("iam", "UpdateAccessKey",
                                                           mutating=True), T0)
    counted.calls.clear()
    assert [c.outcome for c in journal.calls("inc-1")] == ["ok", "pending"]
    assert process().calls("inc-1") == []
    assert process().steps("inc-1")[1].status == "pending"
    assert counted.calls == []
    journal.sending(write)
    assert counted.calls == ["TransactWriteItems"]
    assert [c.outcome for c in process().calls("inc-1")] == ["ok", "sending"]
    assert process().steps("inc-1")[1].status == "running"


def test_renewal_within_a_quarter_lease_is_not_sent(table: Any) -> None:
    """The expiry a held lease has is the one this process wrote: a renewal before a
    quarter lease has passed changes nothing worth a request; after, it is sent with
    what is held."""
    counted = write_back()
    journal = counted.journal
    create(journal)
    counted.calls.clear()
    journal.renew_lease("inc-1", "a", T0 + timedelta(seconds=14), 60)
    assert counted.calls == []
    journal.step_started("inc-1", "identify", T0)
    journal.renew_lease("inc-1", "a", T0 + timedelta(seconds=16), 60)
    assert counted.calls == ["TransactWriteItems"]
    stored = process().get("inc-1")
    assert stored.lease_expires == T0 + timedelta(seconds=76)
    assert process().steps("inc-1")[0].status == "running"


def test_a_lease_taken_over_stops_every_write(table: Any) -> None:
    """Another runner took the expired lease: the next flush is refused as LeaseHeld and
    lands nothing; later writes raise LeaseHeld too; the release changes nothing."""
    journal = write_back().journal
    create(journal, lease_seconds=1)
    journal.step_started("inc-1", "identify", T0)
    process().acquire_lease("inc-1", "b", T0 + timedelta(seconds=2), 60)
    handle = journal.intent("inc-1", "identify", ApiCall("iam", "TagUser", mutating=True),
                            T0)
    with pytest.raises(LeaseHeld) as held:
        journal.sending(handle)
    assert held.value.owner == "b"
    assert process().steps("inc-1")[0].status == "pending"
    assert process().calls("inc-1") == []
    with pytest.raises(LeaseHeld):
        journal.step_finished("inc-1", "identify", status="done", now=T0, detail={},
                              error=None)
    journal.release_lease("inc-1", "a")
    assert process().get("inc-1").lease_owner == "b"
    assert journal.get("inc-1").lease_owner == "b"  # read from the table now


def test_resuming_claims_the_key_or_names_its_incident(table: Any) -> None:
    """An incident taken up again (acquired, so its guard is not known to be its own)
    claims the key's guard when it runs again; a key another incident holds meanwhile is
    IncidentExists naming it, and the held status stays as it was."""
    create(process(), owner="dead")
    process().update_incident("inc-1", T0, status="refused")
    create(process(), "inc-2", owner="other")
    counted = write_back()
    journal = counted.journal
    journal.acquire_lease("inc-1", "a", T0 + timedelta(minutes=5), 60)
    with pytest.raises(IncidentExists) as exists:
        journal.update_incident("inc-1", T0, status="running")
    assert exists.value.incident_id == "inc-2"
    assert journal.get("inc-1").status == "refused"
    process().update_incident("inc-2", T0, status="completed")
    journal.update_incident("inc-1", T0, status="running")
    found = process().find_open(KEY)
    assert found is not None
    assert found.id == "inc-1"


def test_a_large_batch_goes_in_several_transactions(table: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Past DynamoDB's 100 actions (or 4 MB) a flush is split: calls first, every request
    under the lease condition, and all of it in the table afterwards."""
    monkeypatch.setattr(held_module, "MAX_BYTES", 200_000)
    counted = write_back()
    journal = counted.journal
    create(journal)
    journal.step_started("inc-1", "collect-evidence", T0)
    bulky = {"blob": "x" * 9_000}
    with monkeypatch.context() as patch:
        patch.setattr("responder.journal.dynamodb_writeback.FLUSH_AT", 1_000)
        handles = [journal.intent("inc-1", "collect-evidence",
                                  ApiCall("cloudtrail", "LookupEvents", bulky), T0)
                   for _ in range(130)]
        counted.calls.clear()
        journal.close()
    assert counted.calls.count("TransactWriteItems") > 2
    assert [c.id for c in process().calls("inc-1")] == [h.call_id for h in handles]
    assert process().steps("inc-1")[3].status == "running"


def test_enough_held_writes_are_sent_without_waiting(table: Any) -> None:
    """A long stretch of reads reaches the table every FLUSH_AT writes."""
    counted = write_back()
    journal = counted.journal
    create(journal)
    counted.calls.clear()
    for n in range(held_module.FLUSH_AT + 1):
        journal.intent("inc-1", "collect-evidence", ApiCall("cloudtrail", "LookupEvents",
                                                            {"page": n}), T0)
    assert counted.calls == ["TransactWriteItems"]
    assert len(process().calls("inc-1")) >= held_module.FLUSH_AT - 1


def test_the_key_is_listed_while_its_guard_is_read(table: Any) -> None:
    """find_open lists the key's incidents at the same time, and history_for_key right
    after uses that listing; one asked later reads the index again."""
    create(process())
    process().update_incident("inc-1", T0, status="completed")
    counted = write_back()
    journal = counted.journal
    assert journal.find_open(KEY) is None
    assert [r.id for r in journal.history_for_key(KEY)] == ["inc-1"]
    assert Counter(counted.calls) == {"GetItem": 1, "Query": 1, "BatchGetItem": 1}
    counted.calls.clear()
    assert [r.id for r in journal.history_for_key(KEY)] == ["inc-1"]
    assert Counter(counted.calls) == {"Query": 1, "BatchGetItem": 1}


# -- killed around the journal writes, resumed (moto server, `respond`) ----------------

MUTATIONS = ["UpdateAccessKey", "PutUserPolicy", "DeleteAccessKey", "CreateAccessKey",
             "CreateSecret", "Publish"]
FULL_MATRIX_MAX = 90  # above a normal run's 77 calls (AWS and DynamoDB)


def _state() -> tuple[str, ...]:
    return ("--state", f"dynamodb://{TABLE}")


def _table_on(account: Account) -> None:
    DynamoDbJournal.create_table(account.session.client("dynamodb", region_name=REGION), TABLE)


@dataclass(frozen=True)
class Outcome:
    crash_code: int
    doc: dict[str, Any]
    operations: Counter[str]


def _crash_and_resume(cli: Cli, account: Account, pager: Pager, tmp_path: Path,
                      fault: dict[str, str]) -> Outcome:
    log = tmp_path / "calls.log"
    args = ("compromised", account.leaked_key, "--yes", "--output", "json",
            "--notify-topic", pager.topic_arn, *_state())
    crashed = cli(*args, env={**fault, "RESPONDER_FAULT_LOG": str(log)})
    status = cli("status", "--output", "json", *_state())
    open_ids = [i["incident_id"] for i in json.loads(status.stdout)["incidents"]
                if i["status"] in {"running", "halted"}]
    if open_ids and sum(map(ord, "".join(fault.values()))) % 2:
        again = cli("resume", open_ids[0], "--output", "json", *_state(),
                    env={"RESPONDER_FAULT_LOG": str(log)})
    else:
        again = cli(*args, env={"RESPONDER_FAULT_LOG": str(log)})
    assert again.code == 0, (fault, again.stderr[-3000:])
    return Outcome(crashed.code, json.loads(again.stdout), Counter(logged_calls(log)))


def _assert_end_state(account: Account, pager: Pager, outcome: Outcome, *,
                      publish_may_be_lost: bool = False) -> None:
    """As tests/test_crash_matrix.py's, read from the DynamoDB journal. A crash right
    after the write that journals Publish as `sending` (its request not yet sent) leaves
    no notification: a publish that may have left is never repeated (at most once,
    docs/journal.md), which that window turns into none."""
    doc = outcome.doc
    assert doc["status"] == "completed"
    assert [s["status"] for s in doc["steps"]] == ["done"] * 8, doc["steps"]
    new = doc["replacement"]["access_key_id"]
    keys = {k["AccessKeyId"]: k["Status"]
            for k in account.iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]}
    assert keys == {account.other_key: "Active", new: "Active"}, "orphan or lost key"
    assert outcome.operations["CreateAccessKey"] <= 2, "a third key attempt"
    assert account.iam.list_user_policies(UserName="alice")["PolicyNames"] == [
        "responder-revoke-older-sessions"]
    sm = account.session.client("secretsmanager", region_name=REGION)
    stages = sm.describe_secret(SecretId=doc["replacement"]["secret_ref"])[
        "VersionIdsToStages"]
    assert len(stages) == 1, stages
    stored = json.loads(sm.get_secret_value(SecretId=doc["replacement"]["secret_ref"])[
        "SecretString"])
    assert stored["AccessKeyId"] == new
    completions = [m for m in pager.messages() if "contained" in m["Subject"]]
    allowed = {0, 1} if publish_may_be_lost else {1}
    assert len(completions) in allowed, [m["Subject"] for m in pager.messages()]
    assert doc["report"] is not None
    assert doc["evidence"]["sha256"]
    journal = DynamoDbJournal(TABLE, client=account.session.client("dynamodb",
                                                                   region_name=REGION))
    record = journal.get(doc["incident_id"])
    assert (record.status, record.lease_owner) == ("completed", None)
    assert journal.find_open(account.leaked_key) is None


@pytest.fixture(scope="module")
def reference(moto_server: str, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[list[str], list[str]]:
    """The calls (and the successful calls) of one uninterrupted DynamoDB-journal run."""
    home = tmp_path_factory.mktemp("dynamodb-reference")
    pagers: list[Pager] = []

    def args(account: Account) -> tuple[str, ...]:
        _table_on(account)
        pagers.append(make_pager(account.session))
        return ("compromised", account.leaked_key, "--yes", "--output", "json",
                "--notify-topic", pagers[0].topic_arn, *_state())

    account, result = reference_run(moto_server, home, args)
    log = home / "calls.log"
    _assert_end_state(account, pagers[0], Outcome(0, json.loads(result.stdout),
                                                  Counter(logged_calls(log))))
    calls, ok = logged_calls(log), logged_calls(log, "ok")
    assert len(calls) < FULL_MATRIX_MAX
    return calls, ok


def _flush_before(calls: list[str], operation: str) -> int:
    """k of the journal write `operation`'s request waits for (the first DynamoDB write
    after the operation is called), counted as CRASH_BEFORE counts."""
    at = calls.index(operation)
    return at + 1 + calls[at + 1:].index("TransactWriteItems") + 1


def _flush_after(ok: list[str], operation: str) -> int:
    """k of that write among the calls that succeeded (CRASH_AFTER's count): the last
    DynamoDB write that succeeded before the operation did."""
    at = ok.index(operation)
    return max(i for i, op in enumerate(ok[:at]) if op == "TransactWriteItems") + 1


@pytest.fixture
def dynamo_account(server_account: Account) -> Account:
    _table_on(server_account)
    return server_account


@pytest.mark.parametrize("when", ["BEFORE", "AFTER"])
@pytest.mark.parametrize("operation", MUTATIONS)
def test_crash_around_each_write_ahead(dynamo_account: Account, cli: Cli, pager: Pager,
                                       tmp_path: Path, reference: tuple[list[str], list[str]],
                                       *, when: str, operation: str) -> None:
    """Killed right before the journal write a mutation's request waits for (nothing of
    it in the table, the request never sent) and right after it (journaled `sending`,
    the request never sent): resume ends as a clean run."""
    calls, ok = reference
    k = _flush_before(calls, operation) if when == "BEFORE" else _flush_after(ok, operation)
    outcome = _crash_and_resume(cli, dynamo_account, pager, tmp_path,
                                {f"RESPONDER_FAULT_CRASH_{when}": str(k)})
    assert outcome.crash_code == 137
    _assert_end_state(dynamo_account, pager, outcome,
                      publish_may_be_lost=(when, operation) == ("AFTER", "Publish"))


@pytest.mark.slow
@pytest.mark.parametrize("when", ["BEFORE", "AFTER"])
@pytest.mark.parametrize("k", range(1, FULL_MATRIX_MAX + 1))
def test_crash_matrix_dynamodb(dynamo_account: Account, cli: Cli, pager: Pager,
                               tmp_path: Path, reference: tuple[list[str], list[str]], *,
                               when: str, k: int) -> None:
    """Every call of a DynamoDB-journal run (AWS and journal alike), before and after."""
    calls, ok = reference
    counted = calls if when == "BEFORE" else ok
    if k > len(counted):
        pytest.skip(f"a normal run makes {len(counted)} calls ({when.lower()} counts these)")
    publish_flush = _flush_after(ok, "Publish")
    outcome = _crash_and_resume(cli, dynamo_account, pager, tmp_path,
                                {f"RESPONDER_FAULT_CRASH_{when}": str(k)})
    assert outcome.crash_code == 137
    _assert_end_state(dynamo_account, pager, outcome,
                      publish_may_be_lost=when == "AFTER" and k == publish_flush)
