"""A leaked temporary (ASIA) key, through the installed `respond` against a moto server
and the CloudTrail fake: exactly the leaked session is denied, never a key disabled.

- a role session: the role's revoke policy names ROLEID:session, no blanket deny, other
  roles and every access key untouched, no UpdateAccessKey;
- a GetSessionToken session: the user's TokenIssueTime deny; the user's keys stay Active;
- an unknown key: refused, nothing changed, the message says what CloudTrail search ran;
- an InstanceCredentialExfiltration finding: the instance's session is denied away from
  the instance only (aws:ec2InstanceSource* and the request's network path).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloudtrail_faults import FaultyCloudTrail
from conftest import REGION, Account, CliResult, iam_state, logged_calls
from session_world import (
    ACCOUNT_ID,
    inline_policies,
    launch_instance,
    leak_role_session,
    make_role,
)

from responder.drill.cloudtrail_records import role_session_identity, user_session_identity

Cli = Callable[..., CliResult]
ROLE_KEY = "ASIAROLESESSIONLEAK1"
USER_KEY = "ASIAUSERSESSIONLEAK1"
INSTANCE_KEY = "ASIAINSTANCELEAKED01"


def _respond(cli: Cli, tmp_path: Path, *args: str) -> tuple[dict[str, Any], list[str]]:
    """`respond ARGS --output json`, completed: its document and the AWS calls it made."""
    log = tmp_path / "calls.log"
    result = cli(*args, "--output", "json", env={"RESPONDER_FAULT_LOG": str(log)})
    assert result.code == 0, result.stderr[-3000:]
    return result.json(), logged_calls(log)


def _keys(account: Account) -> dict[str, list[tuple[str, str]]]:
    return {user: state["keys"] for user, state in iam_state(account.iam).items()
            if isinstance(state, dict) and "keys" in state}


def test_role_session_is_denied_exactly(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli, tmp_path: Path
) -> None:
    """Only the leaked session of role app is denied; the other role and every key are
    untouched, and no UpdateAccessKey is sent."""
    role = leak_role_session(server_account, server_trail, ROLE_KEY, "ci-run-42")
    make_role(server_account, "bystander")
    keys_before = _keys(server_account)
    doc, calls = _respond(cli, tmp_path, "compromised", ROLE_KEY, "--yes")
    assert doc["status"] == "completed"
    assert doc["playbook"] == "compromised-session"
    assert doc["user_name"] is None
    assert doc["session"]["role_name"] == "app"
    assert doc["session"]["session_name"] == "ci-run-42"
    assert doc["contained_at"] is not None
    policies = inline_policies(server_account, "role", "app")
    assert list(policies) == ["responder-revoke-attacker-sessions"]
    (statement,) = policies["responder-revoke-attacker-sessions"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {
        "StringEquals": {"aws:userid": [f"{role['RoleId']}:ci-run-42"]}}
    assert inline_policies(server_account, "role", "bystander") == {}
    assert _keys(server_account) == keys_before
    assert "UpdateAccessKey" not in calls
    assert "CreateAccessKey" not in calls


def test_rerun_adds_no_duplicate(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """A second response to the same key finds the session denied and writes nothing new;
    a second leaked session of the role is merged in beside the first."""
    leak_role_session(server_account, server_trail, ROLE_KEY, "ci-run-42")
    assert cli("compromised", ROLE_KEY, "--yes").code == 0
    first = inline_policies(server_account, "role", "app")
    again = cli("compromised", ROLE_KEY, "--yes", "--output", "json")
    assert again.code == 0, again.stderr[-3000:]
    assert inline_policies(server_account, "role", "app") == first
    step = next(s for s in again.json()["steps"] if s["name"] == "revoke-session")
    assert step["detail"]["already"] is True
    role_id = server_account.iam.get_role(RoleName="app")["Role"]["RoleId"]
    at = datetime.now(UTC) - timedelta(minutes=2)
    server_trail.record(REGION, "ListBuckets", "ASIAROLESESSIONLEAK2", event_time=at,
                        identity=role_session_identity(
                            ACCOUNT_ID, f"arn:aws:iam::{ACCOUNT_ID}:role/app", role_id,
                            "ci-run-43", "ASIAROLESESSIONLEAK2"))
    assert cli("compromised", "ASIAROLESESSIONLEAK2", "--yes").code == 0
    (statement,) = inline_policies(server_account, "role", "app")[
        "responder-revoke-attacker-sessions"]["Statement"]
    assert statement["Condition"]["StringEquals"]["aws:userid"] == [
        f"{role_id}:ci-run-42", f"{role_id}:ci-run-43"]


def test_user_session_gets_the_users_cutoff_and_keeps_the_key(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli, tmp_path: Path
) -> None:
    """A GetSessionToken session of alice: alice's TokenIssueTime deny; both of her keys
    stay Active; the report names the key that minted the session."""
    at = datetime.now(UTC) - timedelta(minutes=5)
    issued = at - timedelta(minutes=1)
    server_trail.record(REGION, "GetSessionToken", server_account.leaked_key,
                        event_time=issued,
                        response_elements={"credentials": {"accessKeyId": USER_KEY}})
    server_trail.record(REGION, "ListBuckets", USER_KEY, event_time=at, identity=(
        user_session_identity(ACCOUNT_ID, "alice", USER_KEY,
                              issued_at=issued.strftime("%Y-%m-%dT%H:%M:%SZ"))))
    doc, calls = _respond(cli, tmp_path, "compromised", USER_KEY, "--yes")
    assert doc["user_name"] == "alice"
    assert doc["session"]["minted_by"] == server_account.leaked_key
    policy = inline_policies(server_account, "user", "alice")["responder-revoke-older-sessions"]
    (statement,) = policy["Statement"]
    assert "aws:TokenIssueTime" in statement["Condition"]["DateLessThan"]
    assert sorted(_keys(server_account)["alice"]) == sorted([
        (server_account.leaked_key, "Active"), (server_account.other_key, "Active")])
    assert "UpdateAccessKey" not in calls
    report = Path(doc["report"]).read_text()
    assert f"respond compromised {server_account.leaked_key}" in report


def test_unknown_temporary_key_is_refused_saying_what_was_searched(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    before = iam_state(server_account.iam)
    result = cli("compromised", "ASIAUNKNOWNSESSION01", "--yes", "--output", "json")
    assert result.code == 3, result.stderr[-3000:]
    doc = result.json()
    assert doc["status"] == "refused"
    assert "CloudTrail" in doc["error"]
    assert "us-east-1" in doc["error"]
    assert "last 2 days" in doc["error"]
    assert "--principal" in doc["error"]
    assert iam_state(server_account.iam) == before
    assert not (Path(os.environ["RESPONDER_HOME"]) / "incidents").exists() or not any(
        (Path(os.environ["RESPONDER_HOME"]) / "incidents").iterdir())


def test_principal_stands_in_when_cloudtrail_has_nothing_yet(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    role = make_role(server_account, "app")
    result = cli("compromised", ROLE_KEY, "--yes", "--output", "json", "--principal",
                 f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/app/ci-run-42")
    assert result.code == 0, result.stderr[-3000:]
    assert result.json()["session"]["found_by"] == "principal"
    (statement,) = inline_policies(server_account, "role", "app")[
        "responder-revoke-attacker-sessions"]["Statement"]
    assert statement["Condition"]["StringEquals"]["aws:userid"] == [
        f"{role['RoleId']}:ci-run-42"]


def _finding(role: dict[str, Any], instance_id: str, vpc: str, ip: str) -> dict[str, Any]:
    finding_id = "5ec2cred0000000000000000000000aa"
    return {
        "version": "0", "id": "event-1", "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty", "account": ACCOUNT_ID, "region": REGION,
        "detail": {
            "schemaVersion": "2.0", "accountId": ACCOUNT_ID, "region": REGION,
            "id": finding_id, "type":
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
            "severity": 8, "title": "Credentials for instance role used from outside AWS",
            "resource": {
                "resourceType": "AccessKey",
                "accessKeyDetails": {"accessKeyId": INSTANCE_KEY,
                                     "principalId": f"{role['RoleId']}:{instance_id}",
                                     "userName": role["RoleName"], "userType": "AssumedRole"},
                "instanceDetails": {"instanceId": instance_id, "networkInterfaces": [
                    {"vpcId": vpc, "privateIpAddress": ip, "publicIp": "198.51.100.10"}]},
            },
            "service": {"serviceName": "guardduty", "archived": False,
                        "additionalInfo": {"sample": False}},
        },
    }


def test_instance_credential_finding_denies_only_away_from_the_instance(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli, tmp_path: Path
) -> None:
    """Through `respond finding`: a deny naming the instance's session, conditioned on
    aws:ec2InstanceSource* and the network path, never an unconditional one; no key
    disabled."""
    instance = launch_instance(server_account)
    instance_id, vpc, ip = instance.instance_id, instance.vpc_id, instance.private_ip
    role = leak_role_session(server_account, server_trail, INSTANCE_KEY, instance_id,
                              role_name="web")
    finding = tmp_path / "finding.json"
    finding.write_text(json.dumps(_finding(role, instance_id, vpc, ip)))
    keys_before = _keys(server_account)
    doc, calls = _respond(cli, tmp_path, "finding", str(finding))
    assert doc["playbook"] == "compromised-session"
    statements = inline_policies(server_account, "role", "web")[
        "responder-revoke-attacker-sessions"]["Statement"]
    session = f"{role['RoleId']}:{instance_id}"
    assert statements, "no deny was written"
    for statement in statements:
        condition = statement["Condition"]
        assert condition["StringEquals"]["aws:userid"] == session
        assert any(k.startswith("aws:ec2InstanceSource")
                   for k in condition.get("StringEqualsIfExists", {}))
        assert set(condition) & {"Null", "NotIpAddress", "StringNotEquals"}
    text = json.dumps(statements)
    assert vpc in text
    assert f"{ip}/32" in text
    assert "198.51.100.10/32" in text
    assert _keys(server_account) == keys_before
    assert "UpdateAccessKey" not in calls
