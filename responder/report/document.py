"""The incident as the outside world sees it: the DESIGN §2 object and the report files.

Rendered only from an IncidentView (itself built only from the journal), so `respond
status`, `respond report` and the output of the run itself can never disagree.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from responder.context import iso
from responder.errors import ResponderError
from responder.incident.view import IncidentView
from responder.journal import CallRecord, Journal
from responder.report.incident_document import (
    attacker_of,
    document_of,
    evidence_of,
    extras_of,
    seconds_between,
    session_of,
    shut_by_sweeps,
    sweeps_of,
)
from responder.report.json_text import Lazy, pieces
from responder.report.markdown import markdown_of
from responder.report.model import (
    CallEntry,
    IncidentDocument,
    RefusalDocument,
    ReportDocument,
    TimelineEntry,
)
from responder.report.notice import todo_of
from responder.report.retirement import retirement_todo
from responder.report.terminal import summary
from responder.report.todo import Todo


def refusal_of(exc: ResponderError, access_key_id: str | None,
               incident_id: str | None = None) -> RefusalDocument:
    """The §2 object for a run refused before any incident was opened (or, with
    `incident_id`, a refused request about that incident): every other field null."""
    return RefusalDocument(IncidentDocument(incident_id=incident_id, status=exc.status,
                                            access_key_id=access_key_id, error=str(exc)),
                           exc.exit_code)


def report_of(view: IncidentView) -> ReportDocument:
    """report.json, typed: the §2 object plus timeline, snapshots, evidence summary and
    next actions. `view` must be loaded with its calls (IncidentView.load(..., calls=True))."""
    doc = document_of(view)
    if doc.rotation is not None:  # a routine rotation: its own next move, not a leak's
        todo: tuple[Todo, ...] = (Todo("Move the rotation on", (doc.rotation.next,)),) \
            if doc.rotation.next else ()
    elif doc.retirement is not None:  # hygiene too: undo it, or finish the job
        todo = retirement_todo(doc)
    else:
        todo = todo_of("completed" if view.status == "completed" else "halted", view,
                       failing_step=view.failing_step)
    return ReportDocument(doc, extras_of(view, todo))


def told(view: IncidentView, now: datetime | None = None) -> str:
    """The terminal's story of an incident: its document (as of `now`, see document_of)
    with what the report adds: the evidence summary and what a human must do."""
    typed = report_of(view)
    doc = document_of(view, now) if now is not None else typed.document
    return summary(doc, typed.extras)


def write(view: IncidentView, directory: Path, journal: Journal | None = None) -> Path:
    """Write report.json and report.md into the incident directory; returns report.md.
    With `journal` (and `view` loaded without its calls), the calls are read from the
    journal a page at a time as each file is written: see json_text and markdown_text."""
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / "report.md"
    if journal is None:
        typed = report_of(view)
        typed = replace(typed, document=replace(typed.document, report=str(md)))
        (directory / "report.json").write_text(
            json.dumps(typed.to_json(), indent=2, default=str) + "\n")
        md.write_text(markdown_of(typed))
        return md
    with (directory / "report.json").open("w", encoding="utf-8") as out:
        for piece in json_text(view, journal, report=str(md)):
            out.write(piece)  # the file's buffer gathers them
        out.write("\n")
    md.write_text(markdown_text(view, journal))
    return md


def call_entry(call: CallRecord) -> CallEntry:
    """A call as report.json's timeline lists it (as report_of's timeline does)."""
    return CallEntry(api=f"{call.service}:{call.operation}", mutating=call.mutating,
                     outcome=call.outcome, attempts=call.attempts, at=iso(call.intent_at),
                     error=call.error)


def json_text(view: IncidentView, journal: Journal, *, report: str | None = None,
              text: Callable[[str], str] = str) -> Iterator[str]:
    """report.json's text (json.dumps(indent=2) of report_of(view) loaded with its calls,
    exactly), in pieces: each timeline step's calls are read from the journal as they
    are written, so an incident whose evidence took thousands of LookupEvents pages (one
    journaled call per 50 events) is written holding one page of them. `view` is loaded
    without its calls; `report` sets the document's report path; `text` see pieces."""
    typed = report_of(view)
    if report is not None:
        typed = replace(typed, document=replace(typed.document, report=report))
    doc = typed.to_json()
    for part in ("timeline", "followups"):
        doc[part] = [{**entry, "calls": Lazy(partial(_calls_json, journal, view.id,
                                                     entry["step"]))}
                     for entry in doc[part]]
    return pieces(doc, text=text)


def _calls_json(journal: Journal, incident_id: str, step: str) -> Iterator[dict[str, Any]]:
    return (call_entry(c).to_json() for c in journal.each_call(incident_id, step))


def counted_report(view: IncidentView, journal: Journal) -> ReportDocument:
    """report_of(view) as loaded with its calls, for a medium that only counts them by
    API and outcome (the Markdown and the page: story.grouped_calls), from `view` loaded
    without them: the counts are read from the journal a page at a time."""
    typed = report_of(view)
    extras = typed.extras
    return replace(typed, extras=replace(
        extras, timeline=tuple(_counted(journal, view.id, t) for t in extras.timeline),
        followups=tuple(_counted(journal, view.id, t) for t in extras.followups)))


def markdown_text(view: IncidentView, journal: Journal) -> str:
    """report.md (markdown_of(report_of(view)) of the view loaded with its calls,
    exactly), from `view` loaded without them (counted_report)."""
    return markdown_of(counted_report(view, journal))


def _counted(journal: Journal, incident_id: str, entry: TimelineEntry) -> TimelineEntry:
    """The step's calls as the Markdown counts them (story.grouped_calls): one entry per
    API, attempts and outcome, in the order each was first made, repeated as often as it
    was made: a tuple of references, 8 bytes a call, not a record each."""
    first: dict[tuple[str, int, str], CallEntry] = {}
    times: Counter[tuple[str, int, str]] = Counter()
    for call in journal.each_call(incident_id, entry.step):
        key = (f"{call.service}:{call.operation}", call.attempts, call.outcome)
        if key not in first:
            first[key] = call_entry(call)
        times[key] += 1
    return replace(entry, calls=tuple(itertools.chain.from_iterable(
        itertools.repeat(made, times[key]) for key, made in first.items())))


__all__ = ["attacker_of", "call_entry", "counted_report", "document_of", "evidence_of", "json_text",
           "markdown_text", "refusal_of", "report_of", "seconds_between", "session_of",
           "shut_by_sweeps", "summary", "sweeps_of", "told", "write"]
