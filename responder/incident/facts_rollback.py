"""The facts of a rollback: a false positive's containment undone, and why.

Apart from facts.py so each stays a page; read only after a rollback ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from responder.incident.facts import Facts
from responder.incident.shapes import (
    ReactivatedKey,
    RemovedQuarantine,
    RestoredSessions,
    RollbackReason,
)


@dataclass(frozen=True)
class RolledBack(Facts):
    """rollback: a false positive's containment undone, and why (never a deletion, never
    AWS's own quarantine policy)."""

    optional: ClassVar[frozenset[str]] = frozenset({"verified_at"})

    reason: str = ""
    """The latest rollback's reason (`reasons` has every one)."""
    key_status: str | None = None
    """The leaked key's status as ListAccessKeys answered after the rollback acted: Active
    again, Inactive (not undone: see left_alone), or Deleted (left deleted)."""
    deny_removed: bool = False
    """GetUserPolicy answered NoSuchEntity for the session deny after the rollback acted."""
    keys_reactivated: tuple[ReactivatedKey, ...] = ()
    """Keys contain-attacker or a sweep had set Inactive, seen Active when re-read."""
    quarantines_removed: tuple[RemovedQuarantine, ...] = ()
    """responder-quarantine policies seen gone when re-read."""
    sessions_restored: tuple[RestoredSessions, ...] = ()
    """Role sessions no longer named by the role's deny when re-read."""
    left_alone: tuple[str, ...] = ()
    """What was not undone and why (a deleted key stays deleted, a deny of another
    incident stays, AWS's own quarantine stays)."""
    reasons: tuple[RollbackReason, ...] = ()
    """Every rollback of the incident, oldest first, each with its reason and time."""
    verified_at: str | None = None
    """When AWS was re-read for the claims above (ISO)."""

    @property
    def history(self) -> tuple[RollbackReason, ...]:
        """Every reason given, oldest first (an older journal kept only the last one)."""
        if self.reasons:
            return self.reasons
        return (RollbackReason(None, self.reason),) if self.reason else ()

    @property
    def why(self) -> str:
        """Every reason in words, oldest first, each with its time when known."""
        return "; ".join(f"{r.reason} ({r.at})" if r.at else r.reason for r in self.history)

    @property
    def seen(self) -> str:
        """What AWS showed when re-read after the rollback, the key's status first."""
        return (f"{self.key_status or 'status unknown'}, session deny "
                f"{'removed' if self.deny_removed else 'NOT removed'}, "
                f"{len(self.keys_reactivated)} keys Active again, {len(self.quarantines_removed)}"
                f" quarantines and {len(self.sessions_restored)} role session denies removed")
