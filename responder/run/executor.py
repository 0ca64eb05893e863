"""The one place a step runs: every playbook step, identify (before its incident exists),
the containment pair, and every step appended after the playbook (sweeps, archive,
rollback, harden, re-activation), and a standalone `respond harden`.

It builds the step's input, journals its start and end, logs both, lets the action
observe AWS before it acts, and turns an exception into the failure it journals. What
differs between those callers is said by parameters, not by copies:

- where start, end and calls are written (`StepLog`): straight into the incident's
  journal under its lease (`IncidentSteps`), or held until the incident exists, for
  identify, which must run before one is opened (`Deferred`, replayed into it later);
- whether a failure halts the incident (`halts`: a critical playbook step) or is only
  journaled for the caller to report (follow-ups never stop anything after them);
- the command that runs the step again once its cause is fixed (`again`), which every
  failure message ends with.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from responder.aws import AnySession, Api, ApiCall, CallRecorder
from responder.context import RunContext, iso
from responder.errors import BadInput, Interrupted, Refused, StepFailed, Waiting, step_failure
from responder.incident.action import REGISTRY, StepInput, StepResult
from responder.incident.facts import Incident, Target
from responder.incident.view import IncidentView
from responder.journal import CallRecord, Journal, StepStatus
from responder.logging import get_logger
from responder.run.lease import Lease
from responder.run.recorder import JournalRecorder

log = get_logger("responder.run.executor")


class StepLog(Protocol):
    """Where a step's start, end and AWS calls are written."""

    def started(self, name: str, at: datetime) -> None: ...

    def finished(self, name: str, *, status: StepStatus, at: datetime,
                 detail: Mapping[str, Any], error: str | None) -> None: ...

    def recorder(self, name: str) -> CallRecorder: ...


class IncidentSteps:
    """The incident's journal, under its lease: each start renews the lease, and every
    call is journaled before it is sent (JournalRecorder)."""

    def __init__(self, ctx: RunContext, journal: Journal, lease: Lease, incident_id: str
                 ) -> None:
        self._ctx = ctx
        self._journal = journal
        self._lease = lease
        self._incident_id = incident_id

    def started(self, name: str, at: datetime) -> None:
        self._lease.heartbeat()
        self._journal.step_started(self._incident_id, name, at)

    def finished(self, name: str, *, status: StepStatus, at: datetime,
                 detail: Mapping[str, Any], error: str | None) -> None:
        self._journal.step_finished(self._incident_id, name, status=status, now=at,
                                    detail=detail, error=error)

    def recorder(self, name: str) -> CallRecorder:
        return JournalRecorder(self._journal, self._lease, self._incident_id, name,
                               self._ctx.clock)


@dataclass(frozen=True)
class HeldCall:
    """A call made before the incident existed, journaled once it does."""

    call: ApiCall
    intent_at: datetime
    ok: bool = False
    attempts: int = 0
    result: Any = None
    error: str | None = None
    result_at: datetime | None = None


class _HeldCalls:
    """CallRecorder that keeps the calls in memory (identify sends its two reads at once,
    hence the lock)."""

    def __init__(self, held: Deferred) -> None:
        self._held = held

    def intent(self, call: ApiCall) -> int:
        with self._held.lock:
            self._held.calls.append(HeldCall(call, self._held.clock()))
            return len(self._held.calls) - 1

    def sending(self, token: Any) -> None:
        """Nothing to mark: a held call is journaled only after it was answered."""

    def result(self, token: Any, *, ok: bool, attempts: int, result: Any = None,
               error: str | None = None) -> None:
        with self._held.lock:
            pending = self._held.calls[token]
            self._held.calls[token] = HeldCall(pending.call, pending.intent_at, ok, attempts,
                                               result, error, self._held.clock())


