"""An audit run as the CLI prints it: human, json, md, csv, asff or sarif.

Every form reads the one AuditRun. A single account prints as it always did (its table
has no account column), so scripts written against `respond audit --output csv` keep
working; an organization adds the account to each finding and ranks them all together.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from responder import package_version
from responder.audit import formats, org
from responder.audit.credential_report import render
from responder.audit.run import AuditRun

if TYPE_CHECKING:
    from responder.audit.retire import Candidate, Outcome


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
        gap = done.results[0].gap
        said = render(done.results[0].findings, fmt)
        return f"ROLE CHECK INCOMPLETE: {gap}\n{said}" if gap and fmt == "human" else said
    return _org(done, fmt)


def as_json(done: AuditRun) -> dict[str, Any]:
    """The `--output json` object (one per run: --deactivate-unused adds its key)."""
    return _json(done)


def retirement_plan(wanted: Sequence[Candidate], days: int, *, doing: bool = False
                    ) -> list[str]:
    """What --deactivate-unused would do without --yes; `doing`: the line before the
    outcomes (with --yes), and the keys held back."""
    going = [c for c in wanted if not c.held_back]
    lines = [f"--deactivate-unused {days}: {len(going)} key(s) unused for more than {days} "
             f"days {'are being' if doing else 'would be'} set Inactive (never deleted), "
             "each after asking AWS again for its last use, one incident each:" if going
             else f"--deactivate-unused {days}: no key unused for more than {days} days to "
             "set Inactive"]
    lines += [f"  {c.line()}" for c in wanted if not doing or c.held_back]
    if going and not doing:
        lines.append("nothing was changed: pass --yes to do it (each is undone by `respond "
                     "rollback ID --yes --reason TEXT`)")
    return lines


def retirement_json(wanted: Sequence[Candidate], days: int,
                    done: Sequence[Outcome] | None) -> dict[str, Any]:
    def key(c: Candidate) -> dict[str, Any]:
        return {"account_id": c.account_id, "user": c.user, "access_key_id": c.access_key_id,
                "idle_days": c.idle_days, "last_used": c.last_used, "held_back": c.held_back}
    out: dict[str, Any] = {"days": days, "candidates": [key(c) for c in wanted]}
    if done is not None:
        out["done"] = [{**key(o.candidate), "incident_id": o.record.id if o.record else None,
                        "state": o.state, "headline": o.headline, "error": o.error}
                       for o in done]
    return out


def retirement_lines(done: Sequence[Outcome]) -> list[str]:
    """Each key's outcome in its incident's own headline, with where to read more."""
    lines = []
    for outcome in done:
        c = outcome.candidate
        head = outcome.headline or f"NOT RETIRED: {c.access_key_id} of {c.user}: " \
            f"{outcome.error}"
        where = f" (incident {outcome.record.id})" if outcome.record is not None else ""
        lines.append(f"  {head}{where}")
        if outcome.headline and outcome.error and outcome.error not in head:
            lines.append(f"    {outcome.error}")
    return lines


def _json(done: AuditRun) -> dict[str, Any]:
    return {
        "findings": [{"account_id": account, **f.as_dict()}
                     for account, f in org.ranked(done.results)],
        "accounts": [{"account_id": r.account_id, "name": r.name,
                      "findings": len(r.findings), "error": r.error,
                      "seconds": round(r.seconds, 3), "role_check_gap": r.gap}
                     for r in done.results],
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
    lines += [f"  ROLE CHECK INCOMPLETE in {r.account_id}: {r.gap}"
              for r in done.results if r.gap]
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
