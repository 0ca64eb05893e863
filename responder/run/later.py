"""The one place a run loads code late: what comes after the key is contained.

The report, the notices, the evidence bucket and the sweeps' schedule need report/ and
the follow-up work (run/followup.py): about 30 ms of imports, measured with `python -X
importtime` (decision 35), that a run must not pay before UpdateAccessKey. The runner
and the service call these entry points, and each loads what it needs on first use.
Outside this module, only the CLI's entry (cli/__init__.py) and the step registry
(incident/kinds.py's table) load anything late.
"""

from __future__ import annotations

from collections.abc import Callable

from responder.aws import Api
from responder.context import RunContext
from responder.incident.action import REGISTRY
from responder.incident.verification import Verification
from responder.incident.view import IncidentView
from responder.journal import IncidentRecord, Journal
from responder.logging import get_logger
from responder.playbook import Playbook
from responder.run.lease import Lease
from responder.run.machine import COMPLETED, HALTED

log = get_logger("responder.run.later")


def archive(ctx: RunContext, journal: Journal, lease: Lease, incident_id: str) -> None:
    """The incident's files to the evidence bucket (when one is set), as soon as the
    evidence is collected: kept where it outlives this machine."""
    from responder.run import followup  # noqa: PLC0415 - see the module's docstring

    followup.archive(ctx, journal, lease, incident_id)


def verified(ctx: RunContext, journal: Journal, incident_id: str, moment: str, api: Api, *,
             halt: bool = True) -> Verification:
    """Re-read AWS for everything the incident claims, journaled (run/verify.py); with
    `halt`, a mismatch raises NotVerified naming it."""
    from responder.run import verify  # noqa: PLC0415 - see the module's docstring

    return verify.observed(ctx, journal, incident_id, moment, api, halt=halt)


def closed(ctx: RunContext, journal: Journal, lease: Lease, incident_id: str, *,
           playbook: Playbook, status: str, error: str | None, notify: bool,
           failing_step: str | None,
           api_for: Callable[[str], Api]) -> None:
    """What follows the end of a run: a halted run tells the humans (unless a human
    stopped it), a completed one schedules its sweeps (in Lambda); the report is written,
    and the files copied to the evidence bucket."""
    from responder.run import followup  # noqa: PLC0415 - see the module's docstring

    if status == HALTED and notify:
        _notify_halted(ctx, journal, incident_id, playbook=playbook,
                       failing_step=failing_step, api_for=api_for)
    if status == COMPLETED and ctx.scheduler is not None:
        followup.schedule(ctx, journal, lease, incident_id, playbook.sweeps)
    followup.write_report(ctx, journal, incident_id)
    if notify and ctx.options.evidence_bucket:  # a human's Ctrl-C is not waited on
        followup.archive(ctx, journal, lease, incident_id)
        followup.write_report(ctx, journal, incident_id)
    log.info("incident.end", status=status, error=error)


def _notify_halted(ctx: RunContext, journal: Journal, incident_id: str, *,
                   playbook: Playbook, failing_step: str | None,
                   api_for: Callable[[str], Api]) -> None:
    """A halted run tells the humans too: which step, why, and how to resume."""
    from responder.report.notice import build_notice  # noqa: PLC0415 - see the docstring
    from responder.steps import notify as notify_step  # noqa: PLC0415

    spec = next((s for s in playbook.steps
                 if REGISTRY.kind_of(s.action) == "notification"), None)
    if spec is None:
        return
    topic, webhook = notify_step.targets(spec.settings, ctx.options)
    if not topic and not webhook:
        return
    notice = build_notice("halted", IncidentView.load(journal, incident_id),
                          failing_step=failing_step)
    sent, failed = notify_step.send(api_for(f"{spec.name}:halted"), notice, topic, webhook,
                                    ctx.retry)
    log.info("notify.halted", sent=[s.channel for s in sent],
             failed=[s.to_detail() for s in failed])


def resumed(ctx: RunContext, journal: Journal, record: IncidentRecord) -> RunContext:
    """The context to go on with an incident (its stored options, its role), with its
    evidence file fetched back from the bucket when this machine lacks it."""
    from responder.run import followup  # noqa: PLC0415 - see the module's docstring

    resumed_ctx = followup.context_for(ctx, record)
    followup.restore_evidence(resumed_ctx, IncidentView.load(journal, record.id))
    return resumed_ctx