class Deferred:
    """A step's start, end and calls held in memory: identify runs before the incident
    is opened (a refusal must leave nothing behind), so what it did is written into the
    incident by `replay` once there is one. A standalone `respond harden` has no
    incident at all and never replays."""

    def __init__(self, ctx: RunContext) -> None:
        self.clock = ctx.clock
        self.lock = threading.Lock()
        self.calls: list[HeldCall] = []
        self.start: datetime | None = None
        self.end: tuple[StepStatus, datetime, Mapping[str, Any], str | None] | None = None

    def started(self, name: str, at: datetime) -> None:
        self.start = at

    def finished(self, name: str, *, status: StepStatus, at: datetime,
                 detail: Mapping[str, Any], error: str | None) -> None:
        self.end = (status, at, detail, error)

    def recorder(self, name: str) -> CallRecorder:
        return _HeldCalls(self)

    def replay(self, journal: Journal, incident_id: str, name: str) -> None:
        """Write the held step into the incident, as if it had run there."""
        if self.start is None or self.end is None:
            raise ValueError(f"step {name} never ran: nothing to replay")
        status, ended, detail, error = self.end
        journal.step_started(incident_id, name, self.start)
        for held in self.calls:
            token = journal.intent(incident_id, name, held.call, held.intent_at)
            journal.result(token, ok=held.ok, attempts=held.attempts,
                           now=held.result_at or ended, result=held.result, error=held.error)
        journal.step_finished(incident_id, name, status=status, now=ended, detail=detail,
                              error=error)


@dataclass(frozen=True)
class Ran:
    """How a step ended: its status, its result when it reached one, its error."""

    status: StepStatus
    result: StepResult | None
    error: str | None
    started: datetime
    ended: datetime


class Executor:
    """Runs steps of one incident (or of work before or without one) through `steps`."""

    def __init__(self, ctx: RunContext, incident: Incident, steps: StepLog, *,
                 session: AnySession | None = None, event: str | None = "step") -> None:
        self.ctx = ctx
        self.incident = incident
        self.steps = steps
        self.session = session if session is not None else ctx.session_factory()
        self._event = event
        """The log events' prefix: `step.start`/`step.end`, or `followup.*` for work
        appended after the playbook (docs/decisions.md); None logs nothing now: identify's
        start and end are logged into its incident's log once there is one."""

    def api(self, name: str, recorder: CallRecorder | None = None) -> Api:
        """Calls made as step `name`, each written where its start and end are."""
        return Api(self.session, self.ctx.retry, recorder or self.steps.recorder(name))

    def run(self, name: str, action: str, settings: Mapping[str, Any], *,
            view: IncidentView | None = None, target: Target | None = None,
            history: tuple[CallRecord, ...] = (),
            again: str, halts: bool, pair_at: datetime | None = None,
            recorder: CallRecorder | None = None) -> Ran:
        """Observe, then act; its start and end written either way.

        A refusal (bad input, a guardrail) and a wait are journaled and raised: they stop
        whatever runs the step. Any other exception is journaled as the step's failure
        (ending with `again`), then raised as StepFailed when the step `halts`, else
        returned for the caller to report. `target`, when given, is who the step acts
        on without an incident's view (a standalone `respond harden`). A signal
        (Interrupted, KeyboardInterrupt) leaves the step running: whoever runs it next
        takes it up again."""
        inp = StepInput(ctx=self.ctx, incident=self.incident,
                        target=target or (view.target if view is not None else None),
                        settings=settings, history=history, view=view, step_name=name,
                        pair_at=pair_at)
        step = REGISTRY[action]()
        started = self.ctx.clock()
        self.steps.started(name, started)
        if self._event is not None:
            log.info(f"{self._event}.start", step=name, action=action)
        api = self.api(name, recorder)
        try:
            result = step.observe(inp, api) or step.run(inp, api)
        except (Interrupted, KeyboardInterrupt):
            raise
        except (BadInput, Refused) as exc:
            self._end(name, started, "failed", {}, str(exc))
            raise
        except Waiting as wait:
            self._end(name, started, "waiting", wait.detail, None)
            raise
        except Exception as exc:
            message, detail = step_failure(exc, again=again)
            ended = self._end(name, started, "failed", detail, message)
            if halts:
                raise StepFailed(name, message) from exc
            return Ran("failed", None, message, started, ended)
        detail = result.detail
        if result.effective_at is not None:
            detail["effective_at"] = iso(result.effective_at)
        ended = self._end(name, started, result.status, detail, None)
        return Ran(result.status, result, None, started, ended)

    def _end(self, name: str, started: datetime, status: StepStatus,
             detail: Mapping[str, Any], error: str | None) -> datetime:
        ended = self.ctx.clock()
        self.steps.finished(name, status=status, at=ended, detail=detail, error=error)
        if self._event is not None:
            log.info(f"{self._event}.end", step=name, status=status, error=error,
                     duration_ms=round((ended - started).total_seconds() * 1000))
        return ended
