"""`respond rotate`: a routine rotation, journaled and resumable like a response.

Black-box through the CLI against the moto server for the commands (start, --continue,
--reactivate, refusals, a crash after each AWS call), in-process for the grace period,
whose "the old key was used" is put into GetAccessKeyLastUsed's answer by a botocore
after-call hook (moto records no use of a key), and whose time passes on a clock the
test moves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION, Account, CliResult, iam_state

from responder.context import Options, RunContext
from responder.errors import StepFailed
from responder.journal.sqlite import SqliteJournal
from responder.rotation import lifecycle as rotation
from responder.run import service
from responder.steps.replace import DEFAULT_SECRET_NAME

Cli = Callable[..., CliResult]


def _keys(iam: Any, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"]
            for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def _carol(account: Account) -> str:
    """A user with one Active key: room for the new one."""
    account.iam.create_user(UserName="carol")
    return str(account.iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"])


def _secret_key_id(session: boto3.Session, user: str) -> str:
    sm = session.client("secretsmanager", region_name=REGION)
    value = sm.get_secret_value(SecretId=DEFAULT_SECRET_NAME.format(user=user))
    return str(json.loads(value["SecretString"])["AccessKeyId"])


# ---------------------------------------------------------------- through the CLI


def test_rotation_waits_for_the_apps_then_retires_the_old_key(
    server_account: Account, cli: Cli
) -> None:
    old = _carol(server_account)
    started = cli("rotate", old, "--yes", "--output", "json")
    assert started.code == 0, started.stderr
    doc = json.loads(started.stdout)
    rot = doc["rotation"]
    assert doc["status"] == "waiting"
    assert rot["waiting_for"] == "applications"
    assert rot["next"] == f"respond rotate --continue {doc['incident_id']}"
    assert "--continue" in started.stderr
    new = rot["new_key"]
    assert _keys(server_account.iam, "carol") == {old: "Active", new: "Active"}
    assert _secret_key_id(server_account.session, "carol") == new
    assert "SecretAccessKey" not in started.stdout + started.stderr

    again = cli("rotate", old, "--yes", "--output", "json")  # the open rotation, not a new one
    assert json.loads(again.stdout)["incident_id"] == doc["incident_id"]
    assert len(_keys(server_account.iam, "carol")) == 2

    done = cli("rotate", "--continue", doc["incident_id"], "--grace-hours", "0",
               "--output", "json")
    assert done.code == 0, done.stderr
    finished = json.loads(done.stdout)
    assert finished["status"] == "completed"
    assert [s["status"] for s in finished["steps"]] == ["done"] * 7
    assert finished["rotation"]["tested"]["arn"].endswith(":user/carol")
    assert finished["rotation"]["old_key_status"] == "Deleted"
    assert _keys(server_account.iam, "carol") == {new: "Active"}
    report = cli("report", doc["incident_id"]).stdout
    assert "## Rotation" in report
    assert f"New key {new}" in report
    assert cli("report", doc["incident_id"], "--format", "html").code == 0
    listed = cli("status").stdout
    assert doc["incident_id"] in listed


def test_a_passing_check_command_moves_on_without_a_human(
    server_account: Account, cli: Cli, tmp_path: Path
) -> None:
    old = _carol(server_account)
    seen = tmp_path / "seen.txt"
    script = tmp_path / "check.sh"
    script.write_text(f'#!/bin/sh\necho "$RESPONDER_NEW_ACCESS_KEY_ID" > {seen}\n')
    script.chmod(0o755)
    run = cli("rotate", old, "--yes", "--check-command", str(script), "--grace-hours", "0",
              "--output", "json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["status"] == "completed"
    assert doc["rotation"]["apps_updated"]["confirmed_by"] == "check"
    assert seen.read_text().strip() == doc["rotation"]["new_key"]
    assert list(_keys(server_account.iam, "carol")) == [doc["rotation"]["new_key"]]


def test_a_failing_check_command_keeps_waiting(server_account: Account, cli: Cli) -> None:
    old = _carol(server_account)
    run = cli("rotate", old, "--yes", "--check-command", "false", "--output", "json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["status"] == "waiting"
    assert "exited 1" in run.stderr
    assert _keys(server_account.iam, "carol")[old] == "Active"


def test_two_keys_already_is_refused_with_nothing_changed(
    server_account: Account, cli: Cli
) -> None:
    """alice holds two keys: no room for a third, whatever their status."""
    before = iam_state(server_account.iam)
    run = cli("rotate", server_account.leaked_key, "--yes", "--output", "json")
    assert run.code == 3, run.stderr
    assert "two access keys" in run.stderr
    assert iam_state(server_account.iam) == before
    assert json.loads(cli("status", "--output", "json").stdout)["incidents"] == []


@pytest.mark.parametrize(("key", "code", "said"), [
    ("ASIAIOSFODNN7EXAMPLE", 2, "temporary"),
    ("AKIA123", 2, "malformed"),
])
def test_bad_keys_are_bad_input(server_account: Account, cli: Cli, key: str, code: int,
                                said: str) -> None:
    run = cli("rotate", key, "--yes")
    assert run.code == code
    assert said in run.stderr


def test_an_inactive_key_is_refused(server_account: Account, cli: Cli) -> None:
    old = _carol(server_account)
    server_account.iam.update_access_key(UserName="carol", AccessKeyId=old, Status="Inactive")
    run = cli("rotate", old, "--yes")
    assert run.code == 3
    assert "Inactive" in run.stderr
    assert list(_keys(server_account.iam, "carol")) == [old]


def test_dry_run_plans_and_changes_nothing(server_account: Account, cli: Cli) -> None:
    old = _carol(server_account)
    before = iam_state(server_account.iam)
    run = cli("rotate", old, "--dry-run", "--output", "json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["status"] == "planned"
    assert [s["name"] for s in doc["steps"]][2:] == [
        "update-apps", "test-key", "deactivate-old", "grace-period", "delete-old"]
    assert iam_state(server_account.iam) == before


def test_without_yes_and_no_terminal_nothing_changes(server_account: Account, cli: Cli) -> None:
    old = _carol(server_account)
    run = cli("rotate", old)
    assert run.code == 2
    assert "--yes" in run.stderr
    assert list(_keys(server_account.iam, "carol")) == [old]


def test_a_compromise_supersedes_an_open_rotation(server_account: Account, cli: Cli) -> None:
    old = _carol(server_account)
    rot = json.loads(cli("rotate", old, "--yes", "--output", "json").stdout)
    run = cli("compromised", old, "--yes", "--no-replace", "--output", "json")
    assert run.code == 0, run.stderr
    assert json.loads(run.stdout)["incident_id"] != rot["incident_id"]
    assert _keys(server_account.iam, "carol")[old] == "Inactive"
    status = json.loads(cli("status", rot["incident_id"], "--output", "json").stdout)
    assert status["status"] == "refused"
    assert "superseded" in status["error"]


def test_continue_names_a_rotation(server_account: Account, cli: Cli) -> None:
    incident = json.loads(cli("compromised", server_account.leaked_key, "--yes", "--no-replace",
                              "--output", "json").stdout)["incident_id"]
    run = cli("rotate", "--continue", incident)
    assert run.code == 2
    assert "not a rotation" in run.stderr
    assert cli("rotate").code == 2


# ---------------------------------------------------------------- the grace period


class LastUse:
    """GetAccessKeyLastUsed's answer, as the test sets it (moto records no use)."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def hook(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.at is not None:
            parsed.setdefault("AccessKeyLastUsed", {}).update(
                {"LastUsedDate": self.at, "ServiceName": "s3", "Region": "eu-west-1"})


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _grace_world(account: Account, make_ctx: Callable[..., RunContext]
                 ) -> tuple[Callable[..., RunContext], LastUse, Clock]:
    use, clock = LastUse(), Clock()

    def session() -> boto3.Session:
        made = boto3.Session(region_name=REGION)
        made.events.register("after-call.iam.GetAccessKeyLastUsed", use.hook)
        return made

    def ctx(**options: Any) -> RunContext:
        return make_ctx(session_factory=session, clock=clock, options=Options(**options))

    return ctx, use, clock


