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


def assemble(parts: Iterable[Path], out: Path, summary: Summary) -> Assembled:
    index_path = out.with_suffix(".index.db")
    index_path.unlink(missing_ok=True)
    index = sqlite3.connect(index_path)
    index.execute("PRAGMA journal_mode=OFF")
    index.execute("PRAGMA synchronous=OFF")
    index.execute("CREATE TABLE seen (event_id TEXT PRIMARY KEY) WITHOUT ROWID")
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

