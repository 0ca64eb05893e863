"""Lambda entry point for the EventBridge rule: GuardDuty / Health / Security Hub event in,
the DESIGN §2 object out.

Refusals (sample finding, duplicate delivery, root or temporary key) return their object
and are not retried. A halted incident raises, so Lambda's retries (and then the
dead-letter queue) take over; each retry joins the open incident and resumes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from responder import findings, report, trigger
from responder.aws import RetryPolicy, session_factory
from responder.context import Options, RunContext
from responder.errors import AlreadyHandled, BadInput, Refused
from responder.journal import Journal, open_journal
from responder.logging import configure, get_logger
from responder.view import IncidentView

log = get_logger("responder.lambda")


def _context() -> RunContext:
    env = os.environ
    return RunContext(
        session_factory=session_factory(),
        home=Path(env.get("RESPONDER_HOME", "/tmp/responder")),  # noqa: S108 - Lambda's only writable disk
        retry=RetryPolicy.from_env(),
        options=Options(notify_topic=env.get("RESPONDER_NOTIFY_TOPIC") or None,
                        slack_webhook=env.get("RESPONDER_SLACK_WEBHOOK") or None),
        lease_seconds=float(env.get("RESPONDER_LEASE_SECONDS", "300")),
        source="lambda",
        role_arn_template=env.get("RESPONDER_ROLE_ARN_TEMPLATE") or None,
    )


def _journal(ctx: RunContext) -> Journal:
    state = os.environ.get("RESPONDER_STATE")
    table = os.environ.get("RESPONDER_TABLE")
    return open_journal(state or (f"dynamodb://{table}" if table else None), ctx.home,
                        ctx.session_factory())


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Respond to every actionable finding in the event; returns the §2 object (or
    {"incidents": [...]} when one event carried several findings)."""
    configure()
    ctx = _context()
    journal = _journal(ctx)
    try:
        triggers = findings.parse(event)
    except (BadInput, Refused) as refusal:
        log.warning("finding.refused", error=str(refusal))
        return report.error_document(refusal, None)
    docs: list[dict[str, Any]] = []
    for found in triggers:
        try:
            record = trigger.respond(ctx, journal, found)
        except AlreadyHandled as duplicate:
            docs.append(report.incident_document(
                IncidentView.load(journal, duplicate.existing_incident)))
            continue
        except (BadInput, Refused) as refusal:
            log.warning("finding.refused", finding_id=found.finding_id, error=str(refusal))
            docs.append(report.error_document(refusal, found.access_key_id))
            continue
        docs.append(report.incident_document(IncidentView.load(journal, record.id)))
    return docs[0] if len(docs) == 1 else {"incidents": docs}
