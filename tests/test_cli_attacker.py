"""contain-attacker through the installed `respond` against a moto server and the
CloudTrail fake: a full run shuts what the attacker created; a dry run only plans it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloudtrail_faults import FaultyCloudTrail
from conftest import REGION, Account, CliResult, Pager, iam_state, record_backdoor

Cli = Callable[..., CliResult]


def _backdoor(account: Account, trail: FaultyCloudTrail) -> str:
    """Through a GetSessionToken session the leaked key creates user backdoor with a key
    and a password, and attaches a policy to bob; returns backdoor's key."""
    key = record_backdoor(account, trail, "ASIABLACKBOXSESSION1")
    at = datetime.now(UTC) - timedelta(minutes=3)
    account.iam.create_login_profile(UserName="backdoor", Password="Pa55word!Pa55word!")
    trail.record(REGION, "CreateLoginProfile", "ASIABLACKBOXSESSION1",
                 event_time=at + timedelta(seconds=3), request_parameters={"userName": "backdoor"})
    trail.record(REGION, "AttachUserPolicy", "ASIABLACKBOXSESSION1",
                 event_time=at + timedelta(seconds=4),
                 request_parameters={"userName": "bob",
                                     "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"})
    return key


def _step(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(next(s for s in doc["steps"] if s["name"] == name))


def test_backdoor_user_is_quarantined_end_to_end(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """`respond compromised`: the user created through the session is quarantined and its
    key Inactive; the policy attached to bob is listed with its undo; bob is unchanged."""
    key = _backdoor(server_account, server_trail)
    before = iam_state(server_account.iam)
    result = cli("compromised", server_account.leaked_key, "--yes", "--no-replace",
                 "--output", "json")
    assert result.code == 0, result.stderr[-3000:]
    step = _step(result.json(), "contain-attacker")
    assert step["status"] == "done"
    detail = step["detail"]
    assert detail["principals_quarantined"] == [
        {"type": "user", "name": "backdoor", "keys_disabled": [key]}]
    assert [(h["event_name"], h["undo"]) for h in detail["needs_human"]] == [
        ("AttachUserPolicy", "aws iam detach-user-policy --user-name bob --policy-arn "
                             "arn:aws:iam::aws:policy/ReadOnlyAccess")]
    assert [c["event_name"] for c in detail["covered_by_cutoff"]] == ["GetSessionToken"]
    after = iam_state(server_account.iam)
    assert after["backdoor"]["keys"] == [(key, "Inactive")]
    assert after["backdoor"]["inline"] == ["responder-quarantine"]
    assert after["bob"] == before["bob"]
    attacker = result.json()["attacker"]
    assert attacker["principals_quarantined"] == detail["principals_quarantined"]
    assert attacker["needs_human"] == detail["needs_human"]
    assert attacker["keys_disabled"] == detail["keys_disabled"]
    assert attacker["sessions_revoked"] == []
    revoke = _step(result.json(), "revoke-sessions")
    assert attacker["cutoff"] == revoke["detail"]["token_issue_time_before"]


def test_report_and_notice_say_what_the_attacker_did(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli, pager: Pager
) -> None:
    """report.md has a section on the attacker (quarantined user, the change to undo with
    its command); the notice counts what was shut and lists the undo as a next action."""
    _backdoor(server_account, server_trail)
    result = cli("compromised", server_account.leaked_key, "--yes", "--no-replace",
                 "--notify-topic", pager.topic_arn, "--output", "json")
    assert result.code == 0, result.stderr[-3000:]
    report = Path(result.json()["report"]).read_text()
    section = report.split("## The attacker", 1)[1].split("\n## ", 1)[0]
    assert "user `backdoor` (created by the attacker) quarantined" in section
    assert "aws iam detach-user-policy --user-name bob" in section
    assert "are denied" in section
    (notice,) = [m["Message"] for m in pager.messages()]
    shut = notice.split("WHAT WAS SHUT\n", 1)[1].split("\n\n", 1)[0]
    assert "  user backdoor (the attacker's): quarantined (deny-all policy)" in shut
    assert any(line.startswith("  attacker's key ") and line.endswith(": disabled")
               for line in shut.splitlines())
    todo = notice.split("WHAT YOU MUST DO\n", 1)[1]
    assert "Undo what the attacker did (AttachUserPolicy" in todo
    assert "\n       aws iam detach-user-policy --user-name bob " in todo


def test_dry_run_names_the_step_and_changes_nothing(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """--dry-run lists contain-attacker, says it acts on what the evidence shows, names
    the IAM actions it may need, and neither disables nor quarantines anything."""
    _backdoor(server_account, server_trail)
    before = iam_state(server_account.iam)
    result = cli("compromised", server_account.leaked_key, "--dry-run", "--output", "json")
    assert result.code == 0, result.stderr[-3000:]
    step = _step(result.json(), "contain-attacker")
    assert step["status"] == "planned"
    calls = step["detail"]["calls"]
    assert all("evidence" in c.get("note", "") for c in calls if c["mutating"])
    assert {c["operation"] for c in calls if c["mutating"]} == {
        "UpdateAccessKey", "PutUserPolicy", "PutRolePolicy",  # the attacker's doors
        "StartLogging", "UpdateDetector", "StartConfigurationRecorder"}  # its blinds
    assert {"iam:UpdateAccessKey", "iam:PutUserPolicy", "iam:PutRolePolicy",
            "iam:GetRolePolicy"} <= set(step["detail"]["permissions"])
    assert iam_state(server_account.iam) == before
    assert "responder-quarantine" not in json.dumps(iam_state(server_account.iam))
