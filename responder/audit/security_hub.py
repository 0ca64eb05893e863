"""`respond audit --to-security-hub`: the audit's ASFF findings imported into the account's
Security Hub, updated in place on every run, and archived once fixed.

How Security Hub upserts (User Guide, "BatchImportFindings for finding providers",
"Determining whether to create or update a finding"): a finding whose Id matches an
existing one *updates* it, but only if its UpdatedAt is later than the stored
UpdatedAt; an equal or earlier UpdatedAt is silently ignored. So each run sends the
same Ids (formats.finding_id) with UpdatedAt = now, moved past the stored value when a
clock says otherwise, and with the stored CreatedAt, so a finding keeps the date it was
first reported.

What a provider may change is limited: after creation BatchImportFindings ignores
Note, UserDefinedFields, VerificationState and Workflow (an analyst's, through
BatchUpdateFindings). A fixed credential therefore cannot be marked Workflow RESOLVED
from here; it is re-imported with RecordState ARCHIVED (which a provider may set) and
Compliance PASSED. Should the problem come back, the ACTIVE re-import makes Security Hub
reset a RESOLVED or NOTIFIED workflow to NEW, as its docs describe.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

from responder.audit.formats import default_product_arn, id_prefix
from responder.aws import Api, ApiCall
from responder.context import iso, parse_iso
from responder.errors import AGAIN, AwsCallFailed, BadInput

PERMISSIONS = ("securityhub:BatchImportFindings", "securityhub:GetFindings")
BATCH: Final = 100
"""BatchImportFindings takes at most 100 findings a call (and 6 MB; ours are ~1.5 KB)."""
PAGE: Final = 100
"""GetFindings' largest MaxResults."""
NOT_ENABLED: Final = frozenset({"InvalidAccessException", "InvalidAccess"})
"""The call's error when the account has no Security Hub in the region, and the
FailedFindings ErrorCode the docs give for the same cause."""
_KEPT_WHEN_ARCHIVING: Final = (
    "SchemaVersion", "Id", "ProductArn", "GeneratorId", "AwsAccountId", "CreatedAt",
    "Title", "Description", "Remediation", "Resources", "FindingProviderFields")
"""What an archiving re-import repeats of the stored finding: the required fields and
the provider's own. Not what Security Hub adds (ProductName, Region, ProcessedAt,
Workflow...), which a provider cannot set."""


@dataclass(frozen=True)
class Imported:
    """What one import did, for the CLI to say."""

    imported: int
    archived: int
    """Findings of an earlier run, fixed since, now RecordState ARCHIVED."""
    failed: tuple[tuple[str, str, str], ...]
    """(Id, ErrorCode, ErrorMessage) from FailedFindings."""


def to_security_hub(api: Api, findings: Sequence[dict[str, Any]], *, account_id: str,
                    region: str, partition: str, now: datetime,
                    product_arn: str | None = None) -> Imported:
    """Import this run's findings and archive the earlier ones no longer found.

    The earlier ones are read first (GetFindings: ACTIVE, this account, our product,
    our Id prefix), which is also what an account without Security Hub fails on, before
    anything was written: that is one clear BadInput. A failure after some batches went
    in is raised as it is: running the same command again is safe (same Ids, later
    UpdatedAt), and AWS has already changed.
    """
    product = product_arn or (str(findings[0]["ProductArn"]) if findings else
                              default_product_arn(account_id, region, partition))
    try:
        earlier = _active_findings(api, account_id, product, region)
    except AwsCallFailed as exc:
        raise _refusal(exc, account_id, region) from exc
    current = [_update_of(f, earlier.get(str(f["Id"])), now) for f in findings]
    ids = {str(f["Id"]) for f in findings}
    fixed = [_archiving(old, now) for key, old in sorted(earlier.items()) if key not in ids]
    sent = [*current, *fixed]
    failed: list[tuple[str, str, str]] = []
    succeeded = 0
    for batch in _batches(sent, BATCH):
        call = ApiCall("securityhub", "BatchImportFindings", mutating=True,
                       note=f"{len(batch)} findings")
        try:
            # The findings go as unjournaled parameters: a batch is up to 100 findings
            # of ~1.5 KB, too much for a call record, and all of it is in the report.
            response = api.call(call, region=region, unjournaled=partial(dict, Findings=batch))
        except AwsCallFailed as exc:
            if succeeded:
                raise
            raise _refusal(exc, account_id, region) from exc
        succeeded += int(response.get("SuccessCount", 0))
        failed += [(str(f.get("Id", "")), str(f.get("ErrorCode", "")),
                    str(f.get("ErrorMessage", "")))
                   for f in response.get("FailedFindings", [])]
    if sent and not succeeded and failed and all(code in NOT_ENABLED for _, code, _ in failed):
        raise BadInput(_not_enabled(account_id, region, failed[0][2]))
    lost = {f[0] for f in failed}
    return Imported(imported=sum(1 for f in current if f["Id"] not in lost),
                    archived=sum(1 for f in fixed if f["Id"] not in lost),
                    failed=tuple(failed))


