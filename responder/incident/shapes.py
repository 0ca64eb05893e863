"""The known shapes nested in the facts: evidence summaries, windows, IAM snapshots, and
what contain-attacker shut or left for a human.

Each is journaled as the mapping its producer always wrote (same keys, same order), so a
journal of an older version reads back into them and a new one reads as before; readers
get attributes that mypy checks instead of `.get("...")` that silently yields None when a
key is renamed. What stays a mapping is open-ended by nature: a raw CloudTrail record
(high_risk keeps CloudTrail's own names), an AWS response item, a count by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from responder.incident.detail import Detail


@dataclass(frozen=True)
class EvidenceWindow(Detail):
    """The time span a CloudTrail lookup covered (ISO times)."""

    start: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class EvidenceSummary(Detail):
    """What a responder wants to see first of a set of CloudTrail events (the streaming
    counters of responder.evidence.summary)."""

    events: int = 0
    by_event_name: Mapping[str, int] = field(default_factory=dict)
    """Count by event name, most frequent first."""
    source_ips: Mapping[str, int] = field(default_factory=dict)
    """The most frequent source addresses and their counts."""
    distinct_source_ips: int = 0
    user_agents: Mapping[str, int] = field(default_factory=dict)
    regions: Mapping[str, int] = field(default_factory=dict)
    by_access_key: Mapping[str, int] = field(default_factory=dict)
    first_event: str | None = None
    last_event: str | None = None
    high_risk: tuple[Mapping[str, Any], ...] = ()
    """eventName, eventTime, region, sourceIPAddress, accessKeyId, errorCode: CloudTrail's
    own names, as a responder greps for them (and the drill reads them); and `refused`,
    True when CloudTrail recorded an errorCode (AWS refused the call: it changed nothing).
    Read them with `refusal` and `marked`: an older journal's entries have no `refused`."""
    high_risk_total: int = 0
    """Including those past the cap on `high_risk`."""


def refusal(event: Mapping[str, Any]) -> str | None:
    """The errorCode of a call AWS refused (CloudTrail recorded an errorCode), else None."""
    code = event.get("errorCode")
    return code if isinstance(code, str) and code else None


def marked(event: Mapping[str, Any], name: str = "eventName") -> str:
    """An event's name as every reader shows it: `AttachUserPolicy (refused: AccessDenied)`
    for a call AWS refused."""
    code = refusal(event)
    shown = str(event.get(name))
    return shown if code is None else f"{shown} (refused: {code})"


@dataclass(frozen=True)
class TemporaryKey(Detail):
    """A temporary key the leaked key minted, and its own lookup."""

    access_key_id: str = ""
    events: int = 0
    regions_failed: Mapping[str, str] = field(default_factory=dict)
    """Region: the error of its lookup there."""

    @classmethod
    def coerce(cls, raw: Any) -> Mapping[str, Any]:
        """An early version journaled the bare key id."""
        return {"access_key_id": raw} if isinstance(raw, str) else super().coerce(raw)


@dataclass(frozen=True)
class IamSnapshot(Detail):
    """The user's IAM picture (responder.iam.snapshot.take). A list whose read failed is
    left out, and its error is in `errors`."""

    optional: ClassVar[frozenset[str]] = frozenset({
        "access_keys", "inline_policies", "attached_policies", "mfa_devices", "errors"})

    user_name: str = ""
    access_keys: tuple[Mapping[str, Any], ...] | None = None
    """ListAccessKeys' items, as AWS answered them (dates as ISO)."""
    inline_policies: tuple[str, ...] | None = None
    attached_policies: tuple[Mapping[str, Any], ...] | None = None
    """ListAttachedUserPolicies' items (PolicyName, PolicyArn)."""
    groups: tuple[str, ...] = ()
    mfa_devices: tuple[Mapping[str, Any], ...] | None = None
    has_mfa: bool = False
    aws_quarantine: tuple[str, ...] = ()
    """AWS's own quarantine policies attached to the user (recorded, never detached)."""
    errors: Mapping[str, str] | None = None
    """List name: why it could not be read."""

    def to_detail(self) -> dict[str, Any]:
        detail = super().to_detail()
        if "groups" in (self.errors or {}):
            # When its read failed, groups was set last: keep the journal's key order.
            detail = {k: v for k, v in detail.items() if k != "groups"}
            at = list(detail).index("has_mfa")
            items = list(detail.items())
            detail = dict([*items[:at], ("groups", list(self.groups)), *items[at:]])
        return detail


