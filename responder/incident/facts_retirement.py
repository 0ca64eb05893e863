"""The facts of retiring an unused key (`respond audit --deactivate-unused DAYS --yes`,
playbooks/retire-unused-key.yaml).

Apart from facts.py for the same reason as a rotation's: no response to a leak builds
them, and a compromise must not pay for the everyday lifecycle's dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass

from responder.incident.facts import Facts


@dataclass(frozen=True)
class KeyRetired(Facts):
    """retire-key: what AWS showed of the key when the step read it after acting.

    `status` is "Inactive" (set now, or `already`), or "Active" when the key was kept
    because it was used within `unused_days` (the credential report the audit read is up
    to four hours old, so the step asks GetAccessKeyLastUsed again before acting).
    """

    access_key_id: str = ""
    status: str = ""
    unused_days: int = 0
    """The threshold the audit was given (--deactivate-unused DAYS)."""
    last_used: str | None = None
    """GetAccessKeyLastUsed's LastUsedDate when the step read it; None: never used."""
    created: str | None = None
    """The key's CreateDate (a never-used key is idle since then)."""
    idle_days: int | None = None
    at: str | None = None
    """When the key was set Inactive (the request's moment) or re-read as kept."""
    already: bool = False
    kept_because: str | None = None
    """Why the key was left Active (used since the audit, or made recently)."""

    @property
    def retired(self) -> bool:
        return self.status == "Inactive"
