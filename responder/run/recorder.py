"""Api's CallRecorder bound to one step of one incident: every AWS call the step makes is
journaled (intent before, `sending` as the request leaves, the outcome after), and each
intent renews the lease, so a long step never loses its incident to another runner."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from responder.aws import ApiCall
from responder.journal import CallHandle, Journal
from responder.run.lease import Lease


class JournalRecorder:
    def __init__(self, journal: Journal, lease: Lease, incident_id: str, step: str,
                 clock: Callable[[], datetime]) -> None:
        self._journal = journal
        self._lease = lease
        self._incident_id = incident_id
        self._step = step
        self._clock = clock

    def intent(self, call: ApiCall) -> CallHandle:
        self._lease.heartbeat()
        return self._journal.intent(self._incident_id, self._step, call, self._clock())

    def sending(self, token: CallHandle) -> None:
        self._journal.sending(token)

    def result(
        self, token: CallHandle, *, ok: bool, attempts: int, result: Any = None,
        error: str | None = None,
    ) -> None:
        self._journal.result(token, ok=ok, attempts=attempts, now=self._clock(),
                             result=result, error=error)
