"""What the humans are told after (or instead of) a completed response: one Notice.

Containment is only half a response: someone still has to move the applications to the
new key, check the user's MFA, read the evidence and leave AWS's own quarantine alone.
One Notice is built from the incident view (facts found by type, not by step name, so a
renamed playbook step still counts), so the SNS message, the Slack post and the report's
next actions say the same thing. No secret should be in it (the journal holds none),
and every line still passes through `redact` as a last line of defence.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from responder.incident.facts import AttackerContained, EvidenceCollected
from responder.incident.facts_rollback import RolledBack
from responder.incident.shapes import HumanAction, marked, refusal
from responder.redaction import redact
from responder.report import leads as report_leads
from responder.report.incident_document import document_of, extras_of
from responder.report.notice_model import Notice, NoticeAttacker, NoticeEvidence, NoticeSweep
from responder.report.story import scrubbed, story_of
from responder.report.todo import Todo

if TYPE_CHECKING:
    from responder.incident.facts import SweepFound
    from responder.incident.view import IncidentView

HIGH_RISK_NAMED = 6
"""Distinct high-risk event names spelled out in the next action; the rest are counted."""


# --------------------------------------------------------------------------- building


def _evidence(facts: EvidenceCollected | None) -> NoticeEvidence | None:
    if facts is None:
        return None
    return NoticeEvidence(
        events=facts.events, regions=tuple(facts.regions),
        regions_failed=dict(facts.regions_failed), sha256=facts.sha256, path=facts.path,
        high_risk=tuple({**e, "eventName": marked(e)} for e in facts.high_risk),
        high_risk_total=facts.high_risk_total, temporary_keys=facts.temporary_key_ids,
        roles_assumed=tuple(str(r) for r in facts.roles_assumed))


def _cutoff(view: IncidentView) -> str | None:
    revoked = view.sessions_revoked
    if revoked is None or revoked.user_deleted:
        return None
    return revoked.token_issue_time_before


def _attacker(facts: AttackerContained | None,
              leads: report_leads.Leads | None = None) -> NoticeAttacker | None:
    """Counts of what was shut (each denied session of each role), the items to undo,
    and what to say first (`leads`: facts' own unless given)."""
    if facts is None and not leads:
        return None
    facts = facts or AttackerContained()
    told = report_leads.gathered([facts]) if leads is None else leads
    return NoticeAttacker(
        keys_disabled=len(facts.keys_disabled),
        principals_quarantined=len(facts.principals_quarantined),
        sessions_revoked=sum(len(r.sessions) for r in facts.sessions_revoked),
        needs_human=facts.needs_human, refused=facts.refused,
        regions_unread=dict(facts.regions_unread), credentials_read=told.credentials_read,
        granted_to=told.granted_to, restored=told.restored)


def _leads(attacker: NoticeAttacker | None) -> list[Todo]:
    """The first next actions: the credentials to rotate, the outside grants to remove."""
    return report_leads.actions(report_leads.gathered([attacker]))


def aws(*words: str) -> str:
    """A command as a human pastes it: each value one shell word, whatever it holds."""
    return shlex.join(words)


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


def _halted_actions(n: Notice, view: IncidentView) -> list[Todo]:
    failing = next((s for s in view.steps if s.name == n.failing_step), None)
    why = f" ({failing.error})" if failing is not None and failing.error else ""
    disabled = n.contained_at is not None or view.key_disabled is not None
    denied = view.sessions_revoked is not None
    actions = [
        Todo(f"The response halted at step {n.failing_step or 'unknown'}{why}: fix the "
             "cause, then continue from that step", (aws("respond", "resume", n.incident_id),)),
        Todo(f"Containment as it stands: key {n.access_key_id} disabled: "
             f"{'yes' if disabled else 'NO'}; older sessions denied (deny policy attached): "
             f"{'yes' if denied else 'NO'}"),
    ]
    if not disabled:
        actions.append(Todo(
            f"{n.access_key_id} may still be ACTIVE: resume now, or disable it by hand",
            (aws("aws", "iam", "update-access-key", "--user-name", n.user_name or "<user-name>",
                 "--access-key-id", n.access_key_id, "--status", "Inactive"),),
            manual=not n.user_name))
    elif not denied:
        actions.append(Todo(f"Sessions minted with {n.access_key_id} before it was disabled "
                            "still work until the deny policy is attached: resume soon",
                            (aws("respond", "resume", n.incident_id),)))
    return actions


def _evidence_actions(n: Notice, view: IncidentView) -> list[Todo]:
    actions: list[Todo] = []
    if n.evidence is not None:
        risky = n.evidence.high_risk
        total = n.evidence.high_risk_total or len(risky)
        refused = sum(refusal(e) is not None for e in risky)
        if total:
            actions.append(Todo(f"Review the {total} high-risk actions found ({_names(risky)}) "
                                f"in the evidence file {n.evidence.path}" + (
                                    f"; AWS refused {refused} of them (marked refused): they "
                                    "changed nothing" if refused else "")))
        else:
            actions.append(Todo("Evidence: no high-risk actions found; still skim the "
                                f"evidence file {n.evidence.path}"))
        temporary, roles = n.evidence.temporary_keys, n.evidence.roles_assumed
        if temporary:
            actions.append(Todo(f"Review what the temporary keys minted with {n.access_key_id}"
                                f" did ({', '.join(temporary)}); they are in the evidence file"))
        if roles:
            actions.append(Todo(f"Review the roles the key assumed ({', '.join(roles)}) and "
                                "revoke their older sessions"))
        failed = n.evidence.regions_failed
        if unread := (n.attacker.regions_unread if n.attacker is not None else {}):
            actions.append(Todo(
                "Attacker containment may be incomplete: CloudTrail could not be read in "
                f"{', '.join(f'{r} ({e})' for r, e in unread.items())}, so nothing the key "
                "opened there was seen or shut: review those regions by hand, then sweep",
                (aws("respond", "sweep", n.incident_id),)))
        elif failed:
            actions.append(Todo(f"CloudTrail could not be read in {len(failed)} regions "
                                f"({', '.join(sorted(failed))}): review them by hand"))
    elif (evidence_step := view.evidence_step) is not None \
            and evidence_step.status == "failed":
        actions.append(Todo(f"Evidence collection failed ({evidence_step.error}): review "
                            f"CloudTrail for {n.access_key_id} by hand"))
    return actions


def _key_actions(n: Notice, view: IncidentView) -> list[Todo]:
    """What a long-term key's response leaves to the humans: the new key, MFA, the
    user's own sessions."""
    user = n.user_name or "the key's owner"
    actions: list[Todo] = []
    if n.replacement:
        actions.append(Todo(
            f"Update the applications that used {n.access_key_id} to the new key "
            f"{n.replacement.access_key_id}; read it from Secrets Manager secret "
            f"{n.replacement.secret_ref}"))
    elif n.kind == "completed":
        actions.append(Todo(f"No replacement key was issued: update the applications that "
                            f"used {n.access_key_id}, and give {user} a new key only if they "
                            "need one"))
    devices = (aws("aws", "iam", "list-mfa-devices", "--user-name", n.user_name),) \
        if n.user_name else ()
    if n.has_mfa is False:
        actions.append(Todo(f"Verify MFA: {user} has no MFA device: enable one before "
                            "handing back access", devices))
    elif n.has_mfa is True:
        actions.append(Todo(f"Verify MFA: {user} has MFA: confirm with them that the device "
                            "is theirs and was not added by the attacker", devices))
    else:
        actions.append(Todo(f"Verify MFA: the IAM snapshot was not taken; check whether "
                            f"{user} has an MFA device and that it is theirs", devices))
    if n.sessions_cutoff:
        actions.append(Todo(
            f"{user}'s own temporary credentials (sessions) issued before {n.sessions_cutoff}"
            " are denied from now on, theirs as well as the attacker's: anything of theirs "
            f"that uses one must get a new one after {n.sessions_cutoff}"))
    return actions


def _session_actions(n: Notice, view: IncidentView) -> list[Todo]:
    """What a leaked session's response leaves to the humans: how it was denied, the
    key that minted it, and how the credentials left."""
    found, denied = view.session, view.session_denied
    if found is None:
        return []
    actions: list[Todo] = []
    if denied is None:
        actions.append(
            Todo(f"The session {found.label} ({n.access_key_id}) is NOT denied yet: the "
                 f"response halted at {n.failing_step or 'an earlier step'}: resume it now",
                 (aws("respond", "resume", n.incident_id),)) if n.kind == "halted" else
            Todo(f"The session {found.label} was not denied: review the incident's steps"))
    elif denied.principal_deleted:
        actions.append(Todo(f"The {denied.on} {denied.name} no longer exists: the session has"
                            " no permission left"))
    elif denied.on == "user":
        actions.append(Todo(
            f"{found.user_name}'s temporary credentials issued before "
            f"{denied.token_issue_time_before} are denied ({denied.policy_name}), theirs as "
            f"well as the attacker's; {found.user_name}'s access keys were not touched"))
    elif denied.away_from_instance:
        away = denied.away_from_instance
        egress = ", ".join(away.egress_ips) or \
            "none known: every use over a public endpoint is denied"
        actions.append(Todo(
            f"Instance {found.instance_id} keeps its role {denied.name}; its credentials are "
            f"denied anywhere but from the instance (VPC {away.vpc_id}, address "
            f"{away.private_ip}, egress {egress}). Find how they left it: require IMDSv2 "
            "and look for SSRF or a compromise on the instance",
            (aws("aws", "ec2", "modify-instance-metadata-options", "--instance-id",
                 found.instance_id or "<instance-id>", "--http-tokens", "required"),),
            manual=not found.instance_id))
    else:
        instance = (f"; instance {found.instance_id}'s network was not found, so its own "
                    "use of the role is denied too: remove the session from the policy once "
                    "the instance is replaced" if found.instance_id else "")
        actions.append(Todo(
            f"Session {denied.session} of role {denied.name} is denied by inline policy "
            f"{denied.policy_name}; the role's other sessions keep working{instance}. Remove "
            "it from the policy once the session has expired (role sessions last 12 hours "
            "at most)"))
    if found.minted_by:
        actions.append(Todo(f"The session was minted with {found.minted_by} "
                            f"({found.minted_by_arn}): if that key leaked too, respond to it",
                            (aws("respond", "compromised", found.minted_by),)))
    elif found.principal_type == "IAMUser":
        actions.append(Todo(
            f"CloudTrail did not show which of {found.user_name}'s keys minted the session: "
            "check their last use; if one leaked, run `respond compromised` on it",
            (aws("aws", "iam", "list-access-keys", "--user-name", found.user_name or
                 "<user-name>"),), manual=not found.user_name))
    return actions


def _undo(item: HumanAction) -> Todo:
    meaning = f" ({item.meaning})" if item.meaning else ""
    return Todo(f"Undo what the attacker did ({item.event_name} at {item.time} with "
                f"{item.access_key_id}): {item.what}{meaning}",
                (item.undo,) if item.undo else (), manual=item.manual and bool(item.undo),
                note=item.note)


def _rolled_back_actions(n: Notice, rolled: RolledBack) -> list[Todo]:
    """After a rollback: the containment was undone, why, and what AWS showed then."""
    key, new = n.access_key_id, n.replacement
    actions = [Todo(f"The containment was undone: rolled back as a false positive "
                    f"({rolled.why}). AWS re-read at {rolled.verified_at or 'the rollback'}: "
                    f"key {key} {rolled.seen}"),
               *[Todo(f"Not undone: {item}") for item in rolled.left_alone]]
    if new is not None:
        actions.append(Todo(
            f"{key} stays deleted: move the applications that used it to "
            f"{new.access_key_id} (secret {new.secret_ref})" if rolled.key_status == "Deleted"
            else f"{key} works again, so the replacement key {new.access_key_id} is not "
            f"needed: delete it and its secret {new.secret_ref} once nothing uses them"))
    if rolled.key_status not in {"Active", "Deleted"} or not rolled.deny_removed:
        actions.append(Todo("Fix the cause, then run the rollback again to finish it",
                            (aws("respond", "rollback", n.incident_id, "--yes", "--reason",
                                 "<why>"),), manual=True))
    return actions


def _todo(n: Notice, view: IncidentView) -> tuple[Todo, ...]:
    session = view.session is not None
    if n.rolled_back is not None and not session:
        return _redacted(_rolled_back_actions(n, n.rolled_back))
    # Most urgent first: a halted run, what the attacker read and opened, its changes.
    actions = _halted_actions(n, view) if n.kind == "halted" and not session else []
    actions += _leads(n.attacker)
    actions += [_undo(item) for item in (n.attacker.needs_human if n.attacker else ())]
    actions += _session_actions(n, view) if session else _key_actions(n, view)
    actions += _evidence_actions(n, view)
    if session:
        return _redacted(actions)
    user = n.user_name or "the key's owner"
    if n.kind == "completed" and not (n.replacement and n.replacement.deleted_compromised):
        actions.append(Todo(
            f"Delete {n.access_key_id}, the old key, once forensics are done (if it still "
            "exists)", (aws("aws", "iam", "delete-access-key", "--user-name", n.user_name,
                         "--access-key-id", n.access_key_id),) if n.user_name else ()))
    new_key = "the replacement key" if n.replacement else f"any new key for {user}"
    actions += [Todo(
        f"AWS already attached {policy} to {user}: {new_key} inherits its denials until the "
        "AWS support case says to detach it; never detach it yourself before that")
        for policy in n.aws_quarantine]
    return _redacted(actions)


def _redacted(actions: Sequence[Todo]) -> tuple[Todo, ...]:
    """Every item through `redact`, the last line of defence (the journal holds no
    secret, and a message must not carry one even if it did)."""
    return tuple(Todo(str(redact(a.what)), tuple(str(redact(c)) for c in a.commands),
                      a.manual, str(redact(a.note))) for a in actions)


def with_todo(notice: Notice, todo: Sequence[Todo], view: IncidentView) -> Notice:
    """The notice with its next actions (as data and as one-line texts) and the story
    every message leads with, told from the same document as the reports."""
    done = _redacted(todo)
    told = scrubbed(story_of(document_of(view), extras_of(view, done)))
    return replace(notice, todo=done, next_actions=tuple(t.text for t in done), story=told)


def build_notice(
    kind: Literal["completed", "halted"], view: IncidentView, *, failing_step: str | None = None
) -> Notice:
    """The notice for an incident as the view shows it now."""
    draft = _draft(kind, view, failing_step)
    return with_todo(draft, _todo(draft, view), view)


def todo_of(
    kind: Literal["completed", "halted"], view: IncidentView, *, failing_step: str | None = None
) -> tuple[Todo, ...]:
    """What a human must do, without the message (and its story) around it: the
    report's next actions, whose document the report builds itself."""
    return _todo(_draft(kind, view, failing_step), view)


def _draft(kind: Literal["completed", "halted"], view: IncidentView,
           failing_step: str | None) -> Notice:
    """The notice's facts, before its next actions and story are added."""
    target = view.target
    return Notice(
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
        replacement=view.replacement,
        has_mfa=view.has_mfa,
        aws_quarantine=view.aws_quarantine,
        failing_step=failing_step or (view.failing_step if kind == "halted" else None),
        next_actions=(),
        sessions_cutoff=_cutoff(view),
        attacker=_attacker(view.attacker, report_leads.gathered(
            [view.attacker, *(f.attacker for f in view.sweeps_found)])),
        session=view.session.label if view.session is not None else None,
        rolled_back=view.rolled_back,
    )


def build_sweep_notice(view: IncidentView, found: SweepFound) -> Notice:
    """What a sweep that found late events tells the humans: how many, what they opened
    and what was shut, what a human must undo."""
    notice = build_notice("completed", view)
    # Nothing new contained still counts as "contain-attacker ran" (zeros, not None).
    contained, new = found.attacker or AttackerContained(), set(found.new_event_ids)
    attacker = _attacker(replace(contained, refused=tuple(  # the sweep's own refusals
        r for r in contained.refused if r.event_id in new)))
    sweep = NoticeSweep(new_events=found.new_events, new_keys=tuple(found.new_keys),
                        high_risk=tuple({**e, "eventName": marked(e)}
                                        for e in (found.summary.high_risk if found.summary
                                                  else ())),
                        sha256=found.sha256)
    actions = _leads(attacker)
    actions += [Todo(f"Review the {found.new_events} events CloudTrail delivered late "
                     f"({_names(sweep.high_risk) or 'none high-risk'}); they are now in the "
                     f"evidence file (sha256 {found.sha256})")]
    actions += [Todo(f"Review what the temporary key {k} did: the sweep found it minted")
                for k in found.new_keys]
    actions += [_undo(item) for item in (attacker.needs_human if attacker else ())]
    return with_todo(replace(notice, kind="sweep", attacker=attacker, sweep=sweep), actions,
                     view)


__all__ = ["HIGH_RISK_NAMED", "Notice", "NoticeAttacker", "NoticeEvidence", "NoticeSweep",
           "build_notice", "build_sweep_notice", "todo_of"]
