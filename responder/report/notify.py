"""The two ways of telling the humans (SNS, Slack): a Notice rendered and delivered.

What is said is decided once, in responder.report.notice; this module only formats it for each
channel and delivers it. Every rendering passes through `redact` as a last line of
defence. The Slack webhook URL is itself a credential: it is never logged and never put in an
exception message; failures say "Slack webhook". Slack delivery reuses the one retry
policy (`RetryPolicy.retrying`), so there is a single place that sets backoff numbers.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import Message
from typing import IO, Any

from responder.aws import Api, ApiCall, RetryPolicy
from responder.context import iso
from responder.redaction import redact
from responder.report import leads as report_leads
from responder.report.notice_model import Notice, NoticeEvidence

SUBJECT_MAX = 99
"""SNS: subjects must be under 100 characters, ASCII, one line."""
HIGH_RISK_LISTED = 20
"""High-risk events listed one per line in the text body; the evidence file has them all."""
SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
"""Slack Block Kit limits: header text 150 characters, section text 3000."""


class NotificationError(Exception):
    """A channel could not be reached after retries; never carries the webhook URL."""

    def __init__(self, channel: str, message: str) -> None:
        super().__init__(f"{channel}: {message}")
        self.channel = channel


class _Transient(Exception):
    """A Slack delivery failure worth another attempt (429, 5xx, network, timeout)."""


# --------------------------------------------------------------------------- rendering


def _subject(n: Notice) -> str:
    if n.kind == "completed":
        text = f"[aws-key-responder] {n.access_key_id} contained"
        text += f", user {n.user_name}" if n.user_name else ""
    elif n.kind == "sweep":
        text = f"[aws-key-responder] {n.access_key_id}: a sweep found " \
               f"{n.sweep.new_events if n.sweep else None} late events"
    else:
        text = f"[aws-key-responder] HALTED at {n.failing_step or 'unknown step'}: " \
               f"{n.access_key_id}"
    text += f" [{n.incident_id}]"
    printable = "".join(c if " " <= c <= "~" else "?" for c in text)
    return printable if len(printable) <= SUBJECT_MAX else printable[: SUBJECT_MAX - 3] + "..."


def _headline(n: Notice) -> str:
    if n.kind == "completed":
        return f"Incident {n.incident_id}: access key {n.access_key_id} contained, playbook " \
               "completed"
    if n.kind == "sweep":
        found = n.sweep.new_events if n.sweep else None
        return (f"Incident {n.incident_id}: a sweep found {found} events of "
                f"{n.access_key_id} that CloudTrail delivered after the response; what they "
                "opened is contained (see below)")
    return f"Incident {n.incident_id}: response to access key {n.access_key_id} HALTED at " \
           f"step {n.failing_step}"


def _evidence_line(e: NoticeEvidence) -> str:
    failed = len(e.regions_failed)
    return (f"{e.events} CloudTrail events from {len(e.regions)} regions"
            + (f" ({failed} failed)" if failed else "")
            + f", sha256 {e.sha256}")


def _event_line(e: Mapping[str, Any]) -> str:
    return (f"{e.get('eventName')} at {e.get('eventTime')} in {e.get('region')} from "
            f"{e.get('sourceIPAddress')} with {e.get('accessKeyId')}")


def _leading(n: Notice) -> list[str]:
    """What a message says first, under its headline: the credentials to rotate (each
    with its command), the principals outside the account let in, what logs again."""
    return report_leads.lines(report_leads.gathered([n.attacker]))


def render_text(notice: Notice) -> tuple[str, str]:
    """(subject, body) for SNS and email; the subject fits SNS's 100-character limit."""
    n = notice
    leading = _leading(n)
    lines = [
        _headline(n),
        "",
        *leading,
        *([""] if leading else []),
        f"Access key:  {n.access_key_id}",
        f"Session:     {n.session}" if n.session else
        f"User:        {n.user_name or 'unknown'}",
        f"Account:     {n.account_id or 'unknown'}",
        f"Started:     {iso(n.started_at)}",
        f"Contained:   {iso(n.contained_at) or 'NOT contained'}",
        f"Sessions:    issued before {n.sessions_cutoff} are denied" if n.sessions_cutoff
        else "Sessions:    not cut off",
        "",
        "Steps:",
        *[f"  {name}: {status}" + (f" ({error})" if error else "")
          for name, status, error in n.steps],
    ]
    if n.evidence is not None:
        e = n.evidence
        risky = e.high_risk
        total = e.high_risk_total or len(risky)
        lines += ["", f"Evidence: {_evidence_line(e)}", f"  file: {e.path}",
                  f"  high-risk actions: {total}"]
        lines += [f"    {_event_line(ev)}" for ev in risky[:HIGH_RISK_LISTED]]
        if total > min(len(risky), HIGH_RISK_LISTED):
            lines.append(f"    ... {total - min(len(risky), HIGH_RISK_LISTED)} more in the file")
        if e.temporary_keys:
            lines.append(f"  temporary keys: {', '.join(e.temporary_keys)}")
        if e.roles_assumed:
            lines.append(f"  roles assumed: {', '.join(e.roles_assumed)}")
    if n.attacker is not None:
        a = n.attacker
        lines += ["", f"Attacker: {a.keys_disabled} keys it created disabled, "
                      f"{a.principals_quarantined} users/roles it created quarantined, "
                      f"{a.sessions_revoked} role sessions it opened denied, "
                      f"{len(a.needs_human)} changes for a human to undo"]
    if n.replacement is not None:
        lines += ["", f"New access key: {n.replacement.access_key_id} (secret in "
                      f"{n.replacement.secret_ref})"]
    if n.aws_quarantine:
        lines += ["", f"AWS quarantine policy attached: {', '.join(n.aws_quarantine)}"]
    lines += ["", "Next actions:",
              *[f"  {i}. {a}" for i, a in enumerate(n.next_actions, 1)]]
    return str(redact(_subject(n))), str(redact("\n".join(lines)))


