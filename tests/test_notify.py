"""Notifications: what the notice says, how it renders, and that SNS and Slack deliver it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import boto3
import pytest
from conftest import FAST_RETRY, REGION, Pager, make_pager
from moto import mock_aws

from responder.aws import Api, RetryPolicy
from responder.errors import AwsCallFailed
from responder.incident.facts import Incident, Target
from responder.incident.view import IncidentView
from responder.journal import IncidentRecord, StepRecord
from responder.report.notice import Notice
from responder.report.notice import build_notice as notice_of_view
from responder.report.notify import (
    NotificationError,
    post_slack,
    publish_sns,
    render_text,
    slack_payload,
)

INCIDENT = "inc-20260301-120000-abc123"
KEY = "AKIAEXAMPLELEAKED001"
NEW_KEY = "AKIAEXAMPLEREPLACED1"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:responder/alice/access-key-Ab12"
ACCOUNT = "123456789012"
QUARANTINE = "AWSCompromisedKeyQuarantineV3"
# Secret-shaped: 40 characters of the secret access key alphabet.
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
STARTED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONTAINED = datetime(2026, 3, 1, 12, 0, 2, tzinfo=UTC)


def _step(position: int, name: str, action: str, *, status: str = "done",
          detail: dict[str, Any] | None = None, error: str | None = None) -> StepRecord:
    return StepRecord(
        incident_id=INCIDENT, position=position, name=name, action=action,
        on_failure="continue" if action == "collect_cloudtrail" else "halt",
        status=status,  # type: ignore[arg-type]
        started_at=STARTED if status != "pending" else None,
        ended_at=CONTAINED if status in ("done", "failed") else None,
        detail=detail or {}, error=error,
    )


SNAPSHOT = {"user_name": "alice", "has_mfa": False, "mfa_devices": [],
            "aws_quarantine": [QUARANTINE],
            "access_keys": [{"AccessKeyId": KEY, "Status": "Inactive"}]}
EVIDENCE = {
    "events": 7, "regions": ["eu-west-1", "us-east-1"], "regions_failed": {},
    "path": "/state/incidents/inc/cloudtrail.jsonl", "sha256": "ab" * 32,
    "temporary_keys": [{"access_key_id": "ASIAEXAMPLETEMP00001", "events": 2,
                        "regions_failed": {}}],
    "roles_assumed": ["arn:aws:iam::123456789012:role/deploy"],
    "summary": {
        "events": 7, "by_event_name": {"CreateUser": 1, "AttachUserPolicy": 1, "ListUsers": 5},
        "source_ips": {"198.51.100.23": 7},
        "first_event": "2026-03-01T11:00:00Z", "last_event": "2026-03-01T11:30:00Z",
        "high_risk": [
            {"eventName": "CreateUser", "eventTime": "2026-03-01T11:10:00Z",
             "region": "us-east-1", "sourceIPAddress": "198.51.100.23", "accessKeyId": KEY},
            {"eventName": "AttachUserPolicy", "eventTime": "2026-03-01T11:11:00Z",
             "region": "us-east-1", "sourceIPAddress": "198.51.100.23", "accessKeyId": KEY},
        ],
        "high_risk_total": 2,
    },
}
REPLACEMENT = {"access_key_id": NEW_KEY, "secret_ref": SECRET_ARN, "deleted_compromised": False}
FAILURE = "step replace-key failed: alice already has 2 access keys and evidence collection " \
          "has not finished"


def completed_steps() -> tuple[StepRecord, ...]:
    return (
        _step(0, "identify", "identify", detail={"user_name": "alice", "account_id": ACCOUNT}),
        _step(1, "disable-key", "disable_access_key", detail={"status": "Inactive"}),
        _step(2, "revoke-sessions", "attach_deny_policy", detail={"snapshot": SNAPSHOT}),
        _step(3, "collect-evidence", "collect_cloudtrail", detail=EVIDENCE),
        _step(4, "replace-key", "replace_access_key", detail=REPLACEMENT),
        _step(5, "notify", "notify", status="running"),
    )


def halted_steps() -> tuple[StepRecord, ...]:
    done = completed_steps()[:4]
    return (*done, _step(4, "replace-key", "replace_access_key", status="failed",
                         error=FAILURE),
            _step(5, "notify", "notify", status="pending"))


INC = Incident(INCIDENT, KEY, "compromised-key", STARTED)
TARGET = Target("alice", ACCOUNT)


def build_notice(kind: Literal["completed", "halted"], incident: Incident,
                 target: Target | None, steps: Sequence[StepRecord], *,
                 contained_at: datetime | None, failing_step: str | None = None) -> Notice:
    """The notice of an incident whose journal holds `steps`, seen through its view."""
    record = IncidentRecord(
        id=incident.id, access_key_id=incident.access_key_id,
        playbook={"name": incident.playbook}, status=kind, started_at=incident.started_at,
        updated_at=incident.started_at, source="cli", options={}, contained_at=contained_at,
        user_name=target.user_name if target else None,
        account_id=target.account_id if target else None,
    )
    return notice_of_view(kind, IncidentView.of(record, list(steps)), failing_step=failing_step)


@pytest.fixture
def completed() -> Notice:
    return build_notice("completed", INC, TARGET, completed_steps(), contained_at=CONTAINED)


@pytest.fixture
def halted() -> Notice:
    return build_notice("halted", INC, TARGET, halted_steps(), contained_at=CONTAINED,
                        failing_step="replace-key")


def _actions(notice: Notice) -> str:
    return "\n".join(notice.next_actions)


# --------------------------------------------------------------------------- build_notice


def test_completed_notice_derives_its_fields_from_the_step_details(completed: Notice) -> None:
    """Evidence, replacement, MFA and AWS quarantine come from the steps' journaled details."""
    assert completed.kind == "completed"
    assert (completed.incident_id, completed.access_key_id) == (INCIDENT, KEY)
    assert (completed.user_name, completed.account_id) == ("alice", ACCOUNT)
    assert (completed.started_at, completed.contained_at) == (STARTED, CONTAINED)
    assert completed.steps[0] == ("identify", "done", None)
    assert [s[0] for s in completed.steps] == [
        "identify", "disable-key", "revoke-sessions", "collect-evidence", "replace-key", "notify"]
    assert completed.evidence is not None
    assert completed.evidence.to_json()["events"] == 7
    assert completed.evidence.to_json()["sha256"] == "ab" * 32
    assert completed.evidence.to_json()["regions"] == ["eu-west-1", "us-east-1"]
    assert [e["eventName"] for e in completed.evidence.to_json()["high_risk"]] == [
        "CreateUser", "AttachUserPolicy"]
    assert completed.evidence.to_json()["temporary_keys"] == ["ASIAEXAMPLETEMP00001"]
    assert completed.evidence.to_json()["roles_assumed"] == [
        "arn:aws:iam::123456789012:role/deploy"]
    assert completed.replacement is not None
    assert completed.replacement.to_detail()["access_key_id"] == NEW_KEY
    assert completed.replacement.to_detail()["secret_ref"] == SECRET_ARN
    assert completed.has_mfa is False
    assert completed.aws_quarantine == (QUARANTINE,)
    assert completed.failing_step is None


