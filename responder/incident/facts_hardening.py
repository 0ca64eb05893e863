"""The facts of the harden step: what it proposed for the user whose key leaked, and
what it applied (only with --apply --yes).

Apart from results.py: no response builds them before the key is contained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from responder.incident.detail import Detail
from responder.incident.facts import Facts
from responder.incident.shapes import AppliedPolicy, MfaFinding, UnusedPermission


@dataclass(frozen=True)
class HistoryWindow(Detail):
    """What a proposal was drawn from: "read N events of the user's history from T1 to
    T2, of about M", and what came from the incident's evidence instead. A reader trusts
    a proposal only as far as this: one read from yesterday on knows nothing of the job
    that runs once a month."""

    regions: tuple[str, ...] = ()
    """Where the history was read by user name (the regions it failed in are the facts'
    regions_failed)."""
    read_from: str | None = None
    """From when the user's history was read by user name, in every region read: the
    lookback's start when every page was read, else the oldest event the limit reached;
    None when no region could be read."""
    read_to: str | None = None
    """Up to when: the compromise time when the incident's evidence holds the rest,
    else the moment the step ran."""
    events_read: int = 0
    """Events the lookups by user name returned."""
    events_estimated: int | None = None
    """About how many events the whole lookback holds in the regions read: events_read
    when every page was read, else scaled from the span read."""
    lookups: int = 0
    """LookupEvents calls (pages) made by user name."""
    read_limit: str | None = None
    """Why a region stopped before the lookback's start (None: every page was read)."""
    read_all: str | None = None
    """The command that reads every page, when this read did not."""
    evidence_events: int = 0
    """The user's own events (the leaked key's, and sessions it minted with
    GetSessionToken) taken from the incident's evidence instead of read again."""
    evidence_from: str | None = None
    """With evidence_to, the evidence's window (every enabled region, every page, by the
    key's id)."""
    evidence_to: str | None = None
    """None, both, when no evidence was taken (no incident, or its file is not here)."""


@dataclass(frozen=True)
class GracePeriod(Detail):
    """Whether what the user holds besides the proposal may be taken away yet: only
    after the proposal has been in place `grace_days` with nothing denied
    (hardening/grace.py)."""

    in_place_since: str | None = None
    """When the proposal's current version was made; None: not applied or not attached."""
    days_in_place: float | None = None
    grace_days: int = 14
    ends_at: str | None = None
    denied: tuple[str, ...] = ()
    """The user's calls IAM refused since then: "host:Event: n times, last T"."""
    would_deny: tuple[str, ...] = ()
    """The user's calls since then that the proposal in place does not allow."""
    checked: int = 0
    """(action, resource) pairs of the user's since then evaluated against it."""
    ready: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Proved(Detail):
    """The proposal evaluated against the history it was drawn from (hardening/prove.py):
    every used action on every resource it was used on must be allowed."""

    checked: int = 0
    allowed: int = 0
    unproven: tuple[str, ...] = ()
    """"call: why" for each one not shown allowed (at most 50, the rest counted)."""
    unproven_more: int = 0


@dataclass(frozen=True)
class Hardened(Facts):
    """harden: the MFA finding, the least-privilege proposal, the grants never used."""

    user_name: str = ""
    compromised_at: str | None = None
    compromised_at_source: str = ""
    """Why that moment: given, the finding's first-seen time, or hours before the start."""
    lookback_days: int = 90
    mfa: MfaFinding | None = None
    proposed_policy: Mapping[str, Any] = field(default_factory=dict)
    proposed_policy_path: str | None = None
    proposed_policy_chars: int = 0
    proposal_note: str | None = None
    """Set when the proposal had to be widened to fit a managed policy, or is empty."""
    used_actions: tuple[str, ...] = ()
    unused_permissions: tuple[UnusedPermission, ...] = ()
    new_source_ips: tuple[str, ...] = ()
    """Source IPs first seen in the last days: where an attacker may have come from."""
    events: int = 0
    regions: tuple[str, ...] = ()
    regions_failed: Mapping[str, str] = field(default_factory=dict)
    """Region: why CloudTrail could not be read there."""
    truncated: bool = False
    """The history was not read to the lookback's start (a limit stopped a region): kept
    for older readers; `window` says from when it was read."""
    window: HistoryWindow | None = None
    """The window the history was read over; None (journaled as {}) before issue 32."""
    applied: AppliedPolicy | None = None
    """None (journaled as {}) unless applied."""
    finish_commands: tuple[str, ...] = ()
    """What a human runs to take away what the user holds besides the proposal: only
    once `grace` says it is ready (before issue 33: always)."""
    proof: Proved | None = None
    """None (journaled as {}) before issue 33."""
    any_resource: Mapping[str, str] = field(default_factory=dict)
    """Action -> why its statement says `"Resource": "*"` (IAM takes no ARN for it, or a
    call did not name its resource)."""
    cannot_show: tuple[str, ...] = ()
    """What the history read cannot show (data events, older calls, console-only use),
    each with what to do about it."""
    grace: GracePeriod | None = None
    """When the finishing commands may be offered; None (journaled as {}) before 33."""
    mapping_source: str = ""
    """Which map and catalog the actions came from (iam_data.sources)."""
