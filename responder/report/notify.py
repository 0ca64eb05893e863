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
from email.message import Message
from typing import IO, Any

from responder.aws import Api, ApiCall, RetryPolicy
from responder.context import iso
from responder.redaction import redact
from responder.report import terminal as report_terminal
from responder.report.model import IncidentDocument, ReportExtras
from responder.report.notice_model import Notice
from responder.report.story import Story, story_of
from responder.report.todo import MANUAL

SUBJECT_MAX = 99
"""SNS: subjects must be under 100 characters, ASCII, one line."""
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
    """The message's first line: what kind of message it is (the story's headline
    follows it, the same as in the terminal and the reports)."""
    if n.kind == "sweep":
        found = n.sweep.new_events if n.sweep else 0
        return (f"Incident {n.incident_id}: a sweep found {found} events of "
                f"{n.access_key_id} that CloudTrail delivered after the response; what they "
                "opened is contained (see below)")
    if n.kind == "completed":
        return f"Incident {n.incident_id}: access key {n.access_key_id} contained, playbook " \
               "completed"
    return f"Incident {n.incident_id}: response to access key {n.access_key_id} HALTED at " \
           f"step {n.failing_step}"


def _told(n: Notice) -> Story:
    """The story the message tells; a notice made by hand (tests) gets a bare one."""
    return n.story if n.story is not None else story_of(IncidentDocument(
        incident_id=n.incident_id, access_key_id=n.access_key_id, user_name=n.user_name,
        account_id=n.account_id, contained_at=iso(n.contained_at), status=n.kind),
        ReportExtras(todo=n.todo))


def _sections(n: Notice, told: Story) -> list[tuple[str, list[str]]]:
    """The story's sections as titled blocks of plain lines, in the story's order; the
    steps and the next actions as the notice holds them (the same view made both)."""
    evidence = list(told.evidence.lines) if told.evidence is not None else []
    later = [name for name, status, _ in n.steps if status in PENDING]
    steps = [f"{name}: {status}" + (f" ({error})" if error else "")
             for name, status, error in n.steps if status not in PENDING]
    steps += [f"still to run: {', '.join(later)}"] if later else []
    todo = [line[2:] for line in report_terminal.todo(n.todo)] if n.todo else \
        [f"{i}. {a}" for i, a in enumerate(n.next_actions, 1)]
    return [("WHAT THE ATTACKER DID", [d.line for d in told.did]),
            ("WHAT WAS SHUT", list(told.shut)),
            ("CREDENTIALS THE ATTACKER READ — rotate each", list(told.read)),
            ("ACCESS GRANTED OUTSIDE THE ACCOUNT", list(told.granted)),
            (TODO, todo), ("EVIDENCE", evidence), ("STEPS", steps),
            ("HARDENING", list(told.hardening))]


TODO = "WHAT YOU MUST DO"
PENDING = frozenset({"pending", "running", "planned"})
"""Steps a message sent mid-run does not report on: they have not happened yet."""


def _facts(n: Notice) -> list[str]:
    return [f"Access key:  {n.access_key_id}",
            f"Session:     {n.session}" if n.session else
            f"User:        {n.user_name or 'unknown'}",
            f"Account:     {n.account_id or 'unknown'}",
            f"Started:     {iso(n.started_at)}",
            f"Contained:   {iso(n.contained_at) or 'NOT contained'}",
            f"Sessions:    issued before {n.sessions_cutoff} are denied" if n.sessions_cutoff
            else "Sessions:    not cut off",
            *([f"New key:     {n.replacement.access_key_id} (secret in "
               f"{n.replacement.secret_ref})"] if n.replacement is not None else [])]


def render_text(notice: Notice) -> tuple[str, str]:
    """(subject, body) for SNS and email; the subject fits SNS's 100-character limit.
    The body tells the story as the terminal and the reports do: headline, what the
    attacker did, what was shut, what to do (each command alone on its line), evidence,
    steps, hardening; then the facts."""
    n, told = notice, _told(notice)
    lines = [_headline(n), "", told.headline, *([told.verified] if told.verified else []),
             *told.alerts, ""]
    for title, items in _sections(n, told):
        if items:
            lines += [title, *(f"  {item}" for item in items), ""]
    lines += _facts(n)
    return str(redact(_subject(n))), str(redact("\n".join(lines)))


def _esc(text: str) -> str:
    """Slack mrkdwn: secrets out first (their marker has brackets), then &, <, > escaped."""
    return str(redact(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_todo(n: Notice) -> str:
    """Numbered; each command in a code block of its own, to copy exactly."""
    out: list[str] = []
    for i, item in enumerate(n.todo, 1):
        out.append(f"{i}. {_esc(item.what)}")
        out += [f"```{_esc(c).replace('```', '` ` `')}```" for c in item.commands]
        out += [f"_{MANUAL}: replace each &lt;placeholder&gt;_"] if item.manual else []
        out += [_esc(item.note)] if item.note else []
    return "\n".join(out)


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, SLACK_TEXT_MAX)}}


def slack_payload(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook body: the same story as every medium (headline, what the
    attacker did, what was shut, what to do), then the facts as fields and the steps."""
    n, told = notice, _told(notice)
    subject, _ = render_text(n)
    fields = [
        f"*Incident*\n{_esc(n.incident_id)}",
        f"*Access key*\n`{_esc(n.access_key_id)}`",
        f"*Session*\n{_esc(n.session)}" if n.session else
        f"*User*\n{_esc(n.user_name or 'unknown')}",
        f"*Account*\n{_esc(n.account_id or 'unknown')}",
        f"*Contained*\n{iso(n.contained_at) or 'NOT contained'}",
    ]
    if n.replacement is not None:
        fields.append(f"*New key*\n`{_esc(str(n.replacement.access_key_id))}`")
        fields.append(f"*Secret*\n{_esc(str(n.replacement.secret_ref))}")
    head = "\n".join([f"*{_esc(told.headline)}*", *([_esc(told.verified)] if told.verified
                                                      else []),
                       *(f"• {_esc(a)}" for a in told.alerts)])
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(subject,
                                                                         SLACK_HEADER_MAX)}},
        _text_block(head)]
    for title, items in _sections(n, told):
        if title == TODO and n.todo:
            blocks.append(_text_block(f"*{title}*\n{_slack_todo(n)}"))
        elif items:
            blocks.append(_text_block(f"*{_esc(title)}*\n"
                                      + "\n".join(f"• {_esc(i)}" for i in items)))
    blocks.append({"type": "section",
                   "fields": [{"type": "mrkdwn", "text": _clip(f, 2000)} for f in fields[:10]]})
    return dict(redact({"text": _esc(subject), "blocks": blocks}))


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
