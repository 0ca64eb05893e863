"""`respond audit --deactivate-unused DAYS` (issue 34): keys unused for more than DAYS
set Inactive, never deleted, one incident per key, each re-read from AWS, undone by
`respond rollback`, kept when used since the audit, exactly-once across a crash.

In-process moto. The credential report's dates are moto's (the keys are made now), so
the responder's clock is moved DAYS ahead instead of rewriting AWS's answers; a use since
the report is put into GetAccessKeyLastUsed's answer by a botocore hook (moto records
none)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION, Account, Crash, Faults
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends
from test_audit_cli import _respond

from responder import playbook
from responder.audit import retire
from responder.audit.credential_report import Finding, Settings, audit
from responder.aws import Api
from responder.context import RunContext
from responder.drill.cloudtrail import CloudTrailFake
from responder.errors import EXIT_BAD_INPUT, EXIT_COMPLETED
from responder.incident.facts_retirement import KeyRetired
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.report.document import report_of
from responder.report.html import html_of
from responder.report.incident_document import document_of
from responder.report.story import story_of
from responder.run import followup, service

LATER = timedelta(days=200)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _keys(account: Account, user: str) -> dict[str, str]:
    listed = account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in listed}


def _unused(account: Account, ctx: RunContext, days: int = 90) -> list[retire.Candidate]:
    api = Api(ctx.session_factory(), ctx.retry)
    found = audit(api, ctx.clock(), Settings(unused_days=days))
    return retire.candidates([("123456789012", f) for f in found], days, ctx.clock())


def _story(journal: SqliteJournal, incident_id: str) -> Any:
    return story_of(document_of(IncidentView.load(journal, incident_id)))


@pytest.fixture
def later(make_ctx: Callable[..., RunContext]) -> Callable[..., RunContext]:
    """A context whose clock is 200 days after the keys were made."""
    clock = Clock(datetime.now(UTC) + LATER)
    return lambda **kw: make_ctx(clock=clock, **kw)


def test_unused_keys_are_set_inactive_one_incident_each_and_rolled_back(
        account: Account, later: Callable[..., RunContext], journal: SqliteJournal) -> None:
    ctx = later()
    wanted = _unused(account, ctx)
    # alice's two keys and bob's: made 200 days "ago", never used
    assert {c.access_key_id for c in wanted} == {account.leaked_key, account.other_key,
                                                 account.bob_key}
    assert all(c.idle_days >= 199 and c.last_used is None for c in wanted)
    bob = next(c for c in wanted if c.user == "bob")
    (done,) = retire.retire_all(ctx, journal, [bob], 90)
    assert done.error is None
    assert done.record is not None
    assert done.record.status == "completed"
    assert _keys(account, "bob") == {account.bob_key: "Inactive"}   # never deleted
    assert set(_keys(account, "alice").values()) == {"Active"}     # only the key asked
    view = IncidentView.load(journal, done.record.id)
    retired = view.done(KeyRetired)
    assert retired is not None
    assert retired.retired
    assert not retired.already
    told = _story(journal, done.record.id)
    assert told.state == "RETIRED"
    assert told.headline.startswith(f"RETIRED: key {account.bob_key} of user bob set Inactive")
    assert "as AWS showed when re-read" in told.headline  # the end-of-run verification
    assert "CONTAINED" not in told.headline
    assert "contain" not in told.title
    assert view.record.verification is not None
    assert view.record.verification["ok"]
    page = html_of(report_of(IncidentView.load(journal, done.record.id, calls=True)))
    assert '<p class="state ok">RETIRED</p>' in page

    # The key turns out to be needed: rollback makes it Active again, and says so.
    followup.rollback(ctx, journal, done.record.id, "the nightly export uses it")
    assert _keys(account, "bob") == {account.bob_key: "Active"}
    assert _story(journal, done.record.id).state == "ROLLED BACK"
    # ... and the next audit does not retire it again: a human said it is needed.
    (again,) = retire.held_back(journal, [bob])
    assert again.held_back
    assert "rolled back (the nightly export uses it)" in again.held_back
    assert retire.retire_all(ctx, journal, [again], 90) == []
    assert _keys(account, "bob") == {account.bob_key: "Active"}


def test_a_key_used_since_the_report_is_kept_active(
        account: Account, later: Callable[..., RunContext], journal: SqliteJournal,
        faults: Faults) -> None:
    # The credential report (up to four hours old) says never used; AWS says used today.
    ctx = later(session_factory=faults.session_factory())
    used = ctx.clock() - timedelta(hours=2)
    faults.rewrite("GetAccessKeyLastUsed", lambda parsed: parsed.setdefault(
        "AccessKeyLastUsed", {}).update({"LastUsedDate": used, "ServiceName": "s3",
                                         "Region": REGION}))
    bob = next(c for c in _unused(account, ctx) if c.user == "bob")
    (done,) = retire.retire_all(ctx, journal, [bob], 90)
    assert done.record is not None
    assert done.record.status == "completed"
    assert faults.count("UpdateAccessKey") == 0
    assert _keys(account, "bob") == {account.bob_key: "Active"}
    told = _story(journal, done.record.id)
    assert told.state == "KEPT"
    assert "left Active: used today" in told.headline
    assert "within 90 days" in told.headline


def test_a_crash_after_update_access_key_resumes_without_acting_twice(
        account: Account, later: Callable[..., RunContext], journal: SqliteJournal,
        faults: Faults) -> None:
    ctx = later(session_factory=faults.session_factory())
    bob = next(c for c in _unused(account, ctx) if c.user == "bob")

    def crash(parsed: dict[str, Any]) -> None:
        raise Crash

    faults.rewrite("UpdateAccessKey", crash)
    with pytest.raises(Crash):
        retire.retire(ctx, journal, bob.access_key_id, 90)
    faults.clear()
    assert _keys(account, "bob") == {account.bob_key: "Inactive"}  # AWS acted
    (opened,) = journal.history_for_key(bob.access_key_id)
    assert opened.is_open
    # `respond audit --deactivate-unused ... --yes` again (or resume) joins that incident.
    record = retire.retire(ctx, journal, bob.access_key_id, 90)
    assert record.id == opened.id
    assert record.status == "completed"
    assert faults.count("UpdateAccessKey") == 1  # observed Inactive: not sent again
    facts = IncidentView.load(journal, record.id).done(KeyRetired)
    assert facts is not None
    assert facts.retired
    assert not facts.already


def test_a_key_with_an_open_incident_is_not_retired(
        account: Account, later: Callable[..., RunContext], journal: SqliteJournal,
        faults: Faults) -> None:
    ctx = later(session_factory=faults.session_factory())
    faults.fail("UpdateAccessKey", "ServiceFailure", status=500)
    response = None
    with pytest.raises(Exception):  # noqa: B017, PT011 - the response halts on disable-key
        response = service.respond(ctx, journal, playbook.load("compromised-key"),
                                   account.bob_key)
    assert response is None
    faults.clear()
    bob = next(c for c in _unused(account, ctx) if c.user == "bob")
    (done,) = retire.retire_all(ctx, journal, [bob], 90)
    assert done.error is not None
    assert "has an open incident" in done.error
    assert done.record is None


def test_a_compromise_supersedes_an_open_retirement(
        account: Account, later: Callable[..., RunContext], journal: SqliteJournal,
        faults: Faults) -> None:
    ctx = later(session_factory=faults.session_factory())
    bob = next(c for c in _unused(account, ctx) if c.user == "bob")
    faults.rewrite("UpdateAccessKey", lambda parsed: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        retire.retire(ctx, journal, bob.access_key_id, 90)
    faults.clear()
    record = service.respond(ctx, journal, playbook.load("compromised-key"), bob.access_key_id)
    (retirement, response) = journal.history_for_key(bob.access_key_id)
    assert response.id == record.id
    assert response.id != retirement.id
    assert journal.get(retirement.id).status == "refused"
    assert "superseded" in str(journal.get(retirement.id).error)
    # The leak's response is not skipped as "already contained" by the retirement.
    assert record.status in {"completed", "halted"}
    assert IncidentView.load(journal, record.id).sessions_revoked is not None


def test_candidates_follow_the_threshold() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)

    def key(user: str, **details: Any) -> tuple[str, Finding]:
        return ("1", Finding("medium", user, "access_key_1", ("x",), "", f"AKIA{user.upper()}",
                             details))

    found = [key("old", last_used="2026-01-01T00:00:00Z"),
             key("edge", last_used=(now - timedelta(days=30)).isoformat()),
             key("fresh", last_rotated=(now - timedelta(days=5)).isoformat()),
             key("made", last_rotated="2025-01-01T00:00:00Z"),
             ("1", Finding("medium", "noid", "access_key_1", ("x",), "", None,
                           {"last_used": "2020-01-01T00:00:00Z"}))]
    got = retire.candidates(found, 30, now)
    assert [(c.user, c.last_used is None, c.held_back) for c in got] == [
        ("old", False, None), ("made", True, None),
        ("noid", False, "its key id could not be listed (ListAccessKeys refused?): retire "
                        "it by hand")]
    assert got[-1].access_key_id == "<access_key_1 of noid>"


# ------------------------------------------------------------------------ the CLI


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RESPONDER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RESPONDER_JOURNAL", str(tmp_path / "journal.db"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(), CloudTrailFake().installed():
        yield tmp_path


@pytest.mark.usefixtures("fresh_structlog", "home")
def test_cli_plan_changes_nothing_and_bad_combinations_are_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="idle")
    key = iam.create_access_key(UserName="idle")["AccessKey"]["AccessKeyId"]
    # Made today: nothing is unused for more than a day yet.
    assert _respond("audit", "--deactivate-unused", "1") == EXIT_COMPLETED
    assert "no key unused for more than 1 days" in capsys.readouterr().out
    assert _respond("audit", "--deactivate-unused", "1", "--output", "json") == EXIT_COMPLETED
    doc = json.loads(capsys.readouterr().out)
    assert doc["deactivate_unused"] == {"days": 1, "candidates": []}
    assert "findings" in doc
    assert _respond("audit", "--yes") == EXIT_BAD_INPUT
    assert "--yes goes with --deactivate-unused" in capsys.readouterr().err
    assert _respond("audit", "--deactivate-unused", "1", "--output", "sarif") == EXIT_BAD_INPUT
    with pytest.raises(SystemExit) as refused:
        _respond("audit", "--deactivate-unused", "0")
    assert refused.value.code == EXIT_BAD_INPUT
    capsys.readouterr()
    statuses = [k["Status"] for k in iam.list_access_keys(UserName="idle")["AccessKeyMetadata"]]
    assert statuses == ["Active"]
    assert key


@pytest.mark.usefixtures("fresh_structlog", "home")
def test_cli_retires_rolls_back_and_then_holds_the_key_back(
        capsys: pytest.CaptureFixture[str]) -> None:
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="idle")
    iam.create_user(UserName="busy")
    key = iam.create_access_key(UserName="idle")["AccessKey"]["AccessKeyId"]
    busy = iam.create_access_key(UserName="busy")["AccessKey"]["AccessKeyId"]
    # The fake account's own record of the key's age (what IAM would hold for a key made
    # 200 days ago); busy's key is as old but was used today.
    keys = iam_backends[DEFAULT_ACCOUNT_ID]["aws"].access_keys
    keys[key].create_date -= LATER
    keys[busy].create_date -= LATER
    boto3.client("sts", region_name=REGION, aws_access_key_id=busy,
                 aws_secret_access_key="x" * 40).get_caller_identity()

    assert _respond("audit", "--deactivate-unused", "90") == EXIT_COMPLETED
    said = capsys.readouterr().out
    assert "1 key(s) unused for more than 90 days would be set Inactive" in said
    assert f"{key} of idle in {DEFAULT_ACCOUNT_ID}: unused for 200 days (never used)" in said
    assert busy not in said.split("--deactivate-unused")[1]
    assert "nothing was changed: pass --yes" in said
    assert [k["Status"] for k in iam.list_access_keys(UserName="idle")["AccessKeyMetadata"]] \
        == ["Active"]

    assert _respond("audit", "--deactivate-unused", "90", "--yes") == EXIT_COMPLETED
    said = capsys.readouterr().out
    found = re.search(rf"RETIRED: key {key} of user idle set Inactive, unused for 200 days "
                      r"\(never used\), as AWS showed when re-read at \S+ \(incident (\S+)\)",
                      said)
    assert found, said
    assert [k["Status"] for k in iam.list_access_keys(UserName="idle")["AccessKeyMetadata"]] \
        == ["Inactive"]

    incident = found.group(1)
    assert _respond("rollback", incident, "--yes", "--reason", "cron needs it") == 0
    capsys.readouterr()
    assert [k["Status"] for k in iam.list_access_keys(UserName="idle")["AccessKeyMetadata"]] \
        == ["Active"]
    assert _respond("audit", "--deactivate-unused", "90", "--yes", "--output",
                    "json") == EXIT_COMPLETED
    doc = json.loads(capsys.readouterr().out)["deactivate_unused"]
    assert doc["done"] == []
    (held,) = doc["candidates"]
    assert held["access_key_id"] == key
    assert "rolled back (cron needs it)" in held["held_back"]


def test_a_key_gone_since_the_audit_is_not_retired_and_says_so(
        account: Account, later: Callable[..., RunContext], journal: SqliteJournal,
        faults: Faults) -> None:
    ctx = later(session_factory=faults.session_factory())
    bob = next(c for c in _unused(account, ctx) if c.user == "bob")
    # Deleted between identify and retire-key: ListAccessKeys no longer lists it.
    faults.rewrite("ListAccessKeys", lambda parsed: parsed["AccessKeyMetadata"].clear())
    (done,) = retire.retire_all(ctx, journal, [bob], 90)
    assert done.record is not None
    assert done.record.status == "halted"
    assert done.state == "NOT RETIRED"
    assert done.headline is not None
    assert done.headline.startswith(f"NOT RETIRED: key {bob.access_key_id} of user bob was "
                                    "not set Inactive; halted:")
    assert "no longer listed for bob" in done.headline
    assert not done.retired_or_kept
    assert faults.count("UpdateAccessKey") == 0
    faults.clear()
    # Deleted before the run: identify refuses, no incident is opened.
    account.iam.delete_access_key(UserName="alice", AccessKeyId=account.other_key)
    alice = retire.Candidate("123456789012", "alice", account.other_key, 200, None)
    (gone,) = retire.retire_all(ctx, journal, [alice], 90)
    assert gone.record is None
    assert gone.state is None
    assert gone.error is not None
    assert "was not found" in gone.error
    assert journal.history_for_key(account.other_key) == []
