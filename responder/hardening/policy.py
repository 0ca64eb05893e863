"""Policies for `respond harden`: the least-privilege proposal, the grants nobody used, and
the MFA-enforcing policy.

The proposal is advice a human attaches, so it must be valid IAM as produced (a document
IAM refuses is worse than none) and must never lose a used action (the user's work would
break the day it is attached). When it outgrows a managed policy it is widened step by
step, and the note says how far, so the reviewer knows what was traded for size.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from responder.hardening.usage import Usage

VERSION = "2012-10-17"
MANAGED_POLICY_MAX_CHARS = 6144
"""IAM's limit for a managed policy, counted on the JSON without whitespace."""
MFA_POLICY_NAME = "responder-require-mfa"

NEVER_USED = "never used"
WIDER = "wider than what was used"
NOT_ACTION_REASON = "NotAction grants every action except those listed"

_VERB = re.compile(r"^[A-Za-z][a-z0-9]*")

Group = tuple[str, tuple[str, ...], tuple[str, ...]]
"""(service prefix, resources (empty = "*"), actions or patterns) for one statement."""


@dataclass(frozen=True)
class Proposal:
    """The proposed document plus what a reviewer needs to trust it: its size against
    the limit, and whether (and why) it is wider than the exact usage."""

    document: Mapping[str, Any]
    collapsed: bool
    chars: int
    note: str | None


@dataclass(frozen=True)
class Grant:
    """One policy the user holds, wherever it comes from: `source` says where ("inline",
    "attached", "group:devs", "group:devs attached") so the reviewer knows what to edit."""

    policy: str
    source: str
    document: Mapping[str, Any] | str
    """A parsed document, or the URL-encoded JSON the raw IAM API returns."""


@dataclass(frozen=True)
class Unused:
    """A granted action pattern that goes beyond what the user used."""

    policy: str
    source: str
    action: str
    resource: str
    covers_used: tuple[str, ...]
    """The used actions this grant also matches: what removing it would break."""
    reason: str


def policy_chars(document: Mapping[str, Any]) -> int:
    """The size IAM holds against the limit (it ignores whitespace outside strings)."""
    return len(json.dumps(document, separators=(",", ":")))


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern[str]:
    """IAM's wildcards only: `*` and `?`. fnmatch would also read `[...]` as a class."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """Whether an Action entry matches an action as IAM decides it: case-insensitively,
    with `*` and `?` wildcards."""
    return _pattern(pattern).fullmatch(action) is not None


def _service(action: str) -> str:
    return action.split(":", 1)[0]


def _sid_base(service: str) -> str:
    """Sids must be alphanumeric: "execute-api" -> "ExecuteApi", "s3" -> "S3"."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", service) if p]
    return "".join(p[:1].upper() + p[1:] for p in parts) or "Service"


def _statements(groups: Sequence[Group]) -> list[dict[str, Any]]:
    """Allow statements with Sids unique across the document (IAM refuses duplicates):
    a service with several resource sets numbers its statements."""
    per_service: dict[str, int] = defaultdict(int)
    for service, _, _ in groups:
        per_service[service] += 1
    taken: set[str] = set()
    numbered: dict[str, int] = defaultdict(int)
    statements: list[dict[str, Any]] = []
    for service, arns, actions in groups:
        base = _sid_base(service)
        if per_service[service] > 1:
            numbered[service] += 1
            base = f"{base}{numbered[service]}"
        sid, n = base, 1
        while sid in taken:
            n += 1
            sid = f"{base}x{n}"
        taken.add(sid)
        statements.append({
            "Sid": sid,
            "Effect": "Allow",
            "Action": sorted(set(actions)),
            "Resource": sorted(set(arns)) if arns else "*",
        })
    return statements


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": statements}


def _exact(usages: Sequence[Usage]) -> list[Group]:
    """One group per (service, distinct resource set): a union across actions would let
    each action reach the others' resources."""
    by_key: dict[tuple[str, tuple[str, ...]], set[str]] = defaultdict(set)
    for usage in usages:
        by_key[(_service(usage.action), tuple(sorted(set(usage.resources))))].add(usage.action)
    return [(s, arns, tuple(sorted(a))) for (s, arns), a in sorted(by_key.items())]


