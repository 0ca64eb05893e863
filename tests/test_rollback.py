"""`respond rollback`: a false positive's containment undone after --yes with a reason,
journaled and reported; never a deletion undone, never AWS's own quarantine touched."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cloudtrail_faults import FaultyCloudTrail
from conftest import Account, CliResult, record_backdoor

from responder import playbook
from responder.errors import BadInput, Refused
from responder.journal.sqlite import SqliteJournal
from responder.run import followup
from responder.steps.deny import POLICY_NAME

Cli = Callable[..., CliResult]
AWS_QUARANTINE = "AWSCompromisedKeyQuarantineV3"


def _status(iam: Any, user: str, key: str) -> str:
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return next((k["Status"] for k in keys if k["AccessKeyId"] == key), "Deleted")


def _contained(account: Account, trail: FaultyCloudTrail, cli: Cli, *extra: str
               ) -> tuple[str, str]:
    backdoor_key = record_backdoor(account, trail, "ASIAROLLBACKSESSION1")
    run = cli("compromised", account.leaked_key, "--yes", "--output", "json", *extra)
    assert run.code == 0, run.stderr
    return json.loads(run.stdout)["incident_id"], backdoor_key


def test_rollback_undoes_containment_after_yes_and_reason(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    iam = server_account.iam
    incident, backdoor_key = _contained(server_account, server_trail, cli, "--no-replace")
    iam.put_user_policy(UserName="alice", PolicyName=AWS_QUARANTINE, PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:*",
                                                  "Resource": "*"}]}))
    assert _status(iam, "alice", server_account.leaked_key) == "Inactive"
    assert _status(iam, "backdoor", backdoor_key) == "Inactive"

    plan = cli("rollback", incident)
    assert plan.code == 0  # a preview, as --dry-run (DESIGN §2)
    assert "make the key" in plan.stdout
    assert "nothing was changed" in plan.stdout
    lines = [line.strip() for line in plan.stdout.splitlines() if line.startswith("  ")]
    assert len(lines) == len(set(lines)), lines  # each item once
    assert lines.count(f"make key {backdoor_key} of backdoor Active again") == 1
    assert _status(iam, "alice", server_account.leaked_key) == "Inactive"
    unreasoned = cli("rollback", incident, "--yes")
    assert unreasoned.code == 2
    assert "--reason" in unreasoned.stderr

    done = cli("rollback", incident, "--yes", "--reason", "a test fixture's key")
    assert done.code == 0, done.stderr
    assert _status(iam, "alice", server_account.leaked_key) == "Active"
    assert _status(iam, "backdoor", backdoor_key) == "Active"
    assert POLICY_NAME not in iam.list_user_policies(UserName="alice")["PolicyNames"]
    assert "responder-quarantine" not in iam.list_user_policies(
        UserName="backdoor")["PolicyNames"]
    assert AWS_QUARANTINE in iam.list_user_policies(UserName="alice")["PolicyNames"]
    report = json.loads(cli("report", incident, "--format", "json").stdout)
    assert report["rollback"]["reason"] == "a test fixture's key"
    assert report["rollback"]["key_status"] == "Active"
    assert "a test fixture's key" in cli("report", incident).stdout
    shown = cli("status", incident, "--output", "json").json()
    assert shown["rolled_back"]["key_status"] == "Active"
    assert shown["verification"]["moment"] == "after rollback"
    assert shown["verification"]["ok"] is True
    assert shown["sweeps"]["due"] == []  # no sweep may shut again what was reopened
    assert "ROLLED BACK" in cli("status", incident).stdout.splitlines()[0]
    assert "rolled-back" in cli("status").stdout
    assert cli("sweep", incident).code == 3

    again = cli("rollback", incident, "--yes", "--reason", "again")
    assert again.code == 0, again.stderr
    assert _status(iam, "alice", server_account.leaked_key) == "Active"
    report = json.loads(cli("report", incident, "--format", "json").stdout)
    assert report["rollback"]["deny_removed"] is True  # re-read: gone, whoever deleted it
    assert [r["reason"] for r in report["rollback"]["reasons"]] == [
        "a test fixture's key", "again"]
    assert any("containment was undone" in a for a in report["next_actions"])
    replan = cli("rollback", incident, "--output", "json")
    assert [r["reason"] for r in json.loads(replan.stdout)["rolled_back_before"]] == [
        "a test fixture's key", "again"]


def test_a_deleted_key_stays_deleted(server_account: Account, server_trail: FaultyCloudTrail,
                                     cli: Cli) -> None:
    """With a replacement the leaked key was deleted: rollback says so and leaves it."""
    incident, _ = _contained(server_account, server_trail, cli)
    assert _status(server_account.iam, "alice", server_account.leaked_key) == "Deleted"
    done = cli("rollback", incident, "--yes", "--reason", "false positive")
    assert done.code == 0, done.stderr
    report = json.loads(cli("report", incident, "--format", "json").stdout)
    assert any("left deleted" in line for line in report["rollback"]["left_alone"])
    assert _status(server_account.iam, "alice", server_account.leaked_key) == "Deleted"


def test_unknown_incident_is_bad_input(cli: Cli) -> None:
    assert cli("rollback", "inc-20990101-000000-000000", "--yes", "--reason", "x").code == 2


def test_a_sessions_incident_is_refused_with_nothing_changed(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """A leaked session's deny is removed by hand: rollback says so, plan or --yes."""
    from session_world import inline_policies, leak_role_session

    leak_role_session(server_account, server_trail, "ASIAROLLBACKROLE0001", "ci-run-7")
    run = cli("compromised", "ASIAROLLBACKROLE0001", "--yes", "--output", "json")
    assert run.code == 0, run.stderr
    incident = json.loads(run.stdout)["incident_id"]
    before = inline_policies(server_account, "role", "app")
    for args in ((), ("--yes", "--reason", "false positive")):
        refused = cli("rollback", incident, *args)
        assert refused.code == 2
        assert "by hand" in refused.stderr
    assert inline_policies(server_account, "role", "app") == before


