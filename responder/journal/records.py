"""What the journal holds, as frozen records every backend returns alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

IncidentStatus = Literal["running", "halted", "waiting", "completed", "refused", "closed"]
StepStatus = Literal["pending", "running", "waiting", "done", "failed", "skipped"]
OPEN_STATUSES: tuple[IncidentStatus, ...] = ("running", "halted", "waiting")
"""A waiting incident (a rotation waiting for the applications or its grace period) is
open like a halted one: the key has one open incident at most."""


@dataclass(frozen=True)
class IncidentRecord:
    """One incident as the journal holds it: what was asked, where it stands, who holds
    its lease."""

    id: str
    access_key_id: str
    playbook: Mapping[str, Any]
    status: IncidentStatus
    started_at: datetime
    updated_at: datetime
    source: str
    options: Mapping[str, Any]
    contained_at: datetime | None = None
    user_name: str | None = None
    account_id: str | None = None
    error: str | None = None
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    report: str | None = None
    """Path of report.md once written."""
    finding_id: str | None = None
    """The GuardDuty / Health / Security Hub finding that triggered it, if any."""
    verification: Mapping[str, Any] | None = None
    """What the incident last observed in AWS about what it claims (a Verification's
    detail): written after containment, contain-attacker, the end of a run, a sweep and
    a rollback."""

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class StepRecord:
    """One step of an incident as journaled: its status, times and facts' detail."""

    incident_id: str
    position: int
    name: str
    action: str
    on_failure: str
    status: StepStatus
    started_at: datetime | None
    ended_at: datetime | None
    detail: Mapping[str, Any]
    error: str | None


@dataclass(frozen=True, order=True)
class CallHandle:
    """What intent() gives back for sending() and result(); callers only pass it back.

    It names the incident as well as the call, so a backend finds the call from the
    handle alone (DynamoDB: the item's key) instead of a lookup or a pointer item. The
    handles of one incident order as their intents do.
    """

    incident_id: str
    call_id: str
    """The call's CallRecord.id."""


@dataclass(frozen=True)
class CallRecord:
    """One journaled AWS call (secrets already redacted)."""

    id: str
    """Unique within its incident; the ids of one incident sort, as text, in intent order."""
    step: str
    service: str
    operation: str
    params: Mapping[str, Any]
    mutating: bool
    outcome: Literal["pending", "sending", "ok", "error"]
    """pending: intent only, nothing sent; sending: the request left, AWS may have acted."""
    result: Mapping[str, Any] | None
    error: str | None
    attempts: int
    intent_at: datetime
    result_at: datetime | None


class IncidentExists(Exception):
    """create_incident found an open incident for the same key; join it instead."""

    def __init__(self, incident_id: str) -> None:
        super().__init__(incident_id)
        self.incident_id = incident_id