def test_completed_next_actions_say_what_the_humans_must_do(completed: Notice) -> None:
    """Next actions name the new key and its secret ARN, the missing MFA, the high-risk
    actions, temporary keys and roles, deleting the old key, and AWS's quarantine."""
    text = _actions(completed)
    update = next(a for a in completed.next_actions if "applications" in a)
    assert NEW_KEY in update
    assert SECRET_ARN in update
    assert "alice has no MFA device: enable one" in text
    risky = next(a for a in completed.next_actions if "high-risk" in a)
    assert "2 high-risk actions" in risky
    assert "CreateUser" in risky
    assert "AttachUserPolicy" in risky
    assert "ASIAEXAMPLETEMP00001" in text
    assert "role/deploy" in text
    assert f"Delete {KEY}, the old key" in text
    quarantine = next(a for a in completed.next_actions if QUARANTINE in a)
    assert "replacement key inherits its denials" in quarantine
    assert "support case" in quarantine
    assert "never detach it yourself" in quarantine
    assert "respond resume" not in text


def test_mfa_present_asks_to_confirm_the_device_is_theirs() -> None:
    """A user with MFA is told to confirm the device is theirs, not to enable one."""
    steps = list(completed_steps())
    steps[2] = replace(steps[2], detail={"snapshot": {**SNAPSHOT, "has_mfa": True}})
    notice = build_notice("completed", INC, TARGET, steps, contained_at=CONTAINED)
    assert notice.has_mfa is True
    assert "alice has MFA: confirm" in _actions(notice)
    assert "no MFA device" not in _actions(notice)


