"""The catalog: every entry of every family, indexed by CloudTrail event.

One lookup serves contain-attacker, the sweeps (which run it) and the evidence summary's
high-risk list, so what the tool acts on, lists and counts as risky cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from responder.catalog import compute, credentials, defenses, federation, grants, iam, storage
from responder.catalog.model import Entry
from responder.catalog.reading import Reading, applies, read

CATALOG: tuple[Entry, ...] = (
    *iam.ENTRIES, *federation.ENTRIES, *storage.ENTRIES, *grants.ENTRIES,
    *compute.ENTRIES, *defenses.ENTRIES, *credentials.ENTRIES,
)


def _index() -> dict[tuple[str, str], tuple[Entry, ...]]:
    by: dict[tuple[str, str], list[Entry]] = {}
    for entry in CATALOG:
        by.setdefault((entry.source, entry.event), []).append(entry)
    # the narrowest shape first: a share to everyone before a share to an account
    return {k: tuple(sorted(v, key=lambda e: -len(e.when))) for k, v in by.items()}


BY_EVENT = _index()
EVENT_NAMES = frozenset(name for _, name in BY_EVENT)
"""Every event name the catalog knows: what the evidence summary counts as high-risk."""
SOURCE_OF = {name: source for source, name in BY_EVENT}
"""event name -> its eventSource (the drill's CloudTrail fake writes records with it)."""


def entry_for(record: Mapping[str, Any]) -> Entry | None:
    """The catalog entry a CloudTrail record is, or None for an event it does not know
    (reads, and calls that change nothing an attacker can use)."""
    key = (str(record.get("eventSource", "")), str(record.get("eventName", "")))
    return next((e for e in BY_EVENT.get(key, ()) if applies(e, record)), None)


def lookup(record: Mapping[str, Any]) -> Reading | None:
    """The record read through its entry, or None."""
    entry = entry_for(record)
    return read(entry, record) if entry is not None else None
