"""The §2 incident document and the report's extras, built from an IncidentView (itself
built only from the journal), so `respond status`, `respond report`, the notices and the
output of the run itself can never disagree. Nothing here renders: see document.py,
story.py and the media modules.
"""

from __future__ import annotations

from datetime import datetime

from responder.context import iso, parse_iso
from responder.incident.facts import (
    AttackerContained,
    KeyReplaced,
    SessionDenied,
    SessionFound,
    SweepFound,
)
from responder.incident.sweeps import shut_first
from responder.incident.verification import Verification
from responder.incident.view import IncidentView, StepView
from responder.journal import CallRecord
from responder.report import hardening as report_hardening
from responder.report import rotation as report_rotation
from responder.report.model import (
    AttackerEntry,
    CallEntry,
    EvidenceEntry,
    EvidenceSummaryEntry,
    IncidentDocument,
    NextSweep,
    ReplacementEntry,
    ReportExtras,
    SessionEntry,
    SnapshotsEntry,
    StepEntry,
    SweepDone,
    SweepsEntry,
    TimelineEntry,
)
from responder.report.retirement import retirement_of
from responder.report.todo import Todo


def seconds_between(start: str | None, end: str | None) -> float | None:
    a, b = parse_iso(start), parse_iso(end)
    return None if a is None or b is None else round((b - a).total_seconds(), 3)


def _step(step: StepView) -> StepEntry:
    return StepEntry(name=step.name, action=step.action, status=step.status,
                     started_at=iso(step.started_at), ended_at=iso(step.ended_at),
                     detail=dict(step.detail), error=step.error)


ABANDONED = ("interrupted: its runner stopped before finishing (killed, or the machine "
             "went away); `respond resume {id}` continues it")


def document_of(view: IncidentView, now: datetime | None = None) -> IncidentDocument:
    """The §2 object, typed: built once here, read by attribute by every renderer.

    With `now`, an incident left running by a runner that is gone shows as halted
    (interrupted), which is what it is until someone resumes it."""
    record = view.record
    replacement = view.done(KeyReplaced)
    abandoned = now is not None and view.abandoned(now)
    return IncidentDocument(
        incident_id=record.id,
        status="halted" if abandoned else record.status,
        access_key_id=record.access_key_id,
        user_name=record.user_name,
        account_id=record.account_id,
        playbook=view.playbook,
        started_at=iso(record.started_at),
        contained_at=iso(record.contained_at),
        verification=None if record.verification is None
        else Verification.from_detail(record.verification),
        steps=tuple(_step(s) for s in view.steps),
        evidence=evidence_of(view),
        replacement=None if replacement is None else ReplacementEntry(
            replacement.access_key_id, replacement.secret_ref),
        attacker=attacker_of(view),
        session=session_of(view.session, view.session_denied),
        sweeps=sweeps_of(view),
        rolled_back=view.rolled_back,
        rotation=report_rotation.rotation_of(view),
        retirement=retirement_of(view),
        hardening=report_hardening.hardening_of(report_hardening.latest(view)),
        report=record.report,
        error=ABANDONED.format(id=record.id) if abandoned else record.error,
    )


def evidence_of(view: IncidentView) -> EvidenceEntry | None:
    """The evidence as it stands: after the last read that merged events into it (the
    last sweep, or a resume that read unread regions again), where the evidence bucket
    keeps it (null without one), and the regions still unread."""
    evidence, read = view.evidence, view.evidence_read
    if evidence is None or read is None:
        return None
    events, sha256 = evidence.events, evidence.sha256
    for step in view.sweep_steps:
        facts = step.facts
        if step.status == "done" and isinstance(facts, SweepFound) and \
                (step.started_at or view.started_at) >= (read.started_at or view.started_at):
            events, sha256 = facts.events_total, facts.sha256
    return EvidenceEntry(
        events=events,
        regions=tuple(sorted({*evidence.regions, *(r for again in view.sweeps_reread.values()
                                                   for r in again)})),
        path=evidence.path,
        sha256=sha256,
        s3_uri=view.evidence_uri,
        archive_error=view.archive.error if view.archive_failed and view.archive else None,
        regions_unread=dict(view.regions_unread),
    )


def sweeps_of(view: IncidentView) -> SweepsEntry | None:
    """Sweeps done (what each found) and due, with the command that runs the next one;
    null until sweeps were scheduled."""
    scheduled = view.sweeps_scheduled
    if view.contained_at is None and not view.sweep_steps:
        return None
    due = tuple(iso(d) or "" for d in view.sweeps_due)
    shut, reread = shut_by_sweeps(view), view.sweeps_reread
    done: list[SweepDone] = []
    for s in view.sweep_steps:
        found = shut.get(s.name) or AttackerContained()
        done.append(SweepDone(
            step=s.name, status=s.status, ended_at=iso(s.ended_at),
            new_events=s.facts.new_events if isinstance(s.facts, SweepFound) else None,
            error=s.error, keys_disabled=found.keys_disabled,
            principals_quarantined=found.principals_quarantined,
            sessions_revoked=found.sessions_revoked, needs_human=found.needs_human,
            regions_reread=reread.get(s.name, ()), credentials_read=found.credentials_read,
            granted_to=found.granted_to, restored=found.restored))
    return SweepsEntry(
        done=tuple(done),
        due=due,
        scheduler=scheduled.scheduler if scheduled is not None else "none",
        next=NextSweep(due[0], f"respond sweep {view.id}") if due else None,
    )


