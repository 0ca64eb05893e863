"""One `respond audit`: the account (or, with --org, every active account of the
organization) audited, the findings sent to Security Hub when asked, and whether the run
fails a pipeline's --fail-on gate.

The CLI parses and prints; this module decides. A single-account audit is an
organization of one, so every output (human, json, md, csv, asff, sarif) and the exit
code read the same `AuditRun` whichever was asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from responder.audit import formats, org, security_hub
from responder.audit.credential_report import SEVERITY, Settings, audited
from responder.aws import Api, ApiCall
from responder.errors import BadInput

PERMISSIONS = ("sts:GetCallerIdentity",)
ORG_PERMISSIONS = ("organizations:ListAccounts", "organizations:DescribeOrganization",
                   "sts:AssumeRole")


@dataclass(frozen=True)
class Caller:
    """Where the audit runs from: its findings' account, partition and region."""

    account_id: str
    partition: str
    region: str


@dataclass(frozen=True)
class AuditRun:
    caller: Caller
    settings: Settings
    results: tuple[org.AccountAudit, ...]
    imported: Mapping[str, security_hub.Imported | str]
    """Per account audited, with --to-security-hub: what was imported, or why not."""

    @property
    def unreachable(self) -> tuple[org.AccountAudit, ...]:
        return tuple(r for r in self.results if r.error is not None)

    def failing(self, level: str | None) -> int:
        """Findings at or above `level` (critical, high, medium, low); 0 without one."""
        if level is None:
            return 0
        return sum(1 for r in self.results for f in r.findings
                   if SEVERITY[f.severity] <= SEVERITY[level])


def caller_of(api: Api) -> Caller:
    """The account and partition these credentials are in (GetCallerIdentity)."""
    who = api.call(ApiCall("sts", "GetCallerIdentity", {}))
    partition = str(who.get("Arn", "arn:aws:")).split(":")[1] or "aws"
    return Caller(str(who["Account"]), partition, api.session.region_name or "us-east-1")


@dataclass(frozen=True)
class Asked:
    """What the command line asked of the run."""

    settings: Settings
    organization: bool = False
    role_template: str | None = None
    workers: int = org.WORKERS
    to_security_hub: bool = False


def run(api: Api, now: datetime, asked: Asked, *, seen_dir: Path,
        progress: Callable[[int, int, org.AccountAudit], None] | None = None) -> AuditRun:
    caller = caller_of(api)
    if asked.organization:
        if not asked.role_template:
            raise BadInput("audit --org reaches each account through the responder's role: "
                           "set RESPONDER_ROLE_ARN_TEMPLATE, e.g. "
                           "arn:aws:iam::{account_id}:role/KeyResponder")
        api_for = org.through_role(api, asked.role_template, home=caller.account_id)
        results = org.audit_org(org.members(api), api_for, now, asked.settings,
                                workers=asked.workers, progress=progress, seen_dir=seen_dir)
    else:
        api_for = {caller.account_id: api}.__getitem__
        done = audited(api, now, asked.settings, seen_dir.parent / "seen.json")
        results = (org.AccountAudit(caller.account_id, "", tuple(done.findings), None, 0.0,
                                    done.gap),)
    imported = _imported(results, api_for, caller, now) if asked.to_security_hub else {}
    return AuditRun(caller, asked.settings, results, imported)


def _imported(results: Sequence[org.AccountAudit], api_for: Callable[[str], Api],
              caller: Caller, now: datetime) -> dict[str, security_hub.Imported | str]:
    """Each audited account's findings into its own Security Hub (a finding of the
    account's default product may only be imported by that account; the delegated
    administrator sees them all through its aggregation)."""
    done: dict[str, security_hub.Imported | str] = {}
    for result in results:
        if result.error is not None:
            continue
        account_api = api_for(result.account_id)
        try:
            done[result.account_id] = security_hub.to_security_hub(
                account_api, formats.asff(result.findings, account_id=result.account_id,
                                          region=caller.region, partition=caller.partition,
                                          now=now),
                account_id=result.account_id, region=caller.region,
                partition=caller.partition, now=now)
        except BadInput as exc:  # not enabled there, or refused: that account's
            done[result.account_id] = str(exc)
    return done