def test_no_high_risk_no_quarantine_and_deleted_key() -> None:
    """Clean evidence says so; a deleted old key is not to be deleted again; no quarantine
    line when AWS attached nothing."""
    steps = list(completed_steps())
    steps[2] = replace(steps[2], detail={"snapshot": {**SNAPSHOT, "aws_quarantine": []}})
    clean = {**EVIDENCE, "temporary_keys": [], "roles_assumed": [],
             "summary": {"high_risk": [], "high_risk_total": 0}}
    steps[3] = replace(steps[3], detail=clean)
    steps[4] = replace(steps[4], detail={**REPLACEMENT, "deleted_compromised": True})
    notice = build_notice("completed", INC, TARGET, steps, contained_at=CONTAINED)
    text = _actions(notice)
    assert "no high-risk actions found" in text
    assert f"Delete {KEY}" not in text
    assert "AWS already attached" not in text
    assert notice.aws_quarantine == ()


def test_steps_are_found_by_action_not_by_name() -> None:
    """A playbook that renames its steps still yields evidence, replacement and MFA."""
    steps = [replace(s, name=f"custom-{s.position}") for s in completed_steps()]
    notice = build_notice("completed", INC, TARGET, steps, contained_at=CONTAINED)
    assert notice.replacement is not None
    assert notice.evidence is not None
    assert notice.has_mfa is False
    assert notice.aws_quarantine == (QUARANTINE,)


def test_without_replacement_or_evidence() -> None:
    """No replacement step done and evidence failed: the humans are told both, and MFA is
    unknown when no snapshot exists."""
    steps = [
        _step(0, "identify", "identify"),
        _step(1, "disable-key", "disable_access_key"),
        _step(2, "collect-evidence", "collect_cloudtrail", status="failed",
              error="CloudTrail lookup failed in every region"),
        _step(3, "replace-key", "replace_access_key", status="skipped"),
    ]
    notice = build_notice("completed", INC, TARGET, steps, contained_at=CONTAINED)
    assert (notice.replacement, notice.evidence, notice.has_mfa) == (None, None, None)
    text = _actions(notice)
    assert "No replacement key was issued" in text
    assert "Evidence collection failed (CloudTrail lookup failed in every region)" in text
    assert "check whether alice has an MFA device" in text
    assert f"Delete {KEY}, the old key" in text


def test_halted_notice_names_the_failing_step_and_how_to_resume(halted: Notice) -> None:
    """A halted notice names the failing step and its error, `respond resume <id>`, and the
    containment reached so far."""
    assert halted.kind == "halted"
    assert halted.failing_step == "replace-key"
    assert ("replace-key", "failed", FAILURE) in halted.steps
    assert halted.replacement is None
    first = halted.next_actions[0]
    assert "replace-key" in first
    assert FAILURE in first
    assert f"`respond resume {INCIDENT}`" in first
    assert f"key {KEY} disabled: yes" in halted.next_actions[1]
    assert "deny policy attached): yes" in halted.next_actions[1]
    assert f"Delete {KEY}" not in _actions(halted)
    assert "any new key for alice inherits" in _actions(halted)


def test_halted_before_disable_says_the_key_may_be_active() -> None:
    """Halted at disable-key: containment says NO and gives the command to disable by hand;
    the failing step is found when the caller does not name it."""
    steps = [_step(0, "identify", "identify"),
             _step(1, "disable-key", "disable_access_key", status="failed",
                   error="UpdateAccessKey failed: AccessDenied: not authorized"),
             _step(2, "revoke-sessions", "attach_deny_policy", status="pending")]
    notice = build_notice("halted", INC, TARGET, steps, contained_at=None)
    assert notice.failing_step == "disable-key"
    text = _actions(notice)
    assert "disabled: NO" in text
    assert f"--user-name alice --access-key-id {KEY} --status Inactive" in text
    assert f"respond resume {INCIDENT}" in text


# --------------------------------------------------------------------------- rendering


