"""What the journal backends share, so SQLite and DynamoDB cannot drift apart.

A backend stores and reads; the rules live here once: which incident fields may be
changed, how records are encoded and decoded, what a lost uniqueness race means
(IncidentExists naming the incident to join) and what a refused lease says. Records
are decoded from plain mappings (a SQLite row, a deserialised DynamoDB item) in which
an absent attribute and NULL mean the same thing.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, NoReturn

from responder.aws import ApiCall
from responder.context import iso, parse_iso
from responder.errors import LeaseHeld, UnknownIncident
from responder.journal.records import (
    OPEN_STATUSES,
    CallHandle,
    CallRecord,
    IncidentExists,
    IncidentRecord,
    StepRecord,
    StepStatus,
)

INCIDENT_FIELDS: Final = frozenset(
    {"status", "user_name", "account_id", "contained_at", "error", "report", "verification"}
)
"""What update_incident may set: a typo must fail, not silently write nothing."""
COLLISION_ATTEMPTS: Final = 3
"""A write that lost a uniqueness race to an incident that has since closed (or whose
guard outlived it) is tried again this often before the error is let through."""
APPEND_ATTEMPTS: Final = 5
"""add_step reads the steps and claims the next position this often: each lost attempt
means another writer appended a step meanwhile, so a handful covers any real contention."""
ON_FAILURE: Final = frozenset({"halt", "continue"})
"""What a step may do when it fails (the playbook's values): a typo must fail, not be
journaled as a rule the runner would never recognise."""


def dumps(value: Any) -> str:
    """Mappings are stored as JSON text (sorted), the same text in every backend."""
    return json.dumps(value, sort_keys=True, default=str)


def must(text: str | None) -> datetime:
    """A timestamp the schema requires: its absence is corruption, not a missing value."""
    moment = parse_iso(text)
    if moment is None:
        raise ValueError("journal record is missing a required timestamp")
    return moment


def incident_record(fields: Mapping[str, Any]) -> IncidentRecord:
    return IncidentRecord(
        id=fields["id"],
        access_key_id=fields["access_key_id"],
        playbook=json.loads(fields["playbook"]),
        status=fields["status"],
        started_at=must(fields["started_at"]),
        updated_at=must(fields["updated_at"]),
        source=fields["source"],
        options=json.loads(fields["options"]),
        contained_at=parse_iso(fields.get("contained_at")),
        user_name=fields.get("user_name"),
        account_id=fields.get("account_id"),
        error=fields.get("error"),
        lease_owner=fields.get("lease_owner"),
        lease_expires=parse_iso(fields.get("lease_expires")),
        report=fields.get("report"),
        finding_id=fields.get("finding_id"),
        verification=json.loads(fields["verification"]) if fields.get("verification") else None,
    )


def step_record(fields: Mapping[str, Any]) -> StepRecord:
    return StepRecord(
        incident_id=fields["incident_id"],
        position=int(fields["position"]),
        name=fields["name"],
        action=fields["action"],
        on_failure=fields["on_failure"],
        status=fields["status"],
        started_at=parse_iso(fields.get("started_at")),
        ended_at=parse_iso(fields.get("ended_at")),
        detail=json.loads(fields["detail"]),
        error=fields.get("error"),
    )


def call_record(fields: Mapping[str, Any]) -> CallRecord:
    """`id` must already be the backend's text id (see CallRecord.id)."""
    result = fields.get("result")
    return CallRecord(
        id=fields["id"],
        step=fields["step"],
        service=fields["service"],
        operation=fields["operation"],
        params=json.loads(fields["params"]),
        mutating=bool(fields["mutating"]),
        outcome=fields["outcome"],
        result=None if result is None else json.loads(result),
        error=fields.get("error"),
        attempts=int(fields["attempts"]),
        intent_at=must(fields["intent_at"]),
        result_at=parse_iso(fields.get("result_at")),
    )


def incident_changes(fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """update_incident's fields as stored (timestamps as iso text), plus updated_at."""
    unknown = set(fields) - INCIDENT_FIELDS
    if unknown:
        raise ValueError(f"not incident fields: {sorted(unknown)}")
    if "status" in fields and fields["status"] is None:
        raise ValueError("an incident's status cannot be cleared")
    values = {k: iso(v) if isinstance(v, datetime) else dumps(v) if isinstance(v, Mapping)
              else v for k, v in fields.items()}
    return {**values, "updated_at": iso(now)}


@dataclass(frozen=True)
class PendingStep:
    """A playbook step as create_incident journals it, before it runs."""

    position: int
    name: str
    action: str
    on_failure: str


@dataclass(frozen=True)
class NewIncident:
    """create_incident's arguments, checked and derived once for every backend."""

    id: str
    access_key_id: str
    playbook: Mapping[str, Any]
    started_at: datetime
    source: str
    options: Mapping[str, Any]
    owner: str
    lease_expires: datetime
    finding_id: str | None
    steps: tuple[PendingStep, ...]


class Collision(Exception):
    """A write broke a uniqueness rule (one open incident per key, one incident per
    finding); the base class works out which incident won."""


class Journal(ABC):
    """The one source of truth about an incident, and the contract every backend keeps.

    The runner writes intent before every AWS call and the outcome after it; a step's
    status moves pending → running → done | failed | skipped. The rules are implemented
    here once; a backend implements the reads, the lease and the storage hooks below,
    and passes the same tests (tests/test_journal.py).
    """

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the journal is, for messages: the file, or the table."""

    @abstractmethod
    def find_open(self, access_key_id: str) -> IncidentRecord | None: ...

    @abstractmethod
    def find_by_finding(self, finding_id: str) -> IncidentRecord | None: ...

    @abstractmethod
    def history_for_key(self, access_key_id: str) -> list[IncidentRecord]:
        """Every incident of the key, oldest first."""

    @abstractmethod
    def recent(self, limit: int = 20) -> list[IncidentRecord]:
        """The newest incidents first."""

    def listing(self) -> Iterator[tuple[str, bool]]:
        """(id, is_open) of every incident, the open ones first, each group newest first,
        read as it is consumed: `respond status` then reads the incidents it shows one at
        a time, so its memory stays flat however large the journal. Backends read less."""
        return ((r.id, r.is_open) for r in sorted(self.recent(-1), key=lambda r: not r.is_open))

    @abstractmethod
    def acquire_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        """Take the lease if free, expired or already ours; else raise LeaseHeld."""

    @abstractmethod
    def take_over_lease(
        self, incident_id: str, dead_owner: str, owner: str, now: datetime, seconds: float
    ) -> None:
        """Take the lease from `dead_owner` (known dead) if it still holds it."""

    @abstractmethod
    def renew_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        """Extend our lease; raise LeaseHeld if someone else has taken it over."""

    @abstractmethod
    def release_lease(self, incident_id: str, owner: str) -> None: ...

    @abstractmethod
    def steps(self, incident_id: str) -> list[StepRecord]:
        """In position order: the playbook's steps, then those appended by add_step."""

    @abstractmethod
    def step_started(self, incident_id: str, name: str, now: datetime) -> None: ...

    @abstractmethod
    def intent(self, incident_id: str, step: str, call: ApiCall, now: datetime) -> CallHandle:
        """Journal the call as pending before it is made."""

    @abstractmethod
    def sending(self, handle: CallHandle) -> None:
        """pending → sending, never over a result; a handle naming no call changes nothing."""

    def calls(self, incident_id: str, step: str | None = None) -> list[CallRecord]:
        """In intent order."""
        return list(self.each_call(incident_id, step))

    @abstractmethod
    def each_call(self, incident_id: str, step: str | None = None) -> Iterator[CallRecord]:
        """calls(), read as they are consumed (a backend reads a page at a time): the
        report of an incident whose evidence took thousands of LookupEvents pages is
        written holding one page of its calls, not all of them."""

    @abstractmethod
    def _get_or_none(self, incident_id: str) -> IncidentRecord | None: ...

    @abstractmethod
    def _insert_incident(self, new: NewIncident) -> None:
        """Write the incident, its guards and its pending steps atomically; raise
        Collision (from the store's error) when a uniqueness rule refuses them."""

    @abstractmethod
    def _set_incident(self, incident_id: str, values: Mapping[str, Any]) -> None:
        """Write incident_changes() (None clears a field), keeping the one-open-incident-
        per-key rule; raise Collision when it refuses a status change."""

    @abstractmethod
    def _set_step(self, incident_id: str, name: str, values: Mapping[str, Any],
                  now: datetime) -> None:
        """Write `values` on the named step (if it exists) and touch the incident."""

    @abstractmethod
    def _set_call(self, handle: CallHandle, values: Mapping[str, Any]) -> None:
        """Write `values` on the call (if it exists)."""

    @abstractmethod
    def _append_step(self, incident: IncidentRecord, name: str, action: str,
                     on_failure: str, now: datetime) -> bool:
        """Store a pending step named `name` at one past the incident's highest position
        and touch the incident, unless a step of that name exists (then change nothing).
        True once the step exists; False when another writer took the chosen position
        first, so add_step reads the steps again and retries."""

    def _encode(self, value: Any) -> str:
        """A step's detail or a call's result as stored; a backend may bound it."""
        return dumps(value)

    def _unblock(self, access_key_id: str) -> None:
        """Clear what a Collision may have hit that no longer stands for an open
        incident. Nothing, where the rule is an index over the incidents themselves."""
        del access_key_id

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
        new = NewIncident(
            id=incident_id, access_key_id=access_key_id, playbook=playbook,
            started_at=started_at, source=source, options=options, owner=owner,
            lease_expires=started_at + timedelta(seconds=lease_seconds),
            finding_id=finding_id,
            steps=tuple(
                PendingStep(i, s["name"], s["action"], s.get("on_failure", "halt"))
                for i, s in enumerate(playbook["steps"])
            ),
        )
        for attempt in range(COLLISION_ATTEMPTS):
            try:
                self._insert_incident(new)
            except Collision as exc:
                existing = (self.find_by_finding(finding_id) if finding_id else None) or \
                    self.find_open(access_key_id)
                if existing is not None:
                    raise IncidentExists(existing.id) from exc
                # The winner closed in the meantime, or its guard is stale: try again.
                if attempt == COLLISION_ATTEMPTS - 1:
                    raise
                self._unblock(access_key_id)
            else:
                break
        return self.get(incident_id)

    def update_incident(self, incident_id: str, now: datetime, **fields: Any) -> None:
        """Set status, user_name, account_id, contained_at, error, report and/or verification
        (a mapping, stored as JSON text); None clears one, an unknown field is a ValueError.
        Raises IncidentExists when a new open status would give the key a second one."""
        values = incident_changes(fields, now)
        opening = values.get("status") in OPEN_STATUSES
        for attempt in range(COLLISION_ATTEMPTS):
            try:
                self._set_incident(incident_id, values)
            except Collision as exc:
                record = self._get_or_none(incident_id)
                if record is None:
                    return  # gone meanwhile: updating an unknown incident changes nothing
                holder = self.find_open(record.access_key_id) if opening else None
                if holder is not None and holder.id != incident_id:
                    raise IncidentExists(holder.id) from exc
                if attempt == COLLISION_ATTEMPTS - 1:
                    raise
                self._unblock(record.access_key_id)
            else:
                return

    def get(self, incident_id: str) -> IncidentRecord:
        """Raises UnknownIncident."""
        record = self._get_or_none(incident_id)
        if record is None:
            raise UnknownIncident(
                f"unknown incident id {incident_id!r} in {self.location};"
                " `respond status` lists them"
            )
        return record

    def add_step(self, incident_id: str, name: str, action: str, now: datetime, *,
                 on_failure: str = "continue") -> None:
        """Append a pending step named `name` after the incident's last one, unless a step
        of that name already exists (then nothing changes: adding is idempotent, so a
        resumed follow-up finds its step again). Raises UnknownIncident for an unknown id.

        Follow-up work after an incident (a later CloudTrail sweep, an evidence upload)
        is journaled as steps of that incident, so step_started, step_finished and the
        write-ahead calls record it exactly as they record playbook steps.
        """
        if on_failure not in ON_FAILURE:
            raise ValueError(f"on_failure must be one of {sorted(ON_FAILURE)}, not {on_failure!r}")
        incident = self.get(incident_id)
        for _ in range(APPEND_ATTEMPTS):
            if self._append_step(incident, name, action, on_failure, now):
                return
        raise Collision(
            f"incident {incident_id}: step {name!r} lost the next position to other writers"
            f" {APPEND_ATTEMPTS} times"
        )

    def _raise_held(self, incident_id: str) -> NoReturn:
        """A lease write was refused: say who holds it and until when."""
        record = self.get(incident_id)
        raise LeaseHeld(incident_id, record.lease_owner or "?", iso(record.lease_expires) or "?")

    def step_finished(self, incident_id: str, name: str, *, status: StepStatus, now: datetime,
                      detail: Mapping[str, Any], error: str | None) -> None:
        self._set_step(incident_id, name, {
            "status": status, "ended_at": iso(now), "detail": self._encode(detail),
            "error": error,
        }, now)

    def result(self, handle: CallHandle, *, ok: bool, attempts: int, now: datetime,
               result: Any = None, error: str | None = None) -> None:
        self._set_call(handle, {
            "outcome": "ok" if ok else "error", "attempts": attempts,
            "result": None if result is None else self._encode(result), "error": error,
            "result_at": iso(now),
        })
