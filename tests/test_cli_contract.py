"""One CLI (issue 31): every command speaks the same grammar and the same exit codes.

- a choice of format is `--output` everywhere (`report --format` is its alias);
- every command and subcommand has a description and examples in its `--help`;
- exit codes follow DESIGN §2: a preview exits 0 (on a terminal or not), a deny-all
  proposal refused by `harden --apply` exits 3;
- the notify step's plan names each channel, the Slack webhook without its URL;
- an error line stays a few hundred characters, whatever input it quotes;
- `--state` is a path or dynamodb://TABLE: any other URL is bad input, nothing created.

Commands that touch no AWS run here as subprocesses without the moto server: a call to
AWS would fail (no endpoint, fake credentials), so each one proves it made none.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import RESPOND, CliResult

from responder import playbook
from responder.cli import commands, output
from responder.cli.args import build_parser
from responder.context import Options, RunContext, utcnow
from responder.errors import (
    EXIT_BAD_INPUT,
    EXIT_REFUSED,
    MESSAGE_CHARS,
    BadInput,
    Refused,
    StepFailed,
)
from responder.findings import dispatch
from responder.hardening.reads import History
from responder.incident.action import StepInput
from responder.incident.facts import Incident, Target
from responder.incident.view import IncidentView
from responder.journal import check_state, open_journal, open_journal_to_act
from responder.journal.sqlite import SqliteJournal
from responder.report.model import IncidentDocument, StepEntry
from responder.report.terminal import summary
from responder.steps.harden import Harden
from responder.steps.notify import Notify

KEY = "AKIAIOSFODNN7EXAMPLE"
INCIDENT = "inc-20261125-092338-3f9a1c"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/secretpart0123456789"
TOPIC = "arn:aws:sns:us-east-1:123456789012:oncall"
FORMATS = {"human", "json", "md", "csv", "html"}
FIXTURES = Path(__file__).parent / "fixtures" / "findings"


def _respond(*args: str, cwd: Path, stdin: int | IO[Any] = subprocess.DEVNULL) -> CliResult:
    """`respond ...` with the test's environment (its own RESPONDER_HOME), in `cwd`."""
    proc = subprocess.run([str(RESPOND), *args], cwd=cwd, env=dict(os.environ), stdin=stdin,
                          capture_output=True, text=True, timeout=120, check=False)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _one_line(result: CliResult) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("respond: "), lines[0]
    return lines[0]


