"""An audit run as the CLI prints it: human, json, md, csv, asff or sarif.

Every form reads the one AuditRun. A single account prints as it always did (its table
has no account column), so scripts written against `respond audit --output csv` keep
working; an organization adds the account to each finding and ranks them all together.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from responder import package_version
from responder.audit import formats, org
from responder.audit.credential_report import render
from responder.audit.run import AuditRun


def text(done: AuditRun, fmt: str, now: datetime) -> str:
    single = len(done.results) == 1 and done.results[0].account_id == done.caller.account_id
    if fmt == "json":
        return json.dumps(_json(done), indent=2)
    if fmt == "asff":
        return json.dumps({"Findings": [
            finding for r in done.results for finding in formats.asff(
                r.findings, account_id=r.account_id, region=done.caller.region,
                partition=done.caller.partition, now=now)]}, indent=2)
    if fmt == "sarif":
        return json.dumps(formats.sarif({r.account_id: r.findings for r in done.results},
                                        tool_version=package_version()), indent=2)
    if single:
        return render(done.results[0].findings, fmt)
    return _org(done, fmt)


def _json(done: AuditRun) -> dict[str, Any]:
    return {
        "findings": [{"account_id": account, **f.as_dict()}
                     for account, f in org.ranked(done.results)],
        "accounts": [{"account_id": r.account_id, "name": r.name,
                      "findings": len(r.findings), "error": r.error,
                      "seconds": round(r.seconds, 3)} for r in done.results],
        "settings": {"max_age_days": done.settings.max_age_days,
                     "unused_days": done.settings.unused_days},
        "security_hub": {account: (i if isinstance(i, str) else {
            "imported": i.imported, "archived": i.archived,
            "failed": [list(f) for f in i.failed]}) for account, i in done.imported.items()},
    }


def _org(done: AuditRun, fmt: str) -> str:
    ranked = org.ranked(done.results)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["account", "severity", "user", "credential", "access_key_id",
                         "problems", "fix"])
        for account, f in ranked:
            writer.writerow([account, f.severity, f.user, f.credential, f.access_key_id or "",
                             "; ".join(f.problems), f.fix])
        return out.getvalue().rstrip("\n")
    if fmt == "md":
        lines = ["| account | severity | user | credential | problems | fix |",
                 "|---|---|---|---|---|---|"]
        lines += [f"| {account} | {f.severity} | {f.user} | {f.access_key_id or f.credential}"
                  f" | {'; '.join(f.problems)} | `{f.fix}` |" for account, f in ranked]
        return "\n".join(lines)
    reached = [r for r in done.results if r.error is None]
    lines = [f"audit of {len(done.results)} accounts: {len(reached)} audited, "
             f"{len(ranked)} credential(s) to fix, most urgent first"
             + (f"; {len(done.results) - len(reached)} NOT audited (below)"
                if len(reached) < len(done.results) else "")]
    for account, f in ranked:
        lines.append(f"  [{f.severity:<8}] {account} {f.user} "
                     f"{f.access_key_id or f.credential}: {'; '.join(f.problems)}")
        lines.append(f"             fix: {f.fix}")
    lines += [f"  NOT audited: {r.account_id} {r.name}: {r.error}"
              for r in done.results if r.error is not None]
    return "\n".join(lines)


def progress_line(done: int, total: int, last: org.AccountAudit) -> str:
    state = "not audited" if last.error else f"{len(last.findings)} findings"
    return f"  audit: {done}/{total} accounts ({last.account_id}: {state})"
