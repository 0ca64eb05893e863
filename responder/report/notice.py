"""What the humans are told after (or instead of) a completed response: one Notice.

Containment is only half a response: someone still has to move the applications to the
new key, check the user's MFA, read the evidence and leave AWS's own quarantine alone.
One Notice is built from the incident view (facts found by type, not by step name, so a
renamed playbook step still counts), so the SNS message, the Slack post and the report's
next actions say the same thing. No secret should be in it (the journal holds none),
and every line still passes through `redact` as a last line of defence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from responder.redaction import redact

if TYPE_CHECKING:  # types only: importing the steps here would make an import cycle
    from responder.incident.facts import EvidenceCollected, KeyReplaced, SweepFound
    from responder.incident.view import IncidentView

HIGH_RISK_NAMED = 6
"""Distinct high-risk event names spelled out in the next action; the rest are counted."""


@dataclass(frozen=True)
class Notice:
    """Everything a notification says, derived once from the incident view."""

    kind: Literal["completed", "halted", "sweep"]
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
    sessions_cutoff: str | None = None
    """Temporary credentials of the user issued before this time are denied."""
    attacker: Mapping[str, Any] | None = None
    """keys_disabled, principals_quarantined, sessions_revoked (counts) and needs_human
    (the items); None when contain-attacker did not run."""
    session: str | None = None
    """For a temporary key: whose session it is, in words (role app session x)."""
    sweep: Mapping[str, Any] | None = None
    """For a sweep's notice: new_events, new_keys, high_risk, sha256."""


# --------------------------------------------------------------------------- building


def _evidence(facts: EvidenceCollected | None) -> dict[str, Any] | None:
    """The evidence as a notice tells it: counts, where, and the high-risk events."""
    if facts is None:
        return None
    return {
        "events": facts.events,
        "regions": list(facts.regions),
        "regions_failed": dict(facts.regions_failed),
        "sha256": facts.sha256,
        "path": facts.path,
        "high_risk": [dict(e) for e in facts.high_risk],
        "high_risk_total": facts.high_risk_total,
        "temporary_keys": list(facts.temporary_key_ids),
        "roles_assumed": [str(r) for r in facts.roles_assumed],
    }


def _replacement(facts: KeyReplaced | None) -> dict[str, Any] | None:
    if facts is None:
        return None
    return {
        "access_key_id": facts.access_key_id,
        "secret_ref": facts.secret_ref,
        "deleted_compromised": facts.deleted_compromised,
    }


def _cutoff(view: IncidentView) -> str | None:
    revoked = view.sessions_revoked
    if revoked is None or revoked.user_deleted:
        return None
    return revoked.token_issue_time_before


