"""The facts of the harden step: what it proposed for the user whose key leaked, and
what it applied (only with --apply --yes).

Apart from results.py: no response builds them before the key is contained.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from responder.incident.facts import Facts
from responder.incident.shapes import AppliedPolicy, MfaFinding, UnusedPermission


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
    applied: AppliedPolicy | None = None
    """None (journaled as {}) unless applied."""
    finish_commands: tuple[str, ...] = ()
    """What a human runs to take away what the user holds besides the proposal."""
