"""The Lambda handler after the playbook: evidence copied to the bucket, sweeps scheduled
with EventBridge Scheduler, and {"sweep": id} events (late CloudTrail events contained
once, a fresh instance restoring its evidence from the bucket, unknown or unswept ids)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from conftest import REGION, Account, make_account
from finding_docs import guardduty_event
from moto import mock_aws

from responder import aws, lambda_handler
from responder.drill.cloudtrail import CloudTrailFake
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal

BUCKET = "evidence-bucket"
MISSING_BUCKET = "no-such-evidence-bucket"
ROLE_ARN = "arn:aws:iam::123456789012:role/ResponderScheduler"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:responder"
EVIDENCE_FILES = ("cloudtrail.jsonl", "report.md", "report.json")


@dataclass(frozen=True)
class LambdaWorld:
    """In-process moto, the CloudTrail fake, the SQLite journal and home the handler uses;
    carol has one key of her own."""

    account: Account
    trail: CloudTrailFake
    state: Path
    home: Path

    @property
    def s3(self) -> Any:
        return self.account.session.client("s3", region_name=REGION)

    def view(self, incident_id: str) -> IncidentView:
        journal = SqliteJournal(self.state)
        try:
            return IncidentView.load(journal, incident_id)
        finally:
            journal.close()

    def keys(self, user: str) -> dict[str, str]:
        return {k["AccessKeyId"]: k["Status"] for k in
                self.account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}

    def respond(self, finding_id: str = "gd-bob", context: Any = None) -> dict[str, Any]:
        """The GuardDuty event about bob's key, through the handler; must complete."""
        doc = lambda_handler.handler(guardduty_event(self.account.bob_key, finding_id),
                                     context)
        assert doc["status"] == "completed", doc
        return doc

    def late_carol_key(self) -> tuple[str, str]:
        """The attacker (bob's leaked key) made carol a key two minutes ago, for real in
        moto; CloudTrail delivers the event only now. Returns (carol's key, event id)."""
        key = str(self.account.iam.create_access_key(UserName="carol")["AccessKey"][
            "AccessKeyId"])
        event = self.trail.record(
            REGION, "CreateAccessKey", self.account.bob_key, user_name="bob",
            event_time=datetime.now(UTC) - timedelta(minutes=2),
            request_parameters={"userName": "carol"},
            response_elements={"accessKey": {"accessKeyId": key, "userName": "carol",
                                             "status": "Active"}})
        return key, str(event["eventID"])


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LambdaWorld]:
    trail = CloudTrailFake()
    state = tmp_path / "journal.db"
    home = tmp_path / "lambda"
    for name in ("RESPONDER_TABLE", "RESPONDER_EVIDENCE_BUCKET", "RESPONDER_SCHEDULER_ROLE_ARN",
                 "RESPONDER_SCHEDULER_TARGET_ARN", "RESPONDER_NOTIFY_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESPONDER_STATE", str(state))
    monkeypatch.setenv("RESPONDER_HOME", str(home))
    monkeypatch.setenv("RESPONDER_RETRY_INITIAL_SECONDS", "0")
    monkeypatch.setenv("RESPONDER_RETRY_MAX_SECONDS", "0")
    with mock_aws(), trail.installed():
        account = make_account(boto3.Session(region_name=REGION))
        account.iam.create_user(UserName="carol")
        account.iam.create_access_key(UserName="carol")
        yield LambdaWorld(account, trail, state, home)


@pytest.fixture
def bucket(world: LambdaWorld, monkeypatch: pytest.MonkeyPatch) -> str:
    world.s3.create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("RESPONDER_EVIDENCE_BUCKET", BUCKET)
    return BUCKET


def _hook(monkeypatch: pytest.MonkeyPatch, event: str, handler: Callable[..., None]) -> None:
    """Every boto3 session the Lambda handler makes carries `handler` on `event` (a
    botocore hook on the real sessions: it sees, or fails, the calls boto3 makes)."""
    real_factory = aws.session_factory

    def factory(*args: Any, **kwargs: Any) -> Callable[[], boto3.Session]:
        make = real_factory(*args, **kwargs)

        def session() -> boto3.Session:
            made = make()
            made.events.register(event, handler)
            return made

        return session

    monkeypatch.setattr(lambda_handler, "session_factory", factory)


def _object(world: LambdaWorld, incident_id: str, name: str) -> bytes:
    body = world.s3.get_object(Bucket=BUCKET, Key=f"incidents/{incident_id}/{name}")["Body"]
    return bytes(body.read())


def _event_ids(evidence: Path) -> list[str]:
    return [json.loads(line)["eventID"] for line in evidence.read_text().splitlines()
            if line.strip()]


