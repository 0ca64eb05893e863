"""An unused key's retirement (playbooks/retire-unused-key.yaml) as the §2 object's
`retirement` field: what the step established, read by the facts' type like every other
reader, and null for an incident that is not a retirement."""

from __future__ import annotations

from responder.incident import kinds
from responder.incident.facts_retirement import KeyRetired
from responder.incident.view import IncidentView
from responder.report.model import IncidentDocument, RetirementEntry
from responder.report.todo import Todo


def undo_command(incident_id: str) -> str:
    return f'respond rollback {incident_id} --yes --reason "something still needs the key"'


def retirement_of(view: IncidentView) -> RetirementEntry | None:
    if not kinds.planned(view.record.playbook, ("retirement",)):
        return None
    done = view.done(KeyRetired)
    if done is None:
        return RetirementEntry(access_key_id=view.access_key_id, status="not retired")
    return RetirementEntry(
        access_key_id=done.access_key_id, status=done.status, unused_days=done.unused_days,
        idle_days=done.idle_days, last_used=done.last_used, created=done.created, at=done.at,
        already=done.already, kept_because=done.kept_because,
        undo=undo_command(view.id) if done.retired and view.rolled_back is None else None)


def retirement_todo(doc: IncidentDocument) -> tuple[Todo, ...]:
    """What a human does next: undo it if something broke, else delete the key once the
    team is sure (the tool never deletes); resume a retirement cut short."""
    retired, user = doc.retirement, doc.user_name or "USER"
    if retired is None:
        return ()
    if retired.status == "not retired" and doc.status == "halted":
        return (Todo("Finish the retirement", (f"respond resume {doc.incident_id}",)),)
    if retired.undo is None:
        return ()
    return (Todo("If something still needed the key, make it Active again", (retired.undo,)),
            Todo("Once nothing broke, delete it (the tool never deletes a key)",
                 (f"aws iam delete-access-key --user-name {user} --access-key-id "
                  f"{retired.access_key_id}",)))
