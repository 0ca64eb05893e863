"""Exactly one replacement key per compromised key, whichever journals answer it.

A journal knows only its own runs: the on-call laptop's SQLite file, the Lambda's
DynamoDB table, or a `responder.db` deleted since. These tests answer the same key from
two of them, one after the other and at the same time, and check that AWS (the tags on
the user, the secret) is the record every responder adopts, so the user ends with one
replacement, named by the secret and by both incidents.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloudtrail_faults import FaultyCloudTrail
from conftest import (
    REGION,
    Account,
    CliResult,
    Crash,
    Faults,
    crash,
    logged_calls,
    reference_run,
    respond_command,
)

from responder.context import RunContext
from responder.errors import StepFailed
from responder.journal.dynamodb import DynamoDbJournal
from responder.journal.sqlite import SqliteJournal
from responder.playbook import Playbook
from responder.run import service

Cli = Callable[..., CliResult]
CtxFactory = Callable[..., RunContext]
RECORD = "aws-key-responder:replacement"
TABLE = "responder-journal"



# -- helpers -------------------------------------------------------------------------


def _keys(account: Account, user: str = "bob") -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"]
            for k in account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def _secret_key_id(account: Account, user: str = "bob") -> str:
    sm = account.session.client("secretsmanager", region_name=REGION)
    value = sm.get_secret_value(SecretId=f"responder/{user}/access-key")["SecretString"]
    return str(json.loads(value)["AccessKeyId"])


def _tags(account: Account, user: str = "bob") -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in account.iam.list_user_tags(UserName=user)["Tags"]}


def _calls(log: Path) -> Counter[str]:
    return Counter(logged_calls(log))


def _replace_step(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(next(s for s in doc["steps"] if s["name"] == "replace-key"))


def _journal_env(kind: str, home: Path) -> tuple[dict[str, str], tuple[str, ...]]:
    """Environment and extra arguments that point `respond` at one journal."""
    if kind == "dynamodb":
        return {"RESPONDER_HOME": str(home)}, ("--state", f"dynamodb://{TABLE}")
    return {"RESPONDER_HOME": str(home)}, ()


def _create_table(moto_server: str) -> None:
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_server)
    DynamoDbJournal.create_table(client, TABLE)


def _assert_one_replacement(account: Account, new: str) -> None:
    """bob keeps his Inactive key and has exactly one replacement, the one the secret
    holds and the tags record."""
    assert _keys(account) == {account.bob_key: "Inactive", new: "Active"}
    assert _secret_key_id(account) == new
    assert _tags(account)[RECORD].startswith(f"{account.bob_key}:{new}:")
    assert not [k for k in _tags(account) if k.startswith("aws-key-responder:replacing:")]


# -- in-process --------------------------------------------------------------------


def _playbook() -> Playbook:
    return Playbook.from_dict({"name": "replace-test", "version": 1, "steps": [
        {"name": "identify", "action": "identify"},
        {"name": "disable-key", "action": "disable_access_key"},
        {"name": "collect-evidence", "action": "collect_cloudtrail", "on_failure": "continue",
         "with": {"regions": ["us-east-1"]}},
        {"name": "replace-key", "action": "replace_access_key"},
    ]}, "test")


@pytest.fixture
def trail(account: Account) -> Iterator[FaultyCloudTrail]:
    fake = FaultyCloudTrail()
    with fake.installed():
        yield fake


@pytest.fixture
def second_journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    j = SqliteJournal(tmp_path / "second" / "responder.db")
    yield j
    j.close()


def _detail(journal: SqliteJournal, incident_id: str) -> dict[str, Any]:
    return dict({s.name: s for s in journal.steps(incident_id)}["replace-key"].detail)


@pytest.mark.usefixtures("trail")
def test_second_journal_adopts_and_creates_nothing(
    account: Account, journal: SqliteJournal, second_journal: SqliteJournal,
    make_ctx: CtxFactory, faults: Faults,
) -> None:
    """Answered again from a journal that has never seen the key: the playbook runs, but
    replace-key adopts the first journal's key (named by incident) and creates, deletes
    and reads no secret."""
    first = service.respond(make_ctx(), journal, _playbook(), account.bob_key)
    issued = _detail(journal, first.id)["access_key_id"]
    again = service.respond(make_ctx(session_factory=faults.session_factory()),
                            second_journal, _playbook(), account.bob_key)
    assert again.id != first.id
    assert again.status == "completed"
    detail = _detail(second_journal, again.id)
    assert (detail["access_key_id"], detail["adopted"], detail["adopted_from"]) == (
        issued, True, first.id)
    assert detail["secret_ref"] == _detail(journal, first.id)["secret_ref"]
    for operation in ("CreateAccessKey", "DeleteAccessKey", "CreateSecret", "PutSecretValue",
                      "GetSecretValue"):
        assert faults.count(operation) == 0, operation
    _assert_one_replacement(account, issued)


@pytest.mark.usefixtures("trail")
def test_dead_responders_orphan_is_removed_when_it_resumes_after_a_takeover(
    account: Account, journal: SqliteJournal, second_journal: SqliteJournal,
    make_ctx: CtxFactory, faults: Faults,
) -> None:
    """Journal A dies right after CreateAccessKey (its claim stays, its key has no
    secret). Journal B halts on A's fresh claim; once the claim is stale, B takes over
    and replaces the key. When A finally resumes it adopts B's key and deletes its own
    orphan: one replacement, no orphan, the secret holding it."""
    faults.rewrite("CreateAccessKey", crash)
    with pytest.raises(Crash):
        service.respond(make_ctx(session_factory=faults.session_factory()), journal,
                        _playbook(), account.bob_key)
    (dead,) = journal.recent()
    orphan = next(k for k in _keys(account) if k != account.bob_key)
    faults.clear()
    with pytest.raises(StepFailed, match="another responder") as halted:
        service.respond(make_ctx(), second_journal, _playbook(), account.bob_key)
    assert orphan in _keys(account)
    later = make_ctx(clock=lambda: datetime.now(UTC) + timedelta(minutes=15))
    assert halted.value.incident_id is not None
    taken = service.resume(later, second_journal, halted.value.incident_id)
    issued = _detail(second_journal, taken.id)["access_key_id"]
    assert issued != orphan
    resumed = service.resume(later, journal, dead.id)
    detail = _detail(journal, resumed.id)
    assert (detail["access_key_id"], detail["adopted_from"]) == (issued, taken.id)
    assert orphan not in _keys(account)
    assert _secret_key_id(account) == issued
    assert _keys(account)[issued] == "Active"
    assert len(_keys(account)) <= 2


# -- black box: two journals, one after the other ----------------------------------------


@pytest.mark.usefixtures("server_trail")
@pytest.mark.parametrize("second", ["another-home", "deleted-journal", "dynamodb"])
def test_second_journal_adopts_the_replacement(
    server_account: Account, cli: Cli, moto_server: str, tmp_path: Path, *, second: str,
) -> None:
    """`respond compromised` from a second journal (another RESPONDER_HOME, the same one
    after deleting responder.db, or the Lambda's DynamoDB table) after a complete first
    response: the same replacement key in its output, no key created, one key on the
    user, the secret naming it."""
    home = tmp_path / "laptop"
    first = cli("compromised", server_account.bob_key, "--yes", "--output", "json",
                env={"RESPONDER_HOME": str(home)})
    assert first.code == 0, first.stderr
    issued = first.json()["replacement"]["access_key_id"]
    if second == "deleted-journal":
        for path in home.glob("responder.db*"):
            path.unlink()
        env, extra = _journal_env("sqlite", home)
    elif second == "dynamodb":
        _create_table(moto_server)
        env, extra = _journal_env("dynamodb", tmp_path / "lambda")
    else:
        env, extra = _journal_env("sqlite", tmp_path / "other")
    log = tmp_path / "second.log"
    again = cli("compromised", server_account.bob_key, "--yes", "--output", "json", *extra,
                env={**env, "RESPONDER_FAULT_LOG": str(log)})
    assert again.code == 0, again.stderr
    doc = again.json()
    assert doc["incident_id"] != first.json()["incident_id"]
    assert doc["replacement"] == first.json()["replacement"]
    assert _replace_step(doc)["detail"]["adopted"] is True
    assert _calls(log)["CreateAccessKey"] == 0
    assert _calls(log)["DeleteAccessKey"] == 0
    _assert_one_replacement(server_account, issued)


# -- black box: two journals at the same time --------------------------------------------


@pytest.fixture(scope="module")
def bob_calls(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The AWS calls of one uninterrupted response to bob's key, in order."""
    home = tmp_path_factory.mktemp("reference")
    reference_run(moto_server, home,
                  lambda account: ("compromised", account.bob_key, "--yes", "--output", "json"))
    return logged_calls(home / "calls.log")


def _paused(moto_server: str, home: Path, log: Path, key: str,
            before: int) -> subprocess.Popen[str]:
    """`respond compromised KEY` in its own journal, paused before its `before`-th call."""
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_server, "RESPONDER_HOME": str(home),
           "RESPONDER_RETRY_INITIAL_SECONDS": "0", "RESPONDER_RETRY_MAX_SECONDS": "0",
           "RESPONDER_FAULT_PAUSE_BEFORE": str(before), "RESPONDER_FAULT_LOG": str(log)}
    proc = subprocess.Popen(
        [*respond_command(env), "compromised", key, "--yes", "--output", "json"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # blocks until the run reports it is paused
        if "responder-fault: paused" in line:
            return proc
    proc.wait()
    raise AssertionError(f"the run never paused (exit {proc.returncode})")


def _release(proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any]]:
    """Let a paused run go on to its end."""
    out, err = proc.communicate("", timeout=120)
    assert out, err[-3000:]
    return proc.returncode, json.loads(out)


@pytest.mark.usefixtures("server_trail")
def test_concurrent_second_journal_halts_then_resume_adopts(
    server_account: Account, cli: Cli, moto_server: str, tmp_path: Path,
    bob_calls: list[str],
) -> None:
    """The laptop (SQLite) has claimed the key and is about to call CreateAccessKey when
    the Lambda (DynamoDB journal) reaches replace-key: the Lambda halts saying another
    responder is replacing the key and creates nothing; the laptop completes; `respond
    resume` of the Lambda's incident adopts the laptop's key."""
    _create_table(moto_server)
    laptop_log, lambda_log = tmp_path / "laptop.log", tmp_path / "lambda.log"
    laptop = _paused(moto_server, tmp_path / "laptop", laptop_log, server_account.bob_key,
                     bob_calls.index("CreateAccessKey") + 1)
    try:
        env, extra = _journal_env("dynamodb", tmp_path / "lambda")
        env["RESPONDER_FAULT_LOG"] = str(lambda_log)
        halted = cli("compromised", server_account.bob_key, "--yes", "--output", "json",
                     *extra, env=env)
    finally:
        code, first = _release(laptop)
    assert halted.code == 1, halted.stderr
    doc = halted.json()
    assert doc["status"] == "halted"
    assert "another responder" in doc["error"]
    # printed as it pastes: the journal is not the default one, so --state names it
    assert f"respond resume --state dynamodb://{TABLE} {doc['incident_id']}" \
        in doc["error"]
    assert _calls(lambda_log)["CreateAccessKey"] == 0
    assert _calls(lambda_log)["TagUser"] == 0
    assert code == 0, first
    issued = first["replacement"]["access_key_id"]
    resumed = cli("resume", doc["incident_id"], "--output", "json", *extra, env=env)
    assert resumed.code == 0, resumed.stderr
    assert resumed.json()["replacement"] == first["replacement"]
    assert _replace_step(resumed.json())["detail"]["adopted_from"] == first["incident_id"]
    assert _calls(laptop_log)["CreateAccessKey"] + _calls(lambda_log)["CreateAccessKey"] == 1
    _assert_one_replacement(server_account, issued)


@pytest.mark.usefixtures("server_trail")
def test_concurrent_run_that_claims_too_late_adopts(
    server_account: Account, cli: Cli, moto_server: str, tmp_path: Path,
    bob_calls: list[str],
) -> None:
    """Both runs saw no claim: the first pauses inside replace-key (right before it lists
    the user's keys), the second claims, replaces and completes. Reading its own claim
    back, the first finds the second's replacement recorded, withdraws and adopts it: one
    CreateAccessKey between them, and both incidents name the same key."""
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    replacing = bob_calls.index("ListUserTags")  # harden's lookups come after, not these
    evidence_done = max(i for i, op in enumerate(bob_calls[:replacing]) if op == "LookupEvents")
    lists_keys = bob_calls.index("ListAccessKeys", evidence_done)
    first = _paused(moto_server, tmp_path / "first", first_log, server_account.bob_key,
                    lists_keys + 1)
    try:
        second = cli("compromised", server_account.bob_key, "--yes", "--output", "json",
                     env={"RESPONDER_HOME": str(tmp_path / "second"),
                          "RESPONDER_FAULT_LOG": str(second_log)})
    finally:
        code, late = _release(first)
    assert second.code == 0, second.stderr
    assert code == 0, late
    issued = second.json()["replacement"]["access_key_id"]
    assert late["replacement"] == second.json()["replacement"]
    assert _replace_step(late)["detail"]["adopted_from"] == second.json()["incident_id"]
    assert _calls(first_log)["CreateAccessKey"] == 0
    assert _calls(second_log)["CreateAccessKey"] == 1
    _assert_one_replacement(server_account, issued)
