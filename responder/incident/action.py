"""The step registry: each action describes itself (schema, IAM permissions) and
offers plan (dry-run), observe (current state) and run.

Modelled on cloud-custodian's action registry: playbooks are data, validated against
each action's schema before anything touches AWS, and the IAM policy in docs/ is
generated from the permissions declared here.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias, TypeVar

from responder.aws import Api, ApiCall
from responder.context import RunContext
from responder.errors import StepFailed
from responder.incident import kinds
from responder.incident.facts import FactKind, Facts, Incident, Skipped, Target
from responder.incident.kinds import SHIPPED
from responder.journal import CallRecord

if TYPE_CHECKING:
    from responder.incident.view import IncidentView

KeyKind: TypeAlias = Literal["long-term", "temporary"]


@dataclass(frozen=True)
class StepInput:
    """Everything a step may read; built by the runner, never by the step."""

    ctx: RunContext
    incident: Incident
    target: Target | None
    settings: Mapping[str, Any]
    history: tuple[CallRecord, ...] = ()
    """This step's own journaled calls, from earlier attempts."""
    view: IncidentView | None = None
    """The incident as journaled when this step started; None before it is opened."""
    step_name: str = ""
    """The step's name in the incident (sweep-2): what its own local files are named by."""
    pair_at: datetime | None = None
    """Set when this step is sent at once with the other containment step of a pair
    (disable-key and revoke-sessions in a fresh run): the moment both began. disable-key
    reports it as when the key was disabled and revoke-sessions counts its cutoff from it,
    so the two agree without waiting for each other's answer."""

    @property
    def revisit(self) -> bool:
        """True when AWS may already hold this step's effect, so it must observe first.

        A fresh incident on a key never seen before skips observation for containment
        steps: every extra round-trip before UpdateAccessKey is time the attacker keeps.
        """
        return self.incident.resumed or bool(self.history)

    def acted_at(self, operation: str) -> datetime | None:
        """When an earlier attempt of this step last had `operation` take effect: the
        moment AWS answered it, or, for a call whose answer was lost, when it was sent
        (what AWS observed since then may be that very call). Resumed containment
        reports this, not the moment it looked again."""
        for call in reversed(self.history):
            if call.operation == operation and call.outcome in {"ok", "sending"}:
                return call.result_at or call.intent_at
        return None

    def require_target(self, step: str) -> Target:
        if self.target is None:
            raise StepFailed(step, "the key's owner is unknown: identify has not completed")
        return self.target

    def require_user(self, step: str) -> str:
        """The IAM user the key belongs to (a step about a user's key needs one)."""
        user = self.require_target(step).user_name
        if user is None:
            raise StepFailed(step, "the key belongs to no IAM user (a role's session): this "
                             "step applies to a user's key only")
        return user


@dataclass(frozen=True)
class StepResult:
    """What a step achieved: typed facts, journaled as their detail mapping."""

    status: Literal["done", "skipped"]
    facts: Facts
    effective_at: datetime | None = None
    """When the step's effect took hold in AWS (containment moments)."""

    @classmethod
    def skipped(cls, reason: str) -> StepResult:
        return cls("skipped", Skipped(reason))

    @property
    def detail(self) -> dict[str, Any]:
        return self.facts.to_detail()


class Action(ABC):
    """One kind of playbook step."""

    name: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]
    permissions_when: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    """Setting -> the IAM actions the step needs only when that setting is true (harden's
    `apply`): a separate policy, so a responder that only proposes cannot write them."""

    @classmethod
    def needed(cls, settings: Mapping[str, Any]) -> tuple[str, ...]:
        """The IAM actions the step needs with these settings."""
        return (*cls.permissions, *(a for setting, more in cls.permissions_when.items()
                                    if settings.get(setting) for a in more))
    schema: ClassVar[Mapping[str, Any]] = {"type": "object", "additionalProperties": False}
    kind: ClassVar[FactKind]
    """What kind of fact the step establishes; every `containment` step done together
    makes the incident contained (contained_at)."""
    result: ClassVar[type[Facts]]
    """The type of the facts its StepResult carries, to read them back from the journal."""
    needs: ClassVar[tuple[FactKind, ...]] = ()
    """Kinds of fact this step may need from earlier steps: on resume, an earlier step of
    that kind that failed (on_failure: continue) runs again before this one."""
    critical: ClassVar[bool] = True
    """False for steps whose failure must never halt the incident (notify)."""
    alongside: ClassVar[bool] = False
    """True for a containment step that may be sent at once with the containment step
    before it: it needs nothing of that step's result but StepInput.pair_at."""
    may_wait: ClassVar[bool] = False
    """True for a step that may raise Waiting (the incident then waits there, open, for
    `respond rotate --continue` or its next run); declared so the state machine has the
    `waiting` transition without loading the step."""
    identifies: ClassVar[KeyKind | None] = None
    """For an identify action: the kind of key it identifies. A playbook whose first
    step identifies long-term keys cannot take a temporary one, and the other way round."""

    @classmethod
    def check_settings(cls, settings: Mapping[str, Any]) -> str | None:
        """What in `settings` would fail at run time though the schema allows it (a
        template naming an unknown field, ...): found when the playbook is validated,
        not halfway through an incident. None when nothing is wrong."""
        del settings
        return None

    @abstractmethod
    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        """The calls run() would make, for --dry-run; no AWS access."""

    def observe(self, inp: StepInput, api: Api) -> StepResult | None:
        """The step's result if AWS already shows its effect, else None (act)."""
        return None

    @abstractmethod
    def run(self, inp: StepInput, api: Api) -> StepResult:
        """Make the change; must be safe to repeat after observe() returned None."""


class Registry(Mapping[str, type[Action]]):
    """The actions by name, each module imported the first time its action is asked
    for: a run imports the steps it reaches, so the modules of evidence, replacement and
    notification load after the key is contained, not before. Iterating the names
    imports nothing; asking for the classes (values, items) imports them all."""

    def __init__(self) -> None:
        self._loaded: dict[str, type[Action]] = {}

    def add(self, name: str, cls: type[Action]) -> None:
        if name in self._loaded:
            raise ValueError(f"action {name} registered twice")
        self._loaded[name] = cls
        kinds.describe(name, kinds.Described(cls.kind, cls.result, waits=cls.may_wait))

    def __getitem__(self, name: str) -> type[Action]:
        if name not in self._loaded and name in SHIPPED:
            importlib.import_module(f"responder.steps.{SHIPPED[name].module}")
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in SHIPPED or name in self._loaded

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(SHIPPED) | set(self._loaded)))

    def __len__(self) -> int:
        return len(set(SHIPPED) | set(self._loaded))

    kind_of = staticmethod(kinds.kind_of)
    may_wait = staticmethod(kinds.may_wait)
    establishes = staticmethod(kinds.establishes)


REGISTRY = Registry()
A = TypeVar("A", bound=type[Action])


def register(name: str) -> Callable[[A], A]:
    def add(cls: A) -> A:
        cls.name = name
        REGISTRY.add(name, cls)
        return cls

    return add