def test_a_refusal_inside_the_rollback_step_is_journaled_and_raised(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli,
    make_ctx: Callable[..., Any], tmp_path: Path,
) -> None:
    """The step's own refusal (the CLI refuses before it; a library caller reaches the
    step) stops the follow-up with that refusal, journaled in its own words, not as an
    internal error, and nothing changed in AWS."""
    from session_world import inline_policies, leak_role_session

    leak_role_session(server_account, server_trail, "ASIAROLLBACKROLE0002", "ci-run-8")
    run = cli("compromised", "ASIAROLLBACKROLE0002", "--yes", "--output", "json")
    assert run.code == 0, run.stderr
    incident = json.loads(run.stdout)["incident_id"]
    before = inline_policies(server_account, "role", "app")
    journal = SqliteJournal(tmp_path / "home" / "responder.db")
    refusal = "rollback undoes a leaked key's containment: this incident has none"
    with pytest.raises(BadInput, match=refusal):
        followup.rollback(make_ctx(), journal, incident, "false positive")
    step = next(s for s in journal.steps(incident) if s.name == "rollback")
    assert step.status == "failed"
    assert step.error == refusal
    assert "internal error" not in (step.error or "")
    assert inline_policies(server_account, "role", "app") == before


def test_a_denied_undo_fails_the_step_and_running_again_finishes_it(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    iam = server_account.iam
    incident, _ = _contained(server_account, server_trail, cli, "--no-replace")
    denied = cli("rollback", incident, "--yes", "--reason", "false positive",
                 env={"RESPONDER_FAULT_ERROR": "DeleteUserPolicy=AccessDenied"})
    assert denied.code == 1, denied.stderr  # the rollback step halted
    assert f"then `respond rollback {incident} --yes`" in denied.stderr
    assert POLICY_NAME in iam.list_user_policies(UserName="alice")["PolicyNames"]
    assert _status(iam, "alice", server_account.leaked_key) == "Inactive"
    done = cli("rollback", incident, "--yes", "--reason", "false positive")
    assert done.code == 0, done.stderr
    assert POLICY_NAME not in iam.list_user_policies(UserName="alice")["PolicyNames"]
    assert _status(iam, "alice", server_account.leaked_key) == "Active"


def test_a_running_incident_is_not_rolled_back(tmp_path: Any, make_ctx: Any) -> None:
    """An incident still running (its runner alive) is refused, nothing journaled."""
    journal = SqliteJournal(tmp_path / "journal.db")
    journal.create_incident(
        incident_id="inc-1", access_key_id="AKIAIOSFODNN7EXAMPLE",
        playbook=playbook.load("compromised-key").to_dict(), started_at=datetime.now(UTC),
        source="test", options={}, owner="a", lease_seconds=60)
    with pytest.raises(Refused, match="still running"):
        followup.rollback(make_ctx(), journal, "inc-1", "false positive")
    assert [s.name for s in journal.steps("inc-1")][-1] == "harden"  # nothing appended