def _refusal(exc: AwsCallFailed, account_id: str, region: str) -> BadInput:
    if exc.code in NOT_ENABLED:
        return BadInput(_not_enabled(account_id, region, exc.aws_message))
    return BadInput(f"audit --to-security-hub: {exc.explain(AGAIN)}")


def _not_enabled(account_id: str, region: str, said: str) -> str:
    return (f"Security Hub is not enabled in account {account_id}, region {region} "
            f"({said}): enable it (aws securityhub enable-security-hub --region "
            f"{region}), or drop --to-security-hub")


def _active_findings(api: Api, account_id: str, product: str, region: str
                     ) -> dict[str, dict[str, Any]]:
    """This tool's ACTIVE findings in the account, by Id, every page.

    The same conditions are checked again on what comes back: it costs nothing, and a
    filter AWS did not apply (or an emulator that ignores Filters) must not make this
    archive another product's finding.
    """
    prefix = id_prefix(account_id)
    filters = {
        "ProductArn": [{"Value": product, "Comparison": "EQUALS"}],
        "AwsAccountId": [{"Value": account_id, "Comparison": "EQUALS"}],
        "Id": [{"Value": prefix, "Comparison": "PREFIX"}],
        "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
    }
    found: dict[str, dict[str, Any]] = {}
    for page in api.pages(ApiCall("securityhub", "GetFindings", {
            "Filters": filters, "MaxResults": PAGE}, counts_only=True), region=region):
        for f in page.get("Findings", []):
            if (str(f.get("Id", "")).startswith(prefix) and f.get("ProductArn") == product
                    and f.get("AwsAccountId") == account_id
                    and f.get("RecordState", "ACTIVE") == "ACTIVE"):
                found[str(f["Id"])] = f
    return found


def _after(stored: Any, now: datetime) -> str:
    """UpdatedAt for an update: `now`, or just past the stored value when that is not
    earlier (a skewed clock, two runs in one millisecond): Security Hub ignores an
    update that is not later than what it has."""
    before = parse_iso(stored) if isinstance(stored, str) else None
    if before is not None and before >= now:
        return str(iso(before + timedelta(milliseconds=1)))
    return str(iso(now))


def _update_of(finding: Mapping[str, Any], stored: Mapping[str, Any] | None,
               now: datetime) -> dict[str, Any]:
    """This run's finding as Security Hub should get it: Severity and Types only in
    FindingProviderFields (the docs' preferred form for a provider), and, as an update
    of a stored finding, with its first CreatedAt and a later UpdatedAt."""
    out = dict(finding)
    if "FindingProviderFields" in out:
        out.pop("Severity", None)
        out.pop("Types", None)
    if stored is not None:
        out["CreatedAt"] = stored.get("CreatedAt") or out["CreatedAt"]
        out["UpdatedAt"] = _after(stored.get("UpdatedAt"), now)
    return out


def _archiving(stored: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A stored finding, fixed since: the same record, ARCHIVED, compliance PASSED."""
    out = {k: stored[k] for k in _KEPT_WHEN_ARCHIVING if k in stored}
    if "FindingProviderFields" not in out and isinstance(stored.get("Severity"), Mapping):
        severity = {k: v for k, v in stored["Severity"].items() if k in {"Label", "Original"}}
        out["FindingProviderFields"] = {"Severity": severity,
                                        **({"Types": stored["Types"]} if "Types" in stored
                                           else {})}
    out.update(UpdatedAt=_after(stored.get("UpdatedAt"), now), RecordState="ARCHIVED",
               Compliance={"Status": "PASSED"})
    return out


def _batches(items: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
