"""SQLite journal: one WAL-mode file, safe for several processes on one machine.

Every write is its own committed transaction (synchronous=FULL), so a process killed
at any instant leaves the journal at the last completed write. The one-open-incident-
per-key rule is a partial unique index, so two runners racing to open an incident for
the same key cannot both succeed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from responder.aws import ApiCall
from responder.context import iso
from responder.errors import JournalUnavailable
from responder.journal import base
from responder.journal.records import CallHandle, CallRecord, IncidentRecord, StepRecord

SCHEMA_VERSION = 1
LISTING_PAGE = 100
"""Rows listing() reads at once (an id and a flag each)."""
CALL_PAGE = 16
"""Rows each_call() reads at once (a call's params and result: a kilobyte or two each)."""
ADDED_COLUMNS = ("verification",)
"""incidents' columns added after the first release, in the order they were added."""
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
    finding_id TEXT,
    verification TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_incident_per_finding
    ON incidents(finding_id) WHERE finding_id IS NOT NULL;
DROP INDEX IF EXISTS one_open_incident_per_key;
CREATE UNIQUE INDEX IF NOT EXISTS one_open_incident_per_key_v2
    ON incidents(access_key_id) WHERE status IN ('running', 'halted', 'waiting');
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



def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    """Rows as plain dicts, the form the shared record decoders read."""
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


def _touch(db: sqlite3.Connection, incident_id: str, now: datetime) -> None:
    db.execute("UPDATE incidents SET updated_at = ? WHERE id = ?", (iso(now), incident_id))


def _call_id(row_id: int) -> str:
    """CallRecord.id as text that sorts like the AUTOINCREMENT id it stands for."""
    return f"{row_id:012d}"


class SqliteJournal(base.Journal):
    """The default Journal backend."""

    def __init__(self, path: Path) -> None:
        """Open (creating) the journal and prove it can be written: a journal that fails
        only at the first write would fail in the middle of containment."""
        self.path = path
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = _dict_row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            with self._lock:
                self._db.executescript(SCHEMA)
                self._add_missing_columns()
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")  # a real write
        except (OSError, sqlite3.Error) as exc:
            raise JournalUnavailable(
                f"journal {path} cannot be used ({type(exc).__name__}: {exc})") from exc

    def _add_missing_columns(self) -> None:
        """A journal written by an older version lacks the newer columns: added, empty,
        so its incidents still read (and resume) as they were."""
        have = {row["name"] for row in self._db.execute("PRAGMA table_info(incidents)")}
        for column in ADDED_COLUMNS:
            if column not in have:
                self._db.execute(f"ALTER TABLE incidents ADD COLUMN {column} TEXT")

    @property
    def location(self) -> str:
        return str(self.path)

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

    def _insert_incident(self, new: base.NewIncident) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO incidents (id, access_key_id, playbook, status, started_at,"
                    " updated_at, source, options, lease_owner, lease_expires, finding_id)"
                    " VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new.id, new.access_key_id, base.dumps(new.playbook), iso(new.started_at),
                        iso(new.started_at), new.source, base.dumps(new.options), new.owner,
                        iso(new.lease_expires), new.finding_id,
                    ),
                )
                db.executemany(
                    "INSERT INTO steps (incident_id, position, name, action, on_failure, status)"
                    " VALUES (?, ?, ?, ?, ?, 'pending')",
                    [(new.id, s.position, s.name, s.action, s.on_failure) for s in new.steps],
                )
        except sqlite3.IntegrityError as exc:
            raise base.Collision(f"incident {new.id}: {exc}") from exc

    def _incidents(self, clause: str, *args: Any) -> list[IncidentRecord]:
        """Incidents selected by a clause written in this module (values always bound)."""
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM incidents {clause}", args).fetchall()
        return [base.incident_record(r) for r in rows]

    def _get_or_none(self, incident_id: str) -> IncidentRecord | None:
        found = self._incidents("WHERE id = ?", incident_id)
        return found[0] if found else None

    def find_open(self, access_key_id: str) -> IncidentRecord | None:
        found = self._incidents(
            "WHERE access_key_id = ? AND status IN ('running', 'halted', 'waiting')", access_key_id
        )
        return found[0] if found else None

    def find_by_finding(self, finding_id: str) -> IncidentRecord | None:
        found = self._incidents("WHERE finding_id = ?", finding_id)
        return found[0] if found else None

    def history_for_key(self, access_key_id: str) -> list[IncidentRecord]:
        return self._incidents("WHERE access_key_id = ? ORDER BY started_at", access_key_id)

    def recent(self, limit: int = 20) -> list[IncidentRecord]:
        return self._incidents("ORDER BY started_at DESC LIMIT ?", limit)

    def listing(self) -> Iterator[tuple[str, bool]]:
        """Two columns, LISTING_PAGE rows at a time: no incident's playbook, options or
        verification is decoded, and a journal of any size is never held whole."""
        rows = self._db.cursor()
        rows.row_factory = None  # plain tuples: two columns need no dict each
        with self._lock:
            rows.execute("SELECT id, status IN ('running', 'halted', 'waiting') AS open"
                         " FROM incidents ORDER BY open DESC, started_at DESC")
        while True:
            with self._lock:
                page = rows.fetchmany(LISTING_PAGE)
            if not page:
                return
            yield from ((incident_id, bool(is_open)) for incident_id, is_open in page)

    def acquire_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        self._lease_write(
            incident_id,
            "UPDATE incidents SET lease_owner = ?, lease_expires = ?"
            " WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires < ?)",
            (owner, iso(now + timedelta(seconds=seconds)), incident_id, owner, iso(now)),
        )

    def take_over_lease(
        self, incident_id: str, dead_owner: str, owner: str, now: datetime, seconds: float
    ) -> None:
        self._lease_write(
            incident_id,
            "UPDATE incidents SET lease_owner = ?, lease_expires = ?"
            " WHERE id = ? AND lease_owner = ?",
            (owner, iso(now + timedelta(seconds=seconds)), incident_id, dead_owner),
        )

    def renew_lease(self, incident_id: str, owner: str, now: datetime, seconds: float) -> None:
        self._lease_write(
            incident_id,
            "UPDATE incidents SET lease_expires = ? WHERE id = ? AND lease_owner = ?",
            (iso(now + timedelta(seconds=seconds)), incident_id, owner),
        )

    def _lease_write(self, incident_id: str, sql: str, args: tuple[Any, ...]) -> None:
        """One conditional lease UPDATE; LeaseHeld when its condition did not hold."""
        with self._tx() as db:
            changed = db.execute(sql, args).rowcount
        if changed != 1:
            self._raise_held(incident_id)

    def release_lease(self, incident_id: str, owner: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE incidents SET lease_owner = NULL, lease_expires = NULL"
                " WHERE id = ? AND lease_owner = ?",
                (incident_id, owner),
            )

    def _set_incident(self, incident_id: str, values: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{k} = ?" for k in values)
        try:
            with self._tx() as db:
                db.execute(
                    f"UPDATE incidents SET {assignments} WHERE id = ?",
                    (*values.values(), incident_id),
                )
        except sqlite3.IntegrityError as exc:
            raise base.Collision(f"incident {incident_id}: {exc}") from exc

    # steps ---------------------------------------------------------------------

    def steps(self, incident_id: str) -> list[StepRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM steps WHERE incident_id = ? ORDER BY position", (incident_id,)
            ).fetchall()
        return [base.step_record(r) for r in rows]

    def step_started(self, incident_id: str, name: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET status = 'running', started_at = COALESCE(started_at, ?),"
                " ended_at = NULL, error = NULL WHERE incident_id = ? AND name = ?",
                (iso(now), incident_id, name),
            )
            _touch(db, incident_id, now)

    def _set_step(self, incident_id: str, name: str, values: Mapping[str, Any],
                  now: datetime) -> None:
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._tx() as db:
            db.execute(
                f"UPDATE steps SET {assignments} WHERE incident_id = ? AND name = ?",
                (*values.values(), incident_id, name),
            )
            _touch(db, incident_id, now)

    def _append_step(self, incident: IncidentRecord, name: str, action: str,
                     on_failure: str, now: datetime) -> bool:
        """One IMMEDIATE transaction reads the highest position and inserts after it, so
        no other writer can take that position: this never loses a race. The steps
        table's key (incident_id, name) makes a second add of the name change nothing."""
        with self._tx() as db:
            added = db.execute(
                "INSERT INTO steps (incident_id, position, name, action, on_failure, status)"
                " SELECT ?, COALESCE(MAX(position), -1) + 1, ?, ?, ?, 'pending'"
                " FROM steps WHERE incident_id = ?"
                " ON CONFLICT (incident_id, name) DO NOTHING",
                (incident.id, name, action, on_failure, incident.id),
            ).rowcount
            if added:
                _touch(db, incident.id, now)
        return True

    # calls ---------------------------------------------------------------------

    def intent(self, incident_id: str, step: str, call: ApiCall, now: datetime) -> CallHandle:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO calls (incident_id, step, service, operation, params, mutating,"
                " intent_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    incident_id, step, call.service, call.operation,
                    base.dumps(call.as_dict()["params"]), int(call.mutating), iso(now),
                ),
            )
            row_id = cur.lastrowid
        assert row_id is not None  # noqa: S101 - INSERT always yields a rowid
        return CallHandle(incident_id, _call_id(row_id))

    def sending(self, handle: CallHandle) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE calls SET outcome = 'sending'"
                " WHERE id = ? AND incident_id = ? AND outcome = 'pending'",
                (int(handle.call_id), handle.incident_id),
            )

    def _set_call(self, handle: CallHandle, values: Mapping[str, Any]) -> None:
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._tx() as db:
            db.execute(
                f"UPDATE calls SET {assignments} WHERE id = ? AND incident_id = ?",
                (*values.values(), int(handle.call_id), handle.incident_id),
            )

    def _calls_query(self, incident_id: str, step: str | None) -> sqlite3.Cursor:
        rows = self._db.cursor()
        query = "SELECT * FROM calls WHERE incident_id = ?"
        if step is None:
            return rows.execute(query + " ORDER BY id", (incident_id,))
        return rows.execute(query + " AND step = ? ORDER BY id", (incident_id, step))

    def each_call(self, incident_id: str, step: str | None = None) -> Iterator[CallRecord]:
        """A page at a time. calls() reads them at once instead: a run reads the calls
        while its workers journal more, and must see one moment of the journal."""
        with self._lock:
            rows = self._calls_query(incident_id, step)
        while True:
            with self._lock:
                page = rows.fetchmany(CALL_PAGE)
            if not page:
                return
            yield from (base.call_record({**r, "id": _call_id(r["id"])}) for r in page)

    def calls(self, incident_id: str, step: str | None = None) -> list[CallRecord]:
        with self._lock:
            rows = self._calls_query(incident_id, step).fetchall()
        return [base.call_record({**r, "id": _call_id(r["id"])}) for r in rows]
