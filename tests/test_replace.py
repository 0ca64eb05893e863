"""replace-key: a working new key, its secret only in Secrets Manager, exactly once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from cloudtrail_faults import FaultyCloudTrail
from conftest import REGION, Account, Crash, Faults, crash

from responder.context import Options, RunContext, iso
from responder.errors import StepFailed
from responder.journal.sqlite import SqliteJournal
from responder.playbook import Playbook
from responder.run import service

CtxFactory = Callable[..., RunContext]
SECRET_NAME = "responder/alice/access-key"



def _playbook(**replace: Any) -> Playbook:
    return Playbook.from_dict({"name": "replace-test", "version": 1, "steps": [
        {"name": "identify", "action": "identify"},
        {"name": "disable-key", "action": "disable_access_key"},
        {"name": "collect-evidence", "action": "collect_cloudtrail", "on_failure": "continue",
         "with": {"regions": ["us-east-1"]}},
        {"name": "replace-key", "action": "replace_access_key", "with": replace},
    ]}, "test")


@pytest.fixture(autouse=True)
def trail(account: Account) -> Any:
    fake = FaultyCloudTrail()
    with fake.installed():
        yield fake


def _keys(account: Account, user: str = "alice") -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"]
            for k in account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def _secret(account: Account, name: str = SECRET_NAME) -> dict[str, Any]:
    sm = account.session.client("secretsmanager", region_name=REGION)
    return dict(json.loads(sm.get_secret_value(SecretId=name)["SecretString"]))


def _versions(account: Account, name: str = SECRET_NAME) -> dict[str, list[str]]:
    sm = account.session.client("secretsmanager", region_name=REGION)
    return dict(sm.describe_secret(SecretId=name)["VersionIdsToStages"])


def _step(journal: SqliteJournal, incident_id: str, name: str = "replace-key") -> Any:
    return {s.name: s for s in journal.steps(incident_id)}[name]


def test_two_keys_delete_the_compromised_then_create(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """With two keys, the compromised one is deleted (evidence done) and a new one stored."""
    record = service.respond(make_ctx(), journal, _playbook(), account.leaked_key)
    assert record.status == "completed"
    detail = _step(journal, record.id).detail
    new = detail["access_key_id"]
    assert _keys(account) == {account.other_key: "Active", new: "Active"}
    assert detail["deleted_compromised"] is True
    assert detail["secret_ref"].startswith("arn:aws:secretsmanager:")
    stored = _secret(account)
    assert stored["AccessKeyId"] == new
    assert stored["UserName"] == "alice"
    works = boto3.Session(aws_access_key_id=new, aws_secret_access_key=stored["SecretAccessKey"],
                          region_name=REGION).client("sts").get_caller_identity()
    assert works["Account"] == "123456789012"


def test_one_key_creates_without_deleting(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """With one key, the compromised key is kept (Inactive) and a second one created."""
    record = service.respond(make_ctx(), journal, _playbook(), account.bob_key)
    detail = _step(journal, record.id).detail
    keys = _keys(account, "bob")
    assert keys == {account.bob_key: "Inactive", detail["access_key_id"]: "Active"}
    assert detail["deleted_compromised"] is False
    assert _secret(account, "responder/bob/access-key")["AccessKeyId"] == detail["access_key_id"]


def test_evidence_not_finished_halts_before_deleting(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, trail: FaultyCloudTrail
) -> None:
    """Two keys but evidence failed: halt (exit 1), both keys kept, nothing created."""
    trail.failing_regions = frozenset({"us-east-1"})
    with pytest.raises(StepFailed, match="evidence collection has not finished") as halted:
        service.respond(make_ctx(), journal, _playbook(), account.leaked_key)
    assert halted.value.exit_code == 1
    assert _keys(account) == {account.leaked_key: "Inactive", account.other_key: "Active"}
    assert _tags(account, "alice") == {}  # refused before claiming: nobody else is held up


def test_delete_compromised_never_halts_with_two_keys(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A playbook that keeps the compromised key halts rather than deleting anything."""
    with pytest.raises(StepFailed, match="delete_compromised: never"):
        service.respond(make_ctx(), journal, _playbook(delete_compromised="never"),
                        account.leaked_key)
    assert set(_keys(account)) == {account.leaked_key, account.other_key}


