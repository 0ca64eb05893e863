"""The typed facts each step establishes: what the journal keeps and every reader shares.

A step returns one of these; the runner journals it as a plain mapping (`to_detail`),
and the incident view reads it back (`from_detail`) by the type its action declares, so a
renamed key fails here, once, instead of turning a report field silently null. Reading
back is lenient on purpose: a journal written by an older version, or a step that
failed halfway, yields the defaults, never an exception in the middle of a report.

This module holds the facts of the path to containment; those of the steps after it
live in results_later.py and are importable from here all the same, loaded on first
use: each frozen dataclass costs about half a millisecond to build, time a run that has
not disabled the key yet cannot spare.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from responder.context import Target

if TYPE_CHECKING:  # re-exported: importable from here, loaded on first use (below)
    from responder.incident.facts_later import (
        AttackerContained as AttackerContained,
        EvidenceArchived as EvidenceArchived,
        EvidenceCollected as EvidenceCollected,
        KeyReplaced as KeyReplaced,
        NoticeSent as NoticeSent,
        ReplacementHalted as ReplacementHalted,
        RolledBack as RolledBack,
        SessionDenied as SessionDenied,
        SessionFound as SessionFound,
        SweepFound as SweepFound,
        SweepsScheduled as SweepsScheduled,
    )

FactKind = Literal["identification", "containment", "evidence", "attacker", "replacement",
                   "notification", "schedule", "sweep", "archive", "rollback", "rotation",
                   "hardening"]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else ()


@dataclass(frozen=True)
class Facts:
    """Base of every step result. Fields typed `tuple` or `Mapping` are read back as such;
    a field left None (with a None default) is not journaled at all."""

    optional: ClassVar[frozenset[str]] = frozenset()
    """Fields journaled only when set, so the detail reads as it always has."""

    def to_detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self.optional:
                continue
            detail[f.name] = _plain(value)
        return detail

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> Self:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in detail:
                continue
            raw = detail[f.name]
            kind = str(f.type)
            if kind.startswith("tuple"):
                raw = as_tuple(raw)
            elif kind.startswith("Mapping"):
                raw = dict(_mapping(raw))
            values[f.name] = raw
        return cls(**values)

    def target(self) -> Target | None:
        """Who owns the key, when these facts name it (identify's)."""
        return None


def _plain(value: Any) -> Any:
    """JSON-ready: tuples as lists, mappings as dicts (the journal's form)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Skipped(Facts):
    """A step that had nothing to do, and why (shown in the step list)."""

    reason: str = ""


@dataclass(frozen=True)
class OwnerFound(Facts):
    """identify: the key's owner and account, without listing users."""

    user_name: str | None = None
    account_id: str | None = None
    last_used: Mapping[str, Any] = field(default_factory=dict)

    def target(self) -> Target | None:
        if self.user_name and self.account_id:
            return Target(self.user_name, self.account_id)
        return None


@dataclass(frozen=True)
class KeyDisabled(Facts):
    """disable-key: the key's status now (Inactive, or Deleted if it was already gone)."""

    status: str = "Inactive"
    already: bool = False


@dataclass(frozen=True)
class SessionsRevoked(Facts):
    """revoke-sessions: the inline deny and the user's IAM picture right after it."""

    optional: ClassVar[frozenset[str]] = frozenset({"user_deleted"})

    policy_name: str = ""
    token_issue_time_before: str | None = None
    already: bool = False
    snapshot: Mapping[str, Any] = field(default_factory=dict)
    user_deleted: bool | None = None
    """The user was deleted meanwhile: no policy to attach, and no session of theirs
    has any permission left."""


_LATER = frozenset({
    "AttackerContained", "EvidenceArchived", "EvidenceCollected", "KeyReplaced",
    "NoticeSent", "ReplacementHalted", "RolledBack", "SessionDenied", "SessionFound",
    "SweepFound", "SweepsScheduled",
})
"""The names results_later.py defines."""


def __getattr__(name: str) -> Any:
    """The facts of the steps after containment, from results_later on first use."""
    if name in _LATER:
        from responder.incident import facts_later as results_later  # noqa: PLC0415 - see the docstring

        return getattr(results_later, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
