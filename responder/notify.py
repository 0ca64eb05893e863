"""What the humans are told, and the two ways of telling them (SNS, Slack).

One Notice is built from the journal's step records, so the SNS message, the Slack
post and the report's next actions say the same thing. No secret can be in it (the
journal holds none), and every rendering still passes through the redactor.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from responder.aws import Api, ApiCall, RetryPolicy, redact
from responder.context import Incident, Target, iso
from responder.journal import StepRecord


class NotificationError(Exception):
    """A channel could not be reached after retries; never carries the webhook URL."""

    def __init__(self, channel: str, message: str) -> None:
        super().__init__(f"{channel}: {message}")
        self.channel = channel


class _Transient(Exception):
    """A delivery failure worth another attempt (429, 5xx, network)."""


@dataclass(frozen=True)
class Notice:
    kind: Literal["completed", "halted"]
    incident_id: str
    access_key_id: str
    user_name: str | None
    account_id: str | None
    started_at: datetime
    contained_at: datetime | None
    steps: tuple[tuple[str, str, str | None], ...]
    evidence: Mapping[str, Any] | None
    replacement: Mapping[str, Any] | None
    has_mfa: bool | None
    aws_quarantine: tuple[str, ...]
    failing_step: str | None
    next_actions: tuple[str, ...]


def _done(steps: Sequence[StepRecord], action: str) -> StepRecord | None:
    return next((s for s in steps if s.action == action and s.status == "done"), None)


def _next_actions(n: Notice) -> tuple[str, ...]:
    user = n.user_name or "the key's owner"
    actions: list[str] = []
    if n.kind == "halted":
        actions.append(
            f"The response halted at step {n.failing_step}: fix the cause shown, then run "
            f"`respond resume {n.incident_id}`"
        )
        states = {name: status for name, status, _ in n.steps}
        actions.append(
            "Containment so far: key disabled "
            f"{'yes' if states.get('disable-key') == 'done' else 'NO'}, session deny policy "
            f"{'yes' if states.get('revoke-sessions') == 'done' else 'NO'}"
        )
    if n.replacement:
        actions.append(
            f"Update every application that used {n.access_key_id} to the new key "
            f"{n.replacement.get('access_key_id')}; read it from Secrets Manager "
            f"{n.replacement.get('secret_ref')}"
        )
    elif n.kind == "completed":
        actions.append(f"No replacement key was issued: give {user} a new key when needed, "
                       f"and update the applications that used {n.access_key_id}")
    if n.has_mfa is False:
        actions.append(f"{user} has no MFA device: enable one before handing back access")
    elif n.has_mfa:
        actions.append(f"{user} has an MFA device: confirm with them that it is theirs")
    if n.evidence is not None:
        risky = list(n.evidence.get("high_risk") or [])
        if risky:
            names = sorted({str(e.get("eventName")) for e in risky})
            actions.append(f"Review the {len(risky)} high-risk actions found "
                           f"({', '.join(names)}) in the evidence file")
        else:
            actions.append("No high-risk actions were found in the evidence; skim it anyway")
        temporary = [t.get("access_key_id") for t in n.evidence.get("temporary_keys") or []]
        if temporary or n.evidence.get("roles_assumed"):
            actions.append(f"Temporary keys {temporary} and roles "
                           f"{list(n.evidence.get('roles_assumed') or [])} were used: revoke "
                           "those roles' sessions and review what they did")
    if not (n.replacement or {}).get("deleted_compromised"):
        actions.append(f"Delete {n.access_key_id} (Inactive) once forensics no longer need it")
    for policy in n.aws_quarantine:
        actions.append(f"AWS already attached {policy} to {user}: the replacement key inherits "
                       "its denials until the AWS support case says to detach it; do not "
                       "detach it before that")
    return tuple(actions)


def build_notice(
    kind: Literal["completed", "halted"],
    incident: Incident,
    target: Target | None,
    steps: Sequence[StepRecord],
    *,
    contained_at: datetime | None,
    failing_step: str | None = None,
) -> Notice:
    evidence_step = _done(steps, "collect_cloudtrail")
    replacement_step = _done(steps, "replace_access_key")
    deny = _done(steps, "attach_deny_policy")
    snapshot = (deny.detail.get("snapshot") or {}) if deny else {}
    evidence = None
    if evidence_step is not None:
        d = evidence_step.detail
        evidence = {
            "events": d.get("events"), "regions": d.get("regions"),
            "regions_failed": d.get("regions_failed"), "sha256": d.get("sha256"),
            "path": d.get("path"), "temporary_keys": d.get("temporary_keys"),
            "roles_assumed": d.get("roles_assumed"),
            "high_risk": (d.get("summary") or {}).get("high_risk", []),
        }
    replacement = None
    if replacement_step is not None:
        replacement = {k: replacement_step.detail.get(k)
                       for k in ("access_key_id", "secret_ref", "deleted_compromised")}
    draft = Notice(
        kind=kind,
        incident_id=incident.id,
        access_key_id=incident.access_key_id,
        user_name=target.user_name if target else None,
        account_id=target.account_id if target else None,
        started_at=incident.started_at,
        contained_at=contained_at,
        steps=tuple((s.name, s.status, s.error) for s in steps),
        evidence=evidence,
        replacement=replacement,
        has_mfa=snapshot.get("has_mfa") if "has_mfa" in snapshot else None,
        aws_quarantine=tuple(snapshot.get("aws_quarantine") or ()),
        failing_step=failing_step,
        next_actions=(),
    )
    return Notice(**{**draft.__dict__, "next_actions": _next_actions(draft)})


def render_text(notice: Notice) -> tuple[str, str]:
    """(subject, body) for SNS; the subject fits SNS's 100-character limit."""
    verb = "contained" if notice.kind == "completed" else "HALTED"
    subject = f"[aws-key-responder] {notice.access_key_id} {verb} ({notice.incident_id})"[:100]
    lines = [
        f"Incident {notice.incident_id}: compromised access key {notice.access_key_id}",
        f"User: {notice.user_name}   Account: {notice.account_id}",
        f"Started: {iso(notice.started_at)}   Contained: {iso(notice.contained_at)}",
        "",
        "Steps:",
        *[f"  {name}: {status}" + (f" ({error})" if error else "")
          for name, status, error in notice.steps],
    ]
    if notice.evidence:
        lines += ["", f"Evidence: {notice.evidence.get('events')} CloudTrail events, sha256 "
                  f"{notice.evidence.get('sha256')}, file {notice.evidence.get('path')}"]
        lines += [f"  high-risk: {e.get('eventName')} at {e.get('eventTime')} in "
                  f"{e.get('region')} from {e.get('sourceIPAddress')}"
                  for e in notice.evidence.get("high_risk") or []]
    if notice.replacement:
        lines += ["", f"New key: {notice.replacement.get('access_key_id')} "
                  f"(secret in {notice.replacement.get('secret_ref')})"]
    lines += ["", "Next actions:", *[f"  {i}. {a}" for i, a in
                                     enumerate(notice.next_actions, 1)]]
    return str(redact(subject)), str(redact("\n".join(lines)))


