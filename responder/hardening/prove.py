"""A proposal is proved against the history before it is offered: every action the user
was seen to need, on every resource it was seen on, evaluated against the proposed
document as IAM evaluates an identity policy, must be allowed.

The evaluation is IAM's for one identity-based policy: an explicit Deny that matches
wins, then an Allow that matches, else the implicit deny. Actions match
case-insensitively and resources case-sensitively, both with `*` and `?`; NotAction and
NotResource match what they do not list. A statement with a Condition is not used as
proof (nothing here knows the request's context), and a Deny with one is taken to
apply: the proof may say "not proved" where IAM would allow, never the reverse. A
resource the history could not name is the literal `*`, which only a statement on
every resource (`"Resource": "*"`) allows.

What cannot be proved is listed with why: a call no IAM action is known for, an action
IAM's catalog does not have (taken out of the document before it is written), a call
the proposal does not allow (a widening gone wrong would show here). SimulateCustomPolicy
would give IAM's own answer, but it is one request per action and resource set against a
throttled API, and a policy document drawn from CloudTrail needs no service to evaluate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from responder.hardening import iam_data
from responder.hardening.policy import action_matches
from responder.hardening.usage import Usage

MAX_LISTED = 50
"""Unproven calls listed one by one; the rest are counted."""


@dataclass(frozen=True)
class Unproven:
    """A call the proposal cannot be shown to allow, and why."""

    call: str
    why: str


@dataclass(frozen=True)
class Proof:
    """What was evaluated against the proposal and what was not allowed."""

    checked: int
    """(action, resource) pairs evaluated."""
    allowed: int
    unproven: tuple[Unproven, ...]
    unproven_more: int = 0
    """Unproven calls past MAX_LISTED, counted."""

    @property
    def complete(self) -> bool:
        return not self.unproven and not self.unproven_more


@lru_cache(maxsize=4096)
def _resource_pattern(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _listed(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _matches(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        acts = any(action_matches(p, action) for p in _listed(statement["Action"]))
    else:
        acts = not any(action_matches(p, action) for p in _listed(statement.get("NotAction")))
    if "Resource" in statement:
        on = any(_resource_pattern(p).fullmatch(resource)
                 for p in _listed(statement["Resource"]))
    else:
        on = not any(_resource_pattern(p).fullmatch(resource)
                     for p in _listed(statement.get("NotResource")))
    return acts and on


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = document.get("Statement", [])
    found = [found] if isinstance(found, Mapping) else found
    return [s for s in found if isinstance(s, Mapping)] if isinstance(found, list) else []


def allowed(document: Mapping[str, Any], action: str, resource: str) -> bool:
    """Whether `document` alone allows `action` on `resource` (see the module's note)."""
    permitted = False
    for statement in _statements(document):
        if not _matches(statement, action, resource):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow" and not statement.get("Condition"):
            permitted = True
    return permitted


def known_actions(document: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The document with every Allow's actions held to IAM's catalog: an exact action IAM
    does not have, or a pattern that matches none of the service's actions, is taken out
    (a statement left without actions goes too). (document, what was taken out)."""
    removed: list[str] = []
    kept: list[dict[str, Any]] = []
    for statement in _statements(document):
        if statement.get("Effect") != "Allow" or "Action" not in statement:
            kept.append(dict(statement))
            continue
        actions: list[str] = []
        for action in _listed(statement["Action"]):
            (actions if iam_data.pattern_exists(action) else removed).append(action)
        if actions:
            kept.append({**statement, "Action": actions if isinstance(
                statement["Action"], list) else actions[0]})
    return {**document, "Statement": kept}, tuple(dict.fromkeys(removed))


def prove(document: Mapping[str, Any], usages: Sequence[Usage],
          unknown: Mapping[str, int] | None = None, removed: Iterable[str] = ()) -> Proof:
    """Every used (action, resource) evaluated against `document`; the calls with no IAM
    action (`unknown`, by name and count) and the actions taken out for IAM's catalog
    (`removed`) are listed as unproven too."""
    listed: list[Unproven] = [
        Unproven(name, f"no IAM action is known for this call ({count} events): the map "
                       "and IAM's catalog both lack it")
        for name, count in sorted((unknown or {}).items())]
    listed += [Unproven(a, "IAM's catalog has no such action: taken out of the proposal")
               for a in removed]
    checked = granted = 0
    for usage in usages:
        for resource in usage.resources or ("*",):
            checked += 1
            if allowed(document, usage.action, resource):
                granted += 1
                continue
            why = ("not allowed by the proposal" if usage.resources else
                   f"not allowed on every resource, which it needs ({usage.why_any or 'any'})")
            listed.append(Unproven(f"{usage.action} on {resource}", why))
    return Proof(checked, granted, tuple(listed[:MAX_LISTED]),
                 max(0, len(listed) - MAX_LISTED))
