"""Who may work on an incident now: the lease, its owner names and its heartbeat.

One open incident has one runner. The lease lives in the journal (a conditional claim
with an expiry, as in aws-lambda-powertools' idempotency records); a runner renews it
while it works and releases it when it stops. A lease whose holder is a process on
this machine that no longer exists is taken over at once instead of waited out.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from responder.context import RunContext
from responder.errors import LeaseHeld
from responder.journal import Journal
from responder.journal.owner import owner_is_dead
from responder.logging import get_logger

log = get_logger("responder.run.lease")


def acquire(ctx: RunContext, journal: Journal, incident_id: str, owner: str) -> None:
    """Take the incident's lease, from a dead local holder too; else raise LeaseHeld."""
    try:
        journal.acquire_lease(incident_id, owner, ctx.clock(), ctx.lease_seconds)
    except LeaseHeld as held:
        if not owner_is_dead(held.owner):
            raise
        log.warning("lease.taken_over", incident_id=incident_id, dead_owner=held.owner)
        journal.take_over_lease(incident_id, held.owner, owner, ctx.clock(), ctx.lease_seconds)


class Lease:
    """A held lease: renewed as work goes on, released at the end."""

    def __init__(self, ctx: RunContext, journal: Journal, incident_id: str, owner: str) -> None:
        self._ctx = ctx
        self._journal = journal
        self.incident_id = incident_id
        self.owner = owner
        self._lock = threading.Lock()
        self._renewed_at = -math.inf
        self._lost: LeaseHeld | None = None

    @contextmanager
    def kept_alive(self) -> Iterator[None]:
        """Renew the lease in the background every quarter lease while the block runs: one
        AWS call retried for longer than the lease must not let another runner take the
        incident over mid-call. A lease lost meanwhile is raised at the next heartbeat."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(max(self._ctx.lease_seconds / 4, 0.01)):
                try:
                    self._renew()
                except LeaseHeld as lost:
                    self._lost = lost
                    return
                except Exception as exc:  # noqa: BLE001 - the next call's heartbeat retries
                    log.warning("lease.renew_failed", error=f"{type(exc).__name__}: {exc}")

        thread = threading.Thread(target=beat, name=f"lease-{self.incident_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def heartbeat(self) -> None:
        """Renew the lease, at most every quarter lease: a write per AWS call would make
        the journal, not AWS, the bottleneck of evidence collection."""
        if self._lost is not None:
            raise self._lost
        now = self._ctx.monotonic()
        with self._lock:
            if now - self._renewed_at < self._ctx.lease_seconds / 4:
                return
            self._renewed_at = now
        self._renew()

    def _renew(self) -> None:
        self._journal.renew_lease(self.incident_id, self.owner, self._ctx.clock(),
                                  self._ctx.lease_seconds)

    def release(self) -> None:
        self._journal.release_lease(self.incident_id, self.owner)
