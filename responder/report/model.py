"""The DESIGN §2 incident document and report.json as frozen dataclasses.

Built once from the incident view (document.document_of) and read by attribute by every
renderer, so a field renamed here breaks mypy at each reader instead of silently printing
null. It becomes a plain dict only at the edge (`to_json`), keys in the order the contract
has always printed them. `from_json` reads a dict back, leniently (a test's hand-made page,
a step's journaled detail): a missing or malformed field is its default, never an
exception in the middle of a report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from responder.incident import kinds, shapes
from responder.incident.facts import FactKind
from responder.incident.facts_hardening import GracePeriod, HistoryWindow, Proved
from responder.incident.facts_rollback import RolledBack
from responder.incident.verification import Verification
from responder.report.entry import Entry
from responder.report.todo import Todo


@dataclass(frozen=True)
class PlannedCall(Entry):
    """A call a planned step would make (a plan's step detail lists them)."""

    service: str = "?"
    operation: str = "?"
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True)
class StepEntry(Entry):
    name: str = ""
    action: str = ""
    status: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The journaled detail, as the step's own action shaped it."""
    error: str | None = None

    @property
    def kind(self) -> FactKind | None:
        """The kind of fact its action establishes: how a renderer picks steps out,
        never by an action's name (a playbook may name its steps as it likes)."""
        return kinds.kind_of(self.action)

    @property
    def reason(self) -> str | None:
        """Why a step was skipped (or planned as it is), when its detail says."""
        reason = self.detail.get("reason")
        return str(reason) if reason else None

    @property
    def calls(self) -> tuple[PlannedCall, ...]:
        listed = self.detail.get("calls")
        return tuple(PlannedCall.from_json(c) for c in listed if isinstance(c, Mapping)) \
            if isinstance(listed, list) else ()