def test_render_text_carries_the_facts(completed: Notice) -> None:
    """Subject (<= 100 chars) and body carry incident, key, user, account, every step's
    status, evidence, the replacement and the next actions."""
    subject, body = render_text(completed)
    assert len(subject) <= 100
    assert "\n" not in subject
    assert KEY in subject
    assert INCIDENT in subject
    for fact in (INCIDENT, KEY, "alice", ACCOUNT, NEW_KEY, SECRET_ARN, "ab" * 32, QUARANTINE,
                 "CreateUser at 2026-03-01T11:10:00Z", "2026-03-01T12:00:02.000Z"):
        assert fact in body
    lines = body.splitlines()
    for name, status, _ in completed.steps:
        if status in {"pending", "running"}:  # not yet happened when the message leaves
            assert name in next(ln for ln in lines if ln.startswith("  still to run: "))
        else:
            assert f"  {name}: {status}" in lines
    assert not any(": pending" in ln for ln in lines)
    for item in completed.todo:  # what to do, then each command alone on its line
        assert any(ln.endswith(item.what) for ln in lines), item.what
        for command in item.commands:
            assert f"       {command}" in lines
    _before(body, ("WHAT WAS SHUT", "WHAT YOU MUST DO", "EVIDENCE"), "STEPS")


def _before(text: str, names: tuple[str, ...], marker: str) -> None:
    for name in names:
        assert text.index(name) < text.index(marker), (name, marker)


def test_render_text_halted(halted: Notice) -> None:
    """A halted subject says HALTED and the step; the body has the resume command."""
    subject, body = render_text(halted)
    assert "HALTED" in subject
    assert "replace-key" in subject
    assert len(subject) <= 100
    assert f"respond resume {INCIDENT}" in body
    assert FAILURE in body


def test_subject_stays_within_sns_limits(completed: Notice) -> None:
    """A long, non-ASCII user name still gives a one-line ASCII subject of <= 100 chars."""
    notice = replace(completed, user_name="ü" * 80 + "\nx")
    subject, _ = render_text(notice)
    assert len(subject) <= 100
    assert subject.isascii()
    assert "\n" not in subject


def test_slack_payload_carries_the_facts(completed: Notice) -> None:
    """The Slack body is JSON with a fallback text and header, fields, steps and next-action
    blocks holding incident, key, user, account and every step's status."""
    payload = slack_payload(completed)
    dumped = json.dumps(payload)
    assert json.loads(dumped) == payload
    assert INCIDENT in payload["text"]
    blocks = payload["blocks"]
    assert [b["type"] for b in blocks] == ["header"] + ["section"] * (len(blocks) - 1)
    header = blocks[0]["text"]
    assert header["type"] == "plain_text"
    assert len(header["text"]) <= 150
    assert blocks[1]["text"]["text"].startswith("*CONTAINED: ")  # the story's headline
    assert len(blocks[-1]["fields"]) <= 10
    for fact in (INCIDENT, KEY, "alice", ACCOUNT, NEW_KEY, SECRET_ARN, QUARANTINE):
        assert fact in dumped
    titles = {b["text"]["text"].split("\n", 1)[0]: b["text"]["text"] for b in blocks[2:-1]}
    assert list(titles) == ["*WHAT THE ATTACKER DID*", "*WHAT WAS SHUT*", "*WHAT YOU MUST DO*",
                            "*EVIDENCE*",
                            "*STEPS*"]
    for name, _, _ in completed.steps:
        assert name in titles["*STEPS*"]
    assert "no MFA device" in titles["*WHAT YOU MUST DO*"]


def test_slack_payload_escapes_mrkdwn_control_characters(completed: Notice) -> None:
    """Text from errors cannot inject Slack links or mentions (<, >, & escaped)."""
    notice = replace(completed, steps=(("notify", "failed", "<!channel> & <http://evil|x>"),))
    steps = next(b["text"]["text"] for b in slack_payload(notice)["blocks"]
                 if b.get("text", {}).get("text", "").startswith("*STEPS*"))
    assert "&lt;!channel&gt; &amp; &lt;http://evil|x&gt;" in steps
    assert "<!channel>" not in steps


