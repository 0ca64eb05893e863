"""How a fact (and each shape nested in it) becomes the journal's plain mapping and back.

The journal holds JSON; the readers want types. Field types are resolved once with
`typing.get_type_hints`, so a nested shape is read by its own `from_detail` and a tuple
of shapes item by item: nothing is guessed from annotation strings. Writing keeps the
journal's historical form byte for byte (a shape left None is `{}`, as an empty mapping
was before there was a type). Reading is lenient on purpose: a journal written by an
older version, or by a step that failed halfway, yields defaults for what is missing or
malformed, never an exception in the middle of a report.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any, ClassVar, Self, Union, get_args, get_origin, get_type_hints

_HINTS: dict[type, dict[str, Any]] = {}
_MISSING: Any = object()
"""A value that does not fit its field: the field keeps its default."""


def hints_of(cls: type) -> dict[str, Any]:
    """A class's field types, resolved once (they are strings under `annotations`)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else ()


class Detail:
    """Base of a frozen dataclass journaled as a mapping: a step's facts, or a shape
    nested in them. A field left None is journaled as null, or not at all when it is in
    `optional`, or as `{}` when its type is a shape (the journal's form for "none")."""

    optional: ClassVar[frozenset[str]] = frozenset()
    """Fields journaled only when set, so the detail reads as it always has."""

    def to_detail(self) -> dict[str, Any]:
        hints = hints_of(type(self))
        detail: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.name in self.optional:
                continue
            if value is None and _shape(hints[f.name]) is not None:
                detail[f.name] = {}
                continue
            detail[f.name] = plain(value)
        return detail

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> Self:
        raw = cls.coerce(detail)
        hints = hints_of(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name in raw:
                value = _read(hints[f.name], raw[f.name])
                if value is not _MISSING:
                    values[f.name] = value
        return cls(**values)

    @classmethod
    def coerce(cls, raw: Any) -> Mapping[str, Any]:
        """The mapping to read `raw` from: itself when it is one. A shape that an older
        version journaled in another form (a bare string) overrides this."""
        return raw if isinstance(raw, Mapping) else {}


def plain(value: Any) -> Any:
    """JSON-ready: shapes by their own to_detail, tuples as lists, mappings as dicts."""
    if isinstance(value, Detail):
        return value.to_detail()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _shape(kind: Any) -> type[Detail] | None:
    """The shape a field holds (directly or as `Shape | None`), else None."""
    if get_origin(kind) in (Union, types.UnionType):
        inner = [a for a in get_args(kind) if a is not type(None)]
        kind = inner[0] if len(inner) == 1 else None
    return kind if isinstance(kind, type) and issubclass(kind, Detail) else None


def _read(kind: Any, raw: Any) -> Any:
    """`raw` as the type `kind` says, or _MISSING when it does not fit."""
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        return _read_optional(kind, raw)
    shape = _shape(kind)
    if shape is not None:  # nothing to read (junk in a list): dropped, or the default
        found = shape.coerce(raw)
        return shape.from_detail(found) if found else _MISSING
    if origin is tuple:
        items = (_read(get_args(kind)[0], v) for v in as_tuple(raw))
        return tuple(v for v in items if v is not _MISSING)
    if origin is Mapping or kind is Mapping:
        return dict(raw) if isinstance(raw, Mapping) else {}
    accepted = _SCALARS.get(kind)
    return raw if accepted is None or isinstance(raw, accepted) else _MISSING


_SCALARS: dict[Any, tuple[type, ...]] = {str: (str,), int: (int,), bool: (bool,),
                                         float: (int, float)}
"""The plain types a value is checked against; any other (Any, a Literal) is kept."""


def _read_optional(kind: Any, raw: Any) -> Any:
    """`X | None`: null stays None, and so does a value that does not fit X."""
    inner = [a for a in get_args(kind) if a is not type(None)]
    if raw is None or len(inner) != 1:
        return raw
    shape = _shape(inner[0])
    if shape is not None:  # `{}` is how the journal says "none"
        found = shape.coerce(raw)
        return shape.from_detail(found) if found else None
    value = _read(inner[0], raw)
    return None if value is _MISSING else value
