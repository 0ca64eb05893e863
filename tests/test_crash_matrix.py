"""Kill `respond` (os._exit(137)) right before or right after each AWS call of a full
run, resume, and check the end state equals an uninterrupted run's: the journal never
lies, nothing is done twice, nothing is left behind.

The smoke set (one crash around each mutation) runs by default; the full matrix, every
call of a normal run, is marked slow and run by CI (`pytest -m slow`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
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
    reference_run,
    run_respond,
)

from responder.drill.cloudtrail import CloudTrailFake

Cli = Callable[..., CliResult]
POLICY_NAME = "responder-revoke-older-sessions"
FULL_MATRIX_MAX = 70  # above a normal run's 61 calls (24 regions, 6 verification reads)
MUTATIONS = ["UpdateAccessKey", "PutUserPolicy", "DeleteAccessKey", "CreateAccessKey",
             "CreateSecret", "Publish"]


@dataclass(frozen=True)
class Outcome:
    crash_code: int
    doc: dict[str, Any]
    operations: Counter[str]


def _crash_and_resume(cli: Cli, account: Account, pager: Pager, tmp_path: Path,
                      fault: dict[str, str]) -> Outcome:
    log = tmp_path / "calls.log"
    args = ("compromised", account.leaked_key, "--yes", "--output", "json",
            "--notify-topic", pager.topic_arn)
    crashed = cli(*args, env={**fault, "RESPONDER_FAULT_LOG": str(log)})
    status = cli("status", "--output", "json")
    open_ids = [i["incident_id"] for i in json.loads(status.stdout)["incidents"]
                if i["status"] in {"running", "halted"}]
    # Alternate the two ways back: `respond resume ID`, or the same command again.
    if open_ids and sum(map(ord, "".join(fault.values()))) % 2:
        again = cli("resume", open_ids[0], "--output", "json",
                    env={"RESPONDER_FAULT_LOG": str(log)})
    else:
        again = cli(*args, env={"RESPONDER_FAULT_LOG": str(log)})
    assert again.code == 0, (fault, again.stderr[-3000:])
    return Outcome(crashed.code, json.loads(again.stdout), Counter(logged_calls(log)))


def _assert_end_state(account: Account, pager: Pager, outcome: Outcome) -> None:
    doc = outcome.doc
    assert doc["status"] == "completed"
    assert [s["status"] for s in doc["steps"]] == ["done"] * 8, doc["steps"]
    new = doc["replacement"]["access_key_id"]
    keys = {k["AccessKeyId"]: k["Status"]
            for k in account.iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]}
    assert keys == {account.other_key: "Active", new: "Active"}, "orphan or lost key"
    assert outcome.operations["CreateAccessKey"] <= 2, "a third key attempt"
    assert account.iam.list_user_policies(UserName="alice")["PolicyNames"] == [POLICY_NAME]
    sm = account.session.client("secretsmanager", region_name=REGION)
    secret_id = doc["replacement"]["secret_ref"]
    stages = sm.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
    assert [v for v, s in stages.items() if "AWSCURRENT" in s] == list(stages), stages
    assert len(stages) == 1, stages
    stored = json.loads(sm.get_secret_value(SecretId=secret_id)["SecretString"])
    assert stored["AccessKeyId"] == new
    completions = [m for m in pager.messages() if "contained" in m["Subject"]]
    assert len(completions) == 1, [m["Subject"] for m in pager.messages()]
    assert doc["report"] is not None
    assert Path(doc["report"]).exists()
    assert doc["evidence"]["sha256"]


@pytest.fixture(scope="module")
def reference_log(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log of one uninterrupted run's AWS calls, after checking its end state."""
    home = tmp_path_factory.mktemp("reference")
    pagers: list[Pager] = []

    def args(account: Account) -> tuple[str, ...]:
        pagers.append(make_pager(account.session))
        return ("compromised", account.leaked_key, "--yes", "--output", "json",
                "--notify-topic", pagers[0].topic_arn)

    account, result = reference_run(moto_server, home, args)
    log = home / "calls.log"
    _assert_end_state(account, pagers[0],
                      Outcome(0, json.loads(result.stdout), Counter(logged_calls(log))))
    return log


@pytest.fixture(scope="module")
def normal_calls(reference_log: Path) -> list[str]:
    """The AWS calls of one uninterrupted run, in order (what CRASH_BEFORE counts)."""
    calls = logged_calls(reference_log)
    assert len(calls) < FULL_MATRIX_MAX
    print(f"\ncrash matrix: a normal run makes {len(calls)} AWS calls")
    return calls


