"""The run: one incident driven by a `transitions` machine from its first unfinished step
to a terminal state.

A step's side effects run in the `before` callback of the transition that leaves it, so
a failure leaves the machine in the step's own state, which is exactly what the journal
says and where resume starts. Each step first observes AWS, then acts; its typed facts
are journaled when it ends, and every step reads the incident through the same view.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from transitions import EventData, Machine

from responder.aws import Api
from responder.context import Incident, RunContext, iso
from responder.errors import (
    BadInput,
    Interrupted,
    LeaseHeld,
    Refused,
    ResponderError,
    StepFailed,
    step_failure,
)
from responder.journal import IncidentRecord, Journal
from responder.lease import Lease
from responder.logging import get_logger, incident_log
from responder.machine import COMPLETED, HALTED, REFUSED, TERMINAL, machine_spec
from responder.playbook import Playbook, StepSpec
from responder.recorder import JournalRecorder
from responder.steps import REGISTRY, StepInput
from responder.view import IncidentView, target_of

log = get_logger("responder.runner")


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
        self.api = Api(ctx.session_factory(), ctx.retry)
        initial = first_to_run(IncidentView.of(record, journal.steps(record.id)))
        self.machine = new_machine(self, self.playbook, initial, self._execute)

    def _recorder(self, step: str) -> JournalRecorder:
        return JournalRecorder(self.journal, self.lease, self.incident.id, step, self.ctx.clock)

    def view(self, *, calls: bool = False) -> IncidentView:
        return IncidentView.load(self.journal, self.incident.id, calls=calls)

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
        except (BadInput, Refused) as exc:
            self.trigger("refuse")
            self._close(REFUSED, error=str(exc))
            raise
        except ResponderError as exc:
            self.trigger("halt")
            self._close(HALTED, error=str(exc), failing_step=step)
            raise
        if self.state == COMPLETED:
            self._close(COMPLETED, error=None)

    def _close(self, status: str, error: str | None, failing_step: str | None = None, *,
               notify: bool = True) -> None:
        """Journal the end; a halted run tells the humans (unless a human stopped it)."""
        self.journal.update_incident(self.incident.id, self.ctx.clock(), status=status,
                                     error=error)
        if status == HALTED and notify:
            self._notify_halted(failing_step)
        from responder import followup  # noqa: PLC0415 - nothing of it before containment

        if status == COMPLETED and self.ctx.scheduler is not None:
            followup.schedule(self.ctx, self.journal, self.lease, self.incident.id,
                              self.playbook.sweeps)
        followup.write_report(self.ctx, self.journal, self.incident.id)
        if notify and self.ctx.options.evidence_bucket:  # a human's Ctrl-C is not waited on
            followup.archive(self.ctx, self.journal, self.lease, self.incident.id)
            followup.write_report(self.ctx, self.journal, self.incident.id)
        log.info("incident.end", status=status, error=error)

    def _notify_halted(self, failing_step: str | None) -> None:
        """A halted run tells the humans too: which step, why, and how to resume."""
        from responder.notice import build_notice  # noqa: PLC0415 - only once halted
        from responder.steps import notify as notify_step  # noqa: PLC0415

        spec = next((s for s in self.playbook.steps
                     if REGISTRY[s.action].kind == "notification"), None)
        if spec is None:
            return
        topic, webhook = notify_step.targets(spec.settings, self.ctx.options)
        if not topic and not webhook:
            return
        notice = build_notice("halted", self.view(), failing_step=failing_step)
        api = Api(self.api.session, self.ctx.retry,
                  self._recorder(f"{spec.name}:halted"))
        sent, failed = notify_step.deliver(api, notice, topic, webhook, self.ctx.retry)
        log.info("notify.halted", sent=[s["channel"] for s in sent], failed=failed)

    def _execute(self, spec: StepSpec, _event: EventData) -> None:
        """Observe, then act; journal the step's start and end either way."""
        action = REGISTRY[spec.action]()
        view = self.view()
        inp = StepInput(ctx=self.ctx, incident=self.incident, target=view.target,
                        settings=spec.settings,
                        history=tuple(self.journal.calls(self.incident.id, spec.name)),
                        view=view, step_name=spec.name)
        started = self.ctx.clock()
        self.lease.heartbeat()
        self.journal.step_started(self.incident.id, spec.name, started)
        log.info("step.start", step=spec.name, action=spec.action)
        api = Api(self.api.session, self.ctx.retry, self._recorder(spec.name))
        try:
            result = action.observe(inp, api) or action.run(inp, api)
        except (BadInput, Refused) as exc:
            self._finish(spec, started, "failed", {}, str(exc))
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in a step must halt, journaled, not crash
            message, detail = step_failure(exc, again="`respond resume`")
            self._fail(spec, started, message, exc, detail)
            return
        detail = result.detail
        if result.effective_at is not None:
            detail["effective_at"] = iso(result.effective_at)
        self._finish(spec, started, result.status, detail, None)
        if (target := target_of(result.facts)) is not None:
            self.journal.update_incident(self.incident.id, self.ctx.clock(),
                                         user_name=target.user_name,
                                         account_id=target.account_id)
        self._maybe_contained()
        if action.kind == "evidence" and result.status == "done":
            # Kept where it outlives this machine before anything else can go wrong.
            from responder import followup  # noqa: PLC0415 - after containment

            followup.archive(self.ctx, self.journal, self.lease, self.incident.id)

    def _fail(self, spec: StepSpec, started: datetime, message: str, exc: Exception,
              detail: Mapping[str, Any] | None = None) -> None:
        self._finish(spec, started, "failed", detail or {}, message)
        if spec.on_failure == "continue" or not REGISTRY[spec.action].critical:
            log.warning("step.failed_continuing", step=spec.name, error=message)
            return
        raise StepFailed(spec.name, message) from exc

    def _finish(self, spec: StepSpec, started: datetime, status: Any,
                detail: Mapping[str, Any], error: str | None) -> None:
        ended = self.ctx.clock()
        self.journal.step_finished(self.incident.id, spec.name, status=status, now=ended,
                                   detail=detail, error=error)
        duration_ms = round((ended - started).total_seconds() * 1000)
        log.info("step.end", step=spec.name, status=status, duration_ms=duration_ms, error=error)

    def _maybe_contained(self) -> None:
        view = self.view()
        if view.contained_at is not None:
            return
        contained = view.containment_moment()
        if contained is None:
            return
        self.journal.update_incident(self.incident.id, self.ctx.clock(), contained_at=contained)
        log.info("incident.contained", contained_at=iso(contained),
                 seconds=round((contained - self.incident.started_at).total_seconds(), 3))
