"""The run: one incident driven by a `transitions` machine from its first unfinished step
to a terminal state.

A step's side effects run in the `before` callback of the transition that leaves it, so
a failure leaves the machine in the step's own state, which is exactly what the journal
says and where resume starts. Each step first observes AWS, then acts; its typed facts
are journaled when it ends, and every step reads the incident through the same view.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from transitions import EventData, Machine

from responder.aws import Api, ApiCall, CallRecorder
from responder.context import RunContext, iso
from responder.errors import (
    BadInput,
    Interrupted,
    LeaseHeld,
    Refused,
    ResponderError,
    Waiting,
)
from responder.incident.action import REGISTRY, StepResult
from responder.incident.facts import Incident
from responder.incident.verification import AFTER_ATTACKER, AFTER_CONTAINMENT, AT_END
from responder.incident.view import IncidentView, target_of
from responder.journal import IncidentRecord, Journal
from responder.logging import get_logger, incident_log
from responder.playbook import Playbook, StepSpec
from responder.run import later
from responder.run.executor import Executor, IncidentSteps
from responder.run.lease import Lease
from responder.run.machine import COMPLETED, HALTED, REFUSED, TERMINAL, WAITING, machine_spec
from responder.steps.identify import known_account

log = get_logger("responder.run.runner")


def new_machine(model: Any, playbook: Playbook, initial: str,
                execute: Callable[[StepSpec, EventData], None]) -> Machine:
    """The `transitions` machine of machine_spec(playbook), on `model`."""
    spec = machine_spec(playbook)
    machine = Machine(model=model, states=list(spec.states), initial=initial,
                      auto_transitions=False, queued=True, send_event=True)
    for t in spec.transitions:
        before = partial(execute, t.step) if t.step is not None else None
        machine.add_transition(t.trigger, t.source, t.dest, before=before)
    return machine


@dataclass(frozen=True)
class EarlierStep:
    """A step that ran before the incident's log existed (identify runs before the
    incident is opened): its start and end are logged when the run begins."""

    name: str
    action: str
    started: datetime
    ended: datetime


def first_to_run(view: IncidentView) -> str:
    """Where a run starts: the first step not finished, or an earlier step that failed
    but was let through (on_failure: continue) whose kind of fact a step still to run
    needs; so a resume re-collects the evidence that replace-key halted for."""
    steps = view.steps
    for i, step in enumerate(steps):
        if not step.finished:
            return step.name
        if step.status == "failed" and step.kind is not None and any(
            step.kind in REGISTRY[later.action].needs
            for later in steps[i + 1:] if later.status not in {"done", "skipped"}
        ):
            return step.name
    return COMPLETED


class _Ahead:
    """The outcome of a step that ran alongside the step before it."""

    def __init__(self) -> None:
        self.error: BaseException | None = None


class _InPair:
    """A paired step's recorder. The first step's request opens the gate as it leaves;
    the second step's calls start only then, so the calls are made in the playbook's
    order (the k-th call of a run is the same call every time) while the second's
    request needs no answer to the first's. The wait gives up after a few seconds: a
    first step that cannot send must not hold back the second's containment."""

    WAIT_SECONDS = 5.0

    def __init__(self, inner: CallRecorder, gate: threading.Event, *, first: bool) -> None:
        self._inner = inner
        self._gate = gate
        self._first = first

    def intent(self, call: ApiCall) -> Any:
        if not self._first:
            self._gate.wait(self.WAIT_SECONDS)
        return self._inner.intent(call)

    def sending(self, token: Any) -> None:
        self._inner.sending(token)
        if self._first:
            self._gate.set()

    def result(self, token: Any, *, ok: bool, attempts: int, result: Any = None,
               error: str | None = None) -> None:
        self._inner.result(token, ok=ok, attempts=attempts, result=result, error=error)