@dataclass(frozen=True)
class EvidenceEntry(Entry):
    events: int = 0
    regions: tuple[str, ...] = ()
    path: str | None = None
    sha256: str | None = None
    s3_uri: str | None = None
    archive_error: str | None = None
    regions_unread: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Region: the last error, for regions whose CloudTrail no read has covered since
    (IncidentView.regions_unread): attacker containment may be incomplete there."""


@dataclass(frozen=True)
class ReplacementEntry(Entry):
    access_key_id: str | None = None
    secret_ref: str | None = None


@dataclass(frozen=True)
class AttackerEntry(Entry):
    cutoff: str | None = None
    sessions_revoked: tuple[shapes.RevokedSession, ...] = ()
    keys_disabled: tuple[shapes.DisabledKey, ...] = ()
    principals_quarantined: tuple[shapes.QuarantinedPrincipal, ...] = ()
    needs_human: tuple[shapes.HumanAction, ...] = ()
    refused: tuple[shapes.RefusedCall, ...] = ()
    """Calls CloudTrail recorded with an errorCode: refused by AWS, nothing to undo."""
    credentials_read: tuple[shapes.CredentialRead, ...] = ()
    """Secrets, parameters, keys and passwords the attacker read: rotate each."""
    granted_to: tuple[shapes.OutsideGrant, ...] = ()
    """Principals outside the account the attacker let in (`*`: everyone)."""
    restored: tuple[shapes.RestoredDefense, ...] = ()
    """Logging and detection the attacker turned off and contain-attacker turned on."""


@dataclass(frozen=True)
class SessionEntry(Entry):
    principal_type: str = ""
    principal_arn: str | None = None
    user_name: str | None = None
    role_name: str | None = None
    role_arn: str | None = None
    session_name: str | None = None
    aws_userid: str | None = None
    instance_id: str | None = None
    minted_by: str | None = None
    minted_by_arn: str | None = None
    found_by: str = ""
    event: Mapping[str, Any] | None = None
    denied: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SweepDone(Entry):
    """A sweep: what it found, what it shut first and left for a human, and the unread
    regions it read again."""

    step: str = ""
    status: str = ""
    ended_at: str | None = None
    new_events: int | None = None
    error: str | None = None
    keys_disabled: tuple[shapes.DisabledKey, ...] = ()
    principals_quarantined: tuple[shapes.QuarantinedPrincipal, ...] = ()
    sessions_revoked: tuple[shapes.RevokedSession, ...] = ()
    needs_human: tuple[shapes.HumanAction, ...] = ()
    regions_reread: tuple[str, ...] = ()
    credentials_read: tuple[shapes.CredentialRead, ...] = ()
    granted_to: tuple[shapes.OutsideGrant, ...] = ()
    restored: tuple[shapes.RestoredDefense, ...] = ()
    """What its new events read, granted outside the account, and it turned back on."""


@dataclass(frozen=True)
class NextSweep(Entry):
    at: str | None = None
    command: str = ""


@dataclass(frozen=True)
class SweepsEntry(Entry):
    done: tuple[SweepDone, ...] = ()
    due: tuple[str, ...] = ()
    scheduler: str = "none"
    next: NextSweep | None = None


@dataclass(frozen=True)
class AppsUpdatedEntry(Entry):
    confirmed_by: str = ""
    at: str | None = None


@dataclass(frozen=True)
class TestedEntry(Entry):
    arn: str = ""
    attempts: int = 1


@dataclass(frozen=True)
class GraceEntry(Entry):
    since: str | None = None
    until: str | None = None
    last_used: str | None = None


@dataclass(frozen=True)
class AlertEntry(Entry):
    last_used: str | None = None
    since: str | None = None
    service: str | None = None
    region: str | None = None
    alerted: tuple[str, ...] = ()
    message: str | None = None


@dataclass(frozen=True)
class RotationEntry(Entry):
    old_key: str = ""
    old_key_status: str = ""
    new_key: str | None = None
    secret_ref: str | None = None
    stage: str = ""
    waiting_for: str | None = None
    until: str | None = None
    next: str | None = None
    apps_updated: AppsUpdatedEntry | None = None
    tested: TestedEntry | None = None
    deactivated_at: str | None = None
    grace: GraceEntry | None = None
    alert: AlertEntry | None = None


@dataclass(frozen=True)
class RetirementEntry(Entry):
    """An unused key's retirement (retire-unused-key): where it stands and how to undo it.
    `status` is what the step established: Inactive (retired), Active (kept: used since
    the audit), or "not retired" while its step has not finished done."""

    access_key_id: str = ""
    status: str = ""
    unused_days: int = 0
    idle_days: int | None = None
    last_used: str | None = None
    created: str | None = None
    at: str | None = None
    already: bool = False
    kept_because: str | None = None
    undo: str | None = None
    """The command that makes the key Active again (while it is retired)."""


@dataclass(frozen=True)
class HardeningEntry(Entry):
    empty_shapes: ClassVar[frozenset[str]] = frozenset({"mfa"})

    user_name: str = ""
    compromised_at: str | None = None
    compromised_at_source: str = ""
    lookback_days: int = 0
    mfa: shapes.MfaFinding | None = None
    proposed_policy: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    proposed_policy_path: str | None = None
    proposed_policy_chars: int = 0
    proposal_note: str | None = None
    used_actions: tuple[str, ...] = ()
    unused_permissions: tuple[shapes.UnusedPermission, ...] = ()
    new_source_ips: tuple[str, ...] = ()
    events: int = 0
    regions_failed: Mapping[str, str] = dataclasses.field(default_factory=dict)
    truncated: bool = False
    applied: shapes.AppliedPolicy | None = None
    finish_commands: tuple[str, ...] = ()
    window: HistoryWindow | None = None
    proof: Proved | None = None
    any_resource: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cannot_show: tuple[str, ...] = ()
    grace: GracePeriod | None = None
    mapping_source: str = ""


@dataclass(frozen=True)
class IncidentDocument(Entry):
    """The one JSON object `--output json` prints (DESIGN §2). Every field defaults to
    null (steps to empty): the blank document a plan or a refusal starts from."""

    incident_id: str | None = None
    status: str | None = None
    access_key_id: str | None = None
    user_name: str | None = None
    account_id: str | None = None
    playbook: str | None = None
    started_at: str | None = None
    contained_at: str | None = None
    verification: Verification | None = None
    """What the incident last observed in AWS about what it claims, and when (DESIGN §2:
    "contained" is said only when observed)."""
    steps: tuple[StepEntry, ...] = ()
    evidence: EvidenceEntry | None = None
    replacement: ReplacementEntry | None = None
    attacker: AttackerEntry | None = None
    session: SessionEntry | None = None
    sweeps: SweepsEntry | None = None
    rolled_back: RolledBack | None = None
    """The last rollback (a false positive's containment undone): every reason, what the
    re-read showed; null when never rolled back."""
    rotation: RotationEntry | None = None
    retirement: RetirementEntry | None = None
    hardening: HardeningEntry | None = None
    report: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class RefusalDocument:
    """The §2 object of a run refused before any incident was opened (status, key and
    error set, the rest null), then its exit code: as `--output json` prints a refusal."""

    document: IncidentDocument
    exit_code: int

    def to_json(self) -> dict[str, Any]:
        return {**self.document.to_json(), "exit_code": self.exit_code}


@dataclass(frozen=True)
class CallEntry(Entry):
    api: str = ""
    mutating: bool = False
    outcome: str = ""
    attempts: int = 1
    at: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class TimelineEntry(Entry):
    step: str = ""
    status: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    error: str | None = None
    calls: tuple[CallEntry, ...] = ()


@dataclass(frozen=True)
class SnapshotsEntry(Entry):
    """The user's IAM picture right after containment and after the replacement key."""

    at_containment: shapes.IamSnapshot | None = None
    after_replacement: shapes.IamSnapshot | None = None


@dataclass(frozen=True)
class EvidenceSummaryEntry(Entry):
    """The evidence step's facts as report.json keeps them (its counters left out)."""

    empty_shapes: ClassVar[frozenset[str]] = frozenset({"window", "summary"})

    events: int = 0
    regions: tuple[str, ...] = ()
    regions_failed: Mapping[str, str] = dataclasses.field(default_factory=dict)
    path: str | None = None
    sha256: str | None = None
    window: shapes.EvidenceWindow | None = None
    temporary_keys: tuple[shapes.TemporaryKey, ...] = ()
    roles_assumed: tuple[str, ...] = ()
    summary: shapes.EvidenceSummary | None = None


@dataclass(frozen=True)
class ReportExtras(Entry):
    """What report.json adds to the §2 object: timeline, snapshots, next actions."""

    timeline: tuple[TimelineEntry, ...] = ()
    followups: tuple[TimelineEntry, ...] = ()
    time_to_contain_seconds: float | None = None
    sessions_cutoff: str | None = None
    iam_snapshot: SnapshotsEntry = SnapshotsEntry()
    aws_quarantine: tuple[str, ...] = ()
    evidence_summary: EvidenceSummaryEntry | None = None
    notifications: Mapping[str, Any] | None = None
    """The notify step's detail, as journaled (channels sent and failed, or why not)."""
    rollback: Mapping[str, Any] | None = None
    """The last rollback's detail, as journaled."""
    next_actions: tuple[str, ...] = ()
    todo: tuple[Todo, ...] = ()
    """The next actions as data: words, then commands that paste as printed."""


@dataclass(frozen=True)
class ReportDocument:
    """report.json: the §2 object, then what the report adds, as one flat JSON object."""

    document: IncidentDocument
    extras: ReportExtras

    def to_json(self) -> dict[str, Any]:
        return {**self.document.to_json(), **self.extras.to_json()}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ReportDocument:
        return cls(IncidentDocument.from_json(raw), ReportExtras.from_json(raw))
