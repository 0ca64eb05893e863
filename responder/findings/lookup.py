"""Lenient reads from the JSON AWS emits: absent or mistyped fields become None, not errors.

A finding is refused or accepted on what it says, so a missing field must reach the
guardrails as "not said" rather than stop the parse with a KeyError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from responder.errors import BadInput

_KEY_TOKEN = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")


def value_at(obj: Any, *path: str) -> Any:
    """Follow `path` through nested dicts, keys matched case-insensitively.

    The same finding arrives camelCase (EventBridge, the raw API) and PascalCase
    (boto3, the AWS CLI); one lookup serves both.
    """
    current = obj
    for name in path:
        if not isinstance(current, dict):
            return None
        if name in current:
            current = current[name]
            continue
        lowered = name.lower()
        for key, value in current.items():
            if isinstance(key, str) and key.lower() == lowered:
                current = value
                break
        else:
            return None
    return current


def text_at(obj: Any, *path: str) -> str | None:
    """The stripped string at `path`; blank counts as absent, as AWS sends "" for unset."""
    value = value_at(obj, *path)
    return value.strip() if isinstance(value, str) and value.strip() else None


def required_texts(obj: Any, names: Sequence[str], what: str, advice: str) -> list[str]:
    """The texts at `names`, all of them, or BadInput saying which fields `what` lacks.

    Without its id (and type) a finding cannot be deduplicated or mapped, so it is
    malformed input rather than something to refuse.
    """
    values = [text_at(obj, name) for name in names]
    present = [value for value in values if value is not None]
    if len(present) < len(values):
        fields = " or ".join(f"`{name}`" for name in names)
        raise BadInput(f"{what} without {fields}: {advice}")
    return present


def number(value: Any) -> float | None:
    """A number, or numeric text (GetFindings sends severities as strings), as a float;
    a bool is not a number here. Shared with the CloudTrail fake's timestamps."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def truthy(value: Any) -> bool:
    """True or "true" (any case): ASFF ProductFields and some exports carry flags as text."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def key_tokens(texts: Iterable[str]) -> list[str]:
    """Access key ids named in free text (ARNs, entity values), first mention first, once.

    Health and Security Hub name keys inside longer strings rather than in a field of
    their own.
    """
    found: list[str] = []
    for text in texts:
        for token in _KEY_TOKEN.findall(text):
            if token not in found:
                found.append(token)
    return found


def json_kind(value: Any) -> str:
    """What a value is, in JSON's words (`null`, not Python's `NoneType`): the words a
    person who wrote the file knows."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__
