"""Black-box fault tests: two runners at once, throttling storms, permanent errors."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Account, CliResult, respond_command

Cli = Callable[..., CliResult]


def _attempts(log: Path) -> Counter[str]:
    return Counter(line.split(" ", 1)[1] for line in log.read_text().splitlines()
                   if line.startswith("attempt "))


def _keys(account: Account, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"]
            for k in account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def test_second_runner_exits_4_then_takes_over_after_the_holder_dies(
    server_account: Account, cli: Cli, moto_server: str
) -> None:
    """While a live runner holds the lease a second one exits 4 naming holder and expiry;
    once the holder is killed, the next runner takes over and completes."""
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_server, "RESPONDER_RETRY_MAX_SECONDS": "0",
           "RESPONDER_FAULT_PAUSE_BEFORE": "4"}  # paused inside revoke-sessions
    with subprocess.Popen(
        [*respond_command(env), "compromised", server_account.bob_key, "--yes", "--output",
         "json"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stderr is not None
        for line in holder.stderr:  # blocks until the holder reports it is paused
            if "responder-fault: paused" in line:
                break
        second = cli("compromised", server_account.bob_key, "--yes")
        assert second.code == 4, second.stderr
        assert "being handled by" in second.stderr
        assert f":{holder.pid}:" in second.stderr
        assert "lease expires" in second.stderr
        resume = cli("status", "--output", "json")
        (incident,) = json.loads(resume.stdout)["incidents"]
        assert incident["status"] == "running"
        holder.kill()
    took_over = cli("resume", incident["incident_id"], "--output", "json")
    assert took_over.code == 0, took_over.stderr
    assert json.loads(took_over.stdout)["status"] == "completed"
    assert _keys(server_account, "bob")[server_account.bob_key] == "Inactive"


def test_throttle_storm_completes_with_bounded_attempts(
    server_account: Account, cli: Cli, tmp_path: Path
) -> None:
    """Half of all HTTP attempts throttled: same end state, and attempts equal API calls
    made (botocore adds none), at most the retry policy's 8 per call."""
    log = tmp_path / "faults.log"
    result = cli("compromised", server_account.leaked_key, "--yes", "--output", "json",
                 env={"RESPONDER_FAULT_THROTTLE": "0.5", "RESPONDER_FAULT_SEED": "3",
                      "RESPONDER_FAULT_LOG": str(log)})
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [s["status"] for s in doc["steps"]][:5] == ["done"] * 5
    new = doc["replacement"]["access_key_id"]
    assert _keys(server_account, "alice") == {server_account.other_key: "Active",
                                              new: "Active"}
    calls = Counter(line.split(" ", 1)[1] for line in log.read_text().splitlines()
                    if line.startswith("call "))
    attempts = _attempts(log)
    assert attempts == calls  # one HTTP attempt per API call: botocore does not retry
    assert attempts["CreateAccessKey"] <= 8
    timeline = json.loads((Path(doc["report"]).parent / "report.json").read_text())["timeline"]
    journaled: Counter[str] = Counter()
    for call in (c for t in timeline for c in t["calls"]):
        journaled[call["api"].split(":")[1]] += call["attempts"]
    for operation in ("UpdateAccessKey", "PutUserPolicy", "CreateAccessKey"):
        assert journaled[operation] == attempts[operation], operation
    assert sum(attempts.values()) > len(calls)  # the storm really happened


@pytest.mark.parametrize(
    ("operation", "code", "says", "user"),
    [
        ("UpdateAccessKey", "AccessDenied", "iam:UpdateAccessKey", "bob"),
        ("CreateAccessKey", "LimitExceeded", "IAM limit", "bob"),
        ("UpdateAccessKey", "NoSuchEntity", "deleted meanwhile", "bob"),
    ],
)
def test_permanent_errors_halt_then_resume_after_the_fix(
    server_account: Account, cli: Cli, tmp_path: Path, *, operation: str, code: str,
    says: str, user: str,
) -> None:
    """A non-retryable error halts at its step (exit 1, tried once, message says what is
    missing); once the cause is gone `respond resume` completes."""
    log = tmp_path / "faults.log"
    key = server_account.bob_key
    halted = cli("compromised", key, "--yes", "--output", "json",
                 env={"RESPONDER_FAULT_ERROR": f"{operation}={code}",
                      "RESPONDER_FAULT_LOG": str(log)})
    assert halted.code == 1, halted.stderr
    doc = json.loads(halted.stdout)
    assert doc["status"] == "halted"
    assert says in doc["error"]
    assert _attempts(log)[operation] == 1
    assert "respond resume" in doc["error"] or code == "NoSuchEntity"
    resumed = cli("resume", doc["incident_id"], "--output", "json")
    assert resumed.code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "completed"
    assert _keys(server_account, user)[key] == "Inactive"


def test_status_lists_open_incidents_first_with_age(
    server_account: Account, cli: Cli
) -> None:
    """`respond status` shows id, key, user, status, current step and age, open first."""
    done = json.loads(cli("compromised", server_account.bob_key, "--yes", "--output",
                          "json").stdout)
    halted = json.loads(cli("compromised", server_account.leaked_key, "--yes", "--output",
                            "json", env={"RESPONDER_FAULT_ERROR": "PutUserPolicy=AccessDenied"}
                            ).stdout)
    listing = cli("status")
    assert listing.code == 0
    lines = listing.stdout.strip().splitlines()
    assert lines[0].split()[:6] == ["INCIDENT", "STATUS", "ACCESS", "KEY", "USER", "STEP"]
    assert lines[1].split()[:5] == [halted["incident_id"], "halted",
                                    server_account.leaked_key, "alice", "revoke-sessions"]
    assert lines[2].split()[:5] == [done["incident_id"], "completed", server_account.bob_key,
                                    "bob", "-"]
    assert lines[1].split()[-1].endswith("s")
