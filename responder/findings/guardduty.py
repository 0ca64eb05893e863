"""GuardDuty findings, from an EventBridge event or GetFindings output (either casing).

GuardDuty names the key in `resource.accessKeyDetails`, so one finding is at most one key.
"""

from __future__ import annotations

import json
from typing import Any

from responder.findings.lookup import number, required_texts, text_at, truthy, value_at
from responder.findings.model import Candidate


def candidates(finding: Any, event: Any) -> list[Candidate]:
    """The one candidate a GuardDuty finding makes; `event` is its EventBridge envelope."""
    raw_id, finding_type = required_texts(
        finding, ("id", "type"), "GuardDuty finding",
        "not a finding GuardDuty emits; pass the EventBridge event or GetFindings output "
        "unchanged")
    details = value_at(finding, "resource", "accessKeyDetails")
    return [Candidate(
        finding_id=f"guardduty:{raw_id}",
        source="guardduty",
        label=f"GuardDuty finding {raw_id}",
        finding_type=finding_type,
        types=((finding_type, finding_type),),
        severity=number(value_at(finding, "severity")),
        access_key_id=text_at(details, "accessKeyId"),
        user_name=text_at(details, "userName"),
        user_type=text_at(details, "userType"),
        principal_id=text_at(details, "principalId"),
        account_id=text_at(finding, "accountId") or text_at(event, "account"),
        region=text_at(finding, "region") or text_at(event, "region"),
        sample=_is_sample(finding),
        closed="archived in GuardDuty" if truthy(value_at(finding, "service", "archived"))
        else None,
        resources=_described(finding),
    )]


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
