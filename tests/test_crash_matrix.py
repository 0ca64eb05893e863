"""Kill `respond` (os._exit(137)) right before or right after each AWS call of a full
run, resume, and check the end state equals an uninterrupted run's: the journal never
lies, nothing is done twice, nothing is left behind.

The smoke set (one crash around each mutation) runs by default; the full matrix, every
call of a normal run, is marked slow and run by CI (`pytest -m slow`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    REGION,
    Account,
    CliResult,
    Pager,
    logged_calls,
    make_pager,
    reference_run,
)

Cli = Callable[..., CliResult]
POLICY_NAME = "responder-revoke-older-sessions"
FULL_MATRIX_MAX = 52  # above a normal run's 44 calls (moto lists 24 regions), with room
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
    assert [s["status"] for s in doc["steps"]] == ["done"] * 6, doc["steps"]
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
def normal_calls(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The AWS calls of one uninterrupted run, in order, after checking its end state."""
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
    calls = logged_calls(log)
    assert len(calls) < FULL_MATRIX_MAX
    print(f"\ncrash matrix: a normal run makes {len(calls)} AWS calls")
    return calls


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
                      normal_calls: list[str], *, when: str, k: int) -> None:
    """Every k from the first call to the last of a normal run, before and after."""
    if k > len(normal_calls):
        pytest.skip(f"a normal run makes {len(normal_calls)} calls")
    outcome = _crash_and_resume(cli, server_account, pager, tmp_path,
                                {f"RESPONDER_FAULT_CRASH_{when}": str(k)})
    assert outcome.crash_code == 137
    _assert_end_state(server_account, pager, outcome)
