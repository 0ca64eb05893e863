"""Turn a GuardDuty, AWS Health or Security Hub finding into the key to respond to.

`respond finding` and the Lambda handler are fed whatever AWS emits: an EventBridge
event, `aws guardduty get-findings` output (PascalCase from boto3, camelCase from the raw
API), an AWS Health risk event, or Security Hub ASFF findings. One parser reads all of
them into the same `Trigger`, so the runner never needs to know where a finding came
from. Everything that must not start a playbook is refused here, before any AWS call,
with a message that tells the on-call engineer what to do instead: sample findings,
archived ones, findings that name no access key, root keys, temporary (ASIA) keys, and
finding types the trigger mapping does not select. Which types start which playbook is
data (`playbooks/triggers.json`, or a mapping file of your own), not code.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from fnmatch import fnmatchcase
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TextIO, TypeAlias

from responder.errors import BadInput, Refused, ResponderError
from responder.guardrails import ROOT_NAMES, check_access_key_id
from responder.playbook import load_yaml

Source = Literal["guardduty", "health", "securityhub"]
RefusalReason = Literal[
    "sample", "archived", "root", "no-access-key", "temporary-key", "not-configured",
    "none-actionable",
]

SHIPPED_PACKAGE = "responder.playbooks"
"""Where playbooks/ is installed (same package responder.playbook reads)."""
DEFAULT_MAPPING = "triggers.json"
"""The shipped mapping. JSON, not YAML: every playbooks/*.yaml is listed as a playbook."""

ASFF_SCHEMA_VERSION = "2018-10-08"
_KEY_TOKEN = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_ASFF_GUARDDUTY_TYPE = re.compile(r"^(?P<head>[A-Za-z0-9]+:[A-Za-z0-9]+)-(?P<rest>.+)$")
"""Security Hub writes GuardDuty's `Purpose:Resource/Family` as `Purpose:Resource-Family`."""
_ROOT = frozenset(name.lower() for name in ROOT_NAMES if name)
_ASFF_LABELS = {"INFORMATIONAL": 0.0, "LOW": 1.0, "MEDIUM": 4.0, "HIGH": 7.0, "CRITICAL": 9.0}
"""Lower bound of each ASFF severity label, on GuardDuty's 0-10 scale."""
_CONSOLE = {
    "guardduty": "the GuardDuty console",
    "health": "the AWS Health Dashboard",
    "securityhub": "the Security Hub console",
}


@dataclass(frozen=True)
class Trigger:
    """One access key a finding asks us to respond to, and the playbook to run."""

    finding_id: str
    """Source-qualified and stable across re-deliveries: the journal's dedupe key."""
    source: Source
    finding_type: str
    """GuardDuty type, Health eventTypeCode, or the ASFF Types entry that matched."""
    severity: float | None
    """0-10 (Security Hub: Normalized / 10); None for AWS Health."""
    access_key_id: str
    user_name: str | None
    account_id: str | None
    region: str | None
    playbook: str
    sample: bool


class FindingRefused(Refused):
    """A finding that must not start a playbook (exit 3); says what to do instead."""

    def __init__(
        self,
        message: str,
        *,
        reason: RefusalReason,
        finding_id: str | None = None,
        access_key_id: str | None = None,
        problems: Sequence[ResponderError] = (),
    ) -> None:
        super().__init__(message)
        self.reason: RefusalReason = reason
        self.finding_id = finding_id
        self.access_key_id = access_key_id
        self.problems = tuple(problems)
        """For `none-actionable`: the refusal or error of each finding in the document."""


# --- the trigger mapping ---------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    match: str
    """Shell-style pattern (fnmatch, case-sensitive) on the finding type."""
    playbook: str
    min_severity: float | None = None
    """Overrides the mapping's min_severity for this rule."""


@dataclass(frozen=True)
class TriggerMapping:
    """Which finding types start which playbook; the first matching rule decides."""

    rules: tuple[Rule, ...]
    min_severity: float = 0.0
    origin: str = "<mapping>"
    description: str = ""

    def rule_for(self, types: Iterable[tuple[str, str]]) -> tuple[Rule, str] | None:
        """The first rule matching any candidate, with the type to report for it.

        `types` pairs each candidate string to match with the type to report (they
        differ for ASFF, where GuardDuty's own type is derived from the Types entry).
        """
        candidates = list(types)
        for rule in self.rules:
            for candidate, reported in candidates:
                if fnmatchcase(candidate, rule.match):
                    return rule, reported
        return None

    def threshold(self, rule: Rule) -> float:
        return self.min_severity if rule.min_severity is None else rule.min_severity


Mapping: TypeAlias = TriggerMapping
"""The name the interface uses for the trigger mapping."""

_MAPPING_FIELDS = frozenset({"description", "min_severity", "rules"})
_RULE_FIELDS = frozenset({"match", "playbook", "min_severity"})


def _severity_setting(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
        raise BadInput(f"{where}: min_severity must be a number from 0 to 10, got {value!r}")
    return float(value)


def _text_setting(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where}: {name} must be a non-empty string, got {value!r}")
    return value.strip()


def _mapping_from(data: Any, origin: str) -> TriggerMapping:
    where = f"trigger mapping {origin}"
    if not isinstance(data, dict):
        raise BadInput(f"{where}: must be a mapping with `rules` (and optionally "
                       f"`min_severity`), got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - _MAPPING_FIELDS)
    if unknown:
        raise BadInput(f"{where}: unknown field {', '.join(map(repr, unknown))}; "
                       f"known: {', '.join(sorted(_MAPPING_FIELDS))}")
    if "rules" not in data or not isinstance(data["rules"], list):
        raise BadInput(f"{where}: `rules` is required and must be a list of "
                       "{match, playbook[, min_severity]}")
    min_severity = _severity_setting(data.get("min_severity", 0.0), where)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise BadInput(f"{where}: description must be a string")
    rules = []
    for index, item in enumerate(data["rules"]):
        at = f"{where}: rules[{index}]"
        if not isinstance(item, dict):
            raise BadInput(f"{at}: must be a mapping {{match, playbook[, min_severity]}}")
        unknown = sorted(set(map(str, item)) - _RULE_FIELDS)
        if unknown:
            raise BadInput(f"{at}: unknown field {', '.join(map(repr, unknown))}; "
                           f"known: {', '.join(sorted(_RULE_FIELDS))}")
        for name in ("match", "playbook"):
            if name not in item:
                raise BadInput(f"{at}: `{name}` is required")
        rules.append(Rule(
            match=_text_setting(item["match"], at, "match"),
            playbook=_text_setting(item["playbook"], at, "playbook"),
            min_severity=(None if item.get("min_severity") is None
                          else _severity_setting(item["min_severity"], at)),
        ))
    return TriggerMapping(tuple(rules), min_severity, origin, description)


def _parse_mapping(text: str, origin: str) -> TriggerMapping:
    return _mapping_from(load_yaml(text, f"trigger mapping {origin}", BadInput), origin)


@cache
def _shipped_mapping() -> TriggerMapping:
    text = (resources.files(SHIPPED_PACKAGE) / DEFAULT_MAPPING).read_text("utf-8")
    return _parse_mapping(text, f"playbooks/{DEFAULT_MAPPING}")


def load_mapping(path: str | None = None) -> TriggerMapping:
    """The mapping in `path` (YAML or JSON), or the shipped default; validated."""
    if path is None:
        return _shipped_mapping()
    return _parse_mapping(_read_text(path, "trigger mapping"), path)


def _read_text(path: str, what: str) -> str:
    """A UTF-8 file (BOM tolerated); unreadable or undecodable is BadInput naming it."""
    try:
        return Path(path).read_text("utf-8-sig")
    except OSError as exc:
        raise BadInput(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{what} {path}: not UTF-8 text") from exc


# --- reading the JSON ------------------------------------------------------------------

def _get(obj: Any, *path: str) -> Any:
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


def _str(obj: Any, *path: str) -> str | None:
    value = _get(obj, *path)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _number(value: Any) -> float | None:
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


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


# --- one finding, whatever its source --------------------------------------------------

@dataclass(frozen=True)
class _Candidate:
    """What a finding says about one key, before the guardrails and the mapping."""

    finding_id: str
    source: Source
    label: str
    """How messages name the finding, e.g. `GuardDuty finding 5ab…`."""
    finding_type: str
    types: tuple[tuple[str, str], ...]
    """(string to match, type to report) pairs for the mapping."""
    severity: float | None
    access_key_id: str | None
    user_name: str | None
    user_type: str | None
    principal_id: str | None
    account_id: str | None
    region: str | None
    sample: bool = False
    product: str = "GuardDuty"
    closed: str | None = None
    """Why the finding is no longer open (archived, suppressed), if it is not."""
    resources: tuple[str, ...] = field(default_factory=tuple)
    """What the finding names instead of a key, for the no-key message."""


def _guardduty(finding: Any, event: Any) -> list[_Candidate]:
    raw_id = _str(finding, "id")
    finding_type = _str(finding, "type")
    if raw_id is None or finding_type is None:
        raise BadInput("GuardDuty finding without `id` or `type`: not a finding GuardDuty "
                       "emits; pass the EventBridge event or GetFindings output unchanged")
    details = _get(finding, "resource", "accessKeyDetails")
    info = _get(finding, "service", "additionalInfo")
    sample = _truthy(_get(info, "sample"))
    value = _get(info, "value")  # GetFindings: additionalInfo is {value: "<json>", type}
    if not sample and isinstance(value, str):
        try:
            sample = _truthy(_get(json.loads(value), "sample"))
        except ValueError:
            sample = False
    resource_type = _str(finding, "resource", "resourceType")
    described = [f"resource type {resource_type}"] if resource_type else []
    instance = _str(finding, "resource", "instanceDetails", "instanceId")
    if instance:
        described.append(f"instance {instance}")
    return [_Candidate(
        finding_id=f"guardduty:{raw_id}",
        source="guardduty",
        label=f"GuardDuty finding {raw_id}",
        finding_type=finding_type,
        types=((finding_type, finding_type),),
        severity=_number(_get(finding, "severity")),
        access_key_id=_str(details, "accessKeyId"),
        user_name=_str(details, "userName"),
        user_type=_str(details, "userType"),
        principal_id=_str(details, "principalId"),
        account_id=_str(finding, "accountId") or _str(event, "account"),
        region=_str(finding, "region") or _str(event, "region"),
        sample=sample,
        closed="archived in GuardDuty" if _truthy(_get(finding, "service", "archived"))
        else None,
        resources=tuple(described),
    )]


def _health(detail: Any, event: Any) -> list[_Candidate]:
    arn = _str(detail, "eventArn")
    code = _str(detail, "eventTypeCode")
    if arn is None or code is None:
        raise BadInput("AWS Health event without `eventArn` or `eventTypeCode`: pass the "
                       "EventBridge event unchanged")
    entities = _list(_get(detail, "affectedEntities"))
    values = [_str(e, "entityValue") for e in entities]
    keys = _key_tokens(v for v in values if v)
    if not keys:  # some events name the key only in the envelope's `resources`
        keys = _key_tokens(r for r in _list(_get(event, "resources")) if isinstance(r, str))
    account = (_str(detail, "affectedAccount") or _str(event, "account")
               or next((a for a in (_str(e, "awsAccountId") for e in entities) if a), None))
    base = _Candidate(
        finding_id=f"health:{arn}",
        source="health",
        label=f"AWS Health event {arn}",
        finding_type=code,
        types=((code, code),),
        severity=None,
        access_key_id=None,
        user_name=None,
        user_type=None,
        principal_id=None,
        account_id=account,
        region=_str(event, "region") or _str(detail, "eventRegion"),
        product="AWS Health",
        resources=tuple(f"entity {v}" for v in values if v)[:3],
    )
    if not keys:
        return [base]
    # An event may name several keys; each gets its own stable id for the journal.
    return [_replace(base, finding_id=f"health:{arn}#{key}", access_key_id=key)
            for key in keys]


def _key_tokens(texts: Iterable[str]) -> list[str]:
    found: list[str] = []
    for text in texts:
        for token in _KEY_TOKEN.findall(text):
            if token not in found:
                found.append(token)
    return found


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
        match = _ASFF_GUARDDUTY_TYPE.match(entry.rsplit("/", 1)[-1])
        if match:
            pairs.append((f"{match['head']}/{match['rest']}", entry))
    return tuple(pairs)


def _asff_severity(finding: Any) -> float | None:
    normalized = _number(_get(finding, "Severity", "Normalized"))
    if normalized is not None:
        return normalized / 10
    label = _str(finding, "Severity", "Label")
    return _ASFF_LABELS.get(label.upper()) if label else None


def _securityhub(finding: Any, event: Any) -> list[_Candidate]:
    raw_id = _str(finding, "Id")
    if raw_id is None:
        raise BadInput("Security Hub finding without `Id`: not an ASFF finding; pass the "
                       "EventBridge event or GetFindings output unchanged")
    types = [t.strip() for t in _list(_get(finding, "Types")) if isinstance(t, str) and t.strip()]
    product_arn = _str(finding, "ProductArn") or ""
    product = _str(finding, "ProductName") or product_arn.rsplit("/", 1)[-1] or "Security Hub"
    if product.lower() == "guardduty":
        product = "GuardDuty"
    fields_ = _get(finding, "ProductFields")
    sample = _truthy(_get(finding, "Sample")) or (isinstance(fields_, dict) and any(
        str(k).lower().endswith("additionalinfo/sample") and _truthy(v)
        for k, v in fields_.items()))
    closed = None
    if (_str(finding, "RecordState") or "").upper() == "ARCHIVED":
        closed = "archived in Security Hub (RecordState ARCHIVED)"
    elif (_str(finding, "Workflow", "Status") or "").upper() in {"SUPPRESSED", "RESOLVED"}:
        closed = f"marked {_str(finding, 'Workflow', 'Status')} in Security Hub"
    resources_ = [r for r in _list(_get(finding, "Resources")) if isinstance(r, dict)]
    key_resources = [r for r in resources_ if _str(r, "Type") == "AwsIamAccessKey"]
    base = _Candidate(
        finding_id=f"securityhub:{raw_id}",
        source="securityhub",
        label=f"{product} finding {raw_id}",
        finding_type=types[0] if types else "(no Types)",
        types=_asff_types(types),
        severity=_asff_severity(finding),
        access_key_id=None,
        user_name=None,
        user_type=None,
        principal_id=None,
        account_id=_str(finding, "AwsAccountId") or _str(event, "account"),
        region=_str(finding, "Region") or _str(event, "region"),
        sample=sample,
        product=product,
        closed=closed,
        resources=tuple(f"{_str(r, 'Type')} {_str(r, 'Id')}" for r in resources_)[:3],
    )
    per_key: dict[str, _Candidate] = {}
    principal = base
    for resource in key_resources:
        details = _get(resource, "Details", "AwsIamAccessKey")
        principal = _replace(
            base,
            user_name=_str(details, "PrincipalName") or _str(details, "UserName"),
            user_type=_str(details, "PrincipalType"),
            principal_id=_str(details, "PrincipalId"),
            account_id=base.account_id or _str(details, "AccountId"),
        )
        explicit = _str(details, "AccessKeyId")
        keys = [explicit] if explicit else _key_tokens([_str(resource, "Id") or ""])
        for key in keys:
            per_key.setdefault(key, _replace(principal, access_key_id=key))
    if not per_key:
        return [principal]
    if len(per_key) == 1:
        return list(per_key.values())
    return [_replace(c, finding_id=f"{c.finding_id}#{key}") for key, c in per_key.items()]


# --- deciding --------------------------------------------------------------------------

_PRINCIPAL_KINDS = {"assumedrole": "role", "iamuser": "IAM user", "federateduser": "federated user"}


def _principal(c: _Candidate) -> str:
    kind = _PRINCIPAL_KINDS.get((c.user_type or "").lower(), c.user_type)
    name = " ".join(p for p in (kind, c.user_name) if p)
    if c.principal_id:
        name = f"{name} ({c.principal_id})" if name else c.principal_id
    return name


def _decide(c: _Candidate, mapping: TriggerMapping) -> Trigger:
    key = c.access_key_id
    by_hand = f"`respond compromised {key}`" if key else "`respond compromised ACCESS_KEY_ID`"
    if c.sample:
        raise FindingRefused(
            f"{c.label} is a {c.product} sample finding, not a real incident: nothing to "
            "contain and nothing was changed. To rehearse a response, run `respond drill`",
            reason="sample", finding_id=c.finding_id, access_key_id=key)
    if c.closed:
        raise FindingRefused(
            f"{c.label} is {c.closed}, so someone already closed it; nothing was changed. "
            f"If the key is still a concern, reopen the finding or run {by_hand}",
            reason="archived", finding_id=c.finding_id, access_key_id=key)
    is_root = ((c.user_type or "").lower() == "root"
               or (c.user_name or "").lower() in _ROOT)
    if is_root:
        what = f"the root user's access key {key}" if key else "the account's root user"
        raise FindingRefused(
            f"{c.label} concerns {what}"
            f"{f' in account {c.account_id}' if c.account_id else ''}. Root credentials "
            "cannot be contained safely through IAM APIs: sign in to the console as the "
            "root user, delete the root access key under Security credentials, rotate the "
            "root password and MFA, and review CloudTrail for what the credentials did",
            reason="root", finding_id=c.finding_id, access_key_id=key)
    if key is None:
        named = f" ({', '.join(c.resources)})" if c.resources else ""
        who = _principal(c)
        raise FindingRefused(
            f"{c.label} ({c.finding_type}) names no access key{named}; investigate the "
            f"principal{f' {who}' if who else ''} or resource it names in "
            f"{_CONSOLE[c.source]}. `respond` contains access keys only: if you find "
            "one, run `respond compromised ACCESS_KEY_ID`",
            reason="no-access-key", finding_id=c.finding_id)
    if key.startswith("ASIA"):
        who = _principal(c)
        minted = (f"respond to the principal that minted it, {who}: if it is a role, "
                  "revoke its active sessions (IAM console, Roles, Revoke active sessions) "
                  "and find how its credentials left" if who else
                  "find the role or user that minted it (`aws cloudtrail lookup-events "
                  f"--lookup-attributes AttributeKey=AccessKeyId,AttributeValue={key}`, "
                  "sessionIssuer) and revoke that role's active sessions")
        raise FindingRefused(
            f"{c.label}: {key} is a temporary (STS) key; it cannot be disabled and expires "
            f"on its own. Instead, {minted}; if an IAM user minted it with GetSessionToken, "
            "run `respond compromised` on that user's AKIA key",
            reason="temporary-key", finding_id=c.finding_id, access_key_id=key)
    try:
        key = check_access_key_id(key)
    except BadInput as exc:
        raise BadInput(f"{c.label}: {exc}") from exc
    chosen = mapping.rule_for(c.types)
    if chosen is None:
        raise FindingRefused(
            f"{c.label}: type {c.finding_type!r} is not configured to trigger a playbook: "
            f"add a rule for it to the trigger mapping ({mapping.origin}), or run {by_hand} "
            "to respond by hand",
            reason="not-configured", finding_id=c.finding_id, access_key_id=key)
    rule, reported = chosen
    floor = mapping.threshold(rule)
    if c.severity is not None and c.severity < floor:
        raise FindingRefused(
            f"{c.label}: severity {c.severity:g} of {reported!r} is below min_severity "
            f"{floor:g} (rule {rule.match!r} in {mapping.origin}), so it is not configured "
            f"to trigger a playbook: lower min_severity there to act on such findings, or "
            f"run {by_hand} to respond by hand",
            reason="not-configured", finding_id=c.finding_id, access_key_id=key)
    return Trigger(
        finding_id=c.finding_id, source=c.source, finding_type=reported,
        severity=c.severity, access_key_id=key, user_name=c.user_name,
        account_id=c.account_id, region=c.region, playbook=rule.playbook, sample=c.sample,
    )


# --- recognising the document ----------------------------------------------------------

_Unit: TypeAlias = tuple[Source, Any, Any]
"""(source, finding, enclosing EventBridge event or None)."""

_HELP = ("`respond finding` takes an EventBridge event from aws.guardduty, aws.health or "
         "aws.securityhub, GuardDuty or Security Hub GetFindings output, or one finding; "
         "for a key you already know, run `respond compromised ACCESS_KEY_ID`")


def _unrecognised(origin: str, what: str) -> BadInput:
    return BadInput(f"{origin}: {what}; not a GuardDuty, AWS Health or Security Hub "
                    f"finding. {_HELP}")


def _bare(obj: Any, origin: str) -> _Unit:
    if isinstance(obj, dict):
        if (_str(obj, "SchemaVersion") == ASFF_SCHEMA_VERSION
                or (_str(obj, "ProductArn") and isinstance(_get(obj, "Resources"), list))):
            return ("securityhub", obj, None)
        if _str(obj, "type") and isinstance(_get(obj, "resource"), dict) and _str(obj, "id"):
            return ("guardduty", obj, None)
        if _str(obj, "eventTypeCode") and _str(obj, "eventArn"):
            return ("health", obj, None)
        shown = ", ".join(sorted(map(str, obj))[:6])
        raise _unrecognised(origin, f"an object with fields {shown or '(none)'}")
    raise _unrecognised(origin, f"a JSON {type(obj).__name__}")


def _units(document: Any, origin: str) -> list[_Unit]:
    if isinstance(document, list):
        if not document:
            raise BadInput(f"{origin}: an empty list, no finding in it")
        return [_bare(item, origin) for item in document]
    source = _str(document, "source")
    if source is not None:
        detail = _get(document, "detail")
        if source in {"aws.guardduty", "aws.health", "aws.securityhub"} and not isinstance(
                detail, dict):
            raise BadInput(f"{origin}: an event from {source!r} without a `detail` object")
        if source == "aws.guardduty":
            return [("guardduty", detail, document)]
        if source == "aws.health":
            return [("health", detail, document)]
        if source == "aws.securityhub":
            findings = _list(_get(detail, "findings"))
            if not findings:
                raise BadInput(f"{origin}: Security Hub event with no findings in "
                               "detail.findings")
            return [_bare_asff(f, origin, document) for f in findings]
        detail_type = _str(document, "detail-type")
        raise _unrecognised(origin, f"an event from {source!r}"
                            f"{f' ({detail_type})' if detail_type else ''}")
    findings = _get(document, "findings")
    if isinstance(findings, list):
        if not findings:
            raise BadInput(f"{origin}: GetFindings output with an empty Findings list")
        return [_bare(item, origin) for item in findings]
    return [_bare(document, origin)]


def _bare_asff(obj: Any, origin: str, event: Any) -> _Unit:
    if not isinstance(obj, dict):
        raise _unrecognised(origin, "a Security Hub event whose findings are not objects")
    return ("securityhub", obj, event)


_EXTRACT = {"guardduty": _guardduty, "health": _health, "securityhub": _securityhub}


def parse(document: Any, *, mapping: TriggerMapping | None = None,
          origin: str = "finding") -> list[Trigger]:
    """Every actionable key in `document`, in document order, one per finding id.

    Raises BadInput when the document is not a finding AWS emits, FindingRefused (a
    Refused, exit 3) when no finding in it may start a playbook. A document with several
    findings returns the actionable ones and refuses only if there are none.
    """
    rules = mapping if mapping is not None else load_mapping()
    triggers: dict[str, Trigger] = {}
    problems: list[ResponderError] = []
    for source, finding, event in _units(document, origin):
        try:
            candidates = _EXTRACT[source](finding, event)
        except BadInput as exc:
            problems.append(BadInput(f"{origin}: {exc}"))
            continue
        for candidate in candidates:
            try:
                trigger = _decide(candidate, rules)
            except FindingRefused as exc:
                problems.append(exc)
                continue
            except BadInput as exc:
                problems.append(BadInput(f"{origin}: {exc}"))
                continue
            triggers.setdefault(trigger.finding_id, trigger)
    if triggers:
        return list(triggers.values())
    if len(problems) == 1:
        raise problems[0]
    summary = "; ".join(str(p) for p in problems)
    message = f"{origin}: none of the {len(problems)} findings may start a playbook: {summary}"
    if any(isinstance(p, Refused) for p in problems):
        raise FindingRefused(message, reason="none-actionable", problems=problems)
    raise BadInput(message)


def load(path_or_dash: str, stdin: TextIO | None = None, *,
         mapping: TriggerMapping | None = None) -> list[Trigger]:
    """Read a finding document from a file, or from `stdin` (default sys.stdin) for '-'."""
    if path_or_dash == "-":
        name = "<stdin>"
        try:
            text = (stdin if stdin is not None else sys.stdin).read()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot read the finding from standard input: {exc}") from exc
    else:
        name = path_or_dash
        text = _read_text(path_or_dash, "finding file")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise BadInput(f"{name}: empty; expected a finding as JSON")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                       f"{exc.msg}") from exc
    except RecursionError as exc:
        raise BadInput(f"{name}: JSON nested too deeply to be a finding") from exc
    return parse(document, mapping=mapping, origin=name)
