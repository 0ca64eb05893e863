"""`respond close ID --reason TEXT`: a human takes over an incident the responder cannot
finish. It needs the incident's lease (a live runner's: exit 4), refuses a finished
incident and an empty reason (exit 2, nothing changed), journals the end as closed with
the reason, logs it and writes the report again; `respond status` then shows it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Account, CliResult
from structlog.testing import capture_logs

from responder import playbook
from responder.context import RunContext, utcnow
from responder.errors import BadInput, LeaseHeld, UnknownIncident, exit_code_for
from responder.journal.sqlite import SqliteJournal
from responder.run import close as closing

Cli = Callable[..., CliResult]
KEY = "AKIAIOSFODNN7EXAMPLE"
REASON = "replaced the key by hand; alice was deleted"


def _open(journal: SqliteJournal, *, owner: str = "elsewhere:1:abcdef",
          status: str = "halted", incident_id: str = "inc-20261125-092338-3f9a1c") -> str:
    """An incident of KEY as the runner leaves one: `status`, with an error; its lease
    released unless it is still running under `owner`."""
    journal.create_incident(
        incident_id=incident_id, access_key_id=KEY,
        playbook=playbook.load("compromised-key").to_dict(), started_at=utcnow(),
        source="cli", options={}, owner=owner, lease_seconds=600)
    if status != "running":
        journal.update_incident(incident_id, utcnow(), status=status,
                                error="step replace-key failed: CreateAccessKey denied")
        journal.release_lease(incident_id, owner)
    return incident_id


def _dead_local_owner() -> str:
    """A lease owner naming a process of this machine that has ended."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return f"{socket.gethostname()}:{proc.stdout.strip()}:abcdef"


def test_close_journals_the_end_with_the_reason(
    journal: SqliteJournal, make_ctx: Callable[..., RunContext]
) -> None:
    """A halted incident: closed, its error the reason, the lease let go, the event
    logged with the reason, the report written again; its exit code is 0."""
    incident = _open(journal)
    ctx = make_ctx()
    with capture_logs() as logs:
        record = closing.close(ctx, journal, incident, f"  {REASON}  ")
    assert record.status == "closed"
    assert record.error == f"closed by a human: {REASON}"
    assert record.lease_owner is None
    assert exit_code_for(record.status) == 0
    closed = next(e for e in logs if e["event"] == "incident.closed")
    assert (closed["reason"], closed["was"]) == (REASON, "halted")
    assert any(e["event"] == "incident.end" and e["status"] == "closed" for e in logs)
    report = ctx.incident_dir(incident) / "report.md"
    assert REASON in report.read_text()
    assert record.report == str(report)


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_close_needs_a_reason(journal: SqliteJournal, make_ctx: Callable[..., RunContext],
                              reason: str) -> None:
    """No reason, nothing changed."""
    incident = _open(journal)
    with pytest.raises(BadInput, match="--reason is required"):
        closing.close(make_ctx(), journal, incident, reason)
    assert journal.get(incident).status == "halted"


@pytest.mark.parametrize("status", ["completed", "refused", "closed"])
def test_close_refuses_a_finished_incident(
    journal: SqliteJournal, make_ctx: Callable[..., RunContext], status: str
) -> None:
    """A finished incident has nothing to close: bad input, its record untouched."""
    incident = _open(journal, status=status)
    before = journal.get(incident)
    with pytest.raises(BadInput, match=f"has already ended \\({status}\\)"):
        closing.close(make_ctx(), journal, incident, REASON)
    assert journal.get(incident) == before


def test_close_leaves_a_live_runners_incident_alone(
    journal: SqliteJournal, make_ctx: Callable[..., RunContext]
) -> None:
    """Running under another live runner's lease (another host): LeaseHeld, unchanged."""
    incident = _open(journal, status="running")
    with pytest.raises(LeaseHeld):
        closing.close(make_ctx(), journal, incident, REASON)
    assert journal.get(incident).status == "running"


def test_close_takes_over_from_a_dead_local_runner(
    journal: SqliteJournal, make_ctx: Callable[..., RunContext]
) -> None:
    """Left running by a process of this machine that is gone: closed."""
    incident = _open(journal, status="running", owner=_dead_local_owner())
    assert closing.close(make_ctx(), journal, incident, REASON).status == "closed"


def test_close_unknown_incident(journal: SqliteJournal,
                                make_ctx: Callable[..., RunContext]) -> None:
    with pytest.raises(UnknownIncident):
        closing.close(make_ctx(), journal, "inc-20260101-000000-000000", REASON)


