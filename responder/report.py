"""The incident as the outside world sees it: the DESIGN §2 object and the report files.

Built only from the journal, so `respond status`, `respond report` and the output of the
run itself can never disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from responder.context import iso, parse_iso
from responder.errors import ResponderError
from responder.journal import IncidentRecord, Journal, StepRecord

STEP_MARK = {"done": "ok", "skipped": "--", "failed": "!!", "pending": "..", "running": ">>",
             "planned": "=>"}


def _step(step: StepRecord) -> dict[str, Any]:
    return {
        "name": step.name,
        "action": step.action,
        "status": step.status,
        "started_at": iso(step.started_at),
        "ended_at": iso(step.ended_at),
        "detail": dict(step.detail),
        "error": step.error,
    }


def _first_done(steps: list[StepRecord], action: str) -> StepRecord | None:
    return next((s for s in steps if s.action == action and s.status == "done"), None)


def incident_document(
    journal: Journal, record: IncidentRecord, report_path: Path | None = None
) -> dict[str, Any]:
    """The one JSON object `--output json` prints (DESIGN §2); absent facts are null."""
    steps = journal.steps(record.id)
    evidence = _first_done(steps, "collect_cloudtrail")
    replacement = _first_done(steps, "replace_access_key")
    return {
        "incident_id": record.id,
        "status": record.status,
        "access_key_id": record.access_key_id,
        "user_name": record.user_name,
        "account_id": record.account_id,
        "playbook": record.playbook.get("name"),
        "started_at": iso(record.started_at),
        "contained_at": iso(record.contained_at),
        "steps": [_step(s) for s in steps],
        "evidence": None if evidence is None else {
            "events": evidence.detail.get("events", 0),
            "regions": evidence.detail.get("regions", []),
            "path": evidence.detail.get("path"),
            "sha256": evidence.detail.get("sha256"),
        },
        "replacement": None if replacement is None else {
            "access_key_id": replacement.detail.get("access_key_id"),
            "secret_ref": replacement.detail.get("secret_ref"),
        },
        "report": str(report_path) if report_path and report_path.exists() else None,
        "error": record.error,
    }


def error_document(exc: ResponderError, access_key_id: str | None) -> dict[str, Any]:
    """The §2 object for a run refused before any incident was opened."""
    return {
        "incident_id": None, "status": exc.status, "access_key_id": access_key_id,
        "user_name": None, "account_id": None, "playbook": None, "started_at": None,
        "contained_at": None, "steps": [], "evidence": None, "replacement": None,
        "report": None, "error": str(exc), "exit_code": exc.exit_code,
    }


def seconds_between(start: str | None, end: str | None) -> float | None:
    a, b = parse_iso(start), parse_iso(end)
    return None if a is None or b is None else round((b - a).total_seconds(), 3)


def render_human(doc: dict[str, Any]) -> str:
    """A short terminal summary of an incident document (or a plan)."""
    lines = [
        f"incident {doc['incident_id']}  {doc['status'].upper()}",
        f"  key {doc['access_key_id']}  user {doc['user_name'] or '?'}  "
        f"account {doc['account_id'] or '?'}",
    ]
    for step in doc["steps"]:
        took = seconds_between(step.get("started_at"), step.get("ended_at"))
        timing = f"{took:7.3f}s" if took is not None else " " * 8
        note = step.get("error") or step["detail"].get("reason") or ""
        lines.append(
            f"  [{STEP_MARK.get(step['status'], '??')}] {step['name']:<18} "
            f"{step['status']:<8} {timing}  {note}".rstrip()
        )
        for call in step["detail"].get("calls", []):
            note = f"  ({call['note']})" if call.get("note") else ""
            lines.append(f"         {call['service']}:{call['operation']} "
                         f"{json.dumps(call['params'], sort_keys=True, default=str)}{note}")
    contain = seconds_between(doc.get("started_at"), doc.get("contained_at"))
    if contain is not None:
        lines.append(f"  contained in {contain:.3f}s (at {doc['contained_at']})")
    if doc.get("error"):
        lines.append(f"  error: {doc['error']}")
    if doc["status"] == "halted":
        lines.append(f"  fix the cause, then: respond resume {doc['incident_id']}")
    return "\n".join(lines)


def render_markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# Incident {doc['incident_id']}",
        "",
        f"- Status: **{doc['status']}**",
        f"- Access key: `{doc['access_key_id']}`",
        f"- User: `{doc['user_name']}`  Account: `{doc['account_id']}`",
        f"- Started: {doc['started_at']}",
        f"- Contained: {doc['contained_at']}"
        f" ({seconds_between(doc['started_at'], doc['contained_at'])} s)",
        "",
        "## Timeline",
        "",
        "| step | status | started | ended | error |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {s['name']} | {s['status']} | {s['started_at']} | {s['ended_at']} | "
        f"{s['error'] or ''} |"
        for s in doc["steps"]
    ]
    return "\n".join(lines) + "\n"
