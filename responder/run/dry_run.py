"""The §2 object of a dry run (and of the plan shown at the confirmation prompt):
identify done for real, every other step planned.

Apart from the service because it needs report/, which a run loads only after the key
is contained (run/later.py): a dry run and the prompt are the only callers.
"""

from __future__ import annotations

from responder.context import iso
from responder.incident.action import REGISTRY
from responder.report import document as report
from responder.report.model import IncidentDocument, StepEntry
from responder.run.service import Plan


def document(found: Plan) -> IncidentDocument:
    """The §2 object of a dry run: identify done for real, every other step planned (its
    detail lists the calls it would make, as StepEntry.calls reads them)."""
    ident = found.identified
    done = StepEntry(name=ident.spec.name, action=ident.spec.action, status="done",
                     started_at=iso(ident.started), ended_at=iso(ident.ended),
                     detail=ident.result.detail)
    planned = tuple(StepEntry(
        name=spec.name, action=spec.action, status="planned",
        detail={"calls": [c.as_dict() for c in calls],
                "permissions": list(REGISTRY[spec.action].needed(spec.settings)),
                "on_failure": spec.on_failure},
    ) for spec, calls in found.steps)
    return IncidentDocument(
        incident_id=ident.incident.id, status="planned",
        access_key_id=ident.incident.access_key_id, user_name=ident.target.user_name,
        account_id=ident.target.account_id, playbook=ident.incident.playbook,
        started_at=iso(ident.incident.started_at), steps=(done, *planned),
        session=report.session_of(ident.target.session),
    )