def test_no_replace_skips(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """--no-replace: the step is skipped and no key or secret is created."""
    record = service.respond(make_ctx(options=Options(replace=False),
                                      session_factory=faults.session_factory()),
                             journal, _playbook(), account.bob_key)
    step = _step(journal, record.id)
    assert (step.status, step.detail["reason"]) == ("skipped", "--no-replace")
    assert "CreateAccessKey" not in faults.calls
    assert "CreateSecret" not in faults.calls


def test_custom_secret_name(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """The playbook's secret_name template decides where the secret goes."""
    record = service.respond(make_ctx(), journal, _playbook(secret_name="team/{user}/key"),
                             account.bob_key)
    new = _step(journal, record.id).detail["access_key_id"]
    assert _secret(account, "team/bob/key")["AccessKeyId"] == new


def test_secret_store_failure_then_resume_recreates_exactly_one_key(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """A key whose secret could not be stored is deleted and recreated on resume: the
    user ends with one live replacement, and the secret holds that key."""
    faults.fail("CreateSecret", "AccessDenied")
    ctx = make_ctx(session_factory=faults.session_factory())
    with pytest.raises(StepFailed, match="could not store its secret") as halted:
        service.respond(ctx, journal, _playbook(), account.bob_key)
    assert len(_keys(account, "bob")) == 2
    faults.clear()
    incident_id = halted.value.incident_id
    assert incident_id is not None
    record = service.resume(ctx, journal, incident_id)
    assert record.status == "completed"
    new = _step(journal, record.id).detail["access_key_id"]
    assert _keys(account, "bob") == {account.bob_key: "Inactive", new: "Active"}
    assert faults.count("CreateAccessKey") == 2
    assert faults.count("DeleteAccessKey") == 1
    assert _secret(account, "responder/bob/access-key")["AccessKeyId"] == new


def test_crash_inside_create_then_resume_adopts_nothing_twice(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """Killed after CreateAccessKey succeeded but before its result was journaled: resume
    finds that key through the journal's earlier ListAccessKeys, deletes it (its secret is
    lost) and creates exactly one replacement."""
    faults.rewrite("CreateAccessKey", crash)
    ctx = make_ctx(session_factory=faults.session_factory())
    with pytest.raises(Crash):
        service.respond(ctx, journal, _playbook(), account.bob_key)
    (open_incident,) = journal.recent()
    assert _step(journal, open_incident.id).status == "running"
    orphan = next(k for k in _keys(account, "bob") if k != account.bob_key)
    faults.clear()
    record = service.resume(ctx, journal, open_incident.id)
    new = _step(journal, record.id).detail["access_key_id"]
    assert new != orphan
    assert _keys(account, "bob") == {account.bob_key: "Inactive", new: "Active"}


def test_crash_after_store_resume_adopts_the_stored_key(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """Killed right after the secret was stored: resume adopts that key, creates nothing."""
    faults.rewrite("CreateSecret", crash)
    ctx = make_ctx(session_factory=faults.session_factory())
    with pytest.raises(Crash):
        service.respond(ctx, journal, _playbook(), account.bob_key)
    (open_incident,) = journal.recent()
    faults.clear()
    record = service.resume(ctx, journal, open_incident.id)
    detail = _step(journal, record.id).detail
    assert detail["adopted"] is True
    assert "adopted_from" not in detail  # its own key, not another responder's
    assert faults.count("CreateAccessKey") == 1
    assert len(_keys(account, "bob")) == 2
    assert list(_versions(account, "responder/bob/access-key").values()) == [["AWSCURRENT"]]
    assert _tags(account) == {RECORD: f"{account.bob_key}:{detail['access_key_id']}:"
                                      f"{open_incident.id}"}


def test_secret_never_reaches_the_journal(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """The new secret access key appears nowhere in the journal's files."""
    service.respond(make_ctx(), journal, _playbook(), account.bob_key)
    secret = _secret(account, "responder/bob/access-key")["SecretAccessKey"].encode()
    for path in journal.path.parent.glob("journal.db*"):
        assert secret not in path.read_bytes(), path


CLAIM = "aws-key-responder:replacing:"
RECORD = "aws-key-responder:replacement"


def _tags(account: Account, user: str = "bob") -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in account.iam.list_user_tags(UserName=user)["Tags"]}


def _claim(account: Account, incident_id: str, key: str, at: datetime,
           user: str = "bob") -> None:
    """Another responder's claim, as it tags the user before CreateAccessKey."""
    account.iam.tag_user(UserName=user, Tags=[{"Key": f"{CLAIM}{incident_id}",
                                               "Value": f"{key}/{iso(at)}"}])


def test_replacement_is_recorded_on_the_user_and_the_claim_removed(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """After a replacement the user carries the record other responders read (compromised
    key, new key, incident) and no claim; the record holds no secret."""
    record = service.respond(make_ctx(), journal, _playbook(), account.bob_key)
    new = _step(journal, record.id).detail["access_key_id"]
    assert _tags(account) == {RECORD: f"{account.bob_key}:{new}:{record.id}"}
    assert _secret(account, "responder/bob/access-key")["SecretAccessKey"] not in str(
        _tags(account))


def test_fresh_claim_of_another_responder_halts_until_it_is_stale(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """Another incident claimed this key a minute ago and recorded nothing yet: halt
    (exit 1) saying so, create nothing. Once the claim is older than the bound, resume
    takes over, replaces the key and removes the dead claim."""
    _claim(account, "inc-20260101-000000-other1", account.bob_key,
           datetime.now(UTC) - timedelta(minutes=1))
    ctx = make_ctx(session_factory=faults.session_factory())
    with pytest.raises(StepFailed, match="another responder") as halted:
        service.respond(ctx, journal, _playbook(), account.bob_key)
    assert halted.value.exit_code == 1
    assert "inc-20260101-000000-other1" in str(halted.value)
    assert f"respond resume {halted.value.incident_id}" in str(halted.value)
    assert (faults.count("CreateAccessKey"), faults.count("TagUser")) == (0, 0)
    assert _keys(account, "bob") == {account.bob_key: "Inactive"}
    later = make_ctx(session_factory=faults.session_factory(),
                     clock=lambda: datetime.now(UTC) + timedelta(minutes=15))
    assert halted.value.incident_id is not None
    record = service.resume(later, journal, halted.value.incident_id)
    assert record.status == "completed"
    new = _step(journal, record.id).detail["access_key_id"]
    assert _keys(account, "bob") == {account.bob_key: "Inactive", new: "Active"}
    assert _tags(account) == {RECORD: f"{account.bob_key}:{new}:{record.id}"}


def test_stale_claim_does_not_block(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A claim written long ago by a responder that never recorded a replacement (it
    died) does not hold the key: the run replaces it and clears the dead claim."""
    _claim(account, "inc-20200101-000000-dead01", account.bob_key,
           datetime(2020, 1, 1, tzinfo=UTC))
    record = service.respond(make_ctx(), journal, _playbook(), account.bob_key)
    assert record.status == "completed"
    detail = _step(journal, record.id).detail
    assert detail["adopted"] is False
    assert _tags(account) == {RECORD: f"{account.bob_key}:{detail['access_key_id']}:{record.id}"}


def test_claim_on_another_key_of_the_user_does_not_block(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A fresh claim names the key it replaces: one on alice's other key leaves the
    response to her leaked key free to proceed, and the other claim in place."""
    other_claim = f"{CLAIM}inc-20260101-000000-other2"
    _claim(account, "inc-20260101-000000-other2", account.other_key, datetime.now(UTC),
           user="alice")
    record = service.respond(make_ctx(), journal, _playbook(), account.leaked_key)
    assert record.status == "completed"
    tags = _tags(account, "alice")
    assert other_claim in tags
    assert tags[RECORD] == (f"{account.leaked_key}:"
                            f"{_step(journal, record.id).detail['access_key_id']}:{record.id}")


def test_recorded_replacement_that_is_no_longer_live_is_not_adopted(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A record naming a key that has since been deleted is not a replacement: the run
    issues a new key and records that one instead."""
    account.iam.tag_user(UserName="bob", Tags=[{
        "Key": RECORD, "Value": f"{account.bob_key}:AKIAGONEGONEGONEGONE:inc-old"}])
    record = service.respond(make_ctx(), journal, _playbook(), account.bob_key)
    detail = _step(journal, record.id).detail
    assert detail["adopted"] is False
    assert detail["access_key_id"] in _keys(account, "bob")
    assert _tags(account)[RECORD] == f"{account.bob_key}:{detail['access_key_id']}:{record.id}"
