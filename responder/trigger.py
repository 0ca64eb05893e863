"""From a parsed finding to an incident: dedupe by finding id, pick the account, run.

Shared by `respond finding` and the Lambda handler, so both refuse and deduplicate
exactly alike. EventBridge delivers at least once: the finding id is journaled with the
incident (a unique key), and a second delivery is refused naming the first incident.
"""

from __future__ import annotations

from responder import playbook, service
from responder.context import RunContext
from responder.errors import AlreadyHandled
from responder.findings import Trigger
from responder.journal import IncidentRecord, Journal
from responder.logging import get_logger

log = get_logger("responder.trigger")


def respond(ctx: RunContext, journal: Journal, trigger: Trigger) -> IncidentRecord:
    """Run the trigger's playbook for its key, in the finding's account."""
    prior = journal.find_by_finding(trigger.finding_id)
    if prior is not None:
        log.info("finding.duplicate", finding_id=trigger.finding_id, incident_id=prior.id)
        raise AlreadyHandled(trigger.finding_id, prior.id, prior.status)
    ctx = service.for_finding_account(ctx, trigger.finding_id, trigger.account_id)
    log.info("finding.respond", finding_id=trigger.finding_id, source=trigger.source,
             type=trigger.finding_type, access_key_id=trigger.access_key_id)
    return service.respond(ctx, journal, playbook.load(trigger.playbook),
                           trigger.access_key_id, finding_id=trigger.finding_id)
