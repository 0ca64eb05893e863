"""`respond harden USER`: the harden step for one user, with or without an incident.

With `--incident ID` it is a step appended to that incident (journaled, in its report,
its file in the incident's directory). Without, there is no incident to journal into:
the step runs on its own, read-only unless `--apply --yes`, and its proposal is written
to `$RESPONDER_HOME/incidents/harden-<time>-<user>/`. Its apply observes before each
change, so running it again is what makes an interrupted one whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from responder.aws import Api, ApiCall
from responder.context import RunContext, iso
from responder.errors import (
    AGAIN,
    EXIT_COMPLETED,
    EXIT_HALTED,
    AwsCallFailed,
    BadInput,
    StepFailed,
)
from responder.incident.facts import Incident, Target
from responder.incident.facts_hardening import Hardened
from responder.incident.view import IncidentView
from responder.journal import Journal
from responder.report import document as report
from responder.report import hardening as report_hardening
from responder.report.model import IncidentDocument, StepEntry
from responder.run import followup
from responder.run.executor import Deferred, Executor
from responder.run.service import caller_account
from responder.steps.harden import Harden


@dataclass(frozen=True)
class Outcome:
    """What `respond harden` prints (the §2 object with `hardening`) and exits with."""

    document: IncidentDocument
    exit_code: int
    error: str | None = None


def for_incident(ctx: RunContext, journal: Journal, incident_id: str, user: str,
                 settings: Mapping[str, Any]) -> Outcome:
    record = journal.get(incident_id)
    if record.user_name != user:
        raise BadInput(f"incident {incident_id} is about {record.user_name or 'no IAM user'}, "
                       f"not {user}: leave out --incident, or name its user")
    done = followup.harden(ctx, journal, incident_id, settings)
    view = IncidentView.load(journal, incident_id)
    doc = report.document_of(view)
    step = next((s for s in view.followups if s.name == done.step), None)
    if step is not None and isinstance(step.facts, Hardened) and step.status == "done":
        doc = replace(doc, hardening=report_hardening.hardening_of(step.facts))
    return Outcome(doc, EXIT_HALTED if done.status == "failed" else EXIT_COMPLETED, done.error)


def standalone(ctx: RunContext, user: str, settings: Mapping[str, Any]) -> Outcome:
    api = Api(ctx.session_factory(), ctx.retry)
    try:
        api.call(ApiCall("iam", "GetUser", {"UserName": user}))
    except AwsCallFailed as exc:
        if exc.code == "NoSuchEntity":
            raise BadInput(f"there is no IAM user {user}; nothing was changed") from exc
        raise BadInput(f"harden: {exc.explain(AGAIN)}; nothing was changed") from exc
    started = ctx.clock()
    incident = Incident(f"harden-{started:%Y%m%d-%H%M%S}-{user}", "", "harden", started)
    target = Target(user, caller_account(ctx))
    executor = Executor(ctx, incident, Deferred(ctx), session=api.session, event=None)
    ran = executor.run("harden", Harden.name, settings, target=target, again=AGAIN, halts=True)
    result = ran.result
    if result is None:  # halts=True: a failure raised StepFailed
        raise StepFailed("harden", ran.error or "no result")
    facts = result.facts if isinstance(result.facts, Hardened) else None
    dry = bool(settings.get("dry_run"))
    doc = IncidentDocument(
        status="planned" if dry else "completed", user_name=user,
        account_id=target.account_id, playbook="harden", started_at=iso(started),
        steps=(StepEntry(name="harden", action=Harden.name, status=result.status,
                         started_at=iso(started), ended_at=iso(ctx.clock()),
                         detail=result.detail),),
        hardening=report_hardening.hardening_of(facts))
    return Outcome(doc, EXIT_COMPLETED)
