"""The short terminal summary of an incident document (or a plan): `respond status`,
the end of a run, a dry run's plan.

Read from the one typed document (document.document_of) by attribute. Its headline says
first what cannot wait: an evidence gap, the credentials the attacker read, the access it
granted outside the account, the defenses turned back on (responder.report.leads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from responder.report import leads as report_leads
from responder.report import rotation as report_rotation
from responder.report.incident_document import seconds_between
from responder.report.model import IncidentDocument, ReportExtras, StepEntry, SweepDone, SweepsEntry
from responder.report.story import story_of, whose
from responder.report.todo import MANUAL, Todo

STEP_MARK = {"done": "ok", "skipped": "--", "failed": "!!", "pending": "..", "running": ">>",
             "planned": "=>"}


def summary(doc: IncidentDocument, extras: ReportExtras | None = None) -> str:
    """The terminal's story of an incident document (or a plan): the headline, what the
    attacker did, what was shut, what it read and let in, what a human must do (each
    command on its own line, to paste as printed), then the steps, hardening last.
    `extras` (the report's) brings the evidence summary and the next actions."""
    told = story_of(doc, extras)
    lines = [f"incident {doc.incident_id}  {_status_words(doc)}", f"  {told.headline}",
             *(f"  {alert}" for alert in told.alerts),
             *([f"  {told.verified}"] if told.verified else []),
             f"  key {doc.access_key_id}  {whose(doc)}  account {doc.account_id or '?'}",
             *report_leads.headline(report_leads.leads_of(doc)),
             *_rolled_back(doc)]
    lines += _section("WHAT THE ATTACKER DID", [d.line for d in told.did])
    lines += _section("WHAT WAS SHUT", told.shut)
    lines += _section("WHAT YOU MUST DO", [], todo(told.todo))
    if told.evidence is not None:  # briefly: each high-risk event is in the reports
        lines += _section("EVIDENCE", [x for x in told.evidence.lines if not x.startswith(" ")])
    lines.append("STEPS")
    lines += _steps(doc)
    contain = seconds_between(doc.started_at, doc.contained_at)
    if contain is not None:
        lines.append(f"  contained in {contain:.3f}s (at {doc.contained_at})")
    if doc.error:
        lines.append(f"  error: {doc.error}")
    if doc.rotation:
        lines += report_rotation.human(doc.rotation)
    elif doc.status == "halted":
        lines.append(f"  fix the cause, then: respond resume {doc.incident_id}")
    lines += _kept(doc)
    lines += _sweeps(doc)
    lines += _section("HARDENING", told.hardening)
    return "\n".join(lines)


def _section(title: str, items: Sequence[str], raw: Sequence[str] = ()) -> list[str]:
    """A titled block, or nothing when there is nothing to say."""
    if not items and not raw:
        return []
    return [title, *(f"  {item}" for item in items), *raw]


def todo(items: Sequence[Todo]) -> list[str]:
    """What a human must do, numbered; each command alone on its line, so that what is
    selected and pasted is exactly the command, then its mark and note under it."""
    lines: list[str] = []
    for i, item in enumerate(items, 1):
        lines.append(f"  {i}. {item.what}")
        lines += [f"       {command}" for command in item.commands]
        if item.manual:
            lines.append(f"       ({MANUAL}: replace each <placeholder>)")
        if item.note:
            lines.append(f"       {item.note}")
    return lines


def _steps(doc: IncidentDocument) -> list[str]:
    lines: list[str] = []
    for step in doc.steps:
        took = seconds_between(step.started_at, step.ended_at)
        timing = f"{took:7.3f}s" if took is not None else " " * 8
        note = step.error or step.reason or _evidence_note(doc, step) or ""
        lines.append(
            f"  [{STEP_MARK.get(step.status, '??')}] {step.name:<18} "
            f"{step.status:<8} {timing}  {note}".rstrip()
        )
        for call in step.calls:
            note = f"  ({call.note})" if call.note else ""
            lines.append(f"         {call.service}:{call.operation} "
                         f"{json.dumps(call.params, sort_keys=True, default=str)}{note}")
    return lines


def _kept(doc: IncidentDocument) -> list[str]:
    evidence = doc.evidence
    lines: list[str] = []
    if evidence is not None and evidence.s3_uri:
        lines.append(f"  evidence kept in {evidence.s3_uri}")
    if evidence is not None and evidence.archive_error:
        lines.append(f"  evidence NOT copied to the bucket: {evidence.archive_error}")
    return lines


def _sweeps(doc: IncidentDocument) -> list[str]:
    sweeps = doc.sweeps or SweepsEntry()
    done = [s for s in sweeps.done if s.status == "done"]
    lines: list[str] = []
    if done:
        lines.append(f"  sweeps done: {len(done)}, new events: "
                     f"{sum(s.new_events or 0 for s in done)}")
        for sweep in done:
            lines += _sweep_lines(sweep)
    if sweeps.next:
        lines.append(f"  next sweep due {sweeps.next.at}: {sweeps.next.command}")
    return lines


def _status_words(doc: IncidentDocument) -> str:
    """The headline's status: ROLLED BACK when the containment was undone, whatever the
    journal's status says about the run that contained it."""
    status = str(doc.status).upper()
    return f"{status}, ROLLED BACK" if doc.rolled_back is not None else status


def _rolled_back(doc: IncidentDocument) -> list[str]:
    """Why a rollback was made, each time (the headline says what AWS showed)."""
    rolled = doc.rolled_back
    if rolled is None:
        return []
    return [f"  rolled back ({r.at or 'time not recorded'}): {r.reason}" for r in rolled.history]


def _unread(doc: IncidentDocument) -> Mapping[str, str]:
    return doc.evidence.regions_unread if doc.evidence is not None else {}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _evidence_note(doc: IncidentDocument, step: StepEntry) -> str | None:
    """The evidence step's line never reads a plain ok while a region is unread."""
    if step.kind != "evidence" or step.status != "done":
        return None
    if unread := _unread(doc):
        return f"{_plural(len(unread), 'region')} unread: {', '.join(unread)}"
    first = step.detail.get("regions_failed")
    if isinstance(first, Mapping) and first:
        return f"{_plural(len(first), 'region')} unread at first, read again since"
    return None


def _sweep_lines(sweep: SweepDone) -> list[str]:
    """A sweep: what it found, read again, shut, and left for a human."""
    head = f"    {sweep.step}: {_plural(sweep.new_events or 0, 'new event')}"
    if sweep.regions_reread:
        head += f"; read {', '.join(sweep.regions_reread)} again (whole lookback)"
    shut = [f"key {k.access_key_id} of {k.user_name} "
            f"{'already Inactive' if k.already else 'disabled'}" for k in sweep.keys_disabled]
    shut += [f"{p.type} {p.name} quarantined"
             + (f" (keys {', '.join(p.keys_disabled)} disabled)" if p.keys_disabled else "")
             for p in sweep.principals_quarantined]
    shut += [f"role {r.role_name}: {_plural(len(r.sessions), 'session')} revoked"
             for r in sweep.sessions_revoked]
    lines = [head, *(f"      read: {report_leads.credential(c)}: rotate it"
                     for c in sweep.credentials_read)]
    lines += [f"      granted outside the account: {report_leads.grant(g)}"
              for g in sweep.granted_to]
    lines += [f"      restored: {report_leads.defense(r)}" for r in sweep.restored]
    lines += [f"      shut: {what}" for what in shut]
    lines += [f"      for a human: {h.what or h.event_name}"
              + (f" ({h.meaning})" if h.meaning else "")
              + (f": {h.undo}" if h.undo else "")
              + (f" ({MANUAL})" if h.manual and h.undo else "")
              + (f": {h.note}" if h.note and not h.undo else "")
              for h in sweep.needs_human]
    return lines


__all__ = ["STEP_MARK", "seconds_between", "summary", "todo"]
