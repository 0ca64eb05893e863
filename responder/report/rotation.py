"""A rotation as the §2 object's `rotation` field and the report's section: where it
stands, what moves it on, and the alert when the old key was used during the grace period.

Read from the incident view by the facts' types, like every other reader; null for an
incident that is not a rotation.
"""

from __future__ import annotations

from responder.incident.action import REGISTRY
from responder.incident.facts import KeyReplaced
from responder.incident.facts_rotation import (
    AppsUpdated,
    Awaiting,
    NewKeyTested,
    OldKeyDeactivated,
    OldKeyDeleted,
    OldKeyQuiet,
    OldKeyReactivated,
    OldKeyUsed,
)
from responder.incident.view import IncidentView
from responder.report.model import (
    AlertEntry,
    AppsUpdatedEntry,
    GraceEntry,
    RotationEntry,
    TestedEntry,
)


def awaiting(view: IncidentView) -> Awaiting | None:
    """What the rotation's waiting step waits for, if one waits."""
    return next((s.facts for s in view.steps if isinstance(s.facts, Awaiting)), None)


def alert_of(view: IncidentView) -> AlertEntry | None:
    """The grace period's alert, while its step stands failed on it."""
    for step in view.steps:
        if step.status == "failed" and REGISTRY.establishes(step.action, OldKeyQuiet) \
                and "last_used" in step.detail:
            used = OldKeyUsed.from_detail(step.detail)
            return AlertEntry(last_used=used.last_used, since=used.since, service=used.service,
                              region=used.region, alerted=tuple(used.alerted),
                              message=step.error)
    return None


def _old_key_status(view: IncidentView) -> str:
    """What the journal last saw of the old key: Deleted, Active (re-activated or not yet
    deactivated) or Inactive."""
    if view.done(OldKeyDeleted) is not None:
        return "Deleted"
    reactivated = [s for s in view.followups
                   if s.status == "done" and isinstance(s.facts, OldKeyReactivated)]
    off = view.done(OldKeyDeactivated)
    if off is None:
        return "Active"
    if reactivated and (reactivated[-1].ended_at or view.started_at) > \
            max((s.ended_at for s in view.steps if s.ended_at is not None),
                default=view.started_at):
        return "Active"
    return "Inactive"


def rotation_of(view: IncidentView) -> RotationEntry | None:
    if not any(s.kind == "rotation" for s in view.steps):
        return None
    new = view.done(KeyReplaced)
    waiting = awaiting(view)
    apps, tested = view.done(AppsUpdated), view.done(NewKeyTested)
    off, quiet = view.done(OldKeyDeactivated), view.done(OldKeyQuiet)
    alerted = alert_of(view)
    nxt = waiting.next if waiting is not None else None
    if alerted is not None:
        nxt = f"respond rotate --reactivate {view.id} --yes"
    elif view.status == "halted":
        nxt = f"respond rotate --continue {view.id}"
    return RotationEntry(
        old_key=view.access_key_id,
        old_key_status=_old_key_status(view),
        new_key=new.access_key_id if new is not None else None,
        secret_ref=new.secret_ref if new is not None else None,
        stage=view.current_step or "done",
        waiting_for=waiting.waiting_for if waiting is not None else None,
        until=waiting.until if waiting is not None else None,
        next=nxt,
        apps_updated=None if apps is None else AppsUpdatedEntry(apps.confirmed_by, apps.at),
        tested=None if tested is None else TestedEntry(tested.arn, tested.attempts),
        deactivated_at=off.at if off is not None else None,
        grace=None if quiet is None else GraceEntry(quiet.since, quiet.until, quiet.last_used),
        alert=alerted,
    )


def markdown(rot: RotationEntry | None) -> list[str]:
    """The report's Rotation section (empty for an incident that is not a rotation)."""
    if not rot:
        return []
    out = ["## Rotation", "",
           f"- Old key {rot.old_key}: {rot.old_key_status}",
           f"- New key {rot.new_key or '(not yet created)'}; secret in "
           f"{rot.secret_ref or '-'} (never shown)",
           f"- Stage: {rot.stage}"]
    if rot.apps_updated:
        out.append(f"- Applications updated ({rot.apps_updated.confirmed_by}) at "
                   f"{rot.apps_updated.at}")
    if rot.tested:
        out.append(f"- New key tested: signs as {rot.tested.arn}")
    if rot.deactivated_at:
        out.append(f"- Old key deactivated at {rot.deactivated_at}")
    if rot.grace:
        out.append(f"- Grace period {rot.grace.since} to {rot.grace.until}: the "
                   "old key was not used")
    if rot.alert:
        out.append(f"- **ALERT**: the old key was used at {rot.alert.last_used} "
                   f"({rot.alert.service} in {rot.alert.region}): an application "
                   "was missed")
    if rot.next:
        out.append(f"- Next: `{rot.next}`" + (f" (after {rot.until})" if rot.until else ""))
    return [*out, ""]


def human(rot: RotationEntry | None) -> list[str]:
    """The terminal summary's rotation lines."""
    if not rot:
        return []
    lines = [f"  rotation: old key {rot.old_key} {rot.old_key_status}, new key "
             f"{rot.new_key or '-'} (secret {rot.secret_ref or '-'})"]
    if rot.alert:
        lines.append(f"  ALERT: the old key was used at {rot.alert.last_used} "
                     f"({rot.alert.service}, {rot.alert.region})")
    if rot.next:
        lines.append(f"  next: {rot.next}" + (f" (after {rot.until})" if rot.until else ""))
    return lines
