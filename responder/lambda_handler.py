"""Lambda entry point for the EventBridge rule: GuardDuty / Health / Security Hub event in,
the DESIGN §2 object out; and for the sweeps it schedules itself: {"sweep": "<incident
id>"} in (EventBridge Scheduler), the incident's §2 object out.

Every finding of the event is answered on its own (`trigger.respond_all`, as `respond
finding` does). Refusals (sample finding, duplicate delivery, root or temporary key) and
bad input return their object and are not retried. When a finding's incident halted, or
another runner held its lease, the handler raises, but only after every other finding was
answered, so Lambda's retries (and then the dead-letter queue) take over; each retry
refuses the finished findings as duplicates and joins and resumes the open incidents.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError

from responder import findings
from responder.aws import Api, ApiCall, RetryPolicy, env_number, session_factory
from responder.context import Options, RunContext, Scheduler
from responder.errors import AwsCallFailed, BadInput, ResponderError
from responder.incident.view import IncidentView
from responder.journal import Journal, open_journal
from responder.logging import configure, get_logger
from responder.report import document as report
from responder.run import followup, trigger

log = get_logger("responder.lambda")


class Unfinished(ResponderError):
    """Some findings of the event halted or were held by another runner: retry the event.

    Raised only after every finding was answered; `result` is what the handler would
    otherwise have returned, `unfinished` the outcomes a retry can finish.
    """

    def __init__(self, result: dict[str, Any], unfinished: Sequence[trigger.Outcome]) -> None:
        named = ", ".join(
            f"{o.finding_id} ({o.document.document.incident_id or 'no incident'}: "
            f"{o.document.document.status})" for o in unfinished)
        super().__init__(f"{len(unfinished)} finding(s) not finished, Lambda retries the "
                         f"event to resume them: {named}")
        self.result = result
        self.unfinished = tuple(unfinished)


def _scheduler(context: Any) -> Scheduler | None:
    """Sweeps are scheduled with EventBridge Scheduler, invoking this very function, when
    the deployment gives the role the scheduler assumes (deploy/template.yaml does)."""
    role = os.environ.get("RESPONDER_SCHEDULER_ROLE_ARN")
    target = os.environ.get("RESPONDER_SCHEDULER_TARGET_ARN") or getattr(
        context, "invoked_function_arn", None)
    if not role or not target:
        return None
    return Scheduler(target_arn=str(target), role_arn=role,
                     group=os.environ.get("RESPONDER_SCHEDULER_GROUP", "default"))


def _context(context: Any = None) -> RunContext:
    env = os.environ
    return RunContext(
        session_factory=session_factory(),
        home=Path(env.get("RESPONDER_HOME", "/tmp/responder")),  # noqa: S108 - Lambda's only writable disk
        retry=RetryPolicy.from_env(),
        options=Options(notify_topic=env.get("RESPONDER_NOTIFY_TOPIC") or None,
                        slack_webhook=env.get("RESPONDER_SLACK_WEBHOOK") or None,
                        evidence_bucket=env.get("RESPONDER_EVIDENCE_BUCKET") or None),
        lease_seconds=env_number("RESPONDER_LEASE_SECONDS", 300.0),
        source="lambda",
        role_arn_template=env.get("RESPONDER_ROLE_ARN_TEMPLATE") or None,
        scheduler=_scheduler(context),
        home_account=_own_account(context),
    )


def _own_account(context: Any) -> str | None:
    """The function's account, from its ARN: identify compares the key's account with it
    without a call, so containment's two steps can be sent at once."""
    arn = str(getattr(context, "invoked_function_arn", "") or "")
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4].isdigit() else None


def _journal(ctx: RunContext) -> Journal:
    state = os.environ.get("RESPONDER_STATE")
    table = os.environ.get("RESPONDER_TABLE")
    return open_journal(state or (f"dynamodb://{table}" if table else None), ctx.home,
                        ctx.session_factory())


def _sweep(ctx: RunContext, journal: Journal, incident_id: str) -> dict[str, Any]:
    """{"sweep": "<incident id>"}, as an EventBridge Scheduler schedule sends it: look at
    CloudTrail again. A sweep that failed raises: the scheduler invokes the function
    asynchronously, so Lambda's own retries (then the dead-letter queue) run it again,
    and it resumes under the same step."""
    try:
        done = followup.sweep(ctx, journal, incident_id)
    except ResponderError as exc:
        log.warning("sweep.refused", incident_id=incident_id, error=str(exc))
        return report.refusal_of(exc, None, incident_id).to_json()
    document = report.document_of(IncidentView.load(journal, incident_id))
    if done.status == "failed":
        raise SweepFailed(f"{done.step} of {incident_id} failed: {done.error}")
    return document.to_json()


class SweepFailed(ResponderError):
    """A scheduled sweep failed: raised so that the invocation is retried."""


def _tell_notify_only(ctx: RunContext, parsed: Sequence[findings.Parsed]) -> None:
    """A finding the mapping decided to notify about only (docs/findings.md): no
    playbook runs, and the on-call topic hears of it, naming the command that acts on
    it. Never raises: the finding is answered (refused) whether or not the topic is."""
    topic = ctx.options.notify_topic
    told = [p.error for p in parsed if isinstance(p, findings.Rejected)
            and isinstance(p.error, findings.FindingRefused) and p.error.reason == "notify-only"]
    if not topic or not told:
        return
    api = Api(ctx.session_factory(), ctx.retry)
    for refused in told:
        key = refused.access_key_id or "the key it names"
        message = (f"{refused}\n\nNo playbook ran (docs/findings.md: notify only). To act "
                   f"on it: respond compromised {key}")
        try:
            api.call(ApiCall("sns", "Publish", {
                "TopicArn": topic, "Message": message,
                "Subject": f"aws-key-responder: review finding {refused.finding_id}"[:100]},
                mutating=True), region=topic.split(":")[3] or None)
        except (AwsCallFailed, BotoCoreError) as exc:
            log.warning("finding.notify_only_unsent", finding_id=refused.finding_id,
                        error=str(exc))


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Answer every finding in the event; returns the §2 object (or {"incidents": [...]}
    when one event carried several findings). Raises Unfinished, after answering them
    all, when any halted or was held by another runner, so that Lambda retries."""
    configure()
    os.umask(0o077)  # evidence and reports under /tmp are for this function only
    ctx = _context(context)
    journal = _journal(ctx)
    if isinstance(event, dict) and isinstance(event.get("sweep"), str):
        return _sweep(ctx, journal, event["sweep"])
    try:
        parsed = findings.parse_each(event)
    except BadInput as bad:
        log.warning("finding.refused", error=str(bad))
        return report.refusal_of(bad, None).to_json()
    _tell_notify_only(ctx, parsed)
    outcomes = trigger.respond_all(ctx, journal, parsed)
    for outcome in outcomes:
        if outcome.error is not None:
            log.warning("finding.unanswered" if outcome.retryable else "finding.refused",
                        finding_id=outcome.finding_id, exit_code=outcome.exit_code,
                        incident_id=outcome.document.document.incident_id, error=outcome.error)
    result = trigger.result_document(outcomes)
    unfinished = [o for o in outcomes if o.retryable]
    if unfinished:
        raise Unfinished(result, unfinished)
    return result