@dataclass(frozen=True)
class DisabledKey(Detail):
    """An access key the attacker created, set Inactive (or found so: `already`)."""

    user_name: str = ""
    access_key_id: str = ""
    already: bool = False


@dataclass(frozen=True)
class QuarantinedPrincipal(Detail):
    """A user or role the attacker created, given the deny-all responder-quarantine."""

    optional: ClassVar[frozenset[str]] = frozenset({"keys_found_inactive"})

    type: str = ""
    """user or role."""
    name: str = ""
    keys_disabled: tuple[str, ...] = ()
    """A quarantined user's keys that this run set Inactive (an older journal: all of its
    keys, whoever had set them Inactive)."""
    keys_found_inactive: tuple[str, ...] | None = None
    """Its keys that were Inactive before this run touched them: never made Active by a
    rollback (journaled only when there are some)."""


@dataclass(frozen=True)
class RevokedSession(Detail):
    """Sessions the attacker opened on a role, denied by the role's revoke policy."""

    role_name: str = ""
    role_arn: str | None = None
    sessions: tuple[str, ...] = ()
    """ROLEID:session, as aws:userid names them."""


@dataclass(frozen=True)
class CoveredSession(Detail):
    """A session the attacker minted that the user's cutoff already denies."""

    event_id: str | None = None
    event_name: str | None = None
    access_key_id: str | None = None


@dataclass(frozen=True)
class RefusedCall(Detail):
    """A call of the attacker's that AWS refused (CloudTrail recorded an errorCode): it
    changed nothing, so nothing is shut or undone for it."""

    event_id: str | None = None
    event_name: str | None = None
    time: str | None = None
    access_key_id: str | None = None
    error_code: str = ""


@dataclass(frozen=True)
class HumanAction(Detail):
    """A change of the attacker's that a human must undo, with the command that does."""

    event_id: str | None = None
    event_name: str | None = None
    time: str | None = None
    access_key_id: str | None = None
    what: str = ""
    undo: str = ""
    meaning: str = ""
    """The catalog's meaning (responder.catalog.model.Meaning's value): `grants access to
    an outside principal`, ... Empty in journals written before the catalog."""
    resource: str = ""
    """What the change touches (a snapshot id, a bucket, a function)."""
    region: str | None = None
    outside: tuple[str, ...] = ()
    """The principals outside the account it let in: `*`, account ids, ARNs."""
    manual: bool = False
    """The undo holds a <placeholder> to replace by hand before it is run."""
    entry: str = ""
    """The catalog entry that read it (`ec2.ModifySnapshotAttribute`)."""
    note: str = ""
    """What to know before running `undo` (kept apart so `undo` pastes as it is)."""


@dataclass(frozen=True)
class CredentialRead(Detail):
    """A credential the attacker read or decrypted: rotate it, it is the attacker's now."""

    kind: str = ""
    """secret, parameter, kms-key or instance-password."""
    name: str = ""
    """The secret's id, the parameter's name, the key's ARN, the instance's id."""
    region: str | None = None
    event_name: str | None = None
    event_id: str | None = None
    time: str | None = None
    access_key_id: str | None = None
    rotate: str = ""
    """The command that rotates it."""
    manual: bool = False
    """`rotate` holds a <placeholder> (the new value) to fill in by hand."""
    note: str = ""
    """What to know before running `rotate` (kept apart so `rotate` pastes as it is)."""


