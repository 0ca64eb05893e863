"""The incident as the outside world sees it: the DESIGN §2 object and the report files.

Rendered only from an IncidentView (itself built only from the journal), so `respond
status`, `respond report` and the output of the run itself can never disagree.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from responder.errors import ResponderError
from responder.incident.view import IncidentView
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
from responder.report.markdown import markdown_of
from responder.report.model import IncidentDocument, RefusalDocument, ReportDocument
from responder.report.notice import todo_of
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


def write(view: IncidentView, directory: Path) -> Path:
    """Write report.json and report.md into the incident directory; returns report.md."""
    directory.mkdir(parents=True, exist_ok=True)
    md = directory / "report.md"
    typed = report_of(view)
    typed = replace(typed, document=replace(typed.document, report=str(md)))
    (directory / "report.json").write_text(
        json.dumps(typed.to_json(), indent=2, default=str) + "\n")
    md.write_text(markdown_of(typed))
    return md


__all__ = ["attacker_of", "document_of", "evidence_of", "refusal_of", "report_of",
           "seconds_between", "session_of", "shut_by_sweeps", "summary", "sweeps_of", "told",
           "write"]