# ------------------------------------------------------------------ the grammar


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:  # argparse keeps subcommands only there
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
          ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under `parser`, nested ones included, with its command path."""
    for name, child in _subparsers(parser).items():
        yield (*path, name), child
        yield from _walk(child, (*path, name))


COMMANDS = dict(_walk(build_parser()))


def test_the_walk_finds_every_command() -> None:
    """The walk below is only as good as what it reaches: DESIGN §2's commands, and the
    playbooks subcommands, nested one level down."""
    names = {" ".join(path) for path in COMMANDS}
    assert names >= {
        "compromised", "finding", "resume", "sweep", "status", "report", "drill", "rollback",
        "close", "audit", "rotate", "harden", "playbooks", "playbooks list", "playbooks show",
        "playbooks validate", "playbooks graph"}


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_command_has_a_description_and_an_example(path: tuple[str, ...]) -> None:
    """`respond ... --help` says what the command does and shows it used: at least one
    example line that runs this very command."""
    parser = COMMANDS[path]
    assert (parser.description or "").strip(), f"respond {' '.join(path)}: no description"
    helped = parser.format_help()
    assert "Example" in helped, helped
    command = "respond " + " ".join(path)
    assert any(line.strip().startswith(command) for line in helped.splitlines()
               if not line.startswith("usage:")), helped


def test_the_top_level_help_lists_the_exit_codes() -> None:
    helped = build_parser().format_help()
    assert "Example" in helped
    for code in ("0  completed", "1  halted", "2  bad input", "3  refused", "4  another",
                 "5  completed and contained"):
        assert code in helped, helped


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_format_choice_is_output(path: tuple[str, ...]) -> None:
    """An option choosing among output formats is `--output` (dest `output`); `--format`
    exists only as its alias."""
    for action in COMMANDS[path]._actions:
        if "--format" in action.option_strings:
            assert "--output" in action.option_strings, action.option_strings
        if action.option_strings and action.choices and FORMATS & set(action.choices):
            assert "--output" in action.option_strings, (path, action.option_strings)
            assert action.dest == "output"


@pytest.mark.parametrize(("argv", "expected"), [
    (["report", INCIDENT], "md"),
    (["report", INCIDENT, "--output", "json"], "json"),
    (["report", INCIDENT, "--format", "html"], "html"),
    (["audit", "--output", "md"], "md"),
    (["status", "--output", "json"], "json"),
    (["drill", "--output", "json"], "json"),
])
def test_output_parses_the_same_everywhere(argv: list[str], expected: str) -> None:
    assert build_parser().parse_args(argv).output == expected


def test_report_help_names_format_as_an_alias() -> None:
    helped = COMMANDS[("report",)].format_help()
    assert "--output {md,json,html}" in helped
    assert "--format is an alias of --output" in " ".join(helped.split())


# ------------------------------------------------------------------ --state


@pytest.mark.parametrize("state", ["s3://b/x", "http://x", "dynamodb://", "dynamodb://a",
                                   "file:///tmp/j.db"])
def test_state_that_is_no_journal_is_bad_input_and_creates_nothing(
    state: str, tmp_path: Path
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    result = _respond("status", "--state", state, cwd=work)
    assert result.code == EXIT_BAD_INPUT, result.stderr
    line = _one_line(result)
    assert "--state" in line
    assert "dynamodb://TABLE" in line
    assert list(work.iterdir()) == []
    assert not (tmp_path / "home" / "responder.db").exists()


@pytest.mark.parametrize("argv", [
    ("compromised", KEY, "--yes"),
    ("finding", "finding.json"),
    ("report", INCIDENT),
    ("rollback", INCIDENT),
    ("playbooks", "list"),
])
def test_every_command_checks_state_before_anything(argv: tuple[str, ...],
                                                    tmp_path: Path) -> None:
    """`--state s3://b/x` once made ./s3:/b/x a SQLite journal; now every command says
    no in one line before it opens, creates or calls anything."""
    (tmp_path / "finding.json").write_text("{}")
    result = _respond(*argv[:1], "--state", "s3://b/x", *argv[1:], cwd=tmp_path)
    assert result.code == EXIT_BAD_INPUT, result.stderr
    assert "s3:// URL is not a journal" in _one_line(result)
    assert not (tmp_path / "s3:").exists()
    assert not (tmp_path / "home" / "responder.db").exists()


def test_state_refusal_with_json_output_is_one_object(tmp_path: Path) -> None:
    result = _respond("compromised", KEY, "--yes", "--output", "json", "--state", "s3://b/x",
                      cwd=tmp_path)
    assert result.code == EXIT_BAD_INPUT
    doc = json.loads(result.stdout)
    assert doc["status"] == "refused"
    assert "s3://b/x" in doc["error"]
    assert not (tmp_path / "s3:").exists()


@pytest.mark.parametrize("state", [None, "", "j.db", "/srv/responder/j.db", "./s3/b/x",
                                   "dynamodb://incidents", "dynamodb://team.incidents-1"])
def test_paths_and_dynamodb_tables_are_journals(state: str | None) -> None:
    assert check_state(state) == state


def test_the_journal_refuses_a_url_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """Library callers (the Lambda's RESPONDER_STATE) are checked too, and a response's
    fallback to a temporary journal never hides a location that is no journal."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput, match="s3://"):
        open_journal("s3://b/x", tmp_path / "home")
    with pytest.raises(BadInput, match="s3://"):
        open_journal_to_act("s3://b/x", tmp_path / "home")
    assert not (tmp_path / "s3:").exists()


# ------------------------------------------------------------------ exit codes


def _halted_incident(state: Path) -> str:
    journal = SqliteJournal(state)
    owner = "elsewhere:1:abcdef"
    journal.create_incident(
        incident_id=INCIDENT, access_key_id=KEY,
        playbook=playbook.load("compromised-key").to_dict(), started_at=utcnow(),
        source="cli", options={}, owner=owner, lease_seconds=600)
    journal.update_incident(INCIDENT, utcnow(), status="halted", error="step x failed")
    journal.release_lease(INCIDENT, owner)
    journal.close()
    return INCIDENT


@pytest.mark.parametrize("terminal", [False, True], ids=["no-terminal", "terminal"])
def test_a_rollback_preview_exits_0_whatever_the_terminal(terminal: bool,
                                                          tmp_path: Path) -> None:
    """`respond rollback ID` without --yes prints the plan and exits 0 (DESIGN §2: a
    preview), never asks and never says --yes is missing as bad input."""
    state = tmp_path / "j.db"
    incident = _halted_incident(state)
    primary, secondary = pty.openpty() if terminal else (None, None)
    try:
        result = _respond("rollback", incident, "--state", str(state), cwd=tmp_path,
                          stdin=secondary if secondary is not None else subprocess.DEVNULL)
    finally:
        for fd in (primary, secondary):
            if fd is not None:
                os.close(fd)
    assert result.code == 0, result.stderr
    assert f"rollback of {incident} would:" in result.stdout
    assert "nothing was changed" in result.stdout


def test_a_reactivate_preview_exits_0_and_an_unknown_one_2(tmp_path: Path) -> None:
    state = tmp_path / "j.db"
    incident = _halted_incident(state)
    preview = _respond("rotate", "--reactivate", incident, "--state", str(state),
                       cwd=tmp_path)
    assert preview.code == 0, preview.stderr
    assert f"would re-activate {KEY}" in preview.stdout
    as_json = _respond("rotate", "--reactivate", incident, "--state", str(state),
                       "--output", "json", cwd=tmp_path)
    assert json.loads(as_json.stdout) == {"incident_id": incident, "would_reactivate": KEY}
    unknown = _respond("rotate", "--reactivate", "inc-20990101-000000-000000", "--state",
                       str(state), cwd=tmp_path)
    assert unknown.code == EXIT_BAD_INPUT


def _harden_input(tmp_path: Path, *, view: IncidentView | None, step: str) -> StepInput:
    ctx = RunContext(session_factory=lambda: None, home=tmp_path)  # type: ignore[arg-type,return-value]
    incident = Incident(INCIDENT, KEY, "compromised-key", datetime(2026, 11, 25, tzinfo=UTC))
    return StepInput(ctx, incident, Target("bob", "123456789012"), {"apply": True},
                     view=view, step_name=step)


def test_harden_refuses_a_deny_all_proposal_with_exit_3(tmp_path: Path) -> None:
    """No usage found: the proposal denies everything. `respond harden --apply` (alone or
    appended to an incident) refuses it, exit 3; inside a playbook run, whose earlier
    steps changed AWS, it stays the step's failure, never the incident's refusal."""
    empty = History(records=(), regions=("us-east-1",), failed={}, truncated=False)
    with pytest.raises(Refused, match="lock the user out") as refused:
        Harden()._check_applicable(_harden_input(tmp_path, view=None, step="harden"),
                                   "bob", (), empty)
    assert refused.value.exit_code == EXIT_REFUSED

    _halted_incident(tmp_path / "j.db")
    journal = SqliteJournal(tmp_path / "j.db")
    journal.add_step(INCIDENT, "harden-2", "harden", utcnow())
    view = IncidentView.load(journal, INCIDENT)
    with pytest.raises(Refused):
        Harden()._check_applicable(_harden_input(tmp_path, view=view, step="harden-2"),
                                   "bob", (), empty)
    with pytest.raises(StepFailed, match="lock the user out"):
        Harden()._check_applicable(_harden_input(tmp_path, view=view, step="harden"),
                                   "bob", (), empty)
    journal.close()


# ------------------------------------------------------------------ the notify plan


def _notify_plan(tmp_path: Path, **options: Any) -> StepEntry:
    ctx = RunContext(session_factory=lambda: None, home=tmp_path,  # type: ignore[arg-type,return-value]
                     options=Options(**options))
    inp = StepInput(ctx, Incident(INCIDENT, KEY, "compromised-key", utcnow()),
                    Target("alice", "123456789012"), {})
    return StepEntry(name="notify", action="notify", status="planned",
                     detail={"calls": [c.as_dict() for c in Notify().plan(inp)]})


def test_the_notify_plan_names_every_channel_and_never_the_webhook(tmp_path: Path) -> None:
    step = _notify_plan(tmp_path, notify_topic=TOPIC, slack_webhook=WEBHOOK)
    shown = summary(IncidentDocument(status="planned", access_key_id=KEY, steps=(step,)))
    assert TOPIC in shown
    assert "SNS topic" in shown
    assert "Slack webhook (URL not shown)" in shown
    assert WEBHOOK not in shown
    assert "hooks.slack.com" not in json.dumps(step.detail)


@pytest.mark.parametrize(("options", "said", "unsaid"), [
    ({"notify_topic": TOPIC}, "SNS topic", "Slack"),
    ({"slack_webhook": WEBHOOK}, "Slack webhook (URL not shown)", "SNS"),
])
def test_the_notify_plan_names_only_the_channels_set(
    tmp_path: Path, options: dict[str, str], said: str, unsaid: str
) -> None:
    step = _notify_plan(tmp_path, **options)
    shown = summary(IncidentDocument(status="planned", access_key_id=KEY, steps=(step,)))
    assert said in shown
    assert unsaid not in shown
    assert WEBHOOK not in shown


def test_no_channel_plans_no_delivery(tmp_path: Path) -> None:
    assert _notify_plan(tmp_path).calls == ()


# ------------------------------------------------------------------ error lines


@pytest.fixture
def _edge() -> Iterator[None]:
    output.use_state(None)
    yield
    output.use_state(None)


@pytest.mark.usefixtures("_edge")
def test_err_cuts_a_long_line_and_says_by_how_much(capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    output.err("x" * 100_000)
    line = capsys.readouterr().err
    assert len(line.encode()) < 500
    assert line.count("\n") == 1
    assert line.startswith("respond: " + "x" * MESSAGE_CHARS + "…")
    assert f"({100_000 - MESSAGE_CHARS} more characters)" in line


@pytest.mark.usefixtures("_edge")
def test_err_leaves_a_short_line_alone(capsys: pytest.CaptureFixture[str]) -> None:
    output.err("a" * MESSAGE_CHARS)
    assert capsys.readouterr().err == "respond: " + "a" * MESSAGE_CHARS + "\n"


def _malformed(tmp_path: Path, entries: int = 200_000) -> Path:
    path = tmp_path / "finding.json"
    path.write_text(json.dumps([{f"field{i}": i} for i in range(entries)]))
    return path


def test_a_huge_malformed_finding_is_a_short_line(tmp_path: Path) -> None:
    """200,000 entries, none a finding: once a 19.7 MB line, now a few hundred bytes;
    exit 2, nothing on stdout."""
    result = _respond("finding", str(_malformed(tmp_path)), cwd=tmp_path)
    assert result.code == EXIT_BAD_INPUT, result.stderr[:500]
    assert len(result.stderr.encode()) < 500, result.stderr[:1000]
    assert "200000 entries" in _one_line(result)
    assert result.stdout == ""
    as_json = _respond("finding", str(_malformed(tmp_path)), "--output", "json",
                       cwd=tmp_path)
    assert as_json.code == EXIT_BAD_INPUT
    assert len(as_json.stdout) < 2000
    assert json.loads(as_json.stdout)["status"] == "refused"


def test_the_parser_caps_its_own_messages(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """At the source: the message names the count and the first entry, not all of them,
    and quotes a field name or an id only in part."""
    monkeypatch.chdir(tmp_path)
    _malformed(tmp_path, 5_000)
    with pytest.raises(BadInput) as many:
        dispatch.load_each("finding.json")
    assert len(str(many.value)) < MESSAGE_CHARS
    assert "5000 entries" in str(many.value)

    huge = {"id": "i" * 100_000, "type": "t" * 50_000, "resource": {"resourceType": "r"}}
    (outcome,) = dispatch.parse_each(huge)
    said = str(outcome.error)  # type: ignore[union-attr]
    assert len(said) < 2 * MESSAGE_CHARS
    assert "more characters" in said
    with pytest.raises(BadInput) as fields:
        dispatch.parse_each({"k" * 100_000: 1, "other": 2})
    assert len(str(fields.value)) < MESSAGE_CHARS


def test_many_refused_findings_are_counted_not_listed(tmp_path: Path) -> None:
    """Each refused finding of a list is one line, up to FINDING_LINES; the rest are
    counted in one more line (a file of thousands must not print thousands)."""
    sample = json.loads((FIXTURES / "guardduty-sample.json").read_text())
    many = commands.FINDING_LINES + 5
    findings = [{**sample, "detail": {**sample["detail"], "id": f"sample-{i}"}}
                for i in range(many)]
    path = tmp_path / "finding.json"
    path.write_text(json.dumps(findings))
    result = _respond("finding", str(path), cwd=tmp_path)
    assert result.code == EXIT_REFUSED, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == commands.FINDING_LINES + 1, result.stderr
    assert all("sample finding" in line for line in lines[:-1])
    assert lines[-1] == "respond: and 5 more findings not answered (--output json lists " \
        "every one)"
    as_json = _respond("finding", str(path), "--output", "json", cwd=tmp_path)
    assert len(json.loads(as_json.stdout)["incidents"]) == many


# ------------------------------------------------------------------ logging


def test_run_configures_a_quiet_console_unless_verbose(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """Without -v the console keeps to what a human needs (responder.logging's quiet)."""
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(commands, "configure", lambda **kw: seen.append(kw))
    monkeypatch.setitem(commands.COMMANDS, "playbooks", lambda args: 0)
    umask = os.umask(0o022)
    try:
        for argv in (["playbooks", "list"], ["-v", "playbooks", "list"]):
            assert commands.run(build_parser().parse_args(argv)) == 0
    finally:
        os.umask(umask)
        output.use_state(None)
    assert [kw["quiet"] for kw in seen] == [True, False]
