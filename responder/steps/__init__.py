"""Importing this package registers every action (see base.REGISTRY)."""

from responder.steps import (
    archive,
    attacker,
    deny,
    disable,
    evidence,
    identify,
    identify_session,
    notify,
    replace,
    revoke_session,
    schedule,
    sweep,
)
from responder.steps.base import REGISTRY, Action, StepInput, StepResult

__all__ = [
    "REGISTRY",
    "Action",
    "StepInput",
    "StepResult",
    "archive",
    "attacker",
    "deny",
    "disable",
    "evidence",
    "identify",
    "identify_session",
    "notify",
    "replace",
    "revoke_session",
    "schedule",
    "sweep",
]


def required_permissions() -> list[str]:
    """Every IAM action any registered step may call, sorted: the tool's policy."""
    return sorted({p for cls in REGISTRY.values() for p in cls.permissions})
