"""From parsed findings to answers: dedupe by finding id, pick the account, run each one.

Shared by `respond finding` and the Lambda handler, so both refuse, deduplicate and
report exactly alike. EventBridge delivers at least once: the finding id is journaled
with the incident (a unique key), and a second delivery is refused naming the first
incident, unless that incident is still open (halted, or its runner died): then the
delivery joins it and resumes, which is how a Lambda retry finishes a halted response.

A document may hold several findings. `respond_all` answers each on its own, in
document order, whatever happened to the ones before it (refused, halted, lease held,
even an unexpected error; only Ctrl-C or SIGTERM stops it, and the findings it did not
reach are still listed), and returns one `Outcome` per finding; `worst` and
`result_document` turn them into the exit code and the one JSON object to print.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from responder import playbook
from responder.context import RunContext
from responder.errors import (
    EXIT_COMPLETED,
    EXIT_HALTED,
    EXIT_LEASE_HELD,
    AlreadyHandled,
    Interrupted,
    ResponderError,
)
from responder.findings import Parsed, Rejected, Trigger
from responder.incident.view import IncidentView
from responder.journal import IncidentRecord, Journal
from responder.logging import get_logger
from responder.report import document as report
from responder.report.model import IncidentDocument, RefusalDocument
from responder.run import service

log = get_logger("responder.run.trigger")

RETRYABLE = frozenset({EXIT_HALTED, EXIT_LEASE_HELD})
"""Exit codes that leave work a later delivery can finish (resume, or the lease lapses)."""


def respond(ctx: RunContext, journal: Journal, trigger: Trigger) -> IncidentRecord:
    """Run the trigger's playbook for its key, in the finding's account.

    Raises AlreadyHandled when the finding already has a finished incident; joins (and
    resumes) one that is still open, so a re-delivery after a halt finishes the response.
    """
    prior = journal.find_by_finding(trigger.finding_id)
    if prior is not None and not prior.is_open:
        log.info("finding.duplicate", finding_id=trigger.finding_id, incident_id=prior.id)
        raise AlreadyHandled(trigger.finding_id, prior.id, prior.status)
    if prior is not None:
        log.info("finding.resume", finding_id=trigger.finding_id, incident_id=prior.id,
                 status=prior.status)
        return service.resume(ctx, journal, prior.id)  # the role it used is in its options
    ctx = service.for_finding_account(ctx, trigger.finding_id, trigger.account_id)
    if trigger.session is not None:  # what the finding says about a temporary key's session
        ctx = dataclasses.replace(ctx, options=dataclasses.replace(ctx.options,
                                                                   session=trigger.session))
    if trigger.first_seen is not None:  # kept with the incident, for harden's cutoff
        ctx = dataclasses.replace(ctx, options=dataclasses.replace(
            ctx.options, finding_first_seen=trigger.first_seen))
    log.info("finding.respond", finding_id=trigger.finding_id, source=trigger.source,
             type=trigger.finding_type, access_key_id=trigger.access_key_id)
    return service.respond(ctx, journal, playbook.load(trigger.playbook),
                           trigger.access_key_id, finding_id=trigger.finding_id)


@dataclass(frozen=True)
class FindingDocument:
    """One finding's §2 object: the incident's document, or the refusal's for a finding
    answered without one; plus `finding_id` and `exit_code`, so each entry of a list says
    which finding it answers and how."""

    document: IncidentDocument
    finding_id: str | None
    exit_code: int
    refused: bool = False
    """Answered without an incident: printed as a refusal is (its exit_code, then
    finding_id), where an incident's document ends with finding_id, then exit_code."""

    def to_json(self) -> dict[str, Any]:
        if self.refused:
            refusal = RefusalDocument(self.document, self.exit_code)
            return {**refusal.to_json(), "finding_id": self.finding_id}
        return {**self.document.to_json(), "finding_id": self.finding_id,
                "exit_code": self.exit_code}


@dataclass(frozen=True)
class Outcome:
    """How one finding of a document was answered."""

    finding_id: str | None
    """None only for an entry that could not be read as a finding at all."""
    exit_code: int
    """DESIGN §2: the incident's (IncidentView.exit_code), or the refusal's or error's."""
    document: FindingDocument
    """The §2 object: the incident's, or report.refusal_of's for a finding answered
    without one, with the finding's id and exit code."""
    error: str | None = None
    """What stopped it, one line for stderr; None when the incident ran to its end."""
    ran: bool = False
    """True when the document is an incident this finding drove (whatever its status);
    False when it was answered without running anything (refused, duplicate, bad input)."""

    @property
    def retryable(self) -> bool:
        """Halted or held by another runner: a later delivery can finish it."""
        return self.exit_code in RETRYABLE