# ------------------------------------------------------------------ the command line


def test_cli_close_then_status_shows_closed_and_why(cli: Cli, tmp_path: Path) -> None:
    """`respond close`: exit 0, one line naming it closed; `respond status ID` shows
    CLOSED and the reason; `--output json` prints the §2 object with status closed."""
    state = str(tmp_path / "journal.db")
    journal = SqliteJournal(Path(state))
    incident = _open(journal)
    journal.close()
    result = cli("close", incident, "--reason", REASON, "--state", state)
    assert result.code == 0, result.stderr
    assert f"respond: incident {incident} is closed by a human: {REASON}" \
        in result.stderr
    assert f"incident {incident}  CLOSED" in result.stdout
    shown = cli("status", incident, "--state", state)
    assert shown.code == 0
    assert f"incident {incident}  CLOSED" in shown.stdout
    assert f"error: closed by a human: {REASON}" in shown.stdout
    doc = json.loads(cli("status", incident, "--state", state, "--output", "json").stdout)
    assert doc["status"] == "closed"
    assert doc["error"] == f"closed by a human: {REASON}"
    listed = cli("status", "--state", state).stdout.splitlines()
    assert next(line for line in listed if line.startswith(incident)).split()[1] == "closed"


def test_cli_close_json_prints_one_object(cli: Cli, tmp_path: Path) -> None:
    state = str(tmp_path / "journal.db")
    journal = SqliteJournal(Path(state))
    incident = _open(journal)
    journal.close()
    result = cli("--state", state, "close", incident, "--reason", REASON, "--output", "json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["incident_id"], doc["status"]) == (incident, "closed")


@pytest.mark.parametrize(("args", "says"), [
    ((), "--reason is required"),
    (("--reason", "  "), "--reason is required"),
])
def test_cli_close_without_a_reason_is_bad_input(cli: Cli, tmp_path: Path,
                                                 args: tuple[str, ...], says: str) -> None:
    state = str(tmp_path / "journal.db")
    journal = SqliteJournal(Path(state))
    incident = _open(journal)
    result = cli("close", incident, "--state", state, *args)
    assert result.code == 2, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("respond: ")] == [
        line for line in result.stderr.splitlines() if says in line]
    assert journal.get(incident).status == "halted"


def test_cli_close_refuses_a_finished_incident_in_one_line(cli: Cli, tmp_path: Path) -> None:
    state = str(tmp_path / "journal.db")
    journal = SqliteJournal(Path(state))
    incident = _open(journal, status="completed")
    result = cli("close", incident, "--reason", REASON, "--state", state)
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"respond: incident {incident} has already ended (completed)")
    assert journal.get(incident).status == "completed"


def test_cli_close_another_live_runner_is_exit_4(cli: Cli, tmp_path: Path) -> None:
    state = str(tmp_path / "journal.db")
    journal = SqliteJournal(Path(state))
    incident = _open(journal, status="running")
    result = cli("close", incident, "--reason", REASON, "--state", state)
    assert result.code == 4, result.stderr
    assert f"incident {incident} is being handled by elsewhere:1:abcdef" in result.stderr
    assert journal.get(incident).status == "running"


def test_cli_close_a_halted_run_of_a_real_response(server_account: Account,
                                                    cli: Cli) -> None:
    """The case it is for: a response that halts on every resume (replacement denied):
    closed, exit 0, and the leaked key stays contained (Inactive, or deleted to make
    room for the replacement that never came)."""
    denied = {"RESPONDER_FAULT_ERROR": "CreateAccessKey=AccessDenied"}
    first = cli("compromised", server_account.leaked_key, "--yes", "--output", "json",
                env=denied)
    assert first.code == 1, first.stderr
    incident = json.loads(first.stdout)["incident_id"]
    assert cli("resume", incident, env=denied).code == 1
    closed = cli("close", incident, "--reason", REASON, "--output", "json")
    assert closed.code == 0, closed.stderr
    doc = json.loads(closed.stdout)
    assert doc["status"] == "closed"
    assert doc["contained_at"] is not None
    keys = server_account.iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
    assert {k["AccessKeyId"]: k["Status"] for k in keys}.get(
        server_account.leaked_key, "Deleted") != "Active"
    home = Path(os.environ["RESPONDER_HOME"])
    events = [json.loads(line)["event"] for line in
              (home / "incidents" / incident / "log.jsonl").read_text().splitlines()]
    assert "incident.closed" in events
