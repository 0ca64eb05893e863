"""A rotation killed (os._exit(137)) right after each AWS call, in either half (`respond
rotate KEY` up to waiting for the applications, then `--continue` to the end), ends as
an uninterrupted one: one new key, Active, in the secret's one current version; the old
key gone; no claim left on the user. The smoke set crashes after each mutation; every
call is marked slow (CI runs it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    DROPPED_ENV,
    ISOLATED_ENV,
    REGION,
    Account,
    CliResult,
    logged_calls,
    reference_run,
    run_respond,
)

from responder.steps.replacement_record import TAG_PREFIX

Cli = Callable[..., CliResult]
MUTATIONS = ("TagUser", "CreateAccessKey", "CreateSecret", "UntagUser")
CONTINUE_MUTATIONS = ("UpdateAccessKey", "DeleteAccessKey")
FULL_MAX = 30


def _carol(account: Account) -> str:
    account.iam.create_user(UserName="carol")
    return str(account.iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"])


def _open_rotation(cli: Cli) -> str:
    listed = json.loads(cli("status", "--output", "json").stdout)["incidents"]
    return str(next(i["incident_id"] for i in listed
                    if i["status"] in {"running", "halted", "waiting"}))


def _assert_rotated(account: Account, doc: dict[str, Any], old: str) -> None:
    assert doc["status"] == "completed", doc
    new = doc["rotation"]["new_key"]
    keys = {k["AccessKeyId"]: k["Status"]
            for k in account.iam.list_access_keys(UserName="carol")["AccessKeyMetadata"]}
    assert keys == {new: "Active"}, ("orphan, lost or old key", keys, old)
    sm = account.session.client("secretsmanager", region_name=REGION)
    secret = doc["rotation"]["secret_ref"]
    stages = sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
    assert len(stages) == 1, stages
    assert json.loads(sm.get_secret_value(SecretId=secret)["SecretString"])["AccessKeyId"] == new
    tags = account.iam.list_user_tags(UserName="carol")["Tags"]
    assert not [t for t in tags if t["Key"].startswith(f"{TAG_PREFIX}replacing:")], tags


@pytest.fixture(scope="module")
def halves(moto_server: str, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[list[str], list[str]]:
    """The ok calls of an uninterrupted rotation's two halves."""
    home = tmp_path_factory.mktemp("rotation-reference")
    log = home / "calls.log"
    olds: list[str] = []

    def start(account: Account) -> tuple[str, ...]:
        olds.append(_carol(account))
        return ("rotate", olds[0], "--yes", "--output", "json")

    account, first = reference_run(moto_server, home, start)
    started = len(logged_calls(log, "ok"))
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(ISOLATED_ENV, RESPONDER_HOME=str(home), RESPONDER_FAULT_LOG=str(log))
    done = run_respond(moto_server, env, "rotate", "--continue",
                       json.loads(first.stdout)["incident_id"], "--grace-hours", "0",
                       "--output", "json")
    assert done.code == 0, done.stderr
    _assert_rotated(account, json.loads(done.stdout), olds[0])
    calls = logged_calls(log, "ok")
    assert len(calls) < FULL_MAX
    return calls[:started], calls[started:]


def _crash_start(account: Account, cli: Cli, k: int) -> None:
    old = _carol(account)
    crashed = cli("rotate", old, "--yes", "--output", "json",
                  env={"RESPONDER_FAULT_CRASH_AFTER": str(k)})
    assert crashed.code == 137, crashed.stderr
    again = cli("rotate", old, "--yes", "--output", "json")  # joins the one cut short
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "waiting"
    done = cli("rotate", "--continue", _open_rotation(cli), "--grace-hours", "0",
               "--output", "json")
    assert done.code == 0, done.stderr
    _assert_rotated(account, json.loads(done.stdout), old)


def _crash_continue(account: Account, cli: Cli, k: int) -> None:
    old = _carol(account)
    started = cli("rotate", old, "--yes", "--output", "json")
    incident = json.loads(started.stdout)["incident_id"]
    crashed = cli("rotate", "--continue", incident, "--grace-hours", "0", "--output", "json",
                  env={"RESPONDER_FAULT_CRASH_AFTER": str(k)})
    assert crashed.code == 137, crashed.stderr
    done = cli("rotate", "--continue", incident, "--grace-hours", "0", "--output", "json")
    assert done.code == 0, done.stderr
    _assert_rotated(account, json.loads(done.stdout), old)


@pytest.mark.parametrize("operation", MUTATIONS)
def test_crash_after_each_mutation_of_the_start(
    server_account: Account, cli: Cli, halves: tuple[list[str], list[str]], operation: str
) -> None:
    _crash_start(server_account, cli, halves[0].index(operation) + 1)


@pytest.mark.parametrize("operation", CONTINUE_MUTATIONS)
def test_crash_after_each_mutation_of_the_continue(
    server_account: Account, cli: Cli, halves: tuple[list[str], list[str]], operation: str
) -> None:
    _crash_continue(server_account, cli, halves[1].index(operation) + 1)


@pytest.mark.slow
@pytest.mark.parametrize("k", range(1, FULL_MAX + 1))
def test_crash_matrix_of_a_rotation(server_account: Account, cli: Cli, tmp_path: Path,
                                    halves: tuple[list[str], list[str]], k: int) -> None:
    start, cont = halves
    if k <= len(start):
        _crash_start(server_account, cli, k)
    elif k <= len(start) + len(cont):
        _crash_continue(server_account, cli, k - len(start))
    else:
        pytest.skip(f"a rotation makes {len(start) + len(cont)} calls")