def verb_pattern(action: str) -> str:
    """`service:Verb*` from the leading capitalised word (GetObject -> Get*), a pattern
    that still matches the action it came from; an unusual name is kept as is."""
    service, _, name = action.partition(":")
    found = _VERB.match(name)
    return f"{service}:{found.group(0)}*" if found else action


def _verbs(groups: Sequence[Group]) -> list[Group]:
    return [(s, arns, tuple(sorted({verb_pattern(a) for a in acts}))) for s, arns, acts in groups]


def _any_resource(groups: Sequence[Group]) -> list[Group]:
    merged: dict[str, set[str]] = defaultdict(set)
    for service, _, actions in groups:
        merged[service].update(actions)
    return [(s, (), tuple(sorted(a))) for s, a in sorted(merged.items())]


def _service_wide(groups: Sequence[Group]) -> list[Group]:
    return [(s, (), (f"{s}:*",)) for s in sorted({g[0] for g in groups})]


def propose(usages: Sequence[Usage]) -> Proposal:
    """The least-privilege policy for `usages`, widened only as far as the size limit
    forces, in this order: actions to Verb* patterns, resources to "*", whole services."""
    if not usages:
        document = _document([
            {"Sid": "NothingUsed", "Effect": "Deny", "Action": "*", "Resource": "*"}
        ])
        return Proposal(
            document=document,
            collapsed=False,
            chars=policy_chars(document),
            note="no usage found before the compromise: the policy denies everything "
            "(a document without statements is not valid IAM)",
        )
    groups = _exact(usages)
    document = _document(_statements(groups))
    chars = policy_chars(document)
    if chars <= MANAGED_POLICY_MAX_CHARS:
        return Proposal(document=document, collapsed=False, chars=chars, note=None)
    exact_chars = chars
    steps: list[tuple[Callable[[Sequence[Group]], list[Group]], str]] = [
        (_verbs, "actions collapsed to service:Verb* patterns"),
        (_any_resource, "resources widened to *"),
        (_service_wide, "actions widened to service:*"),
    ]
    done: list[str] = []
    for widen, what in steps:
        groups = widen(groups)
        done.append(what)
        document = _document(_statements(groups))
        chars = policy_chars(document)
        if chars <= MANAGED_POLICY_MAX_CHARS:
            return Proposal(document, True, chars, _note(exact_chars, done))
    # Still too big: one statement listing every service, the least text IAM allows.
    done.append("all services merged into one statement")
    document = _document([{
        "Sid": "UsedServices",
        "Effect": "Allow",
        "Action": sorted(a for g in groups for a in g[2]),
        "Resource": "*",
    }])
    chars = policy_chars(document)
    note = _note(exact_chars, done)
    if chars > MANAGED_POLICY_MAX_CHARS:
        note += f"; still {chars} chars: split it across several policies"
    return Proposal(document, True, chars, note)


def _note(exact_chars: int, done: Iterable[str]) -> str:
    return (
        f"the exact policy was {exact_chars} chars, over IAM's {MANAGED_POLICY_MAX_CHARS} "
        f"for a managed policy: {', then '.join(done)}"
    )


