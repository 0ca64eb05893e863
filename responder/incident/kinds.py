"""What the view must know of an action without loading it: the kind of fact it
establishes, the type of its facts, whether it may wait.

A table, not the actions themselves: the view (and so every reader of an incident)
reads an action's journaled facts back without importing the action's module, and the
actions (which read the view) sit above it. A shipped action is described here; an
action registered at run time (a test's, a user's) describes itself when it registers.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from responder.incident.facts import FactKind, Facts


@dataclass(frozen=True)
class Shipped:
    """Where a shipped action lives, and what the view must know of it without loading
    it: the kind of fact it establishes and the name of its facts' type."""

    module: str
    kind: FactKind
    result: str
    waits: bool = False
    """Action.may_wait, known without importing the module."""


SHIPPED: Mapping[str, Shipped] = {
    "identify": Shipped("identify", "identification", "OwnerFound"),
    "identify_session": Shipped("identify_session", "identification", "SessionFound"),
    "disable_access_key": Shipped("disable", "containment", "KeyDisabled"),
    "attach_deny_policy": Shipped("deny", "containment", "SessionsRevoked"),
    "revoke_session": Shipped("revoke_session", "containment", "SessionDenied"),
    "collect_cloudtrail": Shipped("evidence", "evidence", "EvidenceCollected"),
    "contain_attacker": Shipped("attacker", "attacker", "AttackerContained"),
    "replace_access_key": Shipped("replace", "replacement", "KeyReplaced"),
    "notify": Shipped("notify", "notification", "NoticeSent"),
    "schedule_sweeps": Shipped("schedule", "schedule", "SweepsScheduled"),
    "sweep_cloudtrail": Shipped("sweep", "sweep", "SweepFound"),
    "archive_evidence": Shipped("archive", "archive", "EvidenceArchived"),
    "rollback_containment": Shipped("rollback", "rollback", "RolledBack"),
    "await_update": Shipped("rotate", "rotation", "AppsUpdated", waits=True),
    "test_access_key": Shipped("rotate", "rotation", "NewKeyTested"),
    "deactivate_old_key": Shipped("rotate", "rotation", "OldKeyDeactivated"),
    "watch_old_key": Shipped("rotate_watch", "rotation", "OldKeyQuiet", waits=True),
    "delete_old_key": Shipped("rotate", "rotation", "OldKeyDeleted"),
    "reactivate_old_key": Shipped("rotate_watch", "rotation", "OldKeyReactivated"),
    "harden": Shipped("harden", "hardening", "Hardened"),
    "retire_unused_key": Shipped("retire", "retirement", "KeyRetired"),
}
"""Every shipped action (a test checks this table against the classes themselves)."""


_FACTS_HOMES = ("responder.incident.facts", "responder.incident.facts_rollback",
                "responder.incident.facts_rotation",
                "responder.incident.facts_hardening", "responder.incident.facts_retirement")
"""Where facts types live, looked through in order. A rotation's and a harden step's
facts are read after containment only: their modules load then (they are the table's
lazy part, like the actions' modules in the registry)."""


@cache
def facts_named(name: str) -> type[Facts]:
    """The facts type called `name` (a shipped action's `result`, or `Awaiting`)."""
    for home in _FACTS_HOMES:
        found = getattr(importlib.import_module(home), name, None)
        if isinstance(found, type) and issubclass(found, Facts):
            return found
    raise KeyError(f"no facts type {name}")


@dataclass(frozen=True)
class Described:
    """An action registered at run time, as this table needs to know it."""

    kind: FactKind
    result: type[Facts]
    waits: bool = False


_REGISTERED: dict[str, Described] = {}


def describe(name: str, described: Described) -> None:
    """Called by the registry when an action registers (it wins over the table)."""
    _REGISTERED[name] = described


def kind_of(name: str) -> FactKind | None:
    """The kind of fact an action establishes; None for an action nobody knows."""
    if name in _REGISTERED:
        return _REGISTERED[name].kind
    return SHIPPED[name].kind if name in SHIPPED else None


def facts_type(name: str) -> type[Facts] | None:
    """The type an action's journaled facts are read back into."""
    if name in _REGISTERED:
        return _REGISTERED[name].result
    return facts_named(SHIPPED[name].result) if name in SHIPPED else None


def planned(playbook: Mapping[str, Any], wanted: Collection[str]) -> bool:
    """Whether a journaled playbook has a step establishing a kind in `wanted`, run yet
    or not (what kind of incident it is: a rotation, a retirement)."""
    steps = playbook.get("steps")
    return isinstance(steps, list) and any(
        isinstance(s, Mapping) and kind_of(str(s.get("action"))) in wanted for s in steps)


def may_wait(name: str) -> bool:
    """Whether an action may stop its incident at `waiting`."""
    if name in _REGISTERED:
        return _REGISTERED[name].waits
    return name in SHIPPED and SHIPPED[name].waits


def establishes(name: str, result: type[Facts]) -> bool:
    """Whether the action `name` establishes facts of type `result`."""
    return facts_type(name) is result
