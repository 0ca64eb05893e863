"""Kill `respond compromised ASIA...` (os._exit(137)) right before or right after each AWS
call of a full compromised-session run, resume, and check the end state equals an
uninterrupted run's: the instance's session denied away from the instance once, the
user the session created quarantined, one completion notice, no key ever disabled but
the attacker's.

The smoke set (around each mutation) runs by default; every call is marked slow.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    DROPPED_ENV,
    ISOLATED_ENV,
    REGION,
    Account,
    CliResult,
    Pager,
    fresh_server_account,
    iam_state,
    logged_calls,
    make_pager,
    run_respond,
)
from session_world import ACCOUNT_ID, inline_policies, launch_instance, leak_role_session

from responder.drill.cloudtrail import CloudTrailFake
from responder.drill.cloudtrail_records import role_session_identity

Cli = Callable[..., CliResult]
KEY = "ASIACRASHSESSION0001"
MAX_CALLS = 60
MUTATIONS = [("PutRolePolicy", 1), ("PutUserPolicy", 1), ("UpdateAccessKey", 1),
             ("Publish", 1)]
"""(operation, n-th of the run): revoke-session's deny, contain-attacker's quarantine and
key, notify."""


def _attack(account: Account, trail: CloudTrailFake) -> None:
    """Role web's instance session leaks; with it the attacker creates user backdoor with
    a key (made for real in moto, recorded in the fake)."""
    instance = launch_instance(account)
    role = leak_role_session(account, trail, KEY, instance.instance_id, role_name="web")
    at = datetime.now(UTC) - timedelta(minutes=3)
    identity = role_session_identity(ACCOUNT_ID, role["Arn"], role["RoleId"],
                                     instance.instance_id, KEY)
    account.iam.create_user(UserName="backdoor")
    trail.record(REGION, "CreateUser", KEY, event_time=at, identity=identity,
                 request_parameters={"userName": "backdoor"})
    made = account.iam.create_access_key(UserName="backdoor")["AccessKey"]["AccessKeyId"]
    trail.record(REGION, "CreateAccessKey", KEY, event_time=at + timedelta(seconds=1),
                 identity=identity, request_parameters={"userName": "backdoor"},
                 response_elements={"accessKey": {"accessKeyId": made}})


def _state(account: Account) -> dict[str, Any]:
    """Every user's keys and inline policies, and role web's policies (role id as ROLEID,
    the instance id as INSTANCE: both differ from one server reset to the next)."""
    iam = account.iam
    role_id = iam.get_role(RoleName="web")["Role"]["RoleId"]
    instance = account.session.client("ec2", region_name=REGION).describe_instances()[
        "Reservations"][0]["Instances"][0]
    text = json.dumps(inline_policies(account, "role", "web"))
    for real, placeholder in ((role_id, "ROLEID"), (instance["InstanceId"], "INSTANCE"),
                              (instance["InstanceId"].replace("-", ""), "INSTANCE"),
                              (instance["VpcId"], "VPC"), (instance["PrivateIpAddress"], "IP")):
        text = text.replace(real, placeholder)
    users = {user: {"keys": sorted(status for _, status in v["keys"]), "inline": v["inline"]}
             for user, v in iam_state(iam).items()}
    return {"users": users, "web": json.loads(text)}


def _assert_end_state(account: Account, pager: Pager, doc: dict[str, Any],
                      reference: dict[str, Any]) -> None:
    assert doc["status"] == "completed", doc
    assert [s["status"] for s in doc["steps"]] == ["done"] * 5 + ["skipped"], doc["steps"]
    assert _state(account) == reference
    completions = [m for m in pager.messages() if "contained" in m["Subject"]]
    assert len(completions) == 1, [m["Subject"] for m in pager.messages()]


@pytest.fixture(scope="module")
def reference(moto_server: str, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """The calls of one uninterrupted run (BEFORE: every call; AFTER: the ones that
    succeeded, as the crash hooks count them) and its end state."""
    home = tmp_path_factory.mktemp("session-reference")
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(ISOLATED_ENV, RESPONDER_HOME=str(home),
               RESPONDER_FAULT_LOG=str(home / "calls.log"))
    trail = CloudTrailFake()
    with trail.installed():
        account = fresh_server_account(moto_server)
        _attack(account, trail)
        pager = make_pager(account.session)
        result = run_respond(moto_server, env, "compromised", KEY, "--yes", "--output",
                             "json", "--notify-topic", pager.topic_arn)
        assert result.code == 0, result.stderr[-3000:]
        state = _state(account)
    calls = logged_calls(home / "calls.log")
    assert len(calls) < MAX_CALLS
    print(f"\nsession crash matrix: a normal run makes {len(calls)} AWS calls")
    return {"BEFORE": calls, "AFTER": logged_calls(home / "calls.log", "ok")}, state


def test_reference_run_denies_the_session_away_from_the_instance(
        reference: tuple[dict[str, list[str]], dict[str, Any]]) -> None:
    calls, state = reference[0]["BEFORE"], reference[1]
    counts = Counter(calls)
    assert counts["PutRolePolicy"] == 1
    assert counts["UpdateAccessKey"] == 1  # backdoor's key, never the session's principal
    assert calls.index("PutRolePolicy") < calls.index("DescribeRegions"), calls  # contain first
    statements = state["web"]["responder-revoke-attacker-sessions"]["Statement"]
    assert {s["Sid"] for s in statements} == {
        "ResponderAwayFromINSTANCEOtherVpc", "ResponderAwayFromINSTANCEOtherAddress",
        "ResponderAwayFromINSTANCEInternet"}
    assert all(s["Condition"]["StringEquals"]["aws:userid"] == "ROLEID:INSTANCE"
               for s in statements)
    assert state["users"]["backdoor"] == {"keys": ["Inactive"],
                                          "inline": ["responder-quarantine"]}
    assert state["users"]["alice"]["keys"] == ["Active", "Active"]


def _crash_and_resume(cli: Cli, pager: Pager, tmp_path: Path, fault: dict[str, str]
                      ) -> tuple[int, dict[str, Any]]:
    log = tmp_path / "calls.log"
    args = ("compromised", KEY, "--yes", "--output", "json", "--notify-topic",
            pager.topic_arn)
    crashed = cli(*args, env={**fault, "RESPONDER_FAULT_LOG": str(log)})
    again = cli(*args, env={"RESPONDER_FAULT_LOG": str(log)})
    assert again.code == 0, (fault, again.stderr[-3000:])
    return crashed.code, json.loads(again.stdout)


def _nth(calls: list[str], operation: str, n: int) -> int:
    return [i for i, c in enumerate(calls, 1) if c == operation][n - 1]


@pytest.mark.parametrize("when", ["BEFORE", "AFTER"])
@pytest.mark.parametrize(("operation", "nth"), MUTATIONS)
def test_crash_around_each_mutation(  # noqa: PLR0917 - pytest fixtures
        server_account: Account, server_trail: CloudTrailFake, cli: Cli, pager: Pager,
        tmp_path: Path, reference: tuple[dict[str, list[str]], dict[str, Any]], *,
        when: str, operation: str, nth: int) -> None:
    """Killed around each change and run again: the uninterrupted run's end state; a
    further run changes nothing."""
    calls, state = reference[0][when], reference[1]
    _attack(server_account, server_trail)
    code, doc = _crash_and_resume(cli, pager, tmp_path,
                                  {f"RESPONDER_FAULT_CRASH_{when}": str(_nth(calls, operation,
                                                                           nth))})
    assert code == 137
    _assert_end_state(server_account, pager, doc, state)
    log = tmp_path / "again.log"
    again = cli("resume", doc["incident_id"], "--output", "json",
                env={"RESPONDER_FAULT_LOG": str(log)})
    assert again.code == 0, again.stderr[-2000:]
    assert not {"PutRolePolicy", "PutUserPolicy", "UpdateAccessKey"} & set(logged_calls(log))


@pytest.mark.slow
@pytest.mark.parametrize("when", ["BEFORE", "AFTER"])
@pytest.mark.parametrize("k", range(1, MAX_CALLS + 1))
def test_crash_matrix(  # noqa: PLR0917 - pytest fixtures
        server_account: Account, server_trail: CloudTrailFake, cli: Cli, pager: Pager,
        tmp_path: Path, reference: tuple[dict[str, list[str]], dict[str, Any]], *,
        when: str, k: int) -> None:
    calls, state = reference[0][when], reference[1]
    if k > len(calls):
        pytest.skip(f"a normal run makes {len(calls)} calls")
    _attack(server_account, server_trail)
    code, doc = _crash_and_resume(cli, pager, tmp_path,
                                  {f"RESPONDER_FAULT_CRASH_{when}": str(k)})
    assert code == 137
    _assert_end_state(server_account, pager, doc, state)