def require_mfa_policy(*, partition: str = "aws") -> Mapping[str, Any]:
    """The IAM user guide's "self-manage an MFA device" policy: without MFA, everything is
    denied except what it takes to enrol a device and sign in with it.

    Password changes go through iam:ChangePassword, which needs the old password, not
    iam:UpdateLoginProfile, which does not: a stolen session must not be able to lock the
    owner out. Attaching this does not replace disabling the leaked key: a key whose user
    has no MFA device yet can enrol the attacker's own device (the Deny exempts exactly
    that), and from then on pass the MFA condition.
    """
    own_user = f"arn:{partition}:iam::*:user/${{aws:username}}"
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AllowViewAccountInfo",
                "Effect": "Allow",
                "Action": ["iam:GetAccountPasswordPolicy", "iam:ListVirtualMFADevices"],
                "Resource": "*",
            },
            {
                "Sid": "AllowManageOwnPassword",
                "Effect": "Allow",
                "Action": ["iam:ChangePassword", "iam:GetLoginProfile", "iam:GetUser"],
                "Resource": own_user,
            },
            {
                "Sid": "AllowCreateOwnVirtualMFADevice",
                "Effect": "Allow",
                "Action": ["iam:CreateVirtualMFADevice"],
                "Resource": f"arn:{partition}:iam::*:mfa/*",
            },
            {
                "Sid": "AllowManageOwnUserMFA",
                "Effect": "Allow",
                "Action": [
                    "iam:EnableMFADevice",
                    "iam:GetMFADevice",
                    "iam:ListMFADevices",
                    "iam:ResyncMFADevice",
                ],
                "Resource": own_user,
            },
            {
                "Sid": "AllowDeactivateOwnMFAOnlyWithMFA",
                "Effect": "Allow",
                "Action": ["iam:DeactivateMFADevice"],
                "Resource": own_user,
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            },
            {
                "Sid": "DenyAllExceptListedIfNoMFA",
                "Effect": "Deny",
                "NotAction": [
                    "iam:CreateVirtualMFADevice",
                    "iam:EnableMFADevice",
                    "iam:GetUser",
                    "iam:ListMFADevices",
                    "iam:ListVirtualMFADevices",
                    "iam:ResyncMFADevice",
                    "sts:GetSessionToken",
                    "iam:ChangePassword",
                    "iam:GetAccountPasswordPolicy",
                ],
                "Resource": "*",
                "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
            },
        ],
    }


def parse_document(document: Mapping[str, Any] | str) -> Mapping[str, Any]:
    """A policy document as a mapping. The raw IAM API returns URL-encoded JSON (boto3
    decodes it); plain JSON is tried first so a literal "%" in it survives."""
    if not isinstance(document, str):
        return document
    try:
        parsed = json.loads(document)
    except json.JSONDecodeError:
        parsed = json.loads(urllib.parse.unquote(document))
    if isinstance(parsed, Mapping):
        return parsed
    raise ValueError("a policy document must be a JSON object")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _resource_text(statement: Mapping[str, Any]) -> str:
    if "Resource" in statement:
        return ", ".join(_as_list(statement["Resource"]))
    if "NotResource" in statement:
        return "NotResource: " + ", ".join(_as_list(statement["NotResource"]))
    return ""


def _allow_statements(document: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Deny statements take nothing away from "unused": they never grant."""
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        return []
    return [s for s in statements if isinstance(s, Mapping) and s.get("Effect") == "Allow"]


def unused_permissions(grants: Sequence[Grant], used: Collection[str]) -> tuple[Unused, ...]:
    """Every Allow entry that grants more than `used`: exact actions never called, and
    wildcard patterns (reported even when they cover used actions, since they also cover
    everything else), in grant and statement order."""
    used_sorted = sorted(set(used))
    used_lower = {a.lower() for a in used_sorted}
    found: list[Unused] = []
    for grant in grants:
        try:
            document = parse_document(grant.document)
        except ValueError as error:  # JSONDecodeError is a ValueError
            raise ValueError(f"policy {grant.policy} ({grant.source}): {error}") from error
        for statement in _allow_statements(document):
            resource = _resource_text(statement)
            if "NotAction" in statement:
                excluded = _as_list(statement["NotAction"])
                covers = tuple(
                    a for a in used_sorted if not any(action_matches(p, a) for p in excluded)
                )
                found.append(Unused(
                    grant.policy, grant.source, f"NotAction: [{', '.join(excluded)}]",
                    resource, covers, NOT_ACTION_REASON,
                ))
                continue
            for pattern in _as_list(statement.get("Action")):
                if "*" not in pattern and "?" not in pattern:
                    if pattern.lower() not in used_lower:
                        found.append(Unused(
                            grant.policy, grant.source, pattern, resource, (), NEVER_USED
                        ))
                    continue
                covers = tuple(a for a in used_sorted if action_matches(pattern, a))
                found.append(Unused(
                    grant.policy, grant.source, pattern, resource, covers,
                    WIDER if covers else NEVER_USED,
                ))
    return tuple(found)
