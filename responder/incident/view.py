"""One picture of an incident, built from the journal, read by every reader.

The report, the notices, the JSON output, the drill and the runner's own containment
check all look at an incident through an IncidentView: the journaled steps with their
facts read back into the types their actions declare. Facts are found by type (the
evidence is whatever step established EvidenceCollected), never by an action's name,
so a playbook that renames or reorders steps is still described correctly, and a field
renamed in a step's result breaks one type here instead of nulling a report line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from responder.context import parse_iso
from responder.errors import exit_code_for
from responder.incident import facts as results
from responder.incident import kinds
from responder.incident.facts import FactKind, Facts, KeyDisabled, SessionsRevoked, Skipped, Target
from responder.incident.facts_rollback import RolledBack
from responder.incident.shapes import IamSnapshot
from responder.incident.sweeps import regions_unread_after, still_due
from responder.journal import CallRecord, IncidentRecord, Journal, StepRecord, StepStatus
from responder.journal.owner import owner_is_dead

F = TypeVar("F", bound=Facts)


def target_of(facts: Facts | None) -> Target | None:
    """Who owns the key, as an identify step's facts name it (None for other facts)."""
    return facts.target() if facts is not None else None


@dataclass(frozen=True)
class StepView:
    """A journaled step with its facts typed."""

    name: str
    action: str
    kind: FactKind | None
    """None only for an action this version does not know (an older journal)."""
    on_failure: str
    status: StepStatus
    started_at: datetime | None
    ended_at: datetime | None
    error: str | None
    detail: Mapping[str, Any]
    """The journaled mapping, as the JSON output shows it."""
    facts: Facts | None
    effective_at: datetime | None
    """When its effect took hold in AWS, for containment steps."""
    regions_unread: Mapping[str, str] = field(default_factory=dict)
    """For the step that collected the evidence: the regions whose CloudTrail is still
    unread (IncidentView.regions_unread), region: the last error."""

    @classmethod
    def of(cls, record: StepRecord) -> StepView:
        facts: Facts | None = None
        if record.status == "skipped":
            facts = Skipped.from_detail(record.detail)
        elif record.status == "waiting":
            facts = kinds.facts_named("Awaiting").from_detail(record.detail)
        elif record.status in {"done", "failed"} and \
                (known := kinds.facts_type(record.action)) is not None:
            facts = known.from_detail(record.detail)
        effective = record.detail.get("effective_at")
        return cls(
            name=record.name, action=record.action,
            kind=kinds.kind_of(record.action),
            on_failure=record.on_failure, status=record.status,
            started_at=record.started_at, ended_at=record.ended_at, error=record.error,
            detail=record.detail, facts=facts,
            effective_at=parse_iso(effective) if isinstance(effective, str) else None,
        )

    @property
    def finished(self) -> bool:
        """Done, skipped, or failed on a step the playbook lets the run continue past; an
        evidence step that left a region unread is not finished: a resume starts there
        and reads those regions again."""
        if self.regions_unread:
            return False
        return self.status in {"done", "skipped"} or (
            self.status == "failed" and self.on_failure == "continue")


