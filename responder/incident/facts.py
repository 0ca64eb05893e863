"""The typed facts each step establishes: what the journal keeps and every reader shares.

A step returns one of these; the runner journals it as a plain mapping (`to_detail`),
and the incident view reads it back (`from_detail`) by the type its action declares, so a
renamed key fails here, once, instead of turning a report field silently null. Reading
back is lenient on purpose: a journal written by an older version, or a step that
failed halfway, yields the defaults, never an exception in the middle of a report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from responder.incident.detail import Detail
from responder.incident.shapes import (
    ArchivedObject,
    AwayFromInstance,
    CoveredSession,
    CredentialRead,
    Delivery,
    DisabledKey,
    EvidenceSummary,
    EvidenceWindow,
    HumanAction,
    IamSnapshot,
    Notified,
    OutsideGrant,
    QuarantinedPrincipal,
    RefusedCall,
    RestoredDefense,
    RevokedSession,
    TemporaryKey,
)

FactKind = Literal["identification", "containment", "evidence", "attacker", "replacement",
                   "notification", "schedule", "sweep", "archive", "rollback", "rotation",
                   "hardening", "retirement"]


@dataclass(frozen=True)
class Incident:
    """The journaled incident a run works on."""

    id: str
    access_key_id: str
    playbook: str
    started_at: datetime
    resumed: bool = False


@dataclass(frozen=True)
class Target:
    """Who owns the key, as identify found it."""

    user_name: str | None
    """The IAM user; None for a role's session."""
    account_id: str
    session: SessionFound | None = None
    """For a temporary key: the session, as identify-session found it."""


@dataclass(frozen=True)
class Facts(Detail):
    """Base of every step result: journaled by `to_detail`, read back by `from_detail`
    (responder.incident.detail), each field by the type it declares."""

    def target(self) -> Target | None:
        """Who owns the key, when these facts name it (identify's)."""
        return None


@dataclass(frozen=True)
class Skipped(Facts):
    """A step that had nothing to do, and why (shown in the step list)."""

    reason: str = ""


@dataclass(frozen=True)
class OwnerFound(Facts):
    """identify: the key's owner and account, without listing users."""

    user_name: str | None = None
    account_id: str | None = None
    last_used: Mapping[str, Any] = field(default_factory=dict)

    def target(self) -> Target | None:
        if self.user_name and self.account_id:
            return Target(self.user_name, self.account_id)
        return None


@dataclass(frozen=True)
class KeyDisabled(Facts):
    """disable-key: the key's status now (Inactive, or Deleted if it was already gone)."""

    status: str = "Inactive"
    already: bool = False


@dataclass(frozen=True)
class SessionsRevoked(Facts):
    """revoke-sessions: the inline deny and the user's IAM picture right after it."""

    optional: ClassVar[frozenset[str]] = frozenset({"user_deleted"})

    policy_name: str = ""
    token_issue_time_before: str | None = None
    already: bool = False
    snapshot: IamSnapshot | None = None
    """None when the user was deleted meanwhile (journaled as {})."""
    user_deleted: bool | None = None
    """The user was deleted meanwhile: no policy to attach, and no session of theirs
    has any permission left."""


@dataclass(frozen=True)
class EvidenceCollected(Facts):
    """collect-evidence: where the CloudTrail events are, their digest and summary."""

    optional: ClassVar[frozenset[str]] = frozenset({"describe_regions_error"})

    events: int = 0
    regions: tuple[str, ...] = ()
    regions_failed: Mapping[str, str] = field(default_factory=dict)
    """Region: the error of the lookup there."""
    path: str | None = None
    sha256: str | None = None
    duplicates_dropped: int = 0
    pages: int = 0
    window: EvidenceWindow | None = None
    temporary_keys: tuple[TemporaryKey, ...] = ()
    """Each temporary key the key minted, with its own lookup."""
    roles_assumed: tuple[str, ...] = ()
    summary: EvidenceSummary | None = None
    describe_regions_error: str | None = None

    @property
    def temporary_key_ids(self) -> tuple[str, ...]:
        return tuple(t.access_key_id for t in self.temporary_keys)

    @property
    def high_risk(self) -> tuple[Mapping[str, Any], ...]:
        return self.summary.high_risk if self.summary is not None else ()

    @property
    def high_risk_total(self) -> int:
        return self.summary.high_risk_total if self.summary is not None else 0


