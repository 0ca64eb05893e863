"""The playbook actions. Each lives in a module of its own, imported the first time its
action is asked for (see base.Registry): `REGISTRY["notify"]` imports responder.steps.notify.
"""

from responder.incident.action import REGISTRY, Action, StepInput, StepResult

__all__ = ["REGISTRY", "Action", "StepInput", "StepResult", "required_permissions"]


def required_permissions() -> list[str]:
    """Every IAM action any registered step may call, sorted: the tool's policy."""
    return sorted({p for cls in REGISTRY.values()
                   for p in (*cls.permissions, *(a for more in cls.permissions_when.values()
                                                 for a in more))})