def test_a_secret_in_a_step_error_never_survives(completed: Notice) -> None:
    """A secret-shaped string in a step error is scrubbed from the notice, the text and the
    Slack payload, even when the Notice was built without build_notice's own scrubbing."""
    steps = list(halted_steps())
    steps[4] = replace(steps[4], error=f"boom: secret {SECRET} leaked")
    built = build_notice("halted", INC, TARGET, steps, contained_at=CONTAINED)
    raw = replace(completed, steps=(("replace-key", "failed", f"secret {SECRET}"),),
                  next_actions=(f"do not paste {SECRET}",))
    for notice in (built, raw):
        subject, body = render_text(notice)
        dumped = json.dumps(slack_payload(notice))
        for rendered in (subject, body, dumped):
            assert SECRET not in rendered
        assert "redacted" in body
    assert SECRET not in repr(built)


# --------------------------------------------------------------------------- SNS


@pytest.fixture
def subscriber() -> Iterator[Pager]:
    """An SNS topic with an SQS queue subscribed (envelope delivery), in-process moto."""
    with mock_aws():
        yield make_pager(boto3.Session(region_name=REGION))


def _api() -> Api:
    return Api(boto3.Session(region_name=REGION), RetryPolicy(initial_seconds=0, max_seconds=0))


def test_sns_delivers_subject_and_message(subscriber: Pager, completed: Notice) -> None:
    """publish_sns reaches a subscribed queue with the rendered subject and body."""
    message_id = publish_sns(_api(), subscriber.topic_arn, completed)
    (envelope,) = subscriber.messages()
    subject, body = render_text(completed)
    assert envelope["MessageId"] == message_id
    assert envelope["Subject"] == subject
    assert envelope["Message"] == body
    for fact in (INCIDENT, KEY, "alice", ACCOUNT, NEW_KEY, SECRET_ARN):
        assert fact in envelope["Message"]


def test_sns_to_a_missing_topic_raises_aws_call_failed(
    subscriber: Pager, completed: Notice
) -> None:
    """A topic that does not exist fails as AwsCallFailed (what the notify step catches)."""
    missing = subscriber.topic_arn + "-gone"
    with pytest.raises(AwsCallFailed) as caught:
        publish_sns(_api(), missing, completed)
    assert caught.value.operation == "Publish"
    assert subscriber.messages() == []


# --------------------------------------------------------------------------- Slack


@dataclass
class Hook:
    """A local Slack stand-in: records POSTs, answers with queued statuses (then 200)."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A webhook server on 127.0.0.1 (free port) in a thread, shut down after the test."""
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.headers.append(dict(self.headers.items()))
            state.bodies.append(json.loads(self.rfile.read(length)))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"invalid_payload")

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T0001/B0001/s3cr3tT0k3n"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def _assert_no_url(exc: BaseException, url: str) -> None:
    seen: BaseException | None = exc
    while seen is not None:
        for text in (str(seen), repr(seen)):
            assert url not in text
            assert "s3cr3tT0k3n" not in text
            assert "/services/" not in text
        seen = seen.__cause__ or seen.__context__


def test_slack_delivers_once(hook: Hook, completed: Notice) -> None:
    """One POST of the Slack payload as application/json; returns the HTTP status."""
    assert post_slack(hook.url, completed, retry=FAST_RETRY) == 200
    assert hook.bodies == [slack_payload(completed)]
    assert hook.headers[0]["Content-Type"] == "application/json"


def test_slack_5xx_and_429_are_retried(hook: Hook, completed: Notice) -> None:
    """500, 500 then 200: delivered, three requests seen; 429 is retried too."""
    hook.statuses = [500, 500]
    assert post_slack(hook.url, completed, retry=FAST_RETRY) == 200
    assert len(hook.bodies) == 3
    hook.statuses = [429]
    assert post_slack(hook.url, completed, retry=FAST_RETRY) == 200
    assert len(hook.bodies) == 5


def test_slack_4xx_is_not_retried(hook: Hook, completed: Notice) -> None:
    """A 400 fails at once (one request) with NotificationError naming the status, not
    the URL."""
    hook.statuses = [400]
    with pytest.raises(NotificationError) as caught:
        post_slack(hook.url, completed, retry=FAST_RETRY)
    assert len(hook.bodies) == 1
    assert caught.value.channel == "slack"
    assert "400" in str(caught.value)
    assert "Slack webhook" in str(caught.value)
    _assert_no_url(caught.value, hook.url)