@dataclass(frozen=True)
class KeyReplaced(Facts):
    """replace-key: the new key and where its secret is (never the secret itself)."""

    optional: ClassVar[frozenset[str]] = frozenset({"adopted_from"})

    access_key_id: str | None = None
    secret_ref: str | None = None
    deleted_compromised: bool = False
    adopted: bool = False
    """The key was already in AWS (an earlier attempt's, or another responder's)."""
    snapshot_after: IamSnapshot | None = None
    adopted_from: str | None = None
    """The incident that issued the adopted key, as tagged on the user (it may live in
    another journal): set when a replacement recorded in AWS was adopted."""


@dataclass(frozen=True)
class ReplacementHalted(Facts):
    """replace-key failed after creating a key whose secret could not be stored."""

    created_access_key_id: str | None = None


@dataclass(frozen=True)
class NoticeSent(Facts):
    """notify: which channels were told and which failed."""

    optional: ClassVar[frozenset[str]] = frozenset({"already"})

    sent: tuple[Delivery, ...] = ()
    failed: tuple[Delivery, ...] = ()
    next_actions: tuple[str, ...] = ()
    already: bool | None = None


@dataclass(frozen=True)
class AttackerContained(Facts):
    """contain-attacker: what the attacker opened and this step shut, what the cutoff
    already covers, and what a human must undo (with the command)."""

    keys_disabled: tuple[DisabledKey, ...] = ()
    """Keys the attacker created."""
    principals_quarantined: tuple[QuarantinedPrincipal, ...] = ()
    sessions_revoked: tuple[RevokedSession, ...] = ()
    covered_by_cutoff: tuple[CoveredSession, ...] = ()
    needs_human: tuple[HumanAction, ...] = ()
    events_considered: int = 0
    refused: tuple[RefusedCall, ...] = ()
    """The attacker's calls of the kinds it acts on that AWS refused (an errorCode):
    neither shut nor undone; listed as refused, nothing to undo."""
    regions_unread: Mapping[str, str] = field(default_factory=dict)
    """Region: why CloudTrail could not be read there (collect-evidence's failures, the
    leaked key's and its temporary keys'). What the attacker did there was not seen, so
    its containment may be incomplete for those regions."""
    credentials_read: tuple[CredentialRead, ...] = ()
    """Secrets, parameters and keys the attacker read or decrypted: rotate each."""
    granted_to: tuple[OutsideGrant, ...] = ()
    """Principals outside the account the attacker granted access to."""
    restored: tuple[RestoredDefense, ...] = ()
    """Logging and detection the attacker turned off and this step turned on again."""


@dataclass(frozen=True)
class SessionFound(Facts):
    """identify-session: whose session a leaked temporary key is, as CloudTrail (or, when
    it has no event yet, the finding or --principal) names it."""

    optional: ClassVar[frozenset[str]] = frozenset({
        "user_name", "role_name", "role_arn", "role_id", "session_name", "instance_id",
        "minted_by", "minted_by_arn", "issued_at"})

    principal_type: str = ""
    """AssumedRole, IAMUser (a GetSessionToken session) or FederatedUser."""
    account_id: str | None = None
    principal_arn: str | None = None
    user_name: str | None = None
    """The IAM user whose session it is: IAMUser's own, FederatedUser's issuer."""
    role_name: str | None = None
    role_arn: str | None = None
    role_id: str | None = None
    session_name: str | None = None
    instance_id: str | None = None
    """Set for an EC2 instance-profile session: the session name is the instance id."""
    minted_by: str | None = None
    """The access key that minted the session (its GetSessionToken, AssumeRole or
    GetFederationToken event), when CloudTrail has that event."""
    minted_by_arn: str | None = None
    issued_at: str | None = None
    found_by: str = "cloudtrail"
    """cloudtrail, or finding / principal when CloudTrail had no event for the key yet."""
    event: Mapping[str, Any] = field(default_factory=dict)
    """event_id, event_name, region, time: the event that named the principal."""
    regions_searched: tuple[str, ...] = ()
    lookback_days: int = 0

    def target(self) -> Target | None:
        if self.account_id:
            return Target(self.user_name, self.account_id, self)
        return None

    @property
    def aws_userid(self) -> str | None:
        """The session as aws:userid names it in a policy: ROLEID:session."""
        if self.role_id and self.session_name:
            return f"{self.role_id}:{self.session_name}"
        return None

    @property
    def label(self) -> str:
        """How a human names it: role/session, user (session), federated user."""
        if self.principal_type == "AssumedRole":
            return f"role {self.role_name} session {self.session_name}"
        if self.principal_type == "FederatedUser":
            return f"federated session {self.session_name} of user {self.user_name}"
        return f"a session of user {self.user_name}"


