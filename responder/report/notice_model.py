"""What a notification says, as data: one Notice, built once by responder.report.notice
from the incident view and rendered by responder.report.notify for each channel (and
read by the report's next actions). No secret is in it: the journal holds none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from responder.incident.facts import KeyReplaced
from responder.incident.facts_rollback import RolledBack
from responder.incident.shapes import (
    CredentialRead,
    HumanAction,
    OutsideGrant,
    RefusedCall,
    RestoredDefense,
)
from responder.report.entry import Entry
from responder.report.story import Story
from responder.report.todo import Todo


@dataclass(frozen=True)
class NoticeEvidence(Entry):
    """The evidence as a notice tells it: counts, where, and the high-risk events."""

    events: int = 0
    regions: tuple[str, ...] = ()
    regions_failed: Mapping[str, Any] = field(default_factory=dict)
    sha256: str | None = None
    path: str | None = None
    high_risk: tuple[Mapping[str, Any], ...] = ()
    """CloudTrail's events as the evidence summary keeps them (eventName, eventTime, ...),
    eventName marked `(refused: CODE)` for a call AWS refused, as every channel shows it."""
    high_risk_total: int = 0
    temporary_keys: tuple[str, ...] = ()
    roles_assumed: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoticeAttacker(Entry):
    """What contain-attacker shut (counts), what it left for a human (the items), and
    what every message leads with (responder.report.leads)."""

    keys_disabled: int = 0
    principals_quarantined: int = 0
    sessions_revoked: int = 0
    needs_human: tuple[HumanAction, ...] = ()
    refused: tuple[RefusedCall, ...] = ()
    """Its calls AWS refused: nothing shut, nothing to undo."""
    regions_unread: Mapping[str, str] = field(default_factory=dict)
    """Region: why CloudTrail was not read there (containment may be incomplete)."""
    credentials_read: tuple[CredentialRead, ...] = ()
    """What the attacker read (contain-attacker's and the sweeps'): rotate each."""
    granted_to: tuple[OutsideGrant, ...] = ()
    """The principals outside the account it let in."""
    restored: tuple[RestoredDefense, ...] = ()
    """The defenses it turned off that were turned back on."""


@dataclass(frozen=True)
class NoticeSweep(Entry):
    """What a sweep found late."""

    new_events: int = 0
    new_keys: tuple[str, ...] = ()
    high_risk: tuple[Mapping[str, Any], ...] = ()
    sha256: str | None = None


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
    evidence: NoticeEvidence | None
    """None when evidence collection did not finish."""
    replacement: KeyReplaced | None
    """The new key and its secret's name; None when no key was issued."""
    has_mfa: bool | None
    aws_quarantine: tuple[str, ...]
    failing_step: str | None
    next_actions: tuple[str, ...]
    sessions_cutoff: str | None = None
    """Temporary credentials of the user issued before this time are denied."""
    attacker: NoticeAttacker | None = None
    """None when contain-attacker did not run."""
    session: str | None = None
    """For a temporary key: whose session it is, in words (role app session x)."""
    sweep: NoticeSweep | None = None
    """For a sweep's notice only."""
    rolled_back: RolledBack | None = None
    """The latest rollback: the containment was undone (a false positive), and why."""
    todo: tuple[Todo, ...] = ()
    """The next actions as data (`next_actions` holds each as one line of text)."""
    story: Story | None = None
    """The incident's story (responder.report.story), which every message leads with:
    the same headline, what was shut and what to do as the terminal and the reports."""
