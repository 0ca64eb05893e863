"""Join the per-region part files into cloudtrail.jsonl: deduplicated by eventID, in a
fixed order (key, then region), hashed as written.

Deduplication uses an on-disk SQLite index rather than a set, so memory does not grow
with the number of events; the fixed order makes the file (and its sha256) the same
however the parallel fetches interleaved or how often they were throttled.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from responder.evidence.summary import Summary


@dataclass(frozen=True)
class Assembled:
    path: Path
    events: int
    duplicates: int
    sha256: str


def _index(path: Path, *tables: str) -> sqlite3.Connection:
    """A throwaway on-disk set of event ids per table (memory stays flat however many)."""
    path.unlink(missing_ok=True)
    index = sqlite3.connect(path)
    index.execute("PRAGMA journal_mode=OFF")
    index.execute("PRAGMA synchronous=OFF")
    for table in tables:
        index.execute(f"CREATE TABLE {table} (event_id TEXT PRIMARY KEY) WITHOUT ROWID")
    return index


def assemble(parts: Iterable[Path], out: Path, summary: Summary) -> Assembled:
    index_path = out.with_suffix(".index.db")
    index = _index(index_path, "seen")
    digest = hashlib.sha256()
    events = duplicates = 0
    tmp = out.with_suffix(".jsonl.partial")
    try:
        with tmp.open("wb") as sink:
            for part in parts:
                with part.open("rb") as source:
                    for line in source:
                        record = json.loads(line)
                        event_id = str(record.get("eventID", ""))
                        if event_id and index.execute(
                            "INSERT OR IGNORE INTO seen VALUES (?)", (event_id,)
                        ).rowcount == 0:
                            duplicates += 1
                            continue
                        sink.write(line)
                        digest.update(line)
                        summary.add(record)
                        events += 1
        tmp.replace(out)
    finally:
        index.close()
        index_path.unlink(missing_ok=True)
    return Assembled(out, events, duplicates, digest.hexdigest())


@dataclass(frozen=True)
class Merged:
    path: Path
    added: tuple[str, ...]
    """The eventIDs this sweep brought, in the order they were appended."""
    events: int
    sha256: str


def _ids(path: Path, index: sqlite3.Connection, table: str) -> None:
    if path.exists():
        with path.open("rb") as source:
            for line in source:
                index.execute(f"INSERT OR IGNORE INTO {table} VALUES (?)",
                              (str(json.loads(line).get("eventID", "")),))


def merge(parts: Iterable[Path], into: Path, summary: Summary, pending: Path) -> Merged:
    """Add to the evidence file the events of `parts` it does not hold yet (by eventID),
    once each, keeping every line already there as it was; the sha256 is of the whole new
    file.

    The new events are first written to `pending` (this sweep's own file), then appended
    to the evidence: both writes go beside their file and are renamed over it, so a crash
    leaves each whole. A sweep run again after a crash finds its events in `pending`
    even though the evidence file already holds them, so what they revealed is still
    contained; merging the same parts twice adds nothing.
    """
    index_path = into.with_suffix(".merge.db")
    index = _index(index_path, "held", "mine")
    try:
        _ids(into, index, "held")
        _ids(pending, index, "mine")
        fresh = pending.with_suffix(".partial")
        with fresh.open("wb") as sink:
            if pending.exists():
                sink.write(pending.read_bytes())
            for part in parts:
                with part.open("rb") as source:
                    for line in source:
                        event_id = str(json.loads(line).get("eventID", ""))
                        if not event_id or index.execute(
                                "SELECT 1 FROM held WHERE event_id = ?", (event_id,)
                        ).fetchone() or index.execute(
                                "INSERT OR IGNORE INTO mine VALUES (?)", (event_id,)
                        ).rowcount == 0:
                            continue
                        sink.write(line)
        fresh.replace(pending)
        digest = hashlib.sha256()
        events = 0
        added: list[str] = []
        tmp = into.with_suffix(".jsonl.merging")
        with tmp.open("wb") as sink:
            if into.exists():
                with into.open("rb") as source:
                    for line in source:
                        sink.write(line)
                        digest.update(line)
                        events += 1
            with pending.open("rb") as source:
                for line in source:
                    record = json.loads(line)
                    event_id = str(record.get("eventID", ""))
                    added.append(event_id)
                    summary.add(record)
                    if index.execute("SELECT 1 FROM held WHERE event_id = ?",
                                     (event_id,)).fetchone():
                        continue  # appended by the attempt that crashed
                    sink.write(line)
                    digest.update(line)
                    events += 1
        tmp.replace(into)
    finally:
        index.close()
        index_path.unlink(missing_ok=True)
    return Merged(into, tuple(added), events, digest.hexdigest())


def summarize(path: Path) -> Summary:
    """The summary of a whole evidence file, streamed (memory stays flat)."""
    summary = Summary()
    with path.open("rb") as source:
        for line in source:
            summary.add(json.loads(line))
    return summary
