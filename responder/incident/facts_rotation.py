"""The facts of a routine rotation (playbooks/rotate-key.yaml), and of a step that waits.

Apart from results.py because no compromise ever builds them: a response to a leaked key
must not pay for the dataclasses of the everyday lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from responder.incident.facts import Facts


@dataclass(frozen=True)
class Awaiting(Facts):
    """What a waiting step waits for, journaled as its detail while it waits: the
    report, `respond status` and the command's own output say the same next move."""

    optional: ClassVar[frozenset[str]] = frozenset({"since"})

    waiting_for: str = ""
    """"applications" (a human or the check command) or "grace-period"."""
    until: str | None = None
    """When the wait ends by itself (a grace period's end), else None."""
    next: str = ""
    """The command that moves the incident on."""
    reason: str = ""
    since: str | None = None
    """A grace period's start: uses of the old key from then on are a missed
    application's (the step reads it back on its next run)."""


@dataclass(frozen=True)
class AppsUpdated(Facts):
    """update-apps: who said the applications now use the new key, and when."""

    confirmed_by: str = ""
    """"human" (`respond rotate --continue`) or "check" (the check command passed)."""
    at: str | None = None
    check_command: str | None = None


@dataclass(frozen=True)
class NewKeyTested(Facts):
    """test-key: the new key, read back from Secrets Manager, signed a call as its user."""

    access_key_id: str = ""
    arn: str = ""
    """What sts:GetCallerIdentity answered to the new key."""
    attempts: int = 1
    """A new key takes seconds to be accepted everywhere: how many tries it took."""


@dataclass(frozen=True)
class OldKeyDeactivated(Facts):
    """deactivate-old: the old key is Inactive (kept, so it can be re-activated)."""

    access_key_id: str = ""
    at: str | None = None
    already: bool = False


@dataclass(frozen=True)
class OldKeyQuiet(Facts):
    """grace-period: the old key was not used since the applications were said to be
    updated, through the whole grace period."""

    access_key_id: str = ""
    since: str | None = None
    until: str | None = None
    last_used: str | None = None
    """GetAccessKeyLastUsed at the end: a use before `since`, or None (never used)."""


@dataclass(frozen=True)
class OldKeyUsed(Facts):
    """grace-period's alert: the old key was used after the applications were said to be
    updated, so an application was missed (journaled with the halted step)."""

    access_key_id: str = ""
    since: str | None = None
    last_used: str | None = None
    service: str | None = None
    region: str | None = None
    alerted: tuple[str, ...] = ()
    """Where the alert went (sns:TOPIC), besides the command's own output."""


@dataclass(frozen=True)
class OldKeyDeleted(Facts):
    """delete-old: the old key is gone (deleted now, or already)."""

    access_key_id: str = ""
    already: bool = False


@dataclass(frozen=True)
class OldKeyReactivated(Facts):
    """reactivate-old (`respond rotate --reactivate`): the old key is Active again, so the
    missed application works while it is moved to the new key."""

    access_key_id: str = ""
    already: bool = False
