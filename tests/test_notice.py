"""What the humans are told: next actions derived from the journal, no secret, no URL."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import pytest

from responder.aws import RetryPolicy
from responder.context import Incident, Target
from responder.journal import StepRecord
from responder.notify import NotificationError, build_notice, post_slack, render_text, slack_payload

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
INCIDENT = Incident("inc-1", "AKIAIOSFODNN7EXAMPLE", "compromised-key", T0)
TARGET = Target("alice", "123456789012")


def _step(name: str, action: str, status: str = "done", detail: dict | None = None,
          error: str | None = None) -> StepRecord:
    return StepRecord("inc-1", 0, name, action, "halt", status, T0, T0, detail or {}, error)  # type: ignore[arg-type]


STEPS = [
    _step("identify", "identify"),
    _step("disable-key", "disable_access_key"),
    _step("revoke-sessions", "attach_deny_policy", detail={"snapshot": {
        "has_mfa": False, "aws_quarantine": ["AWSCompromisedKeyQuarantineV3"]}}),
    _step("collect-evidence", "collect_cloudtrail", detail={
        "events": 12, "sha256": "ab" * 32, "temporary_keys": [{"access_key_id": "ASIAX"}],
        "roles_assumed": [], "summary": {"high_risk": [
            {"eventName": "CreateUser", "eventTime": "t", "region": "us-east-1"},
            {"eventName": "StopLogging", "eventTime": "t", "region": "eu-west-1"}]}}),
    _step("replace-key", "replace_access_key", detail={
        "access_key_id": "AKIANEWKEY0000000001", "secret_ref": "arn:aws:secretsmanager:x",
        "deleted_compromised": False}),
]


def test_completed_notice_says_what_to_do_next() -> None:
    """Next actions name the new key and secret, the missing MFA, the risky actions, the
    temporary key, the kept old key and AWS's quarantine policy."""
    notice = build_notice("completed", INCIDENT, TARGET, STEPS, contained_at=T0)
    text = "\n".join(notice.next_actions)
    for fact in ("AKIANEWKEY0000000001", "arn:aws:secretsmanager:x", "no MFA", "CreateUser",
                 "StopLogging", "ASIAX", "Delete AKIAIOSFODNN7EXAMPLE",
                 "AWSCompromisedKeyQuarantineV3"):
        assert fact in text, fact
    assert notice.has_mfa is False


def test_halted_notice_names_the_step_and_the_resume_command() -> None:
    """A halted notice says where it stopped, why, and how to continue."""
    steps = [*STEPS[:4], _step("replace-key", "replace_access_key", "failed",
                               error="evidence collection has not finished")]
    notice = build_notice("halted", INCIDENT, TARGET, steps, contained_at=T0,
                          failing_step="replace-key")
    subject, body = render_text(notice)
    assert "HALTED" in subject
    assert "respond resume inc-1" in body
    assert "replace-key: failed (evidence collection has not finished)" in body


def test_renderings_carry_the_facts_and_no_secret() -> None:
    """SNS text and Slack payload name incident, key, user, account and each step; a
    secret-shaped string in a step error is scrubbed from both."""
    steps = [*STEPS, _step("notify", "notify", "failed", error=f"leaked {SECRET}")]
    notice = build_notice("completed", INCIDENT, TARGET, steps, contained_at=T0)
    subject, body = render_text(notice)
    payload = json.dumps(slack_payload(notice))
    assert len(subject) <= 100
    for text in (body, payload):
        for fact in ("inc-1", "AKIAIOSFODNN7EXAMPLE", "alice", "123456789012", "revoke-sessions"):
            assert fact in text
        assert SECRET not in text


def test_unreachable_webhook_fails_without_revealing_the_url() -> None:
    """A closed port: retried, then NotificationError whose text has no URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T0/B0/secret-token"
    notice = build_notice("completed", INCIDENT, TARGET, STEPS, contained_at=T0)
    with pytest.raises(NotificationError) as failure:
        post_slack(url, notice, retry=RetryPolicy(max_attempts=2, initial_seconds=0,
                                                  max_seconds=0))
    assert "secret-token" not in str(failure.value)
    assert "2 attempts" in str(failure.value)


def test_webhook_must_be_http() -> None:
    """file:// and other schemes are refused before any request."""
    notice = build_notice("completed", INCIDENT, TARGET, STEPS, contained_at=T0)
    with pytest.raises(ValueError, match="http"):
        post_slack("file:///etc/passwd", notice, retry=RetryPolicy())
