"""What one CloudTrail record says the user needed: each IAM action the call was
authorised as, on which resources, read from iam-dataset's map (iam_data.py), never from
rules of our own.

A least-privilege proposal is only as good as this: an action IAM does not have
(`apigateway:GetRestApis` where IAM checks `apigateway:GET`), a missing one (the
`iam:PassRole` that lambda:CreateFunction also needs, which CloudTrail never logs) or
an ARN a little narrower than what IAM checks would make the proposal deny the user's own
work the day it is attached. So the actions are the map's, each checked against IAM's
catalog of actions, and the ARNs are the catalog's ARN formats filled from the request
(arn_template.py) the way iamlive fills them; `*` stays only where IAM takes no ARN for
the action or the request does not name the resource, and the need says which.

A call the map does not know is taken as `<namespace>:<eventName>` when IAM's catalog
has that action (most API names are their action's), and is otherwise reported, never
guessed into a policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from responder.hardening import iam_data
from responder.hardening.arn_template import (
    GENERALISED,
    Request,
    leading_slash,
    request_of,
    specials,
    substitute,
    with_paths,
)

AWS_DOMAIN = ".amazonaws.com"
NOT_IAM_SOURCES: frozenset[str] = frozenset({"signin", "console"})
"""Hosts whose events (ConsoleLogin, CheckMfa, ...) are sign-in steps, not IAM actions: no
policy grants them, so they must not appear in a proposed policy."""
DENIED_CODES: frozenset[str] = frozenset(
    {"AccessDenied", "UnauthorizedOperation", "Client.UnauthorizedOperation"})
"""A call refused by IAM was never granted, so it is not usage (an attacker's probing
would otherwise widen the proposal). Any other error (NoSuchKey, ...) means the call got
past authorisation, which is what a policy must keep allowing."""
NO_ARN = "IAM takes no resource ARN for this action"
NOT_NAMED = "the request does not name the resource"
NO_PARAMETERS = "the record holds no request parameters"

_LAMBDA_VERSION = re.compile(r"\d{8}(v\d+)?$")
EVENT_OPERATIONS: Mapping[tuple[str, str], str] = {
    # S3's CloudTrail event names for these say "Bucket" where the API operation (the
    # map's key) does not, or the other way round; seen in captured trails
    # (invictus-ir/aws_dataset) and the S3 user guide's CloudTrail examples.
    ("s3", "GetBucketObjectLockConfiguration"): "GetObjectLockConfiguration",
    ("s3", "PutBucketObjectLockConfiguration"): "PutObjectLockConfiguration",
    ("s3", "GetAccelerateConfiguration"): "GetBucketAccelerateConfiguration",
    ("s3", "PutAccelerateConfiguration"): "PutBucketAccelerateConfiguration",
}
"""(eventSource host, eventName) -> the API operation the map knows it by, where a
service's CloudTrail name is not its operation's."""
EVENT_ACTIONS: Mapping[tuple[str, str], str] = {
    # The map keys these by an operation S3 and S3 Control share, and so asks for the
    # account's public access block too; the bucket's events need the bucket's only.
    ("s3", "GetBucketPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutBucketPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeleteBucketPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
}
"""(eventSource host, eventName) -> the one action it needs, where the map is wrong."""


@dataclass(frozen=True)
class Need:
    """One action a call was authorised as, and the ARNs it acted on."""

    action: str
    resources: tuple[str, ...]
    """ARNs (IAM's wildcards allowed); () means any resource, `why_any` says why."""
    why_any: str | None = None
    guessed: bool = False
    """Not in the map: `<namespace>:<eventName>`, an action IAM's catalog has."""


@dataclass(frozen=True)
class Needed:
    """A record's needs, or why it has none to keep."""

    needs: tuple[Need, ...] = ()
    unknown: str | None = None
    """`<namespace>:<eventName>` of a call neither the map nor IAM's catalog knows: it is
    usage a proposal cannot grant, so the proof lists it."""


def event_key(record: Mapping[str, Any]) -> tuple[str, str] | None:
    """(eventSource host, eventName) of a call that needs a permission to keep: None for
    missing fields, sign-in steps, refused calls and sources outside AWS."""
    source, name = record.get("eventSource"), record.get("eventName")
    if not isinstance(source, str) or not isinstance(name, str) or not source or not name:
        return None
    if record.get("errorCode") in DENIED_CODES or not source.endswith(AWS_DOMAIN):
        return None
    host = source.removesuffix(AWS_DOMAIN)
    if host in NOT_IAM_SOURCES:
        return None
    if host == "lambda":  # Lambda logs the API version: ListFunctions20150331
        name = _LAMBDA_VERSION.sub("", name) or name
    return host, EVENT_OPERATIONS.get((host, name), name)


def needed(record: Mapping[str, Any]) -> Needed:
    key = event_key(record)
    if key is None:
        return Needed()
    host, name = key
    direct = EVENT_ACTIONS.get((host, name))
    variants = (iam_data.Mapped(direct, {}, {}, None, None),) if direct \
        else iam_data.mapped(host, name)
    guessed = variants is None
    if variants is None:
        action = _guess(iam_data.namespace(host) or host, name)
        if action is None:
            return Needed(unknown=f"{iam_data.namespace(host) or host}:{name}")
        variants = (iam_data.Mapped(action, {}, {}, None, None),)
    params = record.get("requestParameters")
    request = request_of(params, partition(record), str(record.get("awsRegion") or "*"),
                         account(record) or "*")
    found: list[Need] = []
    for index, variant in enumerate(variants):
        if variant.condition is not None and not holds(variant.condition, request):
            continue
        arns = resources_of(variant, request, first=index == 0)
        if arns is None:
            continue
        why = None if arns else (NO_ARN if not iam_data.resource_types(variant.action)
                                 else NOT_NAMED if params else NO_PARAMETERS)
        found.append(Need(variant.action, arns, why, guessed))
    return Needed(tuple(found))


def _guess(prefix: str, name: str) -> str | None:
    """A call the map does not know, as the action IAM has under its own name, or under
    the name without "Batch" (SQS's DeleteMessageBatch is authorised as DeleteMessage)."""
    return iam_data.canonical(f"{prefix}:{name}") or (
        iam_data.canonical(f"{prefix}:{name.removesuffix('Batch')}")
        if name.endswith("Batch") else None)


def needs(record: Mapping[str, Any]) -> tuple[Need, ...]:
    """The actions and ARNs `record`'s call needed; () when none is kept."""
    return needed(record).needs


def resources_of(variant: iam_data.Mapped, request: Request, *, first: bool
                 ) -> tuple[str, ...] | None:
    """The ARNs of one mapped action (iamlive's getStatementsForProxyCall): the map's
    whole-ARN override, else its ARNs by resource type, else each of the action's ARN
    formats filled from the request. () is any resource; None drops the action (a
    dependent action such as iam:PassRole whose parameter the request does not carry)."""
    found: list[str] = []
    if variant.arn_override:
        for text in specials(variant.arn_override, request, mandatory=False, arn_format=None):
            if text:
                full, arns = substitute(text, request)
                found += arns if first or full else ()
        if not found and not variant.resources:
            return () if first else None  # the call's own action is never dropped
    types = iam_data.resource_types(variant.action)
    if variant.resource_arns and not found:
        for kind in types:
            template = variant.resource_arns.get(kind.name)
            if template is not None:
                found += _filled([template], request, kind.required, kind.arn)
    if not found:
        for kind in types:
            texts = [kind.arn]
            for name, template in variant.resources.items():
                values = specials(leading_slash(name, template), request, mandatory=False,
                                  arn_format=kind.arn) if name.lower() not in GENERALISED \
                    else ("*",)
                if values == ("",):
                    continue
                values = with_paths(name, values)
                texts = [t.replace(f"${{{name}}}", v) for t in texts for v in values]
            found += _filled(texts, request, kind.required, None)
    if not found and variant.resource_arns and not first:
        return None
    arns = tuple(dict.fromkeys(found))
    return () if not arns or "*" in arns else arns


def _filled(texts: list[str], request: Request, required: bool, arn_format: str | None
            ) -> list[str]:
    """Each template's ARNs: kept when the resource type is required or the request
    filled every variable (an optional type is only named when the call named it)."""
    found: list[str] = []
    for text in texts:
        for resolved in specials(text, request, mandatory=False, arn_format=arn_format):
            if not resolved:
                continue
            full, arns = substitute(resolved, request)
            found += arns if required or full else ()
    return found


def holds(condition: Mapping[str, str], request: Request) -> bool:
    """The map's draft conditions (DynamoDB's PartiQL statements name the action by
    their verb). A record without request parameters cannot be judged, and an operator
    not known here holds: either way the action is kept, since a proposal missing it
    would deny the call."""
    if not request.params:
        return True
    lhs = condition.get("lhs", "").lower()
    values = [v for k, vs in request.params.items() if k == lhs or k.startswith(lhs + ".")
              for v in vs]
    op, rhs = condition.get("op", ""), condition.get("rhs", "")
    if op == "Exists":
        return bool(values)
    if op == "IContains":
        return any(rhs.lower() in v.lower() for v in values)
    if op == "Equals":
        return rhs in values
    if op == "NotEquals":
        return rhs not in values
    return True


def account(record: Mapping[str, Any]) -> str | None:
    """The account that owns the resource: the recipient, else the caller's own."""
    found = record.get("recipientAccountId")
    if isinstance(found, str) and found:
        return found
    identity = record.get("userIdentity")
    if isinstance(identity, Mapping):
        found = identity.get("accountId")
        if isinstance(found, str) and found:
            return found
    return None


def partition(record: Mapping[str, Any]) -> str:
    """aws, aws-cn or aws-us-gov, from the caller's ARN: an ARN in the wrong partition
    matches nothing."""
    identity = record.get("userIdentity")
    arn = identity.get("arn") if isinstance(identity, Mapping) else None
    if isinstance(arn, str) and arn.startswith("arn:"):
        parts = arn.split(":")
        if len(parts) > 2 and parts[1]:
            return parts[1]
    return "aws"