@pytest.fixture(scope="module")
def normal_ok_calls(reference_log: Path) -> list[str]:
    """The calls of that run that succeeded (what CRASH_AFTER counts: harden's
    GetLoginProfile answers NoSuchEntity for a user without a console password)."""
    return logged_calls(reference_log, "ok")


def test_uninterrupted_run_is_the_reference(normal_calls: list[str]) -> None:
    """A normal run reaches the end state the crash tests compare against, and calls
    UpdateAccessKey no later than third."""
    assert normal_calls.index("UpdateAccessKey") <= 2
    assert set(MUTATIONS) <= set(normal_calls)


def _k_for(calls: list[str], operation: str) -> int:
    return calls.index(operation) + 1


@pytest.mark.parametrize("when", ["BEFORE", "AFTER"])
@pytest.mark.parametrize("operation", MUTATIONS)
def test_crash_around_each_mutation(server_account: Account, cli: Cli, pager: Pager,
                                    tmp_path: Path, normal_calls: list[str], *, when: str,
                                    operation: str) -> None:
    """Killed right before / right after each mutating call: resume ends as a clean run."""
    k = _k_for(normal_calls, operation)
    outcome = _crash_and_resume(cli, server_account, pager, tmp_path,
                                {f"RESPONDER_FAULT_CRASH_{when}": str(k)})
    assert outcome.crash_code == 137
    _assert_end_state(server_account, pager, outcome)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["BEFORE", "AFTER"])
@pytest.mark.parametrize("k", range(1, FULL_MATRIX_MAX + 1))
def test_crash_matrix(server_account: Account, cli: Cli, pager: Pager, tmp_path: Path,
                      normal_calls: list[str], *, normal_ok_calls: list[str], when: str,
                      k: int) -> None:
    """Every k from the first call to the last of a normal run, before and after."""
    counted = normal_calls if when == "BEFORE" else normal_ok_calls
    if k > len(counted):
        pytest.skip(f"a normal run makes {len(counted)} calls ({when.lower()} counts these)")
    outcome = _crash_and_resume(cli, server_account, pager, tmp_path,
                                {f"RESPONDER_FAULT_CRASH_{when}": str(k)})
    assert outcome.crash_code == 137
    _assert_end_state(server_account, pager, outcome)


# -- with attacker artifacts: a crash around each of contain-attacker's mutations ------

ATTACKER_MUTATIONS = [("UpdateAccessKey", 2), ("UpdateAccessKey", 3), ("PutUserPolicy", 2),
                      ("PutRolePolicy", 1)]
"""(operation, n-th of the run): contain-attacker's changes, after disable-key's
UpdateAccessKey and revoke-sessions' PutUserPolicy."""


