"""The Journal protocol: the one source of truth about an incident.

The runner writes intent before every AWS call and the outcome after it; a step's
status moves pending → running → done | failed | skipped. Backends (SQLite here,
DynamoDB for Lambda) implement the same protocol and pass the same tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from responder.aws import ApiCall

if TYPE_CHECKING:
    import boto3

IncidentStatus = Literal["running", "halted", "completed", "refused"]
StepStatus = Literal["pending", "running", "done", "failed", "skipped"]
OPEN_STATUSES: tuple[IncidentStatus, ...] = ("running", "halted")


@dataclass(frozen=True)
class IncidentRecord:
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

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class StepRecord:
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


class Journal(Protocol):
    def create_incident(
        self,
        *,
        incident_id: str,
        access_key_id: str,
        playbook: Mapping[str, Any],
        started_at: datetime,
        source: str,
        options: Mapping[str, Any],
        owner: str,
        lease_seconds: float,
        finding_id: str | None = None,
    ) -> IncidentRecord:
        """Create incident and pending steps atomically, holding the lease.

        Raises IncidentExists when the key already has an open incident, or when an
        incident for the same finding id exists (whatever its status).
        """

    def get(self, incident_id: str) -> IncidentRecord:
        """Raises UnknownIncident."""

    def find_open(self, access_key_id: str) -> IncidentRecord | None: ...

    def find_by_finding(self, finding_id: str) -> IncidentRecord | None: ...

    def history_for_key(self, access_key_id: str) -> list[IncidentRecord]: ...

    def recent(self, limit: int = 20) -> list[IncidentRecord]: ...

    def acquire_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        """Take the lease if free, expired or already ours; else raise LeaseHeld."""

    def take_over_lease(
        self, incident_id: str, dead_owner: str, owner: str, now: datetime, seconds: float
    ) -> None:
        """Take the lease from `dead_owner` (known dead) if it still holds it."""

    def renew_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        """Extend our lease; raise LeaseHeld if someone else has taken it over."""

    def release_lease(self, incident_id: str, owner: str) -> None: ...

    def update_incident(self, incident_id: str, now: datetime, **fields: Any) -> None:
        """Set status, user_name, account_id, contained_at, error and/or report (None
        clears one; an unknown field is a ValueError). Raises IncidentExists when a new
        open status would give the key a second open incident."""

    def steps(self, incident_id: str) -> list[StepRecord]: ...

    def step_started(self, incident_id: str, name: str, now: datetime) -> None: ...

    def step_finished(
        self,
        incident_id: str,
        name: str,
        *,
        status: StepStatus,
        now: datetime,
        detail: Mapping[str, Any],
        error: str | None,
    ) -> None: ...

    def intent(self, incident_id: str, step: str, call: ApiCall, now: datetime) -> CallHandle:
        """Journal the call as pending before it is made."""

    def sending(self, handle: CallHandle) -> None:
        """pending → sending, never over a result; a handle naming no call changes nothing."""

    def result(
        self,
        handle: CallHandle,
        *,
        ok: bool,
        attempts: int,
        now: datetime,
        result: Any = None,
        error: str | None = None,
    ) -> None: ...

    def calls(self, incident_id: str, step: str | None = None) -> list[CallRecord]:
        """In intent order."""


def open_journal(
    state: str | None, home: Path, session: boto3.Session | None = None
) -> Journal:
    """`--state`: a SQLite path (default $RESPONDER_HOME/responder.db), or
    `dynamodb://TABLE` for the DynamoDB journal, reached through `session` (the run's,
    so `--profile` and `--region` choose the table's account and region as they do for
    every other call)."""
    if state and state.startswith("dynamodb://"):
        from responder.journal.dynamodb import DynamoDbJournal  # noqa: PLC0415

        return DynamoDbJournal.from_url(state, session=session)
    from responder.journal.sqlite import SqliteJournal  # noqa: PLC0415 - sqlite imports us

    return SqliteJournal(Path(state) if state else home / "responder.db")
