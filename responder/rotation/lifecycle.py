"""`respond rotate`: the routine rotation of a long-term key (playbooks/rotate-key.yaml),
decided before and around its runs, as service.py does for a compromise.

Everything that would make the rotation fail halfway is checked before it is opened, so
a refusal changes nothing: a temporary key (nothing to rotate), the responder's own key,
a key that is not Active, a user who already holds two keys (IAM allows two, and the new
key needs one of the places). A rotation is an incident of the journal like any other
(so `status`, `report`, `resume` and the lease work on it), but it is not a response to a
leak: a compromise reported for the same key supersedes it (service.respond), and a
compromise's history ignores it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from responder import playbook
from responder.aws import Api
from responder.context import RunContext
from responder.errors import AGAIN, AwsCallFailed, BadInput, Refused
from responder.guardrails import check_access_key_id, is_temporary
from responder.iam.snapshot import access_keys
from responder.incident.facts_rotation import OldKeyDeactivated
from responder.incident.view import IncidentView
from responder.journal import IncidentRecord, Journal
from responder.run import followup
from responder.run.service import (
    Identified,
    Plan,
    is_rotation,
    open_routine,
    resume,
)
from responder.run.service import plan as plan_playbook
from responder.steps.replace import IAM_KEY_LIMIT

if TYPE_CHECKING:
    from responder.run.followup import Swept

PLAYBOOK = "rotate-key"


def _long_term(access_key_id: str) -> str:
    key = check_access_key_id(access_key_id, temporary_ok=True)
    if is_temporary(key):
        raise BadInput(f"{key} is a temporary (ASIA) key: it expires by itself and cannot be "
                       "rotated. Rotate the long-term key it was minted from, or shorten the "
                       f"role's session duration; if it leaked, `respond compromised {key}`")
    return key


def _check_room(ctx: RunContext, found: Identified) -> None:
    """Refuse, before anything changes, a rotation that could not finish."""
    user = found.target.user_name
    key = found.incident.access_key_id
    if user is None:
        raise Refused(f"{key} belongs to no IAM user: only a user's key can be rotated")
    try:
        keys = access_keys(Api(ctx.session_factory(), ctx.retry), user)
    except AwsCallFailed as exc:
        raise BadInput(f"identify: {exc.explain(AGAIN)}; nothing was changed") from exc
    if keys.get(key) != "Active":
        raise Refused(f"{key} of {user} is {keys.get(key, 'gone')}: only an Active key is "
                      "rotated. An Inactive key that nothing needs is deleted instead (`aws "
                      f"iam delete-access-key --user-name {user} --access-key-id {key}`)")
    if len(keys) >= IAM_KEY_LIMIT:
        other = next(k for k in keys if k != key)
        raise Refused(
            f"{user} already has two access keys ({key} and {other}, {keys[other]}): IAM allows "
            "two, so there is no room for the new one. Find which one nothing uses (`respond "
            f"audit`), delete it (`aws iam delete-access-key --user-name {user} "
            f"--access-key-id ...`), then rotate the other; nothing was changed")


def plan(ctx: RunContext, access_key_id: str) -> Plan:
    """--dry-run (and the plan shown before asking): identify and the refusals for real,
    every other step planned."""
    return plan_playbook(ctx, playbook.load(PLAYBOOK), _long_term(access_key_id), _check_room)


def start(ctx: RunContext, journal: Journal, access_key_id: str) -> IncidentRecord:
    """Open the key's rotation and run it until it waits for the applications."""
    return open_routine(
        ctx, journal, playbook.load(PLAYBOOK), _long_term(access_key_id), what="rotation",
        joins=is_rotation,
        busy=lambda existing: (
            f"{existing.access_key_id} has an open incident {existing.id} ({existing.status}): "
            "a leaked key is replaced by its response, not rotated. `respond resume "
            f"{existing.id}` finishes it"),
        check=_check_room)


def _rotation(journal: Journal, incident_id: str) -> IncidentRecord:
    record = journal.get(incident_id)
    if not is_rotation(record):
        raise BadInput(f"{incident_id} is not a rotation (playbook "
                       f"{record.playbook.get('name')}): `respond resume {incident_id}` "
                       "continues an incident")
    return record


def proceed(ctx: RunContext, journal: Journal, incident_id: str) -> IncidentRecord:
    """`--continue`: a human says the applications use the new key (or a missed one is
    fixed); the rotation goes on from where it waits."""
    record = _rotation(journal, incident_id)
    if not record.is_open:
        return record
    confirmed = dataclasses.replace(ctx, options=dataclasses.replace(ctx.options,
                                                                     confirmed=True))
    return resume(confirmed, journal, incident_id)


def reactivate(ctx: RunContext, journal: Journal, incident_id: str) -> Swept:
    """`--reactivate`: the old key Active again for an application the rotation missed."""

    record = _rotation(journal, incident_id)
    if record.status == "completed":
        raise Refused(f"rotation {incident_id} is finished: its old key was deleted")
    if IncidentView.load(journal, incident_id).done(OldKeyDeactivated) is None:
        raise Refused(f"rotation {incident_id} has not deactivated the old key: it is still "
                      "Active, nothing to re-activate")
    return followup.reactivate_old(ctx, journal, incident_id)
