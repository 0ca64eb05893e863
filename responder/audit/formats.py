"""The audit's findings as AWS Security Finding Format (ASFF) and as SARIF 2.1.0.

Both are for other tools: ASFF for Security Hub (security_hub.py imports it), SARIF for
code-scanning dashboards that already gather a team's findings. Neither adds anything
the audit did not find, and neither can carry a secret: a `Finding` holds key ids, never
secret keys, and only the fields named below are copied out of it.

Each credential has one identifier that stays the same from run to run (`finding_id`),
so Security Hub updates a finding instead of adding another, and SARIF viewers can
match a result with the one of the last run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from responder.audit.credential_report import ROOT, SEVERITY, Finding
from responder.context import iso
from responder.findings.securityhub import ASFF_SCHEMA_VERSION

TOOL: Final = "aws-key-responder"
SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
ASFF_TYPES: Final = ("Software and Configuration Checks/AWS Security Best Practices",)
GENERATOR_PREFIX: Final = f"{TOOL}/audit/"
ELLIPSIS: Final = "…"

TITLE_CHARS: Final = 256
DESCRIPTION_CHARS: Final = 1024
RECOMMENDATION_CHARS: Final = 512
"""ASFF's limits (AwsSecurityFinding.Title, .Description, Recommendation.Text): a longer
value fails the whole finding in BatchImportFindings, so it is cut here instead."""

_LABELS: Final = {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "LOW"}
_LEVELS: Final = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}

RULES: Final[tuple[tuple[str, str, str, str], ...]] = (
    # (rule id, text that marks the problem, short description, help)
    ("root-access-keys", "root user has", "The root user has active access keys",
     "Root keys cannot be limited by any policy. Delete them and use roles instead."),
    ("console-without-mfa", "without MFA", "Console access without MFA",
     "A password alone is one phishing email away: enable MFA, or remove the password."),
    ("key-not-rotated", "not rotated", "Access key not rotated within the allowed age",
     "An old key has had longer to leak: rotate it (`respond rotate KEY`)."),
    ("key-never-used", "never used", "Access key never used",
     "A key nobody uses is risk without benefit: deactivate it, then delete it."),
    ("key-unused", "unused for", "Access key unused for longer than allowed",
     "A key nobody uses is risk without benefit: deactivate it, then delete it."),
    ("key-new-service", "service never seen", "Access key used from a new service",
     "A key used for something it never did before may be in someone else's hands."),
    ("key-new-region", "region never seen", "Access key used from a new region",
     "A key used from somewhere it never was before may be in someone else's hands."),
    ("two-active-keys", "two active keys", "User has two active access keys",
     "Two live keys double what can leak: finish the rotation and keep one."),
    ("use-a-role", "use an IAM role instead", "Access key used only from inside AWS",
     "Code running on AWS can take a role's short-lived credentials: give it a role (an "
     "instance profile, a Lambda or task role) and retire the key."),
)
OTHER_RULE: Final = ("credential-hygiene", "", "Credential hygiene problem",
                     "See the finding's fix.")


def fit(text: str, limit: int) -> str:
    """`text` within `limit` characters, cut with an ellipsis so a reader sees it was cut."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def finding_id(account_id: str, finding: Finding) -> str:
    """The credential's identifier across runs: account, user and credential *slot*.

    The slot (access_key_1, access_key_2, console, root_keys), not the key id, because
    the slot is all the credential report names: the key id comes from ListAccessKeys,
    which may be denied, and an Id that changed with that call's luck would make a
    second finding for the same key. A key rotated into the same slot is the same
    finding updated (its Resources name the current key), which is what the audit
    means: this user's first key needs attention. A slot that becomes clean is archived
    by security_hub.py, so a rotation that fixed the problem closes the finding.
    """
    return f"{id_prefix(account_id)}{finding.user}/{finding.credential}"


def id_prefix(account_id: str) -> str:
    """What every finding_id of this account starts with: how this tool finds its own
    findings among everything else in the account's Security Hub."""
    return f"{TOOL}/{account_id}/"


def default_product_arn(account_id: str, region: str, partition: str) -> str:
    """The account's own product for custom findings (no partner registration needed)."""
    return f"arn:{partition}:securityhub:{region}:{account_id}:product/{account_id}/default"


def _kind(finding: Finding) -> str:
    if finding.credential.startswith("access_key_"):
        return "access-key"
    return {"console": "console-password", "root_keys": "root-access-keys"}.get(
        finding.credential, finding.credential.replace("_", "-"))


def _label(finding: Finding) -> str:
    if finding.credential.startswith("access_key_"):
        named = f" ({finding.access_key_id})" if finding.access_key_id else ""
        return f"access key {finding.credential[-1]}{named}"
    return {"console": "console password", "root_keys": "access keys"}.get(
        finding.credential, finding.credential)


def _who(finding: Finding) -> str:
    return "Root user" if finding.user == ROOT else f"IAM user {finding.user}"


