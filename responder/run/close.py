"""A human's hand on an incident's end: `respond close`, and an interrupt that landed
where the runner could not answer it.

`respond close ID --reason TEXT` is the way out of an incident the responder cannot
finish (one that halts again on every resume): a human takes it over and says why. It
changes nothing in AWS; it takes the incident's lease (so it never closes one a live
runner is working on), journals the end (status closed, the reason as its error), logs
it and writes the report again, as every end of an incident does (run/later.py).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import Final

from responder.aws import Api
from responder.context import RunContext
from responder.errors import BadInput, PlaybookInvalid
from responder.journal import IncidentRecord, Journal
from responder.journal.owner import new_owner
from responder.logging import get_logger, incident_log
from responder.playbook import Playbook
from responder.run import later
from responder.run.lease import Lease, acquire

log = get_logger("responder.run.close")

FINISHED: Final = frozenset({"completed", "refused", "closed"})
"""An incident in one of these has ended: there is nothing left to close."""
CLOSED_BY: Final = "closed by a human: "
"""How a closed incident's error begins; the reason follows."""


def close(ctx: RunContext, journal: Journal, incident_id: str, reason: str,
          owner: str | None = None) -> IncidentRecord:
    """Close the incident with `reason`; the record as closed. Raises BadInput for an
    empty reason, an unknown or finished incident (nothing changed), LeaseHeld when a
    live runner holds it."""
    said = " ".join(reason.split())
    if not said:
        raise BadInput(f"--reason is required: say why a human takes incident {incident_id} "
                       "over (it is kept in the journal and the report)")
    _refuse_finished(journal.get(incident_id))
    owner = owner or new_owner()
    acquire(ctx, journal, incident_id, owner)
    lease = Lease(ctx, journal, incident_id, owner)
    try:
        with incident_log(ctx.incident_dir(incident_id) / "log.jsonl",
                          incident_id=incident_id):
            record = journal.get(incident_id)
            _refuse_finished(record)  # it may have ended while the lease was free
            error = CLOSED_BY + said
            journal.update_incident(incident_id, ctx.clock(), status="closed", error=error)
            log.info("incident.closed", reason=said, was=record.status, by=owner)
            _ended(ctx, journal, lease, record, error)
    finally:
        lease.release()
    return journal.get(incident_id)


def _refuse_finished(record: IncidentRecord) -> None:
    if record.status in FINISHED:
        raise BadInput(f"incident {record.id} has already ended ({record.status}): there is "
                       f"nothing to close; `respond status {record.id}` shows it")


def _ended(ctx: RunContext, journal: Journal, lease: Lease, record: IncidentRecord,
           error: str) -> None:
    """What follows every end of an incident (later.closed: the report written again),
    without notifying: the human who closed it is the one who knows."""
    try:
        playbook = Playbook.from_dict(record.playbook, f"incident {record.id}")
    except PlaybookInvalid as exc:  # a playbook that no longer reads may be why it is closed
        log.warning("close.playbook_unreadable", error=str(exc))
        from responder.run import followup  # noqa: PLC0415 - as later.py loads it, late

        followup.write_report(ctx, journal, record.id)
        return
    later.closed(ctx, journal, lease, record.id, playbook=playbook, status="closed",
                 error=error, notify=False, failing_step=None,
                 api_for=lambda _step: Api(ctx.session_factory(), ctx.retry))


def halt_interrupted(journal: Journal, incident_id: str, signal_name: str,
                     now: datetime) -> IncidentRecord:
    """An interrupt that landed outside the runner's own guard (the incident opened, its
    run not yet begun; or its end being written) can leave the incident running under
    this process's lease: it is halted as the runner would have halted it, and the lease
    let go. Anyone else's incident is left as it is. The record afterwards."""
    record = journal.get(incident_id)
    holder = record.lease_owner
    if holder is None or not _this_process(holder):
        return record
    if record.status == "running":
        journal.update_incident(incident_id, now, status="halted",
                                error=f"interrupted by {signal_name}")
        log.info("incident.end", incident_id=incident_id, status="halted",
                 error=f"interrupted by {signal_name}")
    journal.release_lease(incident_id, holder)
    return journal.get(incident_id)


def _this_process(owner: str) -> bool:
    """Whether a lease owner (journal/owner.py's host:pid:token) is this process."""
    host, _, rest = owner.partition(":")
    return host == socket.gethostname() and rest.partition(":")[0] == str(os.getpid())
