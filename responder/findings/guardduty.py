"""GuardDuty findings, from an EventBridge event or GetFindings output (either casing).

GuardDuty names the key in `resource.accessKeyDetails`, so one finding is at most one key.
For a temporary (ASIA) key it also says whose session it is and, for an instance's
credentials, which instance and network they belong to: that becomes a SessionHint, so
the session can be contained before CloudTrail has delivered a single event for the key.
"""

from __future__ import annotations

import json
import re
from typing import Any

from responder.context import SessionHint
from responder.errors import clipped
from responder.findings.lookup import (
    as_list,
    number,
    required_texts,
    text_at,
    truthy,
    value_at,
)
from responder.findings.model import Candidate
from responder.guardrails import is_temporary

_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
"""EC2 names an instance role's sessions after the instance, so the session name of an
instance credential is its instance id."""


def candidates(finding: Any, event: Any) -> list[Candidate]:
    """The one candidate a GuardDuty finding makes; `event` is its EventBridge envelope."""
    raw_id, finding_type = required_texts(
        finding, ("id", "type"), "GuardDuty finding",
        "not a finding GuardDuty emits; pass the EventBridge event or GetFindings output "
        "unchanged")
    details = value_at(finding, "resource", "accessKeyDetails")
    key = text_at(details, "accessKeyId")
    account = text_at(finding, "accountId") or text_at(event, "account")
    region = text_at(finding, "region") or text_at(event, "region")
    return [Candidate(
        finding_id=f"guardduty:{raw_id}",
        source="guardduty",
        label=f"GuardDuty finding {clipped(raw_id)}",
        finding_type=finding_type,
        types=((finding_type, finding_type),),
        severity=number(value_at(finding, "severity")),
        access_key_id=key,
        user_name=text_at(details, "userName"),
        first_seen=text_at(finding, "service", "eventFirstSeen"),
        user_type=text_at(details, "userType"),
        principal_id=text_at(details, "principalId"),
        account_id=account,
        region=region,
        sample=_is_sample(finding),
        closed="archived in GuardDuty" if truthy(value_at(finding, "service", "archived"))
        else None,
        resources=_described(finding),
        session=(_session_hint(finding, account, region)
                 if key is not None and is_temporary(key) else None),
    )]


def _session_hint(finding: Any, account: str | None, region: str | None) -> SessionHint:
    """What the finding says about a temporary key's session.

    Only what GuardDuty states is recorded: an ARN is built only when every part of it is
    known, because a guessed principal would have the playbook revoke the wrong session.
    """
    details = value_at(finding, "resource", "accessKeyDetails")
    user_type = (text_at(details, "userType") or "").lower()
    user_name = text_at(details, "userName")
    principal_id = text_at(details, "principalId") or ""
    head, _, session_name = principal_id.partition(":")
    partition = text_at(finding, "partition") or "aws"
    principal_arn = None
    if user_type == "assumedrole" and account and user_name and session_name:
        principal_arn = f"arn:{partition}:sts::{account}:assumed-role/{user_name}/{session_name}"
    elif user_type == "iamuser" and account and user_name:  # a GetSessionToken session
        principal_arn = f"arn:{partition}:iam::{account}:user/{user_name}"
    instance = value_at(finding, "resource", "instanceDetails")
    interfaces = [i for i in as_list(value_at(instance, "networkInterfaces"))
                  if isinstance(i, dict)]
    first = interfaces[0] if interfaces else None
    public_ips = [ip for ip in (text_at(i, "publicIp") for i in interfaces) if ip]
    return SessionHint(
        principal_arn=principal_arn,
        role_id=head if head.startswith("AROA") else None,
        instance_id=text_at(instance, "instanceId") or (
            session_name if _INSTANCE_ID.match(session_name) else None),
        region=region,
        vpc_id=text_at(first, "vpcId"),
        private_ip=text_at(first, "privateIpAddress"),
        public_ips=tuple(dict.fromkeys(public_ips)),
    )


def _is_sample(finding: Any) -> bool:
    """Sample findings must never contain a real key, wherever GuardDuty put the flag.

    EventBridge sends `additionalInfo.sample`; GetFindings wraps additionalInfo as
    `{value: "<json>", type}`, so the flag is inside a JSON string there.
    """
    info = value_at(finding, "service", "additionalInfo")
    if truthy(value_at(info, "sample")):
        return True
    value = value_at(info, "value")
    if isinstance(value, str):
        try:
            return truthy(value_at(json.loads(value), "sample"))
        except ValueError:
            return False
    return False


def _described(finding: Any) -> tuple[str, ...]:
    """What the finding is about when it names no key, so the refusal can point there."""
    resource_type = text_at(finding, "resource", "resourceType")
    described = [f"resource type {resource_type}"] if resource_type else []
    instance = text_at(finding, "resource", "instanceDetails", "instanceId")
    if instance:
        described.append(f"instance {instance}")
    return tuple(described)
