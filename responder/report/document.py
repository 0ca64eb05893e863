"""The incident as the outside world sees it: the DESIGN §2 object and the report files.

Rendered only from an IncidentView (itself built only from the journal), so `respond
status`, `respond report` and the output of the run itself can never disagree.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from responder.context import iso, parse_iso
from responder.errors import ResponderError
from responder.incident.facts import KeyReplaced, SessionDenied, SessionFound, SweepFound
from responder.incident.view import IncidentView, StepView
from responder.journal import CallRecord
from responder.report import hardening as report_hardening
from responder.report import rotation as report_rotation
from responder.report.markdown import render_markdown, whose

STEP_MARK = {"done": "ok", "skipped": "--", "failed": "!!", "pending": "..", "running": ">>",
             "planned": "=>"}


def _step(step: StepView) -> dict[str, Any]:
    return {
        "name": step.name,
        "action": step.action,
        "status": step.status,
        "started_at": iso(step.started_at),
        "ended_at": iso(step.ended_at),
        "detail": dict(step.detail),
        "error": step.error,
    }


ABANDONED = ("interrupted: its runner stopped before finishing (killed, or the machine "
             "went away); `respond resume {id}` continues it")


def incident_document(view: IncidentView, now: datetime | None = None) -> dict[str, Any]:
    """The one JSON object `--output json` prints (DESIGN §2); absent facts are null.

    With `now`, an incident left running by a runner that is gone shows as halted
    (interrupted), which is what it is until someone resumes it."""
    record = view.record
    replacement = view.done(KeyReplaced)
    abandoned = now is not None and view.abandoned(now)
    return {
        "incident_id": record.id,
        "status": "halted" if abandoned else record.status,
        "access_key_id": record.access_key_id,
        "user_name": record.user_name,
        "account_id": record.account_id,
        "playbook": view.playbook,
        "started_at": iso(record.started_at),
        "contained_at": iso(record.contained_at),
        "steps": [_step(s) for s in view.steps],
        "evidence": evidence_document(view),
        "replacement": None if replacement is None else {
            "access_key_id": replacement.access_key_id,
            "secret_ref": replacement.secret_ref,
        },
        "attacker": attacker_document(view),
        "session": session_document(view.session, view.session_denied),
        "sweeps": sweeps_document(view),
        "rotation": report_rotation.rotation_document(view),
        "hardening": report_hardening.hardening_document(report_hardening.latest(view)),
        "report": record.report,
        "error": ABANDONED.format(id=record.id) if abandoned else record.error,
    }


def evidence_document(view: IncidentView) -> dict[str, Any] | None:
    """The evidence as it stands: after the last sweep that merged events into it, and
    where the evidence bucket keeps it (null without one)."""
    evidence = view.evidence
    if evidence is None:
        return None
    swept = view.sweeps_found
    return {
        "events": swept[-1].events_total if swept else evidence.events,
        "regions": list(evidence.regions),
        "path": evidence.path,
        "sha256": swept[-1].sha256 if swept else evidence.sha256,
        "s3_uri": view.evidence_uri,
        "archive_error": view.archive.error if view.archive_failed and view.archive else None,
    }


def sweeps_document(view: IncidentView) -> dict[str, Any] | None:
    """Sweeps done (what each found) and due, with the command that runs the next one;
    null until sweeps were scheduled."""
    scheduled = view.sweeps_scheduled
    if view.contained_at is None and not view.sweep_steps:
        return None
    due = [iso(d) for d in view.sweeps_due]
    return {
        "done": [{"step": s.name, "status": s.status, "ended_at": iso(s.ended_at),
                  "new_events": (s.facts.new_events if isinstance(s.facts, SweepFound)
                                 else None), "error": s.error} for s in view.sweep_steps],
        "due": due,
        "scheduler": scheduled.scheduler if scheduled is not None else "none",
        "next": {"at": due[0], "command": f"respond sweep {view.id}"} if due else None,
    }


def session_document(found: SessionFound | None, denied: SessionDenied | None = None
                     ) -> dict[str, Any] | None:
    """For a temporary key: whose session it is and how it was denied; null for a
    long-term key."""
    if found is None:
        return None
    return {
        "principal_type": found.principal_type, "principal_arn": found.principal_arn,
        "user_name": found.user_name, "role_name": found.role_name,
        "role_arn": found.role_arn, "session_name": found.session_name,
        "aws_userid": found.aws_userid, "instance_id": found.instance_id,
        "minted_by": found.minted_by, "minted_by_arn": found.minted_by_arn,
        "found_by": found.found_by, "event": dict(found.event) or None,
        "denied": None if denied is None else denied.to_detail(),
    }


def attacker_document(view: IncidentView) -> dict[str, Any] | None:
    """What shuts the attacker out: the sessions cutoff and what contain-attacker did and
    left for a human; null until revoke-sessions has run."""
    revoked, attacker = view.sessions_revoked, view.attacker
    if revoked is None and attacker is None:
        return None
    return {
        "cutoff": revoked.token_issue_time_before if revoked else None,
        "sessions_revoked": [dict(s) for s in attacker.sessions_revoked] if attacker else [],
        "keys_disabled": [dict(k) for k in attacker.keys_disabled] if attacker else [],
        "principals_quarantined": [dict(p) for p in attacker.principals_quarantined]
        if attacker else [],
        "needs_human": [dict(n) for n in attacker.needs_human] if attacker else [],
    }


def blank_document() -> dict[str, Any]:
    """Every §2 field, null (steps empty): what a document without an incident starts
    from, so a field added to incident_document is added here once, never missing."""
    return {"incident_id": None, "status": None, "access_key_id": None, "user_name": None,
            "account_id": None, "playbook": None, "started_at": None, "contained_at": None,
            "steps": [], "evidence": None, "replacement": None, "attacker": None,
            "session": None, "sweeps": None, "rotation": None, "hardening": None,
            "report": None, "error": None}


def error_document(exc: ResponderError, access_key_id: str | None) -> dict[str, Any]:
    """The §2 object for a run refused before any incident was opened."""
    return {**blank_document(), "status": exc.status, "access_key_id": access_key_id,
            "error": str(exc), "exit_code": exc.exit_code}


def seconds_between(start: str | None, end: str | None) -> float | None:
    a, b = parse_iso(start), parse_iso(end)
    return None if a is None or b is None else round((b - a).total_seconds(), 3)


def render_human(doc: dict[str, Any]) -> str:
    """A short terminal summary of an incident document (or a plan)."""
    lines = [
        f"incident {doc['incident_id']}  {doc['status'].upper()}",
        f"  key {doc['access_key_id']}  {whose(doc)}  account {doc['account_id'] or '?'}",
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
    lines += report_hardening.human(doc)
    if doc.get("rotation"):
        lines += report_rotation.human(doc)
    elif doc["status"] == "halted":
        lines.append(f"  fix the cause, then: respond resume {doc['incident_id']}")
    evidence = doc.get("evidence") or {}
    if evidence.get("s3_uri"):
        lines.append(f"  evidence kept in {evidence['s3_uri']}")
    if evidence.get("archive_error"):
        lines.append(f"  evidence NOT copied to the bucket: {evidence['archive_error']}")
    sweeps = doc.get("sweeps") or {}
    done = [s for s in sweeps.get("done", []) if s.get("status") == "done"]
    if done:
        lines.append(f"  sweeps done: {len(done)}, new events: "
                     f"{sum(s.get('new_events') or 0 for s in done)}")
    if sweeps.get("next"):
        lines.append(f"  next sweep due {sweeps['next']['at']}: {sweeps['next']['command']}")
    return "\n".join(lines)


def _call(call: CallRecord) -> dict[str, Any]:
    return {
        "api": f"{call.service}:{call.operation}",
        "mutating": call.mutating,
        "outcome": call.outcome,
        "attempts": call.attempts,
        "at": iso(call.intent_at),
        "error": call.error,
    }


def _timeline(view: IncidentView, s: StepView) -> dict[str, Any]:
    return {
        "step": s.name,
        "status": s.status,
        "started_at": iso(s.started_at),
        "ended_at": iso(s.ended_at),
        "duration_seconds": seconds_between(iso(s.started_at), iso(s.ended_at)),
        "error": s.error,
        "calls": [_call(c) for c in view.calls if c.step == s.name],
    }


def report_document(view: IncidentView) -> dict[str, Any]:
    """report.json: the §2 object plus timeline, snapshots, evidence summary, next actions.

    `view` must be loaded with its calls (IncidentView.load(..., calls=True))."""
    doc = incident_document(view)
    doc["timeline"] = [_timeline(view, s) for s in view.steps]
    doc["followups"] = [_timeline(view, s) for s in view.followups]
    doc["time_to_contain_seconds"] = seconds_between(doc["started_at"], doc["contained_at"])
    revoked = view.sessions_revoked
    doc["sessions_cutoff"] = revoked.token_issue_time_before if revoked else None
    doc["iam_snapshot"] = {
        "at_containment": view.snapshot_at_containment,
        "after_replacement": view.snapshot_after_replacement,
    }
    doc["aws_quarantine"] = list(view.aws_quarantine)
    evidence = view.evidence
    doc["evidence_summary"] = None if evidence is None else {
        k: v for k, v in evidence.to_detail().items()
        if k in ("events", "regions", "regions_failed", "path", "sha256", "window",
                 "temporary_keys", "roles_assumed", "summary")
    }
    notifying = view.of_kind("notification")
    doc["notifications"] = dict(notifying[0].detail) if notifying else None
    rolled = [s for s in view.of_kind("rollback") if s.status == "done"]
    doc["rollback"] = dict(rolled[-1].detail) if rolled else None
    from responder.report.notice import build_notice  # noqa: PLC0415 - reports only

    rotation = doc.get("rotation")
    if rotation is not None:  # a routine rotation: its own next move, not a leak's
        doc["next_actions"] = [f"`{rotation['next']}`"] if rotation["next"] else []
        return doc
    notice = build_notice("completed" if view.status == "completed" else "halted", view,
                          failing_step=view.failing_step)
    doc["next_actions"] = list(notice.next_actions)
    return doc


def write(view: IncidentView, directory: Path) -> Path:
    """Write report.json and report.md into the incident directory; returns report.md."""
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / "report.md"
    doc = report_document(view)
    doc["report"] = str(md)
    (directory / "report.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md.write_text(render_markdown(doc))
    return md


__all__ = ["incident_document", "render_human", "render_markdown",
           "report_document", "write"]
