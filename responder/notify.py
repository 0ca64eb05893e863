"""What the humans are told, and the two ways of telling them (SNS, Slack).

Containment is only half a response: someone still has to move the applications to the
new key, check the user's MFA, read the evidence and leave AWS's own quarantine alone.
One Notice is built from the journal's step records (found by action, not by step name,
so a renamed playbook step still counts), so the SNS message, the Slack post and the
report's next actions say the same thing. No secret should be in it (the journal holds
none), and every rendering still passes through `redact` as a last line of defence.

The Slack webhook URL is itself a credential: it is never logged and never put in an
exception message; failures say "Slack webhook". Slack delivery reuses the one retry
policy (`RetryPolicy.retrying`), so there is a single place that sets backoff numbers.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import Message
from typing import IO, Any, Literal

from responder.aws import Api, ApiCall, RetryPolicy, redact
from responder.context import Incident, Target, iso
from responder.journal import StepRecord

SUBJECT_MAX = 99
"""SNS: subjects must be under 100 characters, ASCII, one line."""
HIGH_RISK_NAMED = 6
"""Distinct high-risk event names spelled out in the next action; the rest are counted."""
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


@dataclass(frozen=True)
class Notice:
    """Everything a notification says, derived once from the journal."""

    kind: Literal["completed", "halted"]
    incident_id: str
    access_key_id: str
    user_name: str | None
    account_id: str | None
    started_at: datetime
    contained_at: datetime | None
    steps: tuple[tuple[str, str, str | None], ...]
    """(step name, status, error) in playbook order."""
    evidence: Mapping[str, Any] | None
    """events, regions, regions_failed, sha256, path, high_risk, high_risk_total,
    temporary_keys, roles_assumed; None when evidence collection did not finish."""
    replacement: Mapping[str, Any] | None
    """access_key_id, secret_ref, deleted_compromised; None when no key was issued."""
    has_mfa: bool | None
    aws_quarantine: tuple[str, ...]
    failing_step: str | None
    next_actions: tuple[str, ...]


# --------------------------------------------------------------------------- building


def _by_action(steps: Sequence[StepRecord], action: str) -> StepRecord | None:
    return next((s for s in steps if s.action == action), None)


def _done_detail(steps: Sequence[StepRecord], action: str) -> Mapping[str, Any] | None:
    record = _by_action(steps, action)
    return record.detail if record is not None and record.status == "done" else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _evidence(detail: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if detail is None:
        return None
    summary = _mapping(detail.get("summary"))
    high_risk = [dict(e) for e in _list(summary.get("high_risk")) if isinstance(e, Mapping)]
    total = summary.get("high_risk_total")
    return {
        "events": detail.get("events"),
        "regions": _list(detail.get("regions")),
        "regions_failed": dict(_mapping(detail.get("regions_failed"))),
        "sha256": detail.get("sha256"),
        "path": detail.get("path"),
        "high_risk": high_risk,
        "high_risk_total": total if isinstance(total, int) else len(high_risk),
        "temporary_keys": [
            str(t.get("access_key_id")) if isinstance(t, Mapping) else str(t)
            for t in _list(detail.get("temporary_keys"))
        ],
        "roles_assumed": [str(r) for r in _list(detail.get("roles_assumed"))],
    }


def _replacement(detail: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if detail is None or not detail.get("access_key_id"):
        return None
    return {
        "access_key_id": detail.get("access_key_id"),
        "secret_ref": detail.get("secret_ref"),
        "deleted_compromised": bool(detail.get("deleted_compromised")),
    }


def _names(events: Sequence[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for event in events:
        name = str(event.get("eventName"))
        counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts, key=lambda n: (-counts[n], n))
    shown = [n if counts[n] == 1 else f"{n} x{counts[n]}" for n in ranked[:HIGH_RISK_NAMED]]
    if len(ranked) > HIGH_RISK_NAMED:
        shown.append(f"and {len(ranked) - HIGH_RISK_NAMED} more kinds")
    return ", ".join(shown)


def _halted_actions(n: Notice, steps: Sequence[StepRecord]) -> list[str]:
    failing = next((s for s in steps if s.name == n.failing_step), None)
    why = f" ({failing.error})" if failing is not None and failing.error else ""
    disable = _by_action(steps, "disable_access_key")
    disabled = n.contained_at is not None or (disable is not None and disable.status == "done")
    denied = _done_detail(steps, "attach_deny_policy") is not None
    actions = [
        f"The response halted at step {n.failing_step or 'unknown'}{why}: fix the cause, "
        f"then run `respond resume {n.incident_id}` to continue from that step",
        f"Containment as it stands: key {n.access_key_id} disabled: "
        f"{'yes' if disabled else 'NO'}; older sessions denied (deny policy attached): "
        f"{'yes' if denied else 'NO'}",
    ]
    if not disabled:
        command = (f"`aws iam update-access-key --user-name {n.user_name} --access-key-id "
                   f"{n.access_key_id} --status Inactive`" if n.user_name else
                   "`aws iam update-access-key ... --status Inactive`")
        actions.append(f"{n.access_key_id} may still be ACTIVE: resume now, or disable it by "
                       f"hand with {command}")
    elif not denied:
        actions.append(f"Sessions minted with {n.access_key_id} before it was disabled still "
                       f"work until the deny policy is attached: resume soon")
    return actions


def _evidence_actions(n: Notice, evidence_step: StepRecord | None) -> list[str]:
    actions: list[str] = []
    if n.evidence is not None:
        risky = list(n.evidence.get("high_risk") or [])
        total = int(n.evidence.get("high_risk_total") or len(risky))
        if total:
            actions.append(f"Review the {total} high-risk actions found ({_names(risky)}) in "
                           f"the evidence file {n.evidence.get('path')}")
        else:
            actions.append("Evidence: no high-risk actions found; still skim the evidence file "
                           f"{n.evidence.get('path')}")
        temporary = list(n.evidence.get("temporary_keys") or [])
        roles = list(n.evidence.get("roles_assumed") or [])
        if temporary:
            actions.append(f"Review what the temporary keys minted with {n.access_key_id} did "
                           f"({', '.join(temporary)}); they are in the evidence file")
        if roles:
            actions.append(f"Review the roles the key assumed ({', '.join(roles)}) and "
                           "revoke their older sessions")
        failed = dict(n.evidence.get("regions_failed") or {})
        if failed:
            actions.append(f"CloudTrail could not be read in {len(failed)} regions "
                           f"({', '.join(sorted(failed))}): review them by hand")
    elif evidence_step is not None and evidence_step.status == "failed":
        actions.append(f"Evidence collection failed ({evidence_step.error}): review CloudTrail "
                       f"for {n.access_key_id} by hand")
    return actions


def _next_actions(n: Notice, steps: Sequence[StepRecord]) -> tuple[str, ...]:
    user = n.user_name or "the key's owner"
    actions: list[str] = []
    if n.kind == "halted":
        actions += _halted_actions(n, steps)
    if n.replacement:
        actions.append(
            f"Update the applications that used {n.access_key_id} to the new key "
            f"{n.replacement.get('access_key_id')}; read it from Secrets Manager secret "
            f"{n.replacement.get('secret_ref')}"
        )
    elif n.kind == "completed":
        actions.append(f"No replacement key was issued: update the applications that used "
                       f"{n.access_key_id}, and give {user} a new key only if they need one")
    if n.has_mfa is False:
        actions.append(f"Verify MFA: {user} has no MFA device: enable one before handing "
                       "back access")
    elif n.has_mfa is True:
        actions.append(f"Verify MFA: {user} has MFA: confirm with them that the device is "
                       "theirs and was not added by the attacker")
    else:
        actions.append(f"Verify MFA: the IAM snapshot was not taken; check whether {user} "
                       "has an MFA device and that it is theirs")
    actions += _evidence_actions(n, _by_action(steps, "collect_cloudtrail"))
    if n.kind == "completed" and not (n.replacement or {}).get("deleted_compromised"):
        actions.append(f"Delete {n.access_key_id}, the old key, once forensics are done (if "
                       "it still exists)")
    new_key = "the replacement key" if n.replacement else f"any new key for {user}"
    actions += [
        f"AWS already attached {policy} to {user}: {new_key} inherits its denials until the "
        "AWS support case says to detach it; never detach it yourself before that"
        for policy in n.aws_quarantine
    ]
    return tuple(str(redact(a)) for a in actions)


def build_notice(
    kind: Literal["completed", "halted"],
    incident: Incident,
    target: Target | None,
    steps: Sequence[StepRecord],
    *,
    contained_at: datetime | None,
    failing_step: str | None = None,
) -> Notice:
    """The notice for an incident, from its journaled steps (found by action)."""
    ordered = sorted(steps, key=lambda s: s.position)
    deny = _mapping(_mapping(_done_detail(ordered, "attach_deny_policy")).get("snapshot"))
    after = _mapping(_mapping(_done_detail(ordered, "replace_access_key")).get("snapshot_after"))
    has_mfa = deny.get("has_mfa", after.get("has_mfa"))
    quarantine = dict.fromkeys(
        str(p) for p in [*_list(deny.get("aws_quarantine")), *_list(after.get("aws_quarantine"))]
    )
    if kind == "halted" and failing_step is None:
        failing_step = next((s.name for s in ordered if s.status == "failed"), None)
    draft = Notice(
        kind=kind,
        incident_id=incident.id,
        access_key_id=incident.access_key_id,
        user_name=target.user_name if target else None,
        account_id=target.account_id if target else None,
        started_at=incident.started_at,
        contained_at=contained_at,
        steps=tuple(
            (s.name, s.status, None if s.error is None else str(redact(s.error)))
            for s in ordered
        ),
        evidence=_evidence(_done_detail(ordered, "collect_cloudtrail")),
        replacement=_replacement(_done_detail(ordered, "replace_access_key")),
        has_mfa=has_mfa if isinstance(has_mfa, bool) else None,
        aws_quarantine=tuple(quarantine),
        failing_step=failing_step,
        next_actions=(),
    )
    return replace(draft, next_actions=_next_actions(draft, ordered))


# --------------------------------------------------------------------------- rendering


def _subject(n: Notice) -> str:
    if n.kind == "completed":
        text = f"[aws-key-responder] {n.access_key_id} contained"
        text += f", user {n.user_name}" if n.user_name else ""
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
    return f"Incident {n.incident_id}: response to access key {n.access_key_id} HALTED at " \
           f"step {n.failing_step}"


def _evidence_line(e: Mapping[str, Any]) -> str:
    failed = len(e.get("regions_failed") or {})
    return (f"{e.get('events')} CloudTrail events from {len(e.get('regions') or [])} regions"
            + (f" ({failed} failed)" if failed else "")
            + f", sha256 {e.get('sha256')}")


def _event_line(e: Mapping[str, Any]) -> str:
    return (f"{e.get('eventName')} at {e.get('eventTime')} in {e.get('region')} from "
            f"{e.get('sourceIPAddress')} with {e.get('accessKeyId')}")


def render_text(notice: Notice) -> tuple[str, str]:
    """(subject, body) for SNS and email; the subject fits SNS's 100-character limit."""
    n = notice
    lines = [
        _headline(n),
        "",
        f"Access key:  {n.access_key_id}",
        f"User:        {n.user_name or 'unknown'}",
        f"Account:     {n.account_id or 'unknown'}",
        f"Started:     {iso(n.started_at)}",
        f"Contained:   {iso(n.contained_at) or 'NOT contained'}",
        "",
        "Steps:",
        *[f"  {name}: {status}" + (f" ({error})" if error else "")
          for name, status, error in n.steps],
    ]
    if n.evidence is not None:
        e = n.evidence
        risky = list(e.get("high_risk") or [])
        total = int(e.get("high_risk_total") or len(risky))
        lines += ["", f"Evidence: {_evidence_line(e)}", f"  file: {e.get('path')}",
                  f"  high-risk actions: {total}"]
        lines += [f"    {_event_line(ev)}" for ev in risky[:HIGH_RISK_LISTED]]
        if total > min(len(risky), HIGH_RISK_LISTED):
            lines.append(f"    ... {total - min(len(risky), HIGH_RISK_LISTED)} more in the file")
        if e.get("temporary_keys"):
            lines.append(f"  temporary keys: {', '.join(e['temporary_keys'])}")
        if e.get("roles_assumed"):
            lines.append(f"  roles assumed: {', '.join(e['roles_assumed'])}")
    if n.replacement is not None:
        lines += ["", f"New access key: {n.replacement.get('access_key_id')} (secret in "
                      f"{n.replacement.get('secret_ref')})"]
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
        f"*User*\n{_esc(n.user_name or 'unknown')}",
        f"*Account*\n{_esc(n.account_id or 'unknown')}",
        f"*Contained*\n{iso(n.contained_at) or 'NOT contained'}",
    ]
    if n.replacement is not None:
        fields.append(f"*New key*\n`{_esc(str(n.replacement.get('access_key_id')))}`")
        fields.append(f"*Secret*\n{_esc(str(n.replacement.get('secret_ref')))}")
    if n.evidence is not None:
        fields.append(f"*Evidence*\n{_esc(_evidence_line(n.evidence))}")
    steps = "\n".join(f"• {_esc(name)}: *{_esc(status)}*" + (f" — {_esc(error)}" if error else "")
                      for name, status, error in n.steps)
    actions = "\n".join(f"{i}. {_esc(a)}" for i, a in enumerate(n.next_actions, 1))
    payload = {
        "text": _esc(subject),
        "blocks": [
            {"type": "header",
             "text": {"type": "plain_text", "text": _clip(subject, SLACK_HEADER_MAX)}},
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