def respond_all(ctx: RunContext, journal: Journal, parsed: Iterable[Parsed]) -> list[Outcome]:
    """Answer every parsed finding in turn, one Outcome each, in the same order.

    Nothing one finding does stops the next: a rejection, a refusal, a halt, a held
    lease or an unexpected error becomes that finding's Outcome and the loop goes on.
    Only an interruption (Ctrl-C, SIGTERM) stops it: the finding in progress is halted,
    and each one not yet started is answered as interrupted, nothing changed for it.
    """
    items = list(parsed)
    outcomes: list[Outcome] = []
    for index, found in enumerate(items):
        try:
            outcomes.append(answer(ctx, journal, found))
        except (Interrupted, KeyboardInterrupt) as stop:
            stopped = stop if isinstance(stop, Interrupted) else Interrupted(str(stop) or "SIGINT")
            log.warning("finding.interrupted", finding_id=found.finding_id,
                        incident_id=stopped.incident_id, left=len(items) - index - 1)
            outcomes.append(_stopped(journal, found, stopped))
            outcomes.extend(_stopped(journal, rest, Interrupted(stopped.signal_name))
                            for rest in items[index + 1:])
            break
    return outcomes


def answer(ctx: RunContext, journal: Journal, found: Parsed) -> Outcome:
    """The Outcome of one parsed finding (see respond_all); raises only Interrupted or
    KeyboardInterrupt, which respond_all turns into outcomes."""
    if isinstance(found, Rejected):
        return _without_incident(found.error, found.finding_id, found.access_key_id)
    try:
        record = respond(ctx, journal, found)
    except AlreadyHandled as duplicate:
        return _without_incident(duplicate, found.finding_id, found.access_key_id,
                                 duplicate.existing_incident)
    except Interrupted:
        raise
    except ResponderError as exc:
        if exc.incident_id is None:
            return _without_incident(exc, found.finding_id, found.access_key_id)
        return _incident(journal, found.finding_id, exc.incident_id, exc.exit_code, str(exc))
    except Exception as exc:  # one finding's crash must not leave the rest unanswered
        log.error("finding.crashed", finding_id=found.finding_id,  # noqa: TRY400 - one line
                  access_key_id=found.access_key_id, error=f"{type(exc).__name__}: {exc}")
        log.debug("finding.crashed.traceback", exc_info=True)  # shown with -v only
        crash = ResponderError(
            f"finding {found.finding_id}: unexpected {type(exc).__name__}: {exc}; "
            "`respond status` shows whether an incident was opened for it")
        return _without_incident(crash, found.finding_id, found.access_key_id)
    return _incident(journal, found.finding_id, record.id, None, None)


def _stopped(journal: Journal, found: Parsed, stop: Interrupted) -> Outcome:
    """A finding the interruption caught in progress, or before it started."""
    if isinstance(found, Rejected):  # answered without any work: say so even now
        return _without_incident(found.error, found.finding_id, found.access_key_id)
    if stop.incident_id is not None:
        return _incident(journal, found.finding_id, stop.incident_id, stop.exit_code, str(stop))
    return _without_incident(stop, found.finding_id, found.access_key_id)


def _without_incident(exc: ResponderError, finding_id: str | None,
                      access_key_id: str | None, incident_id: str | None = None) -> Outcome:
    """`incident_id`: the incident that already answered the finding (a duplicate)."""
    refusal = report.refusal_of(exc, access_key_id, incident_id)
    document = FindingDocument(refusal.document, finding_id, refusal.exit_code, refused=True)
    return Outcome(finding_id, exc.exit_code, document, str(exc))


def _incident(journal: Journal, finding_id: str | None, incident_id: str,
              exit_code: int | None, error: str | None) -> Outcome:
    view = IncidentView.load(journal, incident_id)
    code = view.exit_code if exit_code is None else exit_code
    document = FindingDocument(report.document_of(view), finding_id, code)
    return Outcome(finding_id, code, document, error, ran=True)


def worst(outcomes: Iterable[Outcome]) -> int:
    """The exit code of a run that answered `outcomes`: the worst of theirs.

    Worst means the one a human must act on first. Halted (1) outranks everything: a
    key may still be live and only `respond resume` finishes it, so no other finding's
    code may hide it. Otherwise the highest code wins: 5 (completed, humans not told)
    > 4 (another runner holds a lease) > 3 (refused) > 2 (bad input) > 0 (completed).
    With no outcome at all, 0.
    """
    codes = {o.exit_code for o in outcomes}
    if EXIT_HALTED in codes:
        return EXIT_HALTED
    return max(codes, default=EXIT_COMPLETED)


def result_document(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The one JSON object of the run, as printed or returned: the finding's own §2 object
    when the document held one finding, else {"incidents": [one per finding, in document
    order]}."""
    if len(outcomes) == 1:
        return outcomes[0].document.to_json()
    return {"incidents": [o.document.to_json() for o in outcomes]}
