"""SQLite journal: one WAL-mode file, safe for several processes on one machine.

Every write is its own committed transaction (synchronous=FULL), so a process killed
at any instant leaves the journal at the last completed write. The one-open-incident-
per-key rule is a partial unique index, so two runners racing to open an incident for
the same key cannot both succeed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from responder.aws import ApiCall
from responder.context import iso, parse_iso
from responder.errors import LeaseHeld, UnknownIncident
from responder.journal import (
    CallRecord,
    IncidentExists,
    IncidentRecord,
    StepRecord,
    StepStatus,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    access_key_id TEXT NOT NULL,
    playbook TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    source TEXT NOT NULL,
    options TEXT NOT NULL,
    contained_at TEXT,
    user_name TEXT,
    account_id TEXT,
    error TEXT,
    lease_owner TEXT,
    lease_expires TEXT,
    report TEXT,
    finding_id TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_incident_per_finding
    ON incidents(finding_id) WHERE finding_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS one_open_incident_per_key
    ON incidents(access_key_id) WHERE status IN ('running', 'halted');
CREATE TABLE IF NOT EXISTS steps (
    incident_id TEXT NOT NULL REFERENCES incidents(id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    action TEXT NOT NULL,
    on_failure TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    PRIMARY KEY (incident_id, name)
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL REFERENCES incidents(id),
    step TEXT NOT NULL,
    service TEXT NOT NULL,
    operation TEXT NOT NULL,
    params TEXT NOT NULL,
    mutating INTEGER NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'pending',
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    intent_at TEXT NOT NULL,
    result_at TEXT
);
CREATE INDEX IF NOT EXISTS calls_by_incident ON calls(incident_id, step);
"""

INCIDENT_FIELDS = frozenset(
    {"status", "user_name", "account_id", "contained_at", "error", "report"}
)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _when(text: str | None) -> datetime | None:
    return parse_iso(text)


def _must(text: str | None) -> datetime:
    moment = parse_iso(text)
    if moment is None:
        raise ValueError("journal row is missing a required timestamp")
    return moment