def slack_payload(notice: Notice) -> dict[str, Any]:
    """An incoming-webhook body: a fallback text plus blocks."""
    subject, _ = render_text(notice)
    steps = "\n".join(f"• {name}: *{status}*" + (f" — {error}" if error else "")
                      for name, status, error in notice.steps)
    fields = [
        f"*Key*\n`{notice.access_key_id}`", f"*User*\n{notice.user_name}",
        f"*Account*\n{notice.account_id}", f"*Contained*\n{iso(notice.contained_at)}",
    ]
    if notice.replacement:
        fields.append(f"*New key*\n`{notice.replacement.get('access_key_id')}`")
    if notice.evidence:
        fields.append(f"*Evidence*\n{notice.evidence.get('events')} events")
    payload = {
        "text": subject,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": subject[:150]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Steps*\n{steps}"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Next actions*\n" + "\n".join(
                f"{i}. {a}" for i, a in enumerate(notice.next_actions, 1))}},
        ],
    }
    return dict(redact(payload))


def publish_sns(api: Api, topic_arn: str, notice: Notice) -> str:
    subject, body = render_text(notice)
    sent = api.call(ApiCall("sns", "Publish",
                            {"TopicArn": topic_arn, "Subject": subject, "Message": body},
                            mutating=True))
    return str(sent["MessageId"])


def post_slack(url: str, notice: Notice, *, retry: RetryPolicy, timeout: float = 5.0) -> int:
    """POST to a Slack incoming webhook with the one backoff policy; returns the status."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("the Slack webhook must be an http(s) URL")
    body = json.dumps(slack_payload(notice)).encode()

    def attempt() -> int:
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=body, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise _Transient(f"HTTP {exc.code}") from exc
            raise NotificationError("slack", f"Slack webhook refused the message: HTTP "
                                    f"{exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Transient(f"Slack webhook unreachable: {type(reason).__name__}") from exc

    try:
        return int(retry.retrying(lambda e: isinstance(e, _Transient))(attempt))
    except _Transient as exc:
        raise NotificationError("slack", f"{exc} (after {retry.max_attempts} attempts)") from exc