def test_slack_redirect_is_not_followed(hook: Hook, completed: Notice) -> None:
    """A redirect is a failure after one request: the post is never re-sent elsewhere."""
    hook.statuses = [302]
    with pytest.raises(NotificationError) as caught:
        post_slack(hook.url, completed, retry=FAST_RETRY)
    assert len(hook.bodies) == 1
    assert "302" in str(caught.value)


def test_slack_retries_exhausted_gives_notification_error(
    hook: Hook, completed: Notice
) -> None:
    """A webhook that keeps answering 503 is tried max_attempts times, then gives up."""
    hook.statuses = [503] * 10
    with pytest.raises(NotificationError) as caught:
        post_slack(hook.url, completed, retry=RetryPolicy(3, 0, 0))
    assert len(hook.bodies) == 3
    assert "503" in str(caught.value)
    _assert_no_url(caught.value, hook.url)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_slack_unreachable_gives_notification_error(completed: Notice) -> None:
    """Connection refused on every attempt ends in NotificationError without the URL."""
    url = f"http://127.0.0.1:{_closed_port()}/services/T0001/B0001/s3cr3tT0k3n"
    with pytest.raises(NotificationError) as caught:
        post_slack(url, completed, retry=FAST_RETRY)
    assert caught.value.channel == "slack"
    assert f"after {FAST_RETRY.max_attempts} attempts" in str(caught.value)
    _assert_no_url(caught.value, url)


def test_slack_timeout_is_retried_then_reported(completed: Notice) -> None:
    """A server that accepts but never answers times out on each attempt, then fails."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/services/T0001/B0001/s3cr3tT0k3n"
        with pytest.raises(NotificationError) as caught:
            post_slack(url, completed, retry=RetryPolicy(2, 0, 0), timeout=0.05)
    assert "after 2 attempts" in str(caught.value)
    _assert_no_url(caught.value, url)


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "ftp://hooks.example/services/x", "hooks.slack.com/services/x",
    "http:///services/x",
])
def test_slack_rejects_non_http_urls(url: str, completed: Notice) -> None:
    """Only http(s) URLs are accepted; the ValueError does not echo the URL."""
    with pytest.raises(ValueError, match="http") as caught:
        post_slack(url, completed, retry=FAST_RETRY)
    assert url not in str(caught.value)


def test_a_rolled_back_incident_is_told_as_undone_not_to_resume() -> None:
    """A halted incident later rolled back: the next actions say the containment was
    undone and why, with what AWS showed; no `respond resume`, no move to a new key."""
    rollback = _step(6, "rollback", "rollback_containment", detail={
        "reason": "a fixture key", "key_status": "Active", "deny_removed": True,
        "reasons": [{"at": "2026-03-01T13:00:00Z", "reason": "a fixture key"}],
        "left_alone": [], "verified_at": "2026-03-01T13:00:01Z"})
    notice = build_notice("halted", INC, TARGET, [*halted_steps(), rollback],
                          contained_at=CONTAINED, failing_step="replace-key")
    text = _actions(notice)
    assert notice.rolled_back is not None
    assert "The containment was undone" in text
    assert "a fixture key (2026-03-01T13:00:00Z)" in text
    assert f"key {KEY} Active, session deny removed" in text
    assert "respond resume" not in text
    assert "Update the applications" not in text


def test_a_refused_high_risk_call_is_marked_in_the_sns_text() -> None:
    """An errorCode on a high-risk entry (an older journal: no `refused` key) is shown as
    refused in the SNS body's list and in the next action that names the kinds."""
    steps = list(completed_steps())
    summary = dict(EVIDENCE["summary"])  # type: ignore[call-overload]
    summary["high_risk"] = [{**summary["high_risk"][1], "errorCode": "AccessDenied"}]
    steps[3] = replace(steps[3], detail={**EVIDENCE, "summary": summary})
    notice = build_notice("completed", INC, TARGET, steps, contained_at=CONTAINED)
    _, body = render_text(notice)
    assert "AttachUserPolicy (refused: AccessDenied) at 2026-03-01T11:11:00Z" in body
    assert "AttachUserPolicy (refused: AccessDenied)" in _actions(notice)
