"""The CLI's quiet console (configure(quiet=True)): a human reads stderr next to the
command's story, so it gets progress on a terminal and every warning, while log.jsonl
and capture_logs() still get every event."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from responder import logging as rlog

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # secret-access-key shaped, 40 chars


class FakeTty(io.StringIO):
    """A stream that says it is a terminal, as the human's stderr does."""

    def isatty(self) -> bool:
        return True


pytestmark = pytest.mark.usefixtures("fresh_structlog")


def _step_end(**fields: object) -> None:
    values: dict[str, object] = {"step": "disable-key", "status": "done", "error": None,
                                 "duration_ms": 190, **fields}
    rlog.get_logger("responder.run.executor").info("step.end", **values)


def test_info_is_silent_when_stderr_is_not_a_terminal() -> None:
    """Pipes, CI and tests get no progress and no INFO line."""
    stream = io.StringIO()
    rlog.configure(stream=stream, quiet=True)
    _step_end()
    rlog.get_logger("t").info("incident.run", incident_id="inc-1", resumed=False)
    assert stream.getvalue() == ""


def test_step_end_is_one_short_progress_line_on_a_terminal() -> None:
    """One line per finished step: its mark, name and time, no field dump."""
    stream = FakeTty()
    rlog.configure(stream=stream, quiet=True)
    with structlog.contextvars.bound_contextvars(incident_id="inc-1"):
        _step_end()
        rlog.get_logger("t").info("step.start", step="notify", action="notify")
    assert stream.getvalue() == "  [ok] disable-key  0.19s\n"


def test_a_failed_step_names_its_error_on_one_line() -> None:
    stream = FakeTty()
    rlog.configure(stream=stream, quiet=True)
    _step_end(step="notify", status="failed", error="SNS said no:\n  AccessDenied")
    assert stream.getvalue() == "  [!!] notify  failed: SNS said no: AccessDenied\n"
    assert "incident_id=" not in stream.getvalue()


def test_followup_ends_are_progress_too() -> None:
    """Sweeps, rollbacks and the like log `followup.end`: the same line."""
    stream = FakeTty()
    rlog.configure(stream=stream, quiet=True)
    rlog.get_logger("t").info("followup.end", step="sweep-1", status="waiting", error=None,
                              duration_ms=5)
    assert stream.getvalue() == "  [..] sweep-1  waiting\n"


@pytest.mark.parametrize("stream", [io.StringIO(), FakeTty()])
def test_a_warning_is_one_human_line(stream: io.StringIO) -> None:
    """Warnings reach the human with or without a terminal: the event, its error, its
    other fields (not the incident id bound for the whole run) and its hint."""
    rlog.configure(stream=stream, quiet=True)
    with structlog.contextvars.bound_contextvars(incident_id="inc-1"):
        rlog.get_logger("t").warning("incident_log.unwritable", path="/x/log.jsonl",
                                     error="NotADirectoryError: Not a directory",
                                     hint="the response goes on")
    assert stream.getvalue() == (
        "respond: warning: incident_log.unwritable: NotADirectoryError: Not a directory "
        "(path=/x/log.jsonl) - the response goes on\n")


def test_retry_warning_keeps_its_fields_readable() -> None:
    """The retry line still shows which call and which attempt (sorted, as -v does)."""
    stream = io.StringIO()
    rlog.configure(stream=stream, quiet=True)
    rlog.get_logger("responder.aws").warning("retrying", call="iam:GetAccessKeyLastUsed",
                                             attempt="1/3", error="Throttling")
    assert stream.getvalue() == (
        "respond: warning: retrying: Throttling (attempt=1/3 call=iam:GetAccessKeyLastUsed)\n")


def test_an_error_says_error() -> None:
    stream = io.StringIO()
    rlog.configure(stream=stream, quiet=True)
    rlog.get_logger("t").error("finding.crashed", finding_id="gd-1", error="boom")
    assert stream.getvalue() == "respond: error: finding.crashed: boom (finding_id=gd-1)\n"


def test_verbose_writes_the_full_line_even_when_quiet_is_asked() -> None:
    """-v brings the whole log back (DEBUG included), fields and all."""
    stream = io.StringIO()
    rlog.configure(verbose=True, stream=stream, quiet=True)
    _step_end()
    rlog.get_logger("t").debug("aws.call", call="iam:GetUser")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(
        "[info     ] step.end duration_ms=190 error=None status=done step=disable-key")
    assert "aws.call call=iam:GetUser" in lines[1]


def test_the_default_is_the_full_log() -> None:
    """The Lambda and library use call configure() with no arguments: nothing hidden."""
    stream = io.StringIO()
    rlog.configure(stream=stream)
    _step_end()
    assert "step.end duration_ms=190" in stream.getvalue()


def test_log_jsonl_gets_every_event_while_quiet(tmp_path: Path) -> None:
    """Quiet is for the console only: the incident's log keeps every INFO event."""
    stream = io.StringIO()
    rlog.configure(stream=stream, quiet=True)
    path = tmp_path / "log.jsonl"
    with rlog.incident_log(path, incident_id="inc-1"):
        rlog.get_logger("t").info("step.start", step="disable-key", action="x")
        _step_end()
        rlog.get_logger("t").warning("retrying", call="iam:GetUser", attempt="1/3")
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["event"], e["level"], e["incident_id"]) for e in events] == [
        ("step.start", "info", "inc-1"), ("step.end", "info", "inc-1"),
        ("retrying", "warning", "inc-1")]
    assert stream.getvalue().splitlines() == [
        "respond: warning: retrying (attempt=1/3 call=iam:GetUser)"]


def test_capture_logs_sees_every_event_while_quiet() -> None:
    """Tests read events through capture_logs(); a quiet console hides none from it."""
    rlog.configure(stream=io.StringIO(), quiet=True)
    with capture_logs() as logs:
        _step_end()
        rlog.get_logger("t").info("incident.verified", ok=True)
    assert [e["event"] for e in logs] == ["step.end", "incident.verified"]


def test_secrets_are_redacted_in_the_quiet_lines() -> None:
    """redact_secrets runs before the quiet console as before the full one."""
    stream = FakeTty()
    rlog.configure(stream=stream, quiet=True)
    rlog.get_logger("t").warning("leaky", error=f"bad key {SECRET}", detail=SECRET)
    _step_end(status="failed", error=f"rejected {SECRET}")
    written = stream.getvalue()
    assert SECRET not in written
    assert written.count("<redacted>") == 3
    assert len(written.splitlines()) == 2


def test_console_text_rewrites_the_quiet_lines() -> None:
    """The CLI makes commands in every line pasteable: warnings' hints included."""
    stream = io.StringIO()
    rlog.configure(stream=stream, quiet=True, console_text=str.upper)
    rlog.get_logger("t").warning("lease.renew_failed", error="x")
    assert stream.getvalue() == "RESPOND: WARNING: LEASE.RENEW_FAILED: X\n"


def test_unwritable_log_hint_says_where_the_log_is(tmp_path: Path) -> None:
    """Quiet, stderr no longer holds the incident's log: the hint points at -v."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    stream = io.StringIO()
    rlog.configure(stream=stream, quiet=True)
    with rlog.incident_log(blocker / "log.jsonl", incident_id="inc-1"):
        _step_end()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("respond: warning: incident_log.unwritable: FileExistsError")
    assert f"(path={blocker / 'log.jsonl'})" in lines[0]
    assert lines[0].endswith("-v shows it on stderr")