@dataclass(frozen=True)
class SessionDenied(Facts):
    """revoke-session: the deny that ends exactly the leaked session (and, for an EC2
    instance's session, only its use away from the instance)."""

    optional: ClassVar[frozenset[str]] = frozenset({"token_issue_time_before",
                                                    "principal_deleted"})

    on: str = ""
    """role or user: where the deny is attached."""
    name: str = ""
    """The role's or user's name."""
    policy_name: str = ""
    session: str | None = None
    """ROLEID:session for a role session."""
    token_issue_time_before: str | None = None
    """For a user's session: its temporary credentials issued before this are denied."""
    away_from_instance: AwayFromInstance | None = None
    """For an instance's session, denied only where the request does not come from the
    instance; None (journaled as {}) otherwise, or when the instance's network could not
    be found (denied everywhere)."""
    already: bool = False
    principal_deleted: bool | None = None
    """The role or user no longer exists: the session has no permission left."""


@dataclass(frozen=True)
class SweepsScheduled(Facts):
    """schedule-sweeps: when CloudTrail is looked at again, and by whom."""

    due: tuple[str, ...] = ()
    """ISO times, in order: contained_at plus each of the playbook's after_minutes."""
    overlap_minutes: int = 30
    scheduler: str = "none"
    """eventbridge-scheduler (the Lambda deployment), or none: `respond sweep` / --watch."""
    schedules: tuple[str, ...] = ()
    """The EventBridge Scheduler schedule names, when it was used."""


@dataclass(frozen=True)
class SweepFound(Facts):
    """A sweep: what CloudTrail delivered late, merged into the evidence once, and what
    was contained because of it."""

    optional: ClassVar[frozenset[str]] = frozenset({"notified"})

    window: EvidenceWindow | None = None
    """It re-read overlap_minutes of what was already covered."""
    keys: tuple[str, ...] = ()
    """The keys looked up: the leaked key and every temporary key known so far."""
    new_keys: tuple[str, ...] = ()
    """Temporary keys first seen in this sweep."""
    new_events: int = 0
    new_event_ids: tuple[str, ...] = ()
    events_total: int = 0
    sha256: str | None = None
    """Of the evidence file after the merge."""
    regions_failed: Mapping[str, str] = field(default_factory=dict)
    """"KEY region": the error of that lookup."""
    summary: EvidenceSummary | None = None
    """The new events' summary (by name, high-risk actions, ...)."""
    attacker: AttackerContained | None = None
    """contain-attacker's facts for what the new events revealed, narrowed to the new
    events (None, journaled as {}: nothing new)."""
    notified: Notified | None = None
    """sent and failed channels, when something new was found."""


@dataclass(frozen=True)
class EvidenceArchived(Facts):
    """archive: the incident's files copied to the evidence bucket, with their SHA-256."""

    optional: ClassVar[frozenset[str]] = frozenset({"error"})

    bucket: str = ""
    prefix: str = ""
    objects: tuple[ArchivedObject, ...] = ()
    """One per file uploaded."""
    error: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"