@dataclass(frozen=True)
class OutsideGrant(Detail):
    """Someone outside the account the attacker let in, and to what."""

    principal: str = ""
    """`*` (everyone), an account id, or an ARN of another account."""
    resource: str = ""
    what: str = ""
    event_name: str | None = None
    event_id: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class RestoredDefense(Detail):
    """A defense the attacker turned off that contain-attacker turned back on (a trail
    logs again, a GuardDuty detector is enabled, a Config recorder records), as observed
    before and after."""

    kind: str = ""
    """trail, detector or recorder."""
    name: str = ""
    """The trail's name or ARN, the detector's id, the recorder's name."""
    region: str = ""
    already: bool = False
    """It was on again when first read: nothing was changed."""
    event_id: str | None = None
    """The attacker's event that turned it off."""


@dataclass(frozen=True)
class ReactivatedKey(Detail):
    """rollback: a key contain-attacker had set Inactive, Active again."""

    user_name: str = ""
    access_key_id: str = ""


@dataclass(frozen=True)
class RemovedQuarantine(Detail):
    """rollback: a responder-quarantine policy deleted from a user or role."""

    type: str = ""
    name: str = ""


@dataclass(frozen=True)
class RestoredSessions(Detail):
    """rollback: sessions taken out of a role's session deny."""

    role_name: str = ""
    sessions: tuple[str, ...] = ()


@dataclass(frozen=True)
class RollbackReason(Detail):
    """rollback: why one `respond rollback --yes` was run, and when."""

    at: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Delivery(Detail):
    """notify: a channel told (sent) or not (failed). SNS names its topic and the
    MessageId, or the error; Slack the webhook's HTTP status, or the error."""

    channel: str | None = None
    """sns or slack."""
    topic: str | None = None
    message_id: str | None = None
    status: int | None = None
    error: str | None = None

    def to_detail(self) -> dict[str, Any]:
        """The keys its channel always journaled: sns channel, topic, then message_id or
        error; slack channel, then status or error."""
        sns = self.channel == "sns"
        names = ("channel", *(("topic",) if sns else ()),
                 "error" if self.error is not None else "message_id" if sns else "status")
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class Notified(Detail):
    """A sweep's notification: the channels told and those that failed."""

    sent: tuple[Delivery, ...] = ()
    failed: tuple[Delivery, ...] = ()


@dataclass(frozen=True)
class AwayFromInstance(Detail):
    """revoke-session: an instance's session denied only away from its instance."""

    instance_id: str = ""
    vpc_id: str = ""
    private_ip: str = ""
    egress_ips: tuple[str, ...] = ()
    statements: tuple[str, ...] = ()
    """The Sids of the deny statements put on the role."""


@dataclass(frozen=True)
class ArchivedObject(Detail):
    """archive: a file uploaded to the evidence bucket."""

    key: str = ""
    sha256: str = ""
    bytes: int = 0
    version_id: str | None = None
    """None when the bucket is not versioned."""


@dataclass(frozen=True)
class MfaFinding(Detail):
    """harden: whether the user signs in to the console without an MFA device."""

    console: bool = False
    mfa_device: bool = False
    policy_proposed: bool = False
    """responder-require-mfa is proposed: a console password and no MFA device."""
    reason: str | None = None


@dataclass(frozen=True)
class UnusedPermission(Detail):
    """harden: a granted action pattern that goes beyond what the user used."""

    policy: str = ""
    source: str = ""
    action: str = ""
    resource: str = ""
    covers_used: tuple[str, ...] = ()
    """The used actions this grant also matches: what removing it would break."""
    reason: str = ""


@dataclass(frozen=True)
class AppliedPolicy(Detail):
    """harden --apply: the least-privilege policy put in place beside the user's own."""

    policy_arn: str = ""
    policy: str = ""
    """created, updated (a new default version) or unchanged."""
    version: str = ""
    attached: bool = False
    """True when this run attached it (False: it was attached already)."""
    mfa_policy: str = ""
    """put, unchanged, or not proposed."""