def shut_by_sweeps(view: IncidentView) -> dict[str, AttackerContained]:
    """What each finished sweep shut that no step before it had, and left for a human."""
    attacking = view.step_for(AttackerContained)
    steps = [s for s in (attacking, *view.sweep_steps) if s is not None and s.status == "done"]
    return shut_first((s.name, s.facts) for s in
                      sorted(steps, key=lambda s: s.started_at or view.started_at)
                      if s.facts is not None)


def session_of(found: SessionFound | None, denied: SessionDenied | None = None
               ) -> SessionEntry | None:
    """For a temporary key: whose session it is and how it was denied; null for a
    long-term key."""
    if found is None:
        return None
    return SessionEntry(
        principal_type=found.principal_type, principal_arn=found.principal_arn,
        user_name=found.user_name, role_name=found.role_name,
        role_arn=found.role_arn, session_name=found.session_name,
        aws_userid=found.aws_userid, instance_id=found.instance_id,
        minted_by=found.minted_by, minted_by_arn=found.minted_by_arn,
        found_by=found.found_by, event=dict(found.event) or None,
        denied=None if denied is None else denied.to_detail(),
    )


def attacker_of(view: IncidentView) -> AttackerEntry | None:
    """What shuts the attacker out: the sessions cutoff and what contain-attacker did and
    left for a human; null until revoke-sessions has run."""
    revoked, attacker = view.sessions_revoked, view.attacker
    if revoked is None and attacker is None:
        return None
    if attacker is None:
        return AttackerEntry(cutoff=revoked.token_issue_time_before if revoked else None)
    return AttackerEntry(
        cutoff=revoked.token_issue_time_before if revoked else None,
        sessions_revoked=attacker.sessions_revoked,
        keys_disabled=attacker.keys_disabled,
        principals_quarantined=attacker.principals_quarantined,
        needs_human=attacker.needs_human,
        refused=attacker.refused,
        credentials_read=attacker.credentials_read,
        granted_to=attacker.granted_to,
        restored=attacker.restored,
    )


def _call(call: CallRecord) -> CallEntry:
    return CallEntry(api=f"{call.service}:{call.operation}", mutating=call.mutating,
                     outcome=call.outcome, attempts=call.attempts, at=iso(call.intent_at),
                     error=call.error)


def _timeline(view: IncidentView, s: StepView) -> TimelineEntry:
    return TimelineEntry(
        step=s.name, status=s.status, started_at=iso(s.started_at), ended_at=iso(s.ended_at),
        duration_seconds=seconds_between(iso(s.started_at), iso(s.ended_at)), error=s.error,
        calls=tuple(_call(c) for c in view.calls if c.step == s.name))


def _evidence_summary(view: IncidentView) -> EvidenceSummaryEntry | None:
    """The evidence step's facts, its counters (pages, duplicates) left out."""
    e = view.evidence
    if e is None:
        return None
    return EvidenceSummaryEntry(
        events=e.events, regions=tuple(e.regions), regions_failed=dict(e.regions_failed),
        path=e.path, sha256=e.sha256, window=e.window, temporary_keys=e.temporary_keys,
        roles_assumed=tuple(e.roles_assumed), summary=e.summary)


def extras_of(view: IncidentView, todo: tuple[Todo, ...]) -> ReportExtras:
    """What report.json adds to the §2 object (`todo`: the next actions, from the notice).
    The timeline's calls are there when `view` was loaded with them."""
    revoked = view.sessions_revoked
    notifying = view.of_kind("notification")
    rolled = [s for s in view.of_kind("rollback") if s.status == "done"]
    return ReportExtras(
        timeline=tuple(_timeline(view, s) for s in view.steps),
        followups=tuple(_timeline(view, s) for s in view.followups),
        time_to_contain_seconds=seconds_between(iso(view.started_at), iso(view.contained_at)),
        sessions_cutoff=revoked.token_issue_time_before if revoked else None,
        iam_snapshot=SnapshotsEntry(view.snapshot_at_containment,
                                    view.snapshot_after_replacement),
        aws_quarantine=view.aws_quarantine,
        evidence_summary=_evidence_summary(view),
        notifications=dict(notifying[0].detail) if notifying else None,
        rollback=dict(rolled[-1].detail) if rolled else None,
        next_actions=tuple(t.text for t in todo),
        todo=todo,
    )


__all__ = ["attacker_of", "document_of", "evidence_of", "extras_of", "session_of",
           "shut_by_sweeps", "sweeps_of"]