class SqliteJournal:
    """The default Journal backend."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # incidents -----------------------------------------------------------------

    def _incident(self, row: sqlite3.Row) -> IncidentRecord:
        return IncidentRecord(
            id=row["id"],
            access_key_id=row["access_key_id"],
            playbook=json.loads(row["playbook"]),
            status=row["status"],
            started_at=_must(row["started_at"]),
            updated_at=_must(row["updated_at"]),
            source=row["source"],
            options=json.loads(row["options"]),
            contained_at=_when(row["contained_at"]),
            user_name=row["user_name"],
            account_id=row["account_id"],
            error=row["error"],
            lease_owner=row["lease_owner"],
            lease_expires=_when(row["lease_expires"]),
            report=row["report"],
            finding_id=row["finding_id"],
        )

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
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO incidents (id, access_key_id, playbook, status, started_at,"
                    " updated_at, source, options, lease_owner, lease_expires, finding_id)"
                    " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                    (
                        incident_id, access_key_id, _dumps(playbook), iso(started_at),
                        iso(started_at), source, _dumps(options), owner,
                        iso(started_at + timedelta(seconds=lease_seconds)), finding_id,
                    ),
                )
                db.executemany(
                    "INSERT INTO steps (incident_id, position, name, action, on_failure, status)"
                    " VALUES (?, ?, ?, ?, ?, 'pending')",
                    [
                        (incident_id, i, s["name"], s["action"], s.get("on_failure", "halt"))
                        for i, s in enumerate(playbook["steps"])
                    ],
                )
        except sqlite3.IntegrityError as exc:
            existing = (self.find_by_finding(finding_id) if finding_id else None) or \
                self.find_open(access_key_id)
            if existing is None:
                raise
            raise IncidentExists(existing.id) from exc
        return self.get(incident_id)

    def get(self, incident_id: str) -> IncidentRecord:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM incidents WHERE id = ?", (incident_id,)
            ).fetchone()
        if row is None:
            raise UnknownIncident(
                f"unknown incident id {incident_id!r} in {self.path}; `respond status` lists them"
            )
        return self._incident(row)

    def find_open(self, access_key_id: str) -> IncidentRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM incidents WHERE access_key_id = ?"
                " AND status IN ('running', 'halted')",
                (access_key_id,),
            ).fetchone()
        return None if row is None else self._incident(row)

    def find_by_finding(self, finding_id: str) -> IncidentRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM incidents WHERE finding_id = ?", (finding_id,)
            ).fetchone()
        return None if row is None else self._incident(row)

    def history_for_key(self, access_key_id: str) -> list[IncidentRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM incidents WHERE access_key_id = ? ORDER BY started_at",
                (access_key_id,),
            ).fetchall()
        return [self._incident(r) for r in rows]

    def recent(self, limit: int = 20) -> list[IncidentRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM incidents ORDER BY started_at DESC LIMIT ?", (limit,)
            ).fetchall()
        return [self._incident(r) for r in rows]

    def acquire_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE incidents SET lease_owner = ?, lease_expires = ?"
                " WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires < ?)",
                (owner, iso(now + timedelta(seconds=seconds)), incident_id, owner, iso(now)),
            )
            if cur.rowcount == 1:
                return
        self._raise_held(incident_id)

    def take_over_lease(
        self, incident_id: str, dead_owner: str, owner: str, now: datetime, seconds: float
    ) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE incidents SET lease_owner = ?, lease_expires = ?"
                " WHERE id = ? AND lease_owner = ?",
                (owner, iso(now + timedelta(seconds=seconds)), incident_id, dead_owner),
            )
            if cur.rowcount == 1:
                return
        self._raise_held(incident_id)

    def renew_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE incidents SET lease_expires = ? WHERE id = ? AND lease_owner = ?",
                (iso(now + timedelta(seconds=seconds)), incident_id, owner),
            )
            if cur.rowcount == 1:
                return
        self._raise_held(incident_id)

    def _raise_held(self, incident_id: str) -> None:
        record = self.get(incident_id)
        raise LeaseHeld(incident_id, record.lease_owner or "?", iso(record.lease_expires) or "?")

    def release_lease(self, incident_id: str, owner: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE incidents SET lease_owner = NULL, lease_expires = NULL"
                " WHERE id = ? AND lease_owner = ?",
                (incident_id, owner),
            )

    def update_incident(self, incident_id: str, now: datetime, **fields: Any) -> None:
        unknown = set(fields) - INCIDENT_FIELDS
        if unknown:
            raise ValueError(f"not incident fields: {sorted(unknown)}")
        values = {k: iso(v) if isinstance(v, datetime) else v for k, v in fields.items()}
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._tx() as db:
            db.execute(
                f"UPDATE incidents SET {assignments}, updated_at = ? WHERE id = ?",
                (*values.values(), iso(now), incident_id),
            )

    # steps ---------------------------------------------------------------------

    def steps(self, incident_id: str) -> list[StepRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM steps WHERE incident_id = ? ORDER BY position", (incident_id,)
            ).fetchall()
        return [
            StepRecord(
                incident_id=r["incident_id"],
                position=r["position"],
                name=r["name"],
                action=r["action"],
                on_failure=r["on_failure"],
                status=r["status"],
                started_at=_when(r["started_at"]),
                ended_at=_when(r["ended_at"]),
                detail=json.loads(r["detail"]),
                error=r["error"],
            )
            for r in rows
        ]

    def step_started(self, incident_id: str, name: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET status = 'running', started_at = COALESCE(started_at, ?),"
                " ended_at = NULL, error = NULL WHERE incident_id = ? AND name = ?",
                (iso(now), incident_id, name),
            )
            db.execute(
                "UPDATE incidents SET updated_at = ? WHERE id = ?", (iso(now), incident_id)
            )

    def step_finished(
        self,
        incident_id: str,
        name: str,
        *,
        status: StepStatus,
        now: datetime,
        detail: Mapping[str, Any],
        error: str | None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET status = ?, ended_at = ?, detail = ?, error = ?"
                " WHERE incident_id = ? AND name = ?",
                (status, iso(now), _dumps(detail), error, incident_id, name),
            )
            db.execute(
                "UPDATE incidents SET updated_at = ? WHERE id = ?", (iso(now), incident_id)
            )

    # calls ---------------------------------------------------------------------

    def intent(self, incident_id: str, step: str, call: ApiCall, now: datetime) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO calls (incident_id, step, service, operation, params, mutating,"
                " intent_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    incident_id, step, call.service, call.operation,
                    _dumps(call.as_dict()["params"]), int(call.mutating), iso(now),
                ),
            )
            row_id = cur.lastrowid
        assert row_id is not None  # noqa: S101 - INSERT always yields a rowid
        return row_id

    def sending(self, call_id: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE calls SET outcome = 'sending' WHERE id = ? AND outcome = 'pending'",
                       (call_id,))

    def result(
        self,
        call_id: int,
        *,
        ok: bool,
        attempts: int,
        now: datetime,
        result: Any = None,
        error: str | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE calls SET outcome = ?, attempts = ?, result = ?, error = ?,"
                " result_at = ? WHERE id = ?",
                (
                    "ok" if ok else "error", attempts,
                    None if result is None else _dumps(result), error, iso(now), call_id,
                ),
            )

    def calls(self, incident_id: str, step: str | None = None) -> list[CallRecord]:
        query = "SELECT * FROM calls WHERE incident_id = ?"
        args: tuple[Any, ...] = (incident_id,)
        if step is not None:
            query += " AND step = ?"
            args = (incident_id, step)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [
            CallRecord(
                id=r["id"],
                step=r["step"],
                service=r["service"],
                operation=r["operation"],
                params=json.loads(r["params"]),
                mutating=bool(r["mutating"]),
                outcome=r["outcome"],
                result=None if r["result"] is None else json.loads(r["result"]),
                error=r["error"],
                attempts=r["attempts"],
                intent_at=_must(r["intent_at"]),
                result_at=_when(r["result_at"]),
            )
            for r in rows
        ]