def test_evidence_is_copied_to_the_bucket(world: LambdaWorld, bucket: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler copies the evidence and reports to s3://BUCKET/incidents/<id>/; the
    copy of cloudtrail.jsonl is the evidence the document's sha256 names, stored with its
    SHA-256 checksum and server-side encryption."""
    puts: list[dict[str, Any]] = []

    def seen(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "PutObject":
            puts.append({k: v for k, v in params.items() if k != "Body"})

    _hook(monkeypatch, "before-parameter-build", seen)
    doc = world.respond()
    incident = doc["incident_id"]
    evidence = doc["evidence"]
    assert evidence["s3_uri"] == f"s3://{bucket}/incidents/{incident}/"
    assert evidence["archive_error"] is None
    listed = {o["Key"] for o in world.s3.list_objects_v2(
        Bucket=bucket, Prefix=f"incidents/{incident}/")["Contents"]}
    assert {f"incidents/{incident}/{name}" for name in EVIDENCE_FILES} <= listed
    stored = _object(world, incident, "cloudtrail.jsonl")
    assert hashlib.sha256(stored).hexdigest() == evidence["sha256"]
    assert stored == Path(evidence["path"]).read_bytes()
    archived_report = json.loads(_object(world, incident, "report.json"))
    assert (archived_report["incident_id"], archived_report["status"]) == (incident,
                                                                           "completed")
    assert incident in _object(world, incident, "report.md").decode()
    got = world.s3.get_object(Bucket=bucket, Key=f"incidents/{incident}/cloudtrail.jsonl",
                              ChecksumMode="ENABLED")
    assert got["ServerSideEncryption"] == "AES256"
    head = world.s3.head_object(Bucket=bucket, Key=f"incidents/{incident}/report.json")
    assert head["ServerSideEncryption"] == "AES256"
    # moto 5.2 neither keeps nor checks ChecksumSHA256 (GetObject with ChecksumMode and
    # GetObjectAttributes return none), so the checksum is checked on the requests sent.
    assert puts, "no PutObject was seen"
    for put in puts:
        assert put["ServerSideEncryption"] == "AES256"
        name = put["Key"].removeprefix(f"incidents/{incident}/")
        if name == "cloudtrail.jsonl":
            assert base64.b64decode(put["ChecksumSHA256"]).hex() == evidence["sha256"]
    last = {p["Key"]: p["ChecksumSHA256"] for p in puts}
    for name in EVIDENCE_FILES:
        assert base64.b64decode(last[f"incidents/{incident}/{name}"]) == \
            hashlib.sha256(_object(world, incident, name)).digest()


def test_missing_bucket_never_blocks_containment(world: LambdaWorld,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket that does not exist: the key is still Inactive and the incident completed;
    the archive error names the bucket, the evidence stays local, and the exit code is 5."""
    monkeypatch.setenv("RESPONDER_EVIDENCE_BUCKET", MISSING_BUCKET)
    doc = world.respond()
    incident = doc["incident_id"]
    assert world.keys("bob")[world.account.bob_key] == "Inactive"
    error = doc["evidence"]["archive_error"]
    assert error is not None
    assert MISSING_BUCKET in error
    assert "NoSuchBucket" in error
    assert doc["evidence"]["s3_uri"] is None
    local = world.home / "incidents" / incident / "cloudtrail.jsonl"
    assert local.is_file()
    assert Path(doc["evidence"]["path"]) == local
    assert hashlib.sha256(local.read_bytes()).hexdigest() == doc["evidence"]["sha256"]
    assert world.view(incident).exit_code == 5


def test_sweeps_are_scheduled_with_eventbridge_scheduler(
    world: LambdaWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the scheduler role and the function's own ARN, two one-time schedules invoke
    the function with {"sweep": id} and delete themselves afterwards."""
    monkeypatch.setenv("RESPONDER_SCHEDULER_ROLE_ARN", ROLE_ARN)
    doc = world.respond(context=SimpleNamespace(invoked_function_arn=FUNCTION_ARN))
    incident = doc["incident_id"]
    names = [f"responder-{incident}-sweep-1", f"responder-{incident}-sweep-2"]
    scheduler = world.account.session.client("scheduler", region_name=REGION)
    listed = sorted(s["Name"] for s in scheduler.list_schedules()["Schedules"])
    assert listed == names
    due = []
    for name in names:
        schedule = scheduler.get_schedule(Name=name)
        assert schedule["ActionAfterCompletion"] == "DELETE"
        assert schedule["Target"]["Arn"] == FUNCTION_ARN
        assert schedule["Target"]["RoleArn"] == ROLE_ARN
        assert json.loads(schedule["Target"]["Input"]) == {"sweep": incident}
        assert schedule["ScheduleExpression"].startswith("at(")
        due.append(datetime.fromisoformat(schedule["ScheduleExpression"][3:-1])
                   .replace(tzinfo=UTC))
    contained = datetime.fromisoformat(doc["contained_at"].replace("Z", "+00:00"))
    # after 15 and 60 minutes (the expression drops sub-second precision)
    assert [round((d - contained).total_seconds() / 60) for d in due] == [15, 60]
    assert doc["sweeps"]["scheduler"] == "eventbridge-scheduler"


def test_sweep_contains_a_late_event_once(world: LambdaWorld, bucket: str) -> None:
    """A CreateAccessKey on carol delivered after the response: the sweep merges it into
    the evidence once, deactivates carol's key and copies the evidence again; a second
    sweep finds nothing new and changes nothing."""
    doc = world.respond()
    incident = doc["incident_id"]
    evidence = Path(doc["evidence"]["path"])
    carol_key, event_id = world.late_carol_key()
    assert world.keys("carol")[carol_key] == "Active"
    assert event_id not in _event_ids(evidence)

    first = lambda_handler.handler({"sweep": incident}, None)
    assert first["incident_id"] == incident
    assert world.keys("carol")[carol_key] == "Inactive"
    assert _event_ids(evidence).count(event_id) == 1
    swept_sha = first["evidence"]["sha256"]
    assert swept_sha != doc["evidence"]["sha256"]
    assert hashlib.sha256(evidence.read_bytes()).hexdigest() == swept_sha
    assert hashlib.sha256(_object(world, incident, "cloudtrail.jsonl")).hexdigest() == swept_sha
    assert first["sweeps"]["done"][-1]["new_events"] == 1

    state = world.keys("carol"), world.keys("bob"), world.keys("alice")
    calls: list[str] = []
    journal = SqliteJournal(world.state)
    try:
        made = {c.operation for c in journal.calls(incident, "sweep-1")}
    finally:
        journal.close()
    assert "UpdateAccessKey" in made  # the first sweep did contain carol's key

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    with pytest.MonkeyPatch.context() as patch:
        _hook(patch, "before-call", count)
        second = lambda_handler.handler({"sweep": incident}, None)
    assert calls, "the counting hook saw no call at all"
    assert "UpdateAccessKey" not in calls
    assert second["evidence"]["sha256"] == swept_sha
    assert second["sweeps"]["done"][-1]["new_events"] == 0
    assert [s["step"] for s in second["sweeps"]["done"]] == ["sweep-1", "sweep-2"]
    assert _event_ids(evidence).count(event_id) == 1
    assert (world.keys("carol"), world.keys("bob"), world.keys("alice")) == state


def test_fresh_instance_restores_the_evidence_from_the_bucket(
    world: LambdaWorld, bucket: str
) -> None:
    """A new Lambda instance (its /tmp empty) sweeps: the evidence comes back from the
    bucket first, then the late event is merged into it and contained."""
    earlier = world.trail.record(REGION, "ListBuckets", world.account.bob_key,
                                 user_name="bob",
                                 event_time=datetime.now(UTC) - timedelta(minutes=5))
    doc = world.respond()
    incident = doc["incident_id"]
    evidence = Path(doc["evidence"]["path"])
    assert evidence.parent == world.home / "incidents" / incident
    original = _event_ids(evidence)
    assert earlier["eventID"] in original
    assert original, "the first run collected no events to restore"
    shutil.rmtree(world.home / "incidents" / incident)
    assert not evidence.exists()
    carol_key, event_id = world.late_carol_key()

    swept = lambda_handler.handler({"sweep": incident}, None)
    assert swept["sweeps"]["done"][-1]["status"] == "done", swept["sweeps"]
    assert evidence.is_file()
    ids = _event_ids(evidence)
    assert ids.count(event_id) == 1
    assert set(original) <= set(ids)  # restored, not collected afresh from the window only
    assert len(ids) == len(original) + 1
    assert world.keys("carol")[carol_key] == "Inactive"
    assert hashlib.sha256(evidence.read_bytes()).hexdigest() == swept["evidence"]["sha256"]
    assert hashlib.sha256(_object(world, incident, "cloudtrail.jsonl")).hexdigest() == \
        swept["evidence"]["sha256"]


def test_sweep_of_an_unknown_incident_is_an_error_document(world: LambdaWorld) -> None:
    """{"sweep": "inc-unknown"}: an error document naming the id, nothing raised."""
    result = lambda_handler.handler({"sweep": "inc-unknown"}, None)
    assert result["status"] == "refused", result
    assert "inc-unknown" in result["error"]
    assert result["exit_code"] == 2


def test_sweep_of_an_incident_that_never_contained_is_refused(
    world: LambdaWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incident that halted before its key was disabled has nothing to sweep after:
    the sweep is refused with a document naming it, and the key is left as it was."""
    from botocore.exceptions import ClientError

    def refuse(model: Any, **_: Any) -> None:
        if model.name == "UpdateAccessKey":
            answer: Any = {"Error": {"Code": "AccessDenied", "Message": "injected"},
                           "ResponseMetadata": {"HTTPStatusCode": 403}}
            raise ClientError(answer, model.name)

    _hook(monkeypatch, "before-call", refuse)
    with pytest.raises(lambda_handler.Unfinished) as halted:
        lambda_handler.handler(guardduty_event(world.account.bob_key, "gd-bob"), None)
    incident = halted.value.result["incident_id"]
    assert halted.value.result["contained_at"] is None
    assert world.keys("bob")[world.account.bob_key] == "Active"

    result = lambda_handler.handler({"sweep": incident}, None)
    assert incident in result["error"]
    assert "never contained" in result["error"]
    assert result["status"] == "refused", result
    assert result["exit_code"] != 0
    assert world.keys("bob")[world.account.bob_key] == "Active"
    assert world.view(incident).sweep_steps == ()
