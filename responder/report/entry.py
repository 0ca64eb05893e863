"""The base of every part of the §2 document (report/model.py) and its JSON form.

Apart from model.py so that the document's many parts fit a page each; model.py builds
on it, and every part is still read by attribute.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from responder.incident.detail import Detail


def _json(value: Any) -> Any:
    """The JSON form: parts of the document as dicts (field order; a shape left None in
    `empty_shapes` as `{}`), a shape of the facts as the journal hands it back (keys
    sorted at every level: the document has always printed the journaled mapping), tuples
    as lists."""
    if isinstance(value, Entry):
        return {f.name: {} if getattr(value, f.name) is None and f.name in value.empty_shapes
                else _json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Detail):
        return _journaled(value.to_detail())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


def _journaled(value: Any) -> Any:
    """`value` as the journal stores it and reads it back (responder.journal.base.dumps
    sorts the keys)."""
    if isinstance(value, Mapping):
        return {k: _journaled(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_journaled(v) for v in value]
    return value


@dataclass(frozen=True)
class Entry(Detail):
    """Base of every part of the document: JSON out, JSON back in as leniently as the
    journal's facts are read (incident/detail.py: one reader for both)."""

    empty_shapes: ClassVar[frozenset[str]] = frozenset()
    """Fields holding a shape of the facts that print `{}` when None, as the facts'
    journaled form does (others print null)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _json(self)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Self:
        return cls.from_detail(raw)