def _resource(finding: Finding, account_id: str, region: str, partition: str
              ) -> dict[str, Any]:
    """What the finding is about, in the resource types Security Hub knows.

    A key with a known id is an AwsIamAccessKey with GuardDuty's resource Id spelling
    (`AWS::IAM::AccessKey:AKIA...`), which this tool's own Security Hub intake reads
    back. Root keys are the account's (Security Hub's root-key control names the
    AwsAccount). Anything else is the user, by the credential report's own ARN (a user
    with a path, /team/alice, is not user/alice); built from the name only when the
    finding does not carry it.
    """
    where = {"Partition": partition, "Region": region}
    if finding.user == ROOT:
        return {"Type": "AwsAccount", "Id": f"AWS::::Account:{account_id}", **where}
    if finding.access_key_id and finding.credential.startswith("access_key_"):
        details: dict[str, Any] = {
            "AccessKeyId": finding.access_key_id, "AccountId": account_id,
            "PrincipalName": finding.user, "PrincipalType": "IAMUser", "Status": "Active"}
        if finding.details.get("last_rotated"):
            details["CreatedAt"] = str(finding.details["last_rotated"])
        return {"Type": "AwsIamAccessKey", "Id": f"AWS::IAM::AccessKey:{finding.access_key_id}",
                **where, "Details": {"AwsIamAccessKey": details}}
    arn = str(finding.details.get("arn") or
              f"arn:{partition}:iam::{account_id}:user/{finding.user}")
    return {"Type": "AwsIamUser", "Id": arn,
            **where, "Details": {"AwsIamUser": {"UserName": finding.user}}}


def asff(found: Sequence[Finding], *, account_id: str, region: str, partition: str,
         now: datetime, product_arn: str | None = None) -> list[dict[str, Any]]:
    """One ASFF finding per credential, ready for BatchImportFindings.

    CreatedAt is `now`, as ASFF requires of a new finding (CreatedAt = UpdatedAt);
    security_hub.py puts back the first CreatedAt of a finding Security Hub already
    has. Severity and Types are both at the top level (what a reader of this file
    looks at) and in FindingProviderFields, the provider's own copy, which is all that
    security_hub.py sends: AWS's preferred form, which leaves the top-level ones to an
    analyst's BatchUpdateFindings once one has changed them. Workflow NEW is only a new
    finding's start: Security Hub ignores Workflow when a provider updates a finding.
    """
    product = product_arn or default_product_arn(account_id, region, partition)
    stamp = iso(now)
    out: list[dict[str, Any]] = []
    for f in found:
        severity = {"Label": _LABELS[f.severity], "Original": f.severity}
        problems = "; ".join(f.problems) or "needs attention"
        more = f" (+{len(f.problems) - 1} more)" if len(f.problems) > 1 else ""
        first = f.problems[0] if f.problems else "needs attention"
        out.append({
            "SchemaVersion": ASFF_SCHEMA_VERSION,
            "Id": finding_id(account_id, f),
            "ProductArn": product,
            "GeneratorId": GENERATOR_PREFIX + _kind(f),
            "AwsAccountId": account_id,
            "Types": list(ASFF_TYPES),
            "CreatedAt": stamp,
            "UpdatedAt": stamp,
            "Severity": severity,
            "FindingProviderFields": {"Severity": dict(severity), "Types": list(ASFF_TYPES)},
            "Title": fit(f"{_who(f)}, {_label(f)}: {first}{more}", TITLE_CHARS),
            "Description": fit(f"{_who(f)}, {_label(f)}: {problems}.", DESCRIPTION_CHARS),
            "Remediation": {"Recommendation": {"Text": fit(
                f.fix or _rule(first)[3], RECOMMENDATION_CHARS)}},
            "Resources": [_resource(f, account_id, region, partition)],
            "Compliance": {"Status": "FAILED"},
            "Workflow": {"Status": "NEW"},
            "RecordState": "ACTIVE",
        })
    return out


def _rule(problem: str) -> tuple[str, str, str, str]:
    """The rule a problem's text belongs to (the audit words problems, it does not code them)."""
    return next((r for r in RULES if r[1] in problem), OTHER_RULE)


def sarif(found_by_account: Mapping[str, Sequence[Finding]], *, tool_version: str,
          information_uri: str | None = None) -> dict[str, Any]:
    """One SARIF run: a result per problem, located at the credential as a logical
    resource (there is no file to point at). Levels follow the finding's severity, so a
    viewer sorts them as the audit does; partialFingerprints carry `finding_id` so a
    viewer matches this run's results with the last run's. `information_uri`: the
    project's page, when it has one (pyproject names none yet, and a made-up URL in
    every report would be worse than none)."""
    rules = [*RULES, OTHER_RULE]
    index = {r[0]: i for i, r in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for account_id, found in sorted(found_by_account.items()):
        for f in sorted(found, key=lambda f: (SEVERITY[f.severity], f.user, f.credential)):
            name = f"aws:{account_id}:iam:user/{f.user}/{f.credential}"
            for problem in f.problems:
                rule = _rule(problem)[0]
                fix = f" Fix: {f.fix}" if f.fix else ""
                results.append({
                    "ruleId": rule,
                    "ruleIndex": index[rule],
                    "level": _LEVELS[f.severity],
                    "message": {"text": f"{_who(f)}, {_label(f)}: {problem}.{fix}"},
                    "locations": [{"logicalLocations": [
                        {"kind": "resource", "name": f.credential,
                         "fullyQualifiedName": name}]}],
                    "partialFingerprints": {f"{TOOL}/credential/v1":
                                            finding_id(account_id, f)},
                    "properties": {"account": account_id, "user": f.user,
                                   "credential": f.credential, "severity": f.severity,
                                   **({"accessKeyId": f.access_key_id} if f.access_key_id
                                      else {})},
                })
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL, "version": tool_version,
                **({"informationUri": information_uri} if information_uri else {}),
                "rules": [{"id": rid, "shortDescription": {"text": short},
                           "help": {"text": help_text}} for rid, _, short, help_text in rules],
            }},
            "results": results,
        }],
    }