class IncidentRun:
    """Drives one incident, whose lease `owner` already holds, to a terminal state."""

    state: str
    trigger: Callable[..., bool]

    def __init__(self, ctx: RunContext, journal: Journal, record: IncidentRecord, owner: str,
                 *, resumed: bool, earlier: tuple[EarlierStep, ...] = ()) -> None:
        self.ctx = ctx
        self.earlier = earlier
        self.journal = journal
        self.lease = Lease(ctx, journal, record.id, owner)
        self.playbook = Playbook.from_dict(record.playbook, f"incident {record.id}")
        self.incident = Incident(id=record.id, access_key_id=record.access_key_id,
                                 playbook=self.playbook.name, started_at=record.started_at,
                                 resumed=resumed)
        self.executor = Executor(ctx, self.incident,
                                 IncidentSteps(ctx, journal, self.lease, record.id))
        initial = first_to_run(IncidentView.of(record, journal.steps(record.id)))
        self._ahead: dict[str, _Ahead] = {}
        self.machine = new_machine(self, self.playbook, initial, self._execute)

    def _recorder(self, step: str) -> CallRecorder:
        return self.executor.steps.recorder(step)

    def view(self) -> IncidentView:
        return IncidentView.load(self.journal, self.incident.id)

    def run(self) -> IncidentRecord:
        incident_dir = self.ctx.incident_dir(self.incident.id)
        with incident_log(incident_dir / "log.jsonl", incident_id=self.incident.id):
            self.journal.update_incident(self.incident.id, self.ctx.clock(), status="running",
                                         error=None)
            log.info("incident.run", access_key_id=self.incident.access_key_id,
                     playbook=self.playbook.name, resumed=self.incident.resumed,
                     from_step=self.state)
            for step in self.earlier:
                log.info("step.start", step=step.name, action=step.action, at=iso(step.started))
                log.info("step.end", step=step.name, status="done", at=iso(step.ended),
                         duration_ms=round((step.ended - step.started).total_seconds() * 1000),
                         error=None)
            try:
                with self.lease.kept_alive():
                    self._resume_checks()
                    while self.state not in TERMINAL:
                        self._advance_once()
            except ResponderError as exc:
                exc.incident_id = self.incident.id
                raise
            except KeyboardInterrupt as stop:  # SIGINT, or SIGTERM as the CLI delivers it
                signal_name = str(stop) or "SIGINT"
                self._close(HALTED, error=f"interrupted by {signal_name}", notify=False)
                raise Interrupted(signal_name, self.incident.id) from stop
            finally:
                self.lease.release()
        return self.journal.get(self.incident.id)

    def _advance_once(self) -> None:
        step = self.state
        try:
            self.trigger("advance")
        except LeaseHeld:
            raise  # someone else owns the incident now: touch nothing
        except Waiting as wait:  # what was asked for so far is done: not a failure
            self.trigger("wait")
            self._close(WAITING, error=None)
            log.info("incident.waiting", step=step, reason=wait.reason)
            return
        except (BadInput, Refused) as exc:
            self.trigger("refuse")
            self._close(REFUSED, error=str(exc))
            raise
        except ResponderError as exc:
            self.trigger("halt")
            self._close(HALTED, error=str(exc), failing_step=step)
            raise
        if self.state == COMPLETED:
            self._finish(step)

    def _resume_checks(self) -> None:
        """A run that starts where containment is done but was never verified (a resume
        after a mismatch) re-reads it first; one whose steps are all done only lacks its
        final verification."""
        if self.state == COMPLETED:
            self._finish(None)
            return
        try:
            self._maybe_contained()
        except ResponderError as exc:
            self._close(HALTED, error=str(exc), failing_step=self.state)
            raise

    def _finish(self, step: str | None) -> None:
        """Completed only when AWS shows what the incident claims: else halted, naming
        the mismatch (`respond resume` reads it again)."""
        try:
            later.verified(self.ctx, self.journal, self.incident.id, AT_END, self._reader())
        except ResponderError as exc:
            self._close(HALTED, error=str(exc), failing_step=step)
            raise
        self._close(COMPLETED, error=None)

    def _reader(self) -> Api:
        """Verification's reads: not journaled as calls (the observation is, whole)."""
        return Api(self.executor.session, self.ctx.retry)

    def _close(self, status: str, error: str | None, failing_step: str | None = None, *,
               notify: bool = True) -> None:
        """Journal the end, then what follows it (run/later.py)."""
        self.journal.update_incident(self.incident.id, self.ctx.clock(), status=status,
                                     error=error)
        later.closed(self.ctx, self.journal, self.lease, self.incident.id,
                     playbook=self.playbook, status=status, error=error, notify=notify,
                     failing_step=failing_step, api_for=self.executor.api)

    def _execute(self, spec: StepSpec, _event: EventData) -> None:
        """Run the step (and the step sent at once with it); the incident is contained
        when every containment step is done."""
        ahead = self._ahead.pop(spec.name, None)
        if ahead is not None:  # it ran alongside the step before it: its outcome is here
            if ahead.error is not None:
                raise ahead.error
            return
        if self.incident.resumed and REGISTRY.kind_of(spec.action) == "containment" \
                and self._done(spec.name):
            return  # done alongside a step that was cut short: AWS holds it already
        partner = self._partner(spec)
        result = self._run_step(spec) if partner is None else self._run_pair(spec, partner)
        self._maybe_contained()
        kind = REGISTRY.kind_of(spec.action)
        if kind == "attacker" and result is not None and result.status == "done":
            later.verified(self.ctx, self.journal, self.incident.id, AFTER_ATTACKER,
                           self._reader())
        if kind == "evidence" and result is not None and result.status == "done":
            # Kept where it outlives this machine before anything else can go wrong.
            later.archive(self.ctx, self.journal, self.lease, self.incident.id)

    def _done(self, name: str) -> bool:
        return any(s.name == name and s.status == "done" for s in self.view().steps)

    def _partner(self, spec: StepSpec) -> StepSpec | None:
        """The step to send at once with `spec`: in a fresh run whose account identify
        compared, the next step when both are containment steps and the next needs
        nothing of this one but the moment they began (Action.alongside): revoke-sessions'
        cutoff, not disable-key's answer."""
        steps = self.playbook.steps
        index = steps.index(spec)
        if self.incident.resumed or index + 1 == len(steps):
            return None
        if known_account(self.ctx, self.executor.session) is None:
            # identify could not compare the key's account with ours without a call: the
            # deny waits for UpdateAccessKey's answer, which proves the key is ours (or,
            # NoSuchEntity, has the account asked) before any write to a user.
            return None
        partner = steps[index + 1]
        if (REGISTRY.kind_of(spec.action) == REGISTRY.kind_of(partner.action) == "containment"
                and REGISTRY[partner.action].alongside):
            return partner
        return None

    def _run_pair(self, first: StepSpec, second: StepSpec) -> StepResult | None:
        """Both containment steps at once, each journaled as if alone. The second's calls
        wait until the first's request has left (UpdateAccessKey is still the third call,
        DESIGN §3), then go without waiting for its answer."""
        pair_at = self.ctx.clock()
        gate = threading.Event()
        outcome = _Ahead()

        def second_step() -> None:
            try:
                self._run_step(second, pair_at=pair_at,
                               recorder=_InPair(self._recorder(second.name), gate, first=False))
            except BaseException as exc:  # noqa: BLE001 - raised by the second's own transition
                outcome.error = exc

        thread = threading.Thread(target=contextvars.copy_context().run, args=(second_step,),
                                  name=f"step-{second.name}", daemon=True)
        thread.start()
        try:
            return self._run_step(first, pair_at=pair_at,
                                  recorder=_InPair(self._recorder(first.name), gate, first=True))
        finally:
            gate.set()  # the first step ended without a request on the wire
            thread.join()
            self._ahead[second.name] = outcome

    def _run_step(self, spec: StepSpec, *, pair_at: datetime | None = None,
                  recorder: CallRecorder | None = None) -> StepResult | None:
        """The step through the executor; None when it failed and the incident goes on
        without it (on_failure: continue, or a step that never halts: notify)."""
        view = self.view()
        halts = spec.on_failure == "halt" and REGISTRY[spec.action].critical
        ran = self.executor.run(spec.name, spec.action, spec.settings, view=view,
                                history=tuple(self.journal.calls(self.incident.id, spec.name)),
                                again="`respond resume`", halts=halts, pair_at=pair_at,
                                recorder=recorder)
        if ran.result is None:
            log.warning("step.failed_continuing", step=spec.name, error=ran.error)
            return None
        if (target := target_of(ran.result.facts)) is not None:
            self.journal.update_incident(self.incident.id, self.ctx.clock(),
                                         user_name=target.user_name,
                                         account_id=target.account_id)
        return ran.result

    def _maybe_contained(self) -> None:
        """Contained once every containment step is done and AWS shows it: the key
        Inactive (or gone), the deny in place with this incident's cutoff."""
        view = self.view()
        if view.contained_at is not None:
            return
        contained = view.containment_moment()
        if contained is None:
            return
        later.verified(self.ctx, self.journal, self.incident.id, AFTER_CONTAINMENT,
                       self._reader())
        self.journal.update_incident(self.incident.id, self.ctx.clock(), contained_at=contained)
        log.info("incident.contained", contained_at=iso(contained),
                 seconds=round((contained - self.incident.started_at).total_seconds(), 3))
