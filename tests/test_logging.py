"""Logging: the redaction processor, the JSONL sink, bound incident fields and timestamps."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from responder import logging as rlog
from responder.redaction import redact

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjE" + "A" * 300


def test_secrets_are_redacted_on_console_and_in_jsonl(tmp_path: Path) -> None:
    """A secret in any field, nested or inline, reaches neither stderr nor log.jsonl."""
    stream = io.StringIO()
    rlog.configure(stream=stream)
    try:
        path = tmp_path / "log.jsonl"
        with rlog.incident_log(path, incident_id="inc-1"):
            structlog.get_logger("t").info(
                "leaky", SecretAccessKey=SECRET, message=f"key={SECRET} token={TOKEN}",
                nested={"SessionToken": "abc", "list": [SECRET]},
            )
        written = path.read_text()
        event = json.loads(written)
    finally:
        structlog.reset_defaults()
    for text in (stream.getvalue(), written):
        assert SECRET not in text
        assert TOKEN not in text
    assert event["incident_id"] == "inc-1"
    assert event["nested"]["SessionToken"] == "<redacted>"
    assert "leaky" in stream.getvalue()


def test_access_key_ids_are_not_mistaken_for_secrets() -> None:
    """Key ids, ARNs and incident ids stay readable: only secret shapes are scrubbed."""
    text = "AKIAIOSFODNN7EXAMPLE arn:aws:iam::123456789012:user/alice inc-20261125-0900-abc"
    assert redact(text) == text


pytestmark = pytest.mark.usefixtures("fresh_structlog")


def test_incident_log_binds_fields_with_structlog_contextvars(tmp_path: Path) -> None:
    """While incident_log runs every event carries its incident_id (bound through
    structlog.contextvars, so merge_contextvars sees it), an event's own field wins,
    a nested block's id gives way to the outer one when it ends, and nothing stays bound."""
    log = rlog.get_logger("t")
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        with rlog.incident_log(tmp_path / "a.jsonl", incident_id="inc-1"):
            log.info("step.start", step="identify")
            log.info("own", incident_id="inc-own")
            with rlog.incident_log(tmp_path / "b.jsonl", incident_id="inc-2"):
                log.info("inner")
            log.info("outer.again")
        log.info("after")
    assert {"event": "step.start", "step": "identify", "incident_id": "inc-1",
            "log_level": "info"} in logs
    by_event = {e["event"]: e for e in logs}
    assert by_event["own"]["incident_id"] == "inc-own"
    assert by_event["inner"]["incident_id"] == "inc-2"
    assert by_event["outer.again"]["incident_id"] == "inc-1"
    assert "incident_id" not in by_event["after"]
    assert structlog.contextvars.get_contextvars() == {}


def test_events_reach_log_jsonl_as_they_happen(tmp_path: Path) -> None:
    """An event is in log.jsonl as soon as it is logged, not when the block ends: nothing
    is held in memory until containment."""
    rlog.configure(stream=io.StringIO())
    path = tmp_path / "log.jsonl"
    with rlog.incident_log(path, incident_id="inc-1"):
        rlog.get_logger("t").info("step.start", step="disable-key")
        written = [json.loads(line) for line in path.read_text().splitlines()]
        assert [(e["event"], e["step"], e["incident_id"]) for e in written] == [
            ("step.start", "disable-key", "inc-1")]


KILLED_MID_RUN = """
import os, signal, sys
from pathlib import Path
from responder import logging as rlog
rlog.configure()
with rlog.incident_log(Path(sys.argv[1]), incident_id="inc-9"):
    rlog.get_logger("t").info("step.end", step="disable-key")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_events_logged_before_kill_9_are_in_log_jsonl(tmp_path: Path) -> None:
    """A run killed with SIGKILL right after logging leaves that event in log.jsonl and on
    stderr, even when started the way `respond` starts a run that may contain."""
    path = tmp_path / "log.jsonl"
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_RUN, str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    event = json.loads(path.read_text())
    assert (event["event"], event["step"], event["incident_id"]) == (
        "step.end", "disable-key", "inc-9")
    assert "step.end" in proc.stderr


ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"


def test_timestamp_key_and_text_on_console_and_in_jsonl(tmp_path: Path) -> None:
    """Every event is stamped under "timestamp" as ISO 8601 UTC ending in "Z"
    (2026-01-05T09:00:00.123456Z); the console line starts with that same text, then
    the padded level and the event."""
    stream = io.StringIO()
    rlog.configure(stream=stream)
    path = tmp_path / "log.jsonl"
    with rlog.incident_log(path, incident_id="inc-1"):
        rlog.get_logger("t").info("step.start", step="identify")
    event = json.loads(path.read_text())
    assert re.fullmatch(ISO_UTC, event["timestamp"])
    assert stream.getvalue() == (
        f"{event['timestamp']} [info     ] step.start incident_id=inc-1 step=identify\n")


def test_capture_logs_sees_events_when_the_code_configures_logging() -> None:
    """capture_logs() captures what a module-level logger (made before configuring) logs,
    even when the code under test calls configure() itself, as the Lambda handler does;
    the real processors are back once the capture ends."""
    log = rlog.get_logger("responder.module")
    rlog.configure()
    with capture_logs() as logs:
        rlog.configure()
        log.info("finding.refused", error="bad")
    assert logs == [{"event": "finding.refused", "error": "bad", "log_level": "info"}]
    assert rlog.SINK in structlog.get_config()["processors"]
