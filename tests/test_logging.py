"""Logging: the redaction processor and the JSONL sink."""

from __future__ import annotations

import io
import json
from pathlib import Path

import structlog

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