def _esc(text: str) -> str:
    """Slack mrkdwn: secrets out first (their marker has brackets), then &, <, > escaped."""
    return str(redact(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook body: fallback text plus header, fields, steps, next actions."""
    n = notice
    subject, _ = render_text(n)
    fields = [
        f"*Incident*\n{_esc(n.incident_id)}",
        f"*Status*\n{'contained' if n.kind == 'completed' else 'HALTED'}",
        f"*Access key*\n`{_esc(n.access_key_id)}`",
        f"*Session*\n{_esc(n.session)}" if n.session else
        f"*User*\n{_esc(n.user_name or 'unknown')}",
        f"*Account*\n{_esc(n.account_id or 'unknown')}",
        f"*Contained*\n{iso(n.contained_at) or 'NOT contained'}",
    ]
    if n.replacement is not None:
        fields.append(f"*New key*\n`{_esc(str(n.replacement.access_key_id))}`")
        fields.append(f"*Secret*\n{_esc(str(n.replacement.secret_ref))}")
    if n.evidence is not None:
        fields.append(f"*Evidence*\n{_esc(_evidence_line(n.evidence))}")
    steps = "\n".join(f"• {_esc(name)}: *{_esc(status)}*" + (f" — {_esc(error)}" if error else "")
                      for name, status, error in n.steps)
    actions = "\n".join(f"{i}. {_esc(a)}" for i, a in enumerate(n.next_actions, 1))
    leading = "\n".join(_esc(line) for line in _leading(n))
    payload = {
        "text": _esc(subject),
        "blocks": [
            {"type": "header",
             "text": {"type": "plain_text", "text": _clip(subject, SLACK_HEADER_MAX)}},
            *([{"type": "section", "text": {"type": "mrkdwn",
                                            "text": _clip(leading, SLACK_TEXT_MAX)}}]
              if leading else []),
            {"type": "section",
             "fields": [{"type": "mrkdwn", "text": _clip(f, 2000)} for f in fields[:10]]},
            {"type": "section",
             "text": {"type": "mrkdwn", "text": _clip(f"*Steps*\n{steps}", SLACK_TEXT_MAX)}},
            {"type": "section",
             "text": {"type": "mrkdwn",
                      "text": _clip(f"*Next actions*\n{actions}", SLACK_TEXT_MAX)}},
        ],
    }
    return dict(redact(payload))


# --------------------------------------------------------------------------- delivery


def publish_sns(api: Api, topic_arn: str, notice: Notice) -> str:
    """Publish the text rendering to an SNS topic (journaled by `api`); returns MessageId.

    Raises AwsCallFailed when SNS refuses or stays unavailable after the retry policy.
    """
    subject, body = render_text(notice)
    sent = api.call(ApiCall("sns", "Publish",
                            {"TopicArn": topic_arn, "Subject": subject, "Message": body},
                            mutating=True))
    return str(sent["MessageId"])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Slack never redirects a webhook; following one would resend (or drop) the post."""

    def redirect_request(  # noqa: PLR0917 - the signature is HTTPRedirectHandler's
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def _checked_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("the Slack webhook must be an http:// or https:// URL")
    return url


def _scrub(text: str, url: str) -> str:
    """Server-supplied text, with the webhook URL (or its secret path) replaced."""
    path = urllib.parse.urlsplit(url).path
    for needle in (url, path if len(path) > 1 else None):
        if needle:
            text = text.replace(needle, "<Slack webhook>")
    return str(redact(text))


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _Transient)


def post_slack(url: str, notice: Notice, *, retry: RetryPolicy, timeout: float = 5.0) -> int:
    """POST the notice to a Slack incoming webhook; returns the HTTP status on success.

    429, 5xx, network errors and timeouts are retried under `retry`; any other status
    (4xx, or a redirect) fails at once. Raises NotificationError("slack", ...) when it
    gives up, ValueError for a non-http(s) URL; neither message contains the URL.
    """
    opener = urllib.request.build_opener(_NoRedirect())
    body = json.dumps(slack_payload(notice)).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked to be http(s)
        _checked_url(url), data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "aws-key-responder"},
    )
    attempts = 0

    def attempt() -> int:
        nonlocal attempts
        attempts += 1
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as exc:
            try:
                said = exc.read(200).decode("utf-8", "replace").strip()
            except (OSError, http.client.HTTPException):
                said = ""
            finally:
                exc.close()
            detail = f"HTTP {exc.code}" + (f" {_scrub(said, url)}" if said else "")
            if exc.code == 429 or exc.code >= 500:
                raise _Transient(detail) from None
            raise NotificationError("slack", f"Slack webhook refused the message: {detail}"
                                    ) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            kind = reason if isinstance(reason, str) else type(reason).__name__
            raise _Transient(f"unreachable ({_scrub(str(kind), url)})") from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise _Transient(f"unreachable ({type(exc).__name__})") from None

    try:
        return int(retry.retrying(_is_transient)(attempt))
    except _Transient as exc:
        raise NotificationError(
            "slack", f"Slack webhook not delivered after {attempts} attempts: {exc}"
        ) from None
