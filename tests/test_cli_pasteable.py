"""Every `respond` command the CLI prints works when pasted: when the journal is not the
default one (`--state PATH`, or the fallback journal a corrupt responder.db or a
RESPONDER_HOME that is a file switches to), each printed command names it with
`--state`, on stdout and stderr, human or JSON, whichever module made its text."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Account, CliResult

from responder.cli import output
from responder.cli.args import build_parser

Cli = Callable[..., CliResult]
PRINTED = re.compile(r"respond (?:" + "|".join(output.JOURNAL_COMMANDS) + r")\b[^`\n\"]*")


def _home() -> Path:
    return Path(os.environ["RESPONDER_HOME"])


def _fallback(result: CliResult) -> str:
    """The journal the run says it used instead of the broken one."""
    found = re.search(r"journaling this response in (\S+)", result.stderr)
    assert found, result.stderr
    return found.group(1)


def _commands(text: str) -> list[str]:
    return [m.group(0).strip() for m in PRINTED.finditer(text)]


def _all_name(text: str, state: str) -> list[str]:
    """Every printed journal command in `text`, each checked to name `state` right after
    its subcommand."""
    found = _commands(text)
    assert found, text
    for command in found:
        words = shlex.split(command)
        assert words[2:4] == ["--state", state], command
    return found


def _paste(cli: Cli, command: str) -> CliResult:
    words = shlex.split(command)
    assert words[0] == "respond"
    return cli(*words[1:])


@pytest.fixture
def _clean_edge() -> Iterator[None]:
    yield
    output.use_state(None)


@pytest.mark.usefixtures("_clean_edge")
def test_pasteable_inserts_state_after_each_journal_command() -> None:
    """The one function at the edge: `--state X` (quoted for a shell) after the
    subcommand of each journal command, once, and nothing else touched."""
    output.use_state("/srv/a dir/responder.db")
    text = ("then: respond resume inc-1; `respond sweep inc-1` or respond status; "
            "respond: one line; respond playbooks list; respond sweep --state /x inc-2")
    assert output.pasteable(text) == (
        "then: respond resume --state '/srv/a dir/responder.db' inc-1; `respond sweep "
        "--state '/srv/a dir/responder.db' inc-1` or respond status --state "
        "'/srv/a dir/responder.db'; respond: one line; respond playbooks list; "
        "respond sweep --state /x inc-2")
    output.use_state(None)
    assert output.pasteable(text) == text


@pytest.mark.usefixtures("_clean_edge")
@pytest.mark.parametrize("command", [
    "respond sweep inc-1", "respond resume inc-1", "respond status inc-1", "respond status",
    "respond report inc-1 --format json", "respond rollback inc-1 --yes --reason r",
    "respond close inc-1 --reason 'by hand'", "respond rotate --continue inc-1",
    "respond harden alice --incident inc-1", "respond sweep inc-1 --watch",
])
def test_the_inserted_state_parses(command: str) -> None:
    """`--state` inserted after the subcommand is the journal argparse sees (the
    subcommands take it through parents=[common])."""
    output.use_state("/srv/x y/j.db")
    args: argparse.Namespace = build_parser().parse_args(
        shlex.split(output.pasteable(command))[1:])
    assert args.state == "/srv/x y/j.db"


@pytest.mark.usefixtures("_clean_edge")
def test_json_strings_are_pasteable_and_the_json_stays_json() -> None:
    """In the JSON object only string values change; keys and the structure stay."""
    output.use_state("/j.db")
    doc: dict[str, Any] = {"respond sweep": 1, "sweeps": {"next": {"command":
                                                                    "respond sweep inc-1"}},
                           "list": ["respond status inc-1", 3, None]}
    assert output._pasteable_json(doc) == {
        "respond sweep": 1, "sweeps": {"next": {"command": "respond sweep --state /j.db inc-1"}},
        "list": ["respond status --state /j.db inc-1", 3, None]}


def test_state_of_default_and_relative_paths(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The default journal needs no naming; a relative --state is named absolutely (the
    paste may happen elsewhere); a DynamoDB URL as it was given."""
    monkeypatch.chdir(tmp_path)
    assert output.state_of(None) is None
    assert output.state_of(str(_home() / "responder.db")) is None
    assert output.state_of("j.db") == str(tmp_path / "j.db")
    assert output.state_of("dynamodb://incidents") == "dynamodb://incidents"


def test_corrupt_journal_commands_name_the_fallback(server_account: Account,
                                                    cli: Cli) -> None:
    """responder.db is garbage: the run journals in a fallback, and the sweep command in
    its JSON object names it; pasted, it runs (exit 0) against that journal."""
    _home().mkdir(parents=True, exist_ok=True)
    (_home() / "responder.db").write_bytes(b"this is not a database" * 100)
    result = cli("compromised", server_account.leaked_key, "--yes", "--no-replace",
                 "--output", "json")
    assert result.code == 0, result.stderr
    state = _fallback(result)
    doc = json.loads(result.stdout)
    sweep = doc["sweeps"]["next"]["command"]
    assert sweep == f"respond sweep --state {state} {doc['incident_id']}"
    _all_name(result.stdout + result.stderr, state)
    swept = _paste(cli, sweep)
    assert swept.code == 0, swept.stderr
    _all_name(swept.stdout + swept.stderr, state)


def test_printed_status_command_works_with_state(server_account: Account, cli: Cli,
                                                 tmp_path: Path) -> None:
    """With --state PATH, a refusal's `respond status ID` (closing a finished incident)
    names PATH; pasted, it shows the incident (exit 0)."""
    state = str(tmp_path / "elsewhere.db")
    done = cli("--state", state, "compromised", server_account.leaked_key, "--yes",
               "--no-replace")
    assert done.code == 0, done.stderr
    incident = re.search(r"incident (inc-\S+)", done.stdout)
    assert incident, done.stdout
    refused = cli("close", incident.group(1), "--reason", "by hand", "--state", state)
    assert refused.code == 2, refused.stderr
    status = _all_name(refused.stderr, state)
    assert status == [f"respond status --state {state} {incident.group(1)}"]
    shown = _paste(cli, status[0])
    assert shown.code == 0, shown.stderr
    assert "COMPLETED" in shown.stdout


def test_home_that_is_a_file_commands_name_the_fallback(server_account: Account,
                                                        cli: Cli) -> None:
    """RESPONDER_HOME is a file: the run falls back to a temporary journal and halts (no
    evidence can be written); every printed command names that journal, and once the
    home is fixed, the printed resume command completes the incident (exit 0)."""
    _home().parent.mkdir(parents=True, exist_ok=True)
    _home().write_text("not a directory")
    result = cli("compromised", server_account.leaked_key, "--yes", "--no-replace")
    assert result.code == 1, result.stderr
    state = _fallback(result)
    printed = _all_name(result.stdout + result.stderr, state)
    resume = next(c for c in printed if c.startswith("respond resume") and "inc-" in c)
    _home().unlink()  # the cause fixed, as the output asks
    resumed = _paste(cli, resume)
    assert resumed.code == 0, resumed.stderr
    assert "COMPLETED" in resumed.stdout
    _all_name(resumed.stdout, state)