@dataclass(frozen=True)
class IncidentView:
    """An incident and its steps' facts, as the journal holds them now."""

    record: IncidentRecord
    steps: tuple[StepView, ...]
    """The playbook's steps: what the §2 object lists and the runner runs."""
    calls: tuple[CallRecord, ...] = ()
    """Only when loaded with calls=True (the report's timeline)."""
    followups: tuple[StepView, ...] = ()
    """Steps appended after the playbook (schedule-sweeps, sweep-N, archive)."""

    @classmethod
    def of(cls, record: IncidentRecord, steps: tuple[StepRecord, ...] | list[StepRecord],
           calls: tuple[CallRecord, ...] | list[CallRecord] = ()) -> IncidentView:
        ordered = [StepView.of(s) for s in sorted(steps, key=lambda s: s.position)]
        named = record.playbook.get("steps")
        playbook = {str(s.get("name")) for s in named if isinstance(s, Mapping)} \
            if isinstance(named, list) else {s.name for s in ordered}
        view = cls(record, tuple(s for s in ordered if s.name in playbook), tuple(calls),
                   tuple(s for s in ordered if s.name not in playbook))
        unread = view.regions_unread
        if not unread:
            return view
        gap = view.evidence_read
        return dataclasses.replace(view, steps=tuple(
            dataclasses.replace(s, regions_unread=unread) if s is gap else s
            for s in view.steps))

    @property
    def all_steps(self) -> tuple[StepView, ...]:
        return self.steps + self.followups

    @classmethod
    def load(cls, journal: Journal, incident_id: str, *, calls: bool = False) -> IncidentView:
        return cls.of(journal.get(incident_id), journal.steps(incident_id),
                      journal.calls(incident_id) if calls else ())

    # -- the incident ------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def access_key_id(self) -> str:
        return self.record.access_key_id

    @property
    def playbook(self) -> str | None:
        name = self.record.playbook.get("name")
        return str(name) if name is not None else None

    @property
    def started_at(self) -> datetime:
        return self.record.started_at

    @property
    def contained_at(self) -> datetime | None:
        return self.record.contained_at

    @property
    def target(self) -> Target | None:
        """Who owns the key: identify's facts, else what the incident record names."""
        for step in self.steps:
            found = target_of(step.facts) if step.status == "done" else None
            if found is not None:
                return found
        if self.record.user_name and self.record.account_id:
            return Target(self.record.user_name, self.record.account_id)
        return None

    @property
    def session(self) -> results.SessionFound | None:
        """For a temporary key: whose session it is."""
        return self.done(results.SessionFound)

    @property
    def session_denied(self) -> results.SessionDenied | None:
        return self.done(results.SessionDenied)

    # -- facts, found by type ----------------------------------------------------

    def done(self, kind: type[F]) -> F | None:
        """The facts of the first step that established `kind` and finished done."""
        for step in self.all_steps:
            if step.status == "done" and isinstance(step.facts, kind):
                return step.facts
        return None

    def step_for(self, kind: type[Facts]) -> StepView | None:
        """The first step whose action establishes `kind`, whatever its status."""
        return next((s for s in self.steps if kinds.establishes(s.action, kind)), None)

    def of_kind(self, kind: FactKind) -> tuple[StepView, ...]:
        return tuple(s for s in self.all_steps if s.kind == kind)

    @property
    def key_disabled(self) -> KeyDisabled | None:
        return self.done(KeyDisabled)

    @property
    def sessions_revoked(self) -> SessionsRevoked | None:
        return self.done(SessionsRevoked)

    @property
    def evidence(self) -> results.EvidenceCollected | None:
        return self.done(results.EvidenceCollected)

    @property
    def evidence_step(self) -> StepView | None:
        """The step that collects the evidence, whatever its status."""
        return self.step_for(results.EvidenceCollected)

    @property
    def attacker(self) -> results.AttackerContained | None:
        return self.done(results.AttackerContained)

    @property
    def replacement(self) -> results.KeyReplaced | None:
        replaced = self.done(results.KeyReplaced)
        return replaced if replaced is not None and replaced.access_key_id else None

    @property
    def sweeps_scheduled(self) -> results.SweepsScheduled | None:
        return self.done(results.SweepsScheduled)

    @property
    def sweep_steps(self) -> tuple[StepView, ...]:
        return self.of_kind("sweep")

    @property
    def sweeps_found(self) -> tuple[results.SweepFound, ...]:
        """What each finished sweep found, in order."""
        return tuple(s.facts for s in self.sweep_steps
                     if s.status == "done" and isinstance(s.facts, results.SweepFound))

    @property
    def swept_at(self) -> tuple[datetime, ...]:
        """When each finished sweep read CloudTrail (up to the end of its window)."""
        moments: list[datetime] = []
        for step in self.sweep_steps:
            facts = step.facts
            if step.status != "done" or not isinstance(facts, results.SweepFound):
                continue
            read = parse_iso(facts.window.end) if facts.window is not None else None
            if (moment := read or step.started_at) is not None:
                moments.append(moment)
        return tuple(moments)

    @property
    def rolled_back(self) -> RolledBack | None:
        """The latest finished rollback's facts: the containment was undone (a false
        positive), and no sweep may shut again what it reopened."""
        done = [s.facts for s in self.of_kind("rollback")
                if s.status == "done" and isinstance(s.facts, RolledBack)]
        return done[-1] if done else None

    @property
    def sweeps_due(self) -> tuple[datetime, ...]:
        """The sweep moments (the playbook's `sweeps` after containment) that no sweep
        covered yet: each stays due until a sweep read CloudTrail at or after it
        (incident/sweeps.py); none before the key is contained, nor after a rollback or
        once a human closed the incident."""
        if self.contained_at is None or self.rolled_back is not None \
                or self.record.status == "closed":
            return ()
        return tuple(still_due(self.record.playbook.get("sweeps") or {}, self.contained_at,
                               self.swept_at))

    # -- evidence gaps: regions whose CloudTrail could not be read ---------------------

    @property
    def evidence_read(self) -> StepView | None:
        """The step whose facts are the evidence (done), with its gap when it has one."""
        return next((s for s in self.all_steps if s.status == "done"
                     and isinstance(s.facts, results.EvidenceCollected)), None)

    def _reads(self) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
        """The evidence step's and the finished sweeps' reads, in the order they ran,
        through incident/sweeps.py."""
        evidence = self.evidence_read
        if evidence is None or evidence.facts is None:
            return {}, {}
        sweeps = [s for s in self.sweep_steps
                  if s.status == "done" and isinstance(s.facts, results.SweepFound)]
        reads = sorted([evidence, *sweeps], key=lambda s: s.started_at or self.started_at)
        return regions_unread_after((s.name, s.facts) for s in reads if s.facts is not None)

    @property
    def regions_unread(self) -> Mapping[str, str]:
        """Regions whose CloudTrail no read has covered whole (region: the last error):
        the evidence step could not read them and no later sweep (or a resume's evidence
        step) read them again. Attacker containment may be incomplete there. The exit
        code, the report's headline, replace-key and the next sweep all read this."""
        return self._reads()[0]

    @property
    def sweeps_reread(self) -> Mapping[str, tuple[str, ...]]:
        """Each finished sweep: the unread regions it read again, over the whole lookback."""
        return self._reads()[1]

    @property
    def evidence_gap(self) -> bool:
        return bool(self.regions_unread)

    @property
    def archive(self) -> StepView | None:
        """The latest copy of the incident's files to the evidence bucket."""
        found = self.of_kind("archive")
        return found[-1] if found else None

    @property
    def archive_failed(self) -> bool:
        return self.archive is not None and self.archive.status == "failed"

    @property
    def evidence_uri(self) -> str | None:
        """Where the evidence is kept in S3, once an upload succeeded."""
        uploaded = [s.facts for s in self.of_kind("archive")
                    if s.status == "done" and isinstance(s.facts, results.EvidenceArchived)]
        return uploaded[-1].uri if uploaded else None

    @property
    def notification_failed(self) -> bool:
        return any(s.status == "failed" for s in self.of_kind("notification"))

    @property
    def failing_step(self) -> str | None:
        return next((s.name for s in self.steps if s.status == "failed"), None)

    @property
    def current_step(self) -> str | None:
        """The first step not done or skipped: where the incident stands."""
        return next((s.name for s in self.steps if s.status not in {"done", "skipped"}), None)

    def containment_moment(self) -> datetime | None:
        """When the last containment step took hold, once every one of them is done."""
        containing = self.of_kind("containment")
        if not containing or any(s.status != "done" for s in containing):
            return None
        moments = [s.effective_at or s.ended_at for s in containing]
        return max((m for m in moments if m is not None), default=None)

    # -- the user's IAM picture ----------------------------------------------------

    @property
    def snapshot_at_containment(self) -> IamSnapshot | None:
        revoked = self.sessions_revoked
        return revoked.snapshot if revoked is not None else None

    @property
    def snapshot_after_replacement(self) -> IamSnapshot | None:
        replaced = self.done(results.KeyReplaced)
        return replaced.snapshot_after if replaced is not None else None

    @property
    def has_mfa(self) -> bool | None:
        """From the snapshot at containment, else the one after replacement; None when
        neither was taken (unknown, not "no MFA")."""
        snap = self.snapshot_at_containment or self.snapshot_after_replacement
        return snap.has_mfa if snap is not None else None

    @property
    def aws_quarantine(self) -> tuple[str, ...]:
        """AWS's own quarantine policies on the user, from either snapshot, once each."""
        names: list[str] = []
        for snap in (self.snapshot_at_containment, self.snapshot_after_replacement):
            names += snap.aws_quarantine if snap is not None else ()
        return tuple(dict.fromkeys(names))

    def abandoned(self, now: datetime) -> bool:
        """Running, but no runner holds it any more: its lease lapsed or was released, or
        its holder is a process on this machine that is gone (killed, or the machine
        restarted). Shown as halted (interrupted): only `respond resume` moves it on."""
        record = self.record
        if record.status != "running":
            return False
        if record.lease_owner is None or record.lease_expires is None:
            return True
        return record.lease_expires < now or owner_is_dead(record.lease_owner)

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.status,
                             notification_failed=self.notification_failed or self.archive_failed,
                             evidence_gap=self.evidence_gap)