def test_a_use_in_the_grace_period_alerts_and_the_old_key_can_come_back(
    account: Account, make_ctx: Callable[..., RunContext], tmp_path: Path
) -> None:
    old = _carol(account)
    ctx, use, clock = _grace_world(account, make_ctx)
    journal = SqliteJournal(tmp_path / "journal.db")
    sns = account.session.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="rotation")["TopicArn"]

    opened = rotation.start(ctx(grace_hours=24.0, notify_topic=topic), journal, old)
    assert opened.status == "waiting"
    clock.now += timedelta(minutes=5)
    waiting = rotation.proceed(ctx(), journal, opened.id)
    assert waiting.status == "waiting"  # the grace period has begun
    assert _keys(account.iam, "carol")[old] == "Inactive"

    clock.now += timedelta(hours=1)
    use.at = clock.now - timedelta(minutes=10)  # an application missed the new key
    with pytest.raises(StepFailed, match="an application was missed"):
        service.resume(ctx(), journal, opened.id)
    assert journal.get(opened.id).status == "halted"
    from responder.incident.view import IncidentView
    from responder.report import document as report

    doc = report.document_of(IncidentView.load(journal, opened.id)).to_json()
    assert doc["rotation"]["alert"]["service"] == "s3"
    assert doc["rotation"]["alert"]["alerted"] == [f"sns:{topic}"]
    assert doc["rotation"]["next"] == f"respond rotate --reactivate {opened.id} --yes"
    published = [c for c in journal.calls(opened.id) if c.operation == "Publish"]
    assert len(published) == 1
    assert _keys(account.iam, "carol")[old] == "Inactive"  # never deleted while in doubt

    with pytest.raises(StepFailed):  # looked at again: alerted once, not twice
        service.resume(ctx(), journal, opened.id)
    assert len([c for c in journal.calls(opened.id) if c.operation == "Publish"]) == 1

    back = rotation.reactivate(ctx(), journal, opened.id)
    assert back.status == "done", back.error
    assert _keys(account.iam, "carol")[old] == "Active"

    clock.now += timedelta(hours=2)  # the missed application is moved to the new key
    again = rotation.proceed(ctx(), journal, opened.id)
    assert again.status == "waiting"
    assert _keys(account.iam, "carol")[old] == "Inactive"  # deactivated again, fresh window

    clock.now += timedelta(hours=25)  # a quiet grace period (the last use is older)
    done = service.resume(ctx(), journal, opened.id)
    assert done.status == "completed", done.error
    assert old not in _keys(account.iam, "carol")


def test_the_grace_period_is_waited_out_before_deletion(
    account: Account, make_ctx: Callable[..., RunContext], tmp_path: Path
) -> None:
    old = _carol(account)
    ctx, _, clock = _grace_world(account, make_ctx)
    journal = SqliteJournal(tmp_path / "journal.db")
    opened = rotation.start(ctx(), journal, old)
    rotation.proceed(ctx(), journal, opened.id)
    clock.now += timedelta(hours=23)
    assert service.resume(ctx(), journal, opened.id).status == "waiting"
    assert _keys(account.iam, "carol")[old] == "Inactive"
    clock.now += timedelta(hours=2)
    assert service.resume(ctx(), journal, opened.id).status == "completed"
    assert old not in _keys(account.iam, "carol")