def _attack(account: Account, trail: CloudTrailFake) -> None:
    """A key created on carol, a session that creates user backdoor with a key, a role
    assumed: each made for real in moto and recorded in the CloudTrail fake."""
    iam = account.iam
    iam.create_user(UserName="carol")
    at = datetime.now(UTC) - timedelta(minutes=5)
    leaked, temp = account.leaked_key, "ASIACRASHMATRIXTEMP1"

    def record(name: str, key: str, offset: int, **extra: Any) -> None:
        trail.record(REGION, name, key, event_time=at + timedelta(seconds=offset), **extra)

    def created(key: str, user: str, offset: int) -> None:
        made = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
        record("CreateAccessKey", key, offset, request_parameters={"userName": user},
               response_elements={"accessKey": {"accessKeyId": made, "userName": user}})

    created(leaked, "carol", 1)
    record("GetSessionToken", leaked, 2,
           response_elements={"credentials": {"accessKeyId": temp}})
    iam.create_user(UserName="backdoor")
    record("CreateUser", temp, 3, request_parameters={"userName": "backdoor"})
    created(temp, "backdoor", 4)
    iam.create_role(RoleName="deploy", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": "*"}}]}))
    arn = iam.get_role(RoleName="deploy")["Role"]["Arn"]
    assumed = account.session.client("sts", region_name=REGION).assume_role(
        RoleArn=arn, RoleSessionName="attacker")["AssumedRoleUser"]
    record("AssumeRole", leaked, 5, request_parameters={"roleArn": arn,
                                                        "roleSessionName": "attacker"},
           response_elements={"assumedRoleUser": assumed})


def _attacker_state(account: Account) -> dict[str, Any]:
    """Each user's key statuses and inline policies, and the deploy role's inline policies
    with the role id written as ROLEID (ids differ from one server reset to the next)."""
    iam = account.iam
    state: dict[str, Any] = {
        user: {"keys": sorted(status for _, status in v["keys"]), "inline": v["inline"],
               "attached": v["attached"]}
        for user, v in iam_state(iam).items()}
    role_id = iam.get_role(RoleName="deploy")["Role"]["RoleId"]
    state["deploy"] = {
        n: json.loads(json.dumps(iam.get_role_policy(RoleName="deploy", PolicyName=n)[
            "PolicyDocument"]).replace(role_id, "ROLEID"))
        for n in iam.list_role_policies(RoleName="deploy")["PolicyNames"]}
    return state


@pytest.fixture(scope="module")
def attacker_calls(moto_server: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[list[str], dict[str, Any]]:
    """The calls of one uninterrupted run with attacker artifacts, and its end state."""
    home = tmp_path_factory.mktemp("attacker-reference")
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(ISOLATED_ENV, RESPONDER_HOME=str(home),
               RESPONDER_FAULT_LOG=str(home / "calls.log"))
    trail = CloudTrailFake()
    with trail.installed():  # reference_run's own fake would hold no attacker events
        account = fresh_server_account(moto_server)
        _attack(account, trail)
        pager = make_pager(account.session)
        result = run_respond(moto_server, env, "compromised", account.leaked_key, "--yes",
                             "--output", "json", "--notify-topic", pager.topic_arn)
        assert result.code == 0, result.stderr[-3000:]
    calls = logged_calls(home / "calls.log")
    _assert_end_state(account, pager, Outcome(0, json.loads(result.stdout), Counter(calls)))
    return calls, _attacker_state(account)


def _nth(calls: list[str], operation: str, n: int) -> int:
    """The 1-based position of the n-th `operation` in `calls`."""
    return [i for i, c in enumerate(calls, 1) if c == operation][n - 1]


def test_attacker_reference_run_contains_the_artifacts(
        attacker_calls: tuple[list[str], dict[str, Any]]) -> None:
    """The uninterrupted run shuts all three doors, with one mutation each."""
    calls, state = attacker_calls
    assert Counter(calls)["UpdateAccessKey"] == 3
    assert Counter(calls)["PutRolePolicy"] == 1
    assert state["backdoor"]["inline"] == ["responder-quarantine"]
    assert state["carol"]["keys"] == ["Inactive"]
    assert state["backdoor"]["keys"] == ["Inactive"]
    assert state["alice"]["keys"] == ["Active", "Active"]  # the other key, the replacement
    (statement,) = state["deploy"]["responder-revoke-attacker-sessions"]["Statement"]
    assert statement["Condition"] == {"StringEquals": {"aws:userid": ["ROLEID:attacker"]}}


@pytest.mark.parametrize("when", ["BEFORE", "AFTER"])
@pytest.mark.parametrize(("operation", "nth"), ATTACKER_MUTATIONS)
def test_crash_around_each_attacker_mutation(  # noqa: PLR0917 - pytest fixtures
        server_account: Account, server_trail: CloudTrailFake, cli: Cli, pager: Pager,
        tmp_path: Path, attacker_calls: tuple[list[str], dict[str, Any]], *, when: str,
        operation: str, nth: int) -> None:
    """Killed right before / after each of contain-attacker's changes, resumed twice: the
    same end state as an uninterrupted run, no duplicated statement, and the second
    resume makes no change at all."""
    calls, reference = attacker_calls
    _attack(server_account, server_trail)
    k = _nth(calls, operation, nth)
    outcome = _crash_and_resume(cli, server_account, pager, tmp_path,
                                {f"RESPONDER_FAULT_CRASH_{when}": str(k)})
    assert outcome.crash_code == 137
    _assert_end_state(server_account, pager, outcome)
    state = _attacker_state(server_account)
    assert state == reference  # keys, quarantine, one revoke statement naming one session
    log = tmp_path / "second.log"
    again = cli("resume", outcome.doc["incident_id"], "--output", "json",
                env={"RESPONDER_FAULT_LOG": str(log)})
    assert again.code == 0, again.stderr[-2000:]
    assert not {"UpdateAccessKey", "PutUserPolicy", "PutRolePolicy"} & set(logged_calls(log))
    assert _attacker_state(server_account) == state
