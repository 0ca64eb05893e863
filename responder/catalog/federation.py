"""federation entries: filled in by the catalog work of issue 29."""

from __future__ import annotations

from responder.catalog.model import Entry

ENTRIES: tuple[Entry, ...] = ()
