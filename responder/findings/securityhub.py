"""Security Hub findings in ASFF, from an EventBridge event or GetFindings output.

Security Hub aggregates other products (GuardDuty among them), names keys as
`AwsIamAccessKey` resources, and grades severity on its own scale; this module brings
all of that to GuardDuty's terms so one mapping serves every source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from responder.errors import clipped
from responder.findings.lookup import (
    as_list,
    key_tokens,
    number,
    required_texts,
    text_at,
    truthy,
    value_at,
)
from responder.findings.model import Candidate

ASFF_SCHEMA_VERSION = "2018-10-08"
_ASFF_GUARDDUTY_TYPE = re.compile(
    r"(?:^|/)(?P<head>[A-Za-z0-9]+:[A-Za-z0-9]+)[-/](?P<rest>[^/]+)$")
"""Security Hub writes GuardDuty's `Purpose:Resource/Family` as `Purpose:Resource-Family`
(`TTPs/Discovery/Recon:IAMUser-TorIPCaller`), or whole (`TTPs/PenTest:IAMUser/KaliLinux`)."""
_ASFF_PURPOSE_IN_CATEGORY = re.compile(
    r"(?:^|/)(?P<purpose>[A-Za-z][A-Za-z ]*)/(?P<resource>[A-Za-z0-9]+)-(?P<rest>[^/:]+)$")
"""...or without its purpose, which is then the category before it, spelt with spaces:
`TTPs/Credential Access/IAMUser-AnomalousBehavior` is
`CredentialAccess:IAMUser/AnomalousBehavior` (every IAMUser AnomalousBehavior type)."""
_ASFF_LABELS = {"INFORMATIONAL": 0.0, "LOW": 1.0, "MEDIUM": 4.0, "HIGH": 7.0, "CRITICAL": 9.0}
"""Lower bound of each ASFF severity label, on GuardDuty's 0-10 scale."""


def candidates(finding: Any, event: Any) -> list[Candidate]:
    """One candidate per key among the finding's resources, or one keyless candidate.

    A single key keeps the finding's own id; several get one id each, so that the
    journal dedupes them separately.
    """
    [raw_id] = required_texts(
        finding, ("Id",), "Security Hub finding",
        "not an ASFF finding; pass the EventBridge event or GetFindings output unchanged")
    types = [t.strip() for t in as_list(value_at(finding, "Types"))
             if isinstance(t, str) and t.strip()]
    product = _product(finding)
    resources = [r for r in as_list(value_at(finding, "Resources")) if isinstance(r, dict)]
    key_resources = [r for r in resources if text_at(r, "Type") == "AwsIamAccessKey"]
    base = Candidate(
        finding_id=f"securityhub:{raw_id}",
        source="securityhub",
        label=f"{clipped(product)} finding {clipped(raw_id, 160)}",
        finding_type=types[0] if types else "(no Types)",
        types=_asff_types(types),
        severity=_asff_severity(finding),
        account_id=text_at(finding, "AwsAccountId") or text_at(event, "account"),
        region=text_at(finding, "Region") or text_at(event, "region"),
        sample=_is_sample(finding),
        first_seen=text_at(finding, "FirstObservedAt"),
        product=product,
        closed=_closed(finding),
        resources=tuple(f"{text_at(r, 'Type')} {text_at(r, 'Id')}" for r in resources)[:3],
    )
    per_key: dict[str, Candidate] = {}
    principal = base
    for resource in key_resources:
        details = value_at(resource, "Details", "AwsIamAccessKey")
        principal = replace(
            base,
            user_name=text_at(details, "PrincipalName") or text_at(details, "UserName"),
            user_type=text_at(details, "PrincipalType"),
            principal_id=text_at(details, "PrincipalId"),
            account_id=base.account_id or text_at(details, "AccountId"),
        )
        explicit = text_at(details, "AccessKeyId")
        keys = [explicit] if explicit else key_tokens([text_at(resource, "Id") or ""])
        for key in keys:
            per_key.setdefault(key, replace(principal, access_key_id=key))
    if not per_key:
        return [principal]
    if len(per_key) == 1:
        return list(per_key.values())
    return [c.for_key(key) for key, c in per_key.items()]


def _product(finding: Any) -> str:
    """The product that raised it, for messages; GuardDuty spelt as GuardDuty spells it."""
    product_arn = text_at(finding, "ProductArn") or ""
    product = text_at(finding, "ProductName") or product_arn.rsplit("/", 1)[-1] or "Security Hub"
    return "GuardDuty" if product.lower() == "guardduty" else product


def _is_sample(finding: Any) -> bool:
    """GuardDuty sample findings keep their flag in ProductFields when they reach Security Hub."""
    fields = value_at(finding, "ProductFields")
    return truthy(value_at(finding, "Sample")) or (isinstance(fields, dict) and any(
        str(k).lower().endswith("additionalinfo/sample") and truthy(v)
        for k, v in fields.items()))


def _closed(finding: Any) -> str | None:
    """Why someone already closed the finding, if they did: then it must not start a playbook."""
    if (text_at(finding, "RecordState") or "").upper() == "ARCHIVED":
        return "archived in Security Hub (RecordState ARCHIVED)"
    if (text_at(finding, "Workflow", "Status") or "").upper() in {"SUPPRESSED", "RESOLVED"}:
        return f"marked {text_at(finding, 'Workflow', 'Status')} in Security Hub"
    return None


def _asff_types(types: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Each Types entry, plus the GuardDuty type it encodes, both reporting the entry.

    GuardDuty findings reach Security Hub as e.g.
    `TTPs/Initial Access/UnauthorizedAccess:IAMUser-MaliciousIPCaller.Custom` (the
    namespace/category prefix varies); deriving `UnauthorizedAccess:IAMUser/...` lets the
    GuardDuty rules of the mapping select them too.
    """
    pairs: list[tuple[str, str]] = []
    for entry in types:
        pairs.append((entry, entry))
        derived = _guardduty_type(entry)
        if derived:
            pairs.append((derived, entry))
    return tuple(pairs)


def _guardduty_type(entry: str) -> str | None:
    """The GuardDuty type an ASFF Types entry encodes, in each spelling GuardDuty uses."""
    match = _ASFF_GUARDDUTY_TYPE.search(entry)
    if match:
        return f"{match['head']}/{match['rest']}"
    match = _ASFF_PURPOSE_IN_CATEGORY.search(entry)
    if match:
        return f"{match['purpose'].replace(' ', '')}:{match['resource']}/{match['rest']}"
    return None


def _asff_severity(finding: Any) -> float | None:
    """Normalized (0-100) when present, else the label's floor: on GuardDuty's 0-10 scale."""
    normalized = number(value_at(finding, "Severity", "Normalized"))
    if normalized is not None:
        return normalized / 10
    label = text_at(finding, "Severity", "Label")
    return _ASFF_LABELS.get(label.upper()) if label else None