def _attacker(view: IncidentView) -> dict[str, Any] | None:
    facts = view.attacker
    if facts is None:
        return None
    return {
        "keys_disabled": len(facts.keys_disabled),
        "principals_quarantined": len(facts.principals_quarantined),
        "sessions_revoked": sum(len(r.get("sessions") or []) for r in facts.sessions_revoked),
        "needs_human": [dict(item) for item in facts.needs_human],
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


def _halted_actions(n: Notice, view: IncidentView) -> list[str]:
    failing = next((s for s in view.steps if s.name == n.failing_step), None)
    why = f" ({failing.error})" if failing is not None and failing.error else ""
    disabled = n.contained_at is not None or view.key_disabled is not None
    denied = view.sessions_revoked is not None
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


def _evidence_actions(n: Notice, view: IncidentView) -> list[str]:
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
    elif (evidence_step := view.evidence_step) is not None \
            and evidence_step.status == "failed":
        actions.append(f"Evidence collection failed ({evidence_step.error}): review CloudTrail "
                       f"for {n.access_key_id} by hand")
    return actions


def _key_actions(n: Notice, view: IncidentView) -> list[str]:
    """What a long-term key's response leaves to the humans: the new key, MFA, the
    user's own sessions."""
    user = n.user_name or "the key's owner"
    actions: list[str] = []
    if n.kind == "halted":
        actions += _halted_actions(n, view)
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
    if n.sessions_cutoff:
        actions.append(f"{user}'s own temporary credentials (sessions) issued before "
                       f"{n.sessions_cutoff} are denied from now on, theirs as well as the "
                       f"attacker's: anything of theirs that uses one must get a new one "
                       f"after {n.sessions_cutoff}")
    return actions


def _session_actions(n: Notice, view: IncidentView) -> list[str]:
    """What a leaked session's response leaves to the humans: how it was denied, the
    key that minted it, and how the credentials left."""
    found, denied = view.session, view.session_denied
    if found is None:
        return []
    actions: list[str] = []
    if denied is None:
        actions.append(
            f"The session {found.label} ({n.access_key_id}) is NOT denied yet: the response "
            f"halted at {n.failing_step or 'an earlier step'}; run `respond resume "
            f"{n.incident_id}` now" if n.kind == "halted" else
            f"The session {found.label} was not denied: review the incident's steps")
    elif denied.principal_deleted:
        actions.append(f"The {denied.on} {denied.name} no longer exists: the session has no "
                       "permission left")
    elif denied.on == "user":
        actions.append(
            f"{found.user_name}'s temporary credentials issued before "
            f"{denied.token_issue_time_before} are denied ({denied.policy_name}), theirs as "
            f"well as the attacker's; {found.user_name}'s access keys were not touched")
    elif denied.away_from_instance:
        away = denied.away_from_instance
        egress = ", ".join(away.get("egress_ips") or []) or \
            "none known: every use over a public endpoint is denied"
        actions.append(
            f"Instance {found.instance_id} keeps its role {denied.name}; its credentials are "
            f"denied anywhere but from the instance (VPC {away.get('vpc_id')}, address "
            f"{away.get('private_ip')}, egress {egress}). "
            "Find how they left it: require IMDSv2 (`aws ec2 modify-instance-metadata-options "
            f"--instance-id {found.instance_id} --http-tokens required`) and look for SSRF "
            "or a compromise on the instance")
    else:
        instance = (f"; instance {found.instance_id}'s network was not found, so its own "
                    "use of the role is denied too: remove the session from the policy once "
                    "the instance is replaced" if found.instance_id else "")
        actions.append(
            f"Session {denied.session} of role {denied.name} is denied by inline policy "
            f"{denied.policy_name}; the role's other sessions keep working{instance}. Remove "
            "it from the policy once the session has expired (role sessions last 12 hours "
            "at most)")
    if found.minted_by:
        actions.append(f"The session was minted with {found.minted_by} ({found.minted_by_arn}):"
                       f" if that key leaked too, run `respond compromised {found.minted_by}`")
    elif found.principal_type == "IAMUser":
        actions.append(f"CloudTrail did not show which of {found.user_name}'s keys minted the "
                       "session: check their last use (`aws iam list-access-keys --user-name "
                       f"{found.user_name}`); if one leaked, run `respond compromised` on it")
    return actions


def _next_actions(n: Notice, view: IncidentView) -> tuple[str, ...]:
    session = view.session is not None
    actions = _session_actions(n, view) if session else _key_actions(n, view)
    for item in (n.attacker or {}).get("needs_human", []):
        actions.append(f"Undo what the attacker did ({item.get('event_name')} at "
                       f"{item.get('time')} with {item.get('access_key_id')}): "
                       f"{item.get('what')}; `{item.get('undo')}`")
    actions += _evidence_actions(n, view)
    if session:
        return tuple(str(redact(a)) for a in actions)
    user = n.user_name or "the key's owner"
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
    kind: Literal["completed", "halted"], view: IncidentView, *, failing_step: str | None = None
) -> Notice:
    """The notice for an incident as the view shows it now."""
    target = view.target
    draft = Notice(
        kind=kind,
        incident_id=view.id,
        access_key_id=view.access_key_id,
        user_name=target.user_name if target else None,
        account_id=target.account_id if target else None,
        started_at=view.started_at,
        contained_at=view.contained_at,
        steps=tuple(
            (s.name, s.status, None if s.error is None else str(redact(s.error)))
            for s in view.steps
        ),
        evidence=_evidence(view.evidence),
        replacement=_replacement(view.replacement),
        has_mfa=view.has_mfa,
        aws_quarantine=view.aws_quarantine,
        failing_step=failing_step or (view.failing_step if kind == "halted" else None),
        next_actions=(),
        sessions_cutoff=_cutoff(view),
        attacker=_attacker(view),
        session=view.session.label if view.session is not None else None,
    )
    return replace(draft, next_actions=_next_actions(draft, view))


def build_sweep_notice(view: IncidentView, found: SweepFound) -> Notice:
    """What a sweep that found late events tells the humans: how many, what they opened
    and what was shut, what a human must undo."""
    notice = build_notice("completed", view)
    attacker = found.attacker
    risky = [dict(e) for e in found.summary.get("high_risk", []) if isinstance(e, Mapping)]
    actions = [f"Review the {found.new_events} events CloudTrail delivered late "
               f"({_names(risky) or 'none high-risk'}); they are now in the evidence file "
               f"(sha256 {found.sha256})"]
    actions += [f"Review what the temporary key {k} did: the sweep found it minted"
                for k in found.new_keys]
    actions += [f"Undo what the attacker did ({item.get('event_name')} at {item.get('time')} "
                f"with {item.get('access_key_id')}): {item.get('what')}; `{item.get('undo')}`"
                for item in attacker.get("needs_human", []) if isinstance(item, Mapping)]
    return replace(
        notice, kind="sweep",
        attacker={"keys_disabled": len(attacker.get("keys_disabled", [])),
                  "principals_quarantined": len(attacker.get("principals_quarantined", [])),
                  "sessions_revoked": sum(len(r.get("sessions") or [])
                                          for r in attacker.get("sessions_revoked", [])),
                  "needs_human": list(attacker.get("needs_human", []))},
        sweep={"new_events": found.new_events, "new_keys": list(found.new_keys),
               "high_risk": risky, "sha256": found.sha256},
        next_actions=tuple(str(redact(a)) for a in actions))
