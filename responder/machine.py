"""The runner: a `transitions` state machine built from a playbook, driven by the journal.

One state per step plus completed / halted / refused. A step's side effects run in the
`before` callback of the transition that leaves it, so a failure leaves the machine in
the step's own state, which is exactly what the journal says and where resume starts.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import boto3
from transitions import EventData, Machine

from responder import report
from responder.aws import Api, ApiCall, assuming, caller_access_key
from responder.context import Incident, RunContext, Target, iso, parse_iso
from responder.errors import (
    AlreadyHandled,
    AwsCallFailed,
    BadInput,
    LeaseHeld,
    OtherAccount,
    Refused,
    ResponderError,
    StepFailed,
)
from responder.guardrails import check_access_key_id, check_not_own_key
from responder.journal import IncidentExists, IncidentRecord, Journal, StepRecord
from responder.logging import get_logger, incident_log
from responder.notify import build_notice
from responder.playbook import RESERVED_STATES, Playbook, StepSpec
from responder.steps import REGISTRY, StepInput, StepResult
from responder.steps import notify as notify_step

TERMINAL = RESERVED_STATES
log = get_logger("responder.runner")


def new_incident_id(now: datetime) -> str:
    return f"inc-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_is_dead(owner: str) -> bool:
    """True only when the lease holder is a process on this machine that no longer exists:
    no need to wait out the lease after a crash. Anything uncertain counts as alive."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def explain(exc: AwsCallFailed) -> str:
    """Turn an AWS failure into what the on-call engineer must fix."""
    if exc.code in {"AccessDenied", "AccessDeniedException"}:
        return (
            f"{exc.operation} was denied ({exc.aws_message}); the responder's credentials "
            f"need {exc.service}:{exc.operation} (see docs/iam-policy.json). Fix the policy, "
            "then `respond resume`"
        )
    if exc.code == "NoSuchEntity":
        return (f"{exc.operation}: {exc.aws_message}. Was the user or key deleted meanwhile? "
                "If so, `respond status` shows what was done; nothing more is needed for it")
    if exc.code == "LimitExceeded":
        return (f"{exc.operation} hit an IAM limit ({exc.aws_message}): a user may hold two "
                "access keys. Delete a key you are sure is unused, then `respond resume`")
    return str(exc)


class JournalRecorder:
    """Api's CallRecorder bound to one step; keeps the lease alive while calls go on."""

    def __init__(self, runner: IncidentRun, step: str) -> None:
        self._runner = runner
        self._step = step

    def intent(self, call: ApiCall) -> int:
        self._runner.heartbeat()
        return self._runner.journal.intent(
            self._runner.incident.id, self._step, call, self._runner.ctx.clock()
        )

    def sending(self, token: int) -> None:
        self._runner.journal.sending(token)

    def result(
        self, token: int, *, ok: bool, attempts: int, result: Any = None, error: str | None = None
    ) -> None:
        self._runner.journal.result(
            token, ok=ok, attempts=attempts, now=self._runner.ctx.clock(), result=result,
            error=error,
        )


class IncidentRun:
    """Drives one incident from its first unfinished step to a terminal state."""

    state: str
    trigger: Callable[..., bool]

    def __init__(
        self,
        ctx: RunContext,
        journal: Journal,
        record: IncidentRecord,
        owner: str,
        *,
        resumed: bool,
        identified: Identified | None = None,
    ) -> None:
        self.ctx = ctx
        self.identified = identified
        self._heartbeat_lock = threading.Lock()
        self._renewed_at = -math.inf
        self.journal = journal
        self.owner = owner
        self.playbook = Playbook.from_dict(record.playbook, f"incident {record.id}")
        self.incident = Incident(
            id=record.id,
            access_key_id=record.access_key_id,
            playbook=self.playbook.name,
            started_at=record.started_at,
            resumed=resumed,
        )
        self.api = Api(ctx.session_factory(), ctx.retry)
        records = {s.name: s for s in journal.steps(record.id)}
        pending = [s for s in self.playbook.steps if records[s.name].status not in {
            "done", "skipped"} and not (records[s.name].status == "failed"
                                        and s.on_failure == "continue")]
        initial = pending[0].name if pending else "completed"
        specs = self.playbook.steps
        self.machine = Machine(
            model=self,
            states=[s.name for s in specs] + list(TERMINAL),
            initial=initial,
            auto_transitions=False,
            queued=True,
            send_event=True,
        )
        names: list[Any] = [s.name for s in specs]
        for i, spec in enumerate(specs):
            dest = specs[i + 1].name if i + 1 < len(specs) else "completed"
            self.machine.add_transition("advance", spec.name, dest,
                                        before=partial(self._execute, spec))
        self.machine.add_transition("halt", names, "halted")
        self.machine.add_transition("refuse", names, "refused")

    # -- lease -----------------------------------------------------------------

    def heartbeat(self) -> None:
        """Renew the lease, at most every quarter lease: a write per AWS call would make
        the journal, not AWS, the bottleneck of evidence collection."""
        now = self.ctx.monotonic()
        with self._heartbeat_lock:
            if now - self._renewed_at < self.ctx.lease_seconds / 4:
                return
            self._renewed_at = now
        self.journal.renew_lease(
            self.incident.id, self.owner, self.ctx.clock(), self.ctx.lease_seconds
        )

    # -- running ---------------------------------------------------------------

    def run(self) -> IncidentRecord:
        incident_dir = self.ctx.incident_dir(self.incident.id)
        with incident_log(incident_dir / "log.jsonl", incident_id=self.incident.id):
            self.journal.update_incident(self.incident.id, self.ctx.clock(), status="running",
                                         error=None)
            log.info("incident.run", access_key_id=self.incident.access_key_id,
                     playbook=self.playbook.name, resumed=self.incident.resumed,
                     from_step=self.state)
            if self.identified is not None:
                self._log_identified(self.identified)
            try:
                while self.state not in TERMINAL:
                    self._advance_once()
            except ResponderError as exc:
                exc.incident_id = self.incident.id
                raise
            finally:
                self.journal.release_lease(self.incident.id, self.owner)
        return self.journal.get(self.incident.id)

    def _log_identified(self, found: Identified) -> None:
        """identify ran before this log existed; record its start and end here too."""
        name = self.playbook.steps[0].name
        log.info("step.start", step=name, action=self.playbook.steps[0].action,
                 at=iso(found.started))
        log.info("step.end", step=name, status="done", at=iso(found.ended),
                 duration_ms=round((found.ended - found.started).total_seconds() * 1000),
                 error=None)

    def _advance_once(self) -> None:
        step = self.state
        try:
            self.trigger("advance")
        except LeaseHeld:
            raise  # someone else owns the incident now: touch nothing
        except (BadInput, Refused) as exc:
            self.trigger("refuse")
            self._close("refused", error=str(exc))
            raise
        except ResponderError as exc:
            self.trigger("halt")
            self._close("halted", error=str(exc), failing_step=step)
            raise
        if self.state == "completed":
            self._close("completed", error=None)

    def _close(self, status: str, error: str | None, failing_step: str | None = None) -> None:
        self.journal.update_incident(self.incident.id, self.ctx.clock(), status=status,
                                     error=error)
        if status == "halted":
            self._notify_halted(failing_step)
        try:
            path = report.write(self.journal, self.journal.get(self.incident.id),
                                self.ctx.incident_dir(self.incident.id))
            self.journal.update_incident(self.incident.id, self.ctx.clock(), report=str(path))
        except OSError as exc:
            log.exception("report.failed", error=str(exc))
        log.info("incident.end", status=status, error=error)

    def _target(self, steps: Iterable[StepRecord]) -> Target | None:
        identify = next((s for s in steps if s.action == "identify"), None)
        return Target.from_detail(identify.detail) if identify else None

    def _notify_halted(self, failing_step: str | None) -> None:
        """A halted run tells the humans too: which step, why, and how to resume."""
        spec = next((s for s in self.playbook.steps if s.action == "notify"), None)
        if spec is None:
            return
        topic, webhook = notify_step.targets(spec.settings, self.ctx.options)
        if not topic and not webhook:
            return
        steps = self.journal.steps(self.incident.id)
        notice = build_notice("halted", self.incident, self._target(steps), steps,
                              contained_at=self.journal.get(self.incident.id).contained_at,
                              failing_step=failing_step)
        api = Api(self.api.session, self.ctx.retry,
                  JournalRecorder(self, f"{spec.name}:halted"))
        sent, failed = notify_step.deliver(api, notice, topic, webhook, self.ctx.retry)
        log.info("notify.halted", sent=[s["channel"] for s in sent], failed=failed)

    def _step_input(self, spec: StepSpec, steps: Mapping[str, StepRecord]) -> StepInput:
        target = self._target(steps.values())
        return StepInput(
            ctx=self.ctx,
            incident=self.incident,
            target=target,
            settings=spec.settings,
            history=tuple(self.journal.calls(self.incident.id, spec.name)),
            earlier=tuple(steps.values()),
            contained_at=self.journal.get(self.incident.id).contained_at,
        )

    def _execute(self, spec: StepSpec, _event: EventData) -> None:
        """Observe, then act; journal the step's start and end either way."""
        action = REGISTRY[spec.action]()
        steps = {s.name: s for s in self.journal.steps(self.incident.id)}
        inp = self._step_input(spec, steps)
        started = self.ctx.clock()
        self.heartbeat()
        self.journal.step_started(self.incident.id, spec.name, started)
        log.info("step.start", step=spec.name, action=spec.action)
        api = Api(self.api.session, self.ctx.retry, JournalRecorder(self, spec.name))
        try:
            result = action.observe(inp, api) or action.run(inp, api)
        except AwsCallFailed as exc:
            self._fail(spec, started, explain(exc), exc)
            return
        except StepFailed as exc:
            self._fail(spec, started, exc.reason, exc, exc.detail)
            return
        except (BadInput, Refused) as exc:
            self._finish(spec, started, "failed", {}, str(exc))
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in a step must halt, journaled, not crash
            self._fail(spec, started, f"internal error: {type(exc).__name__}: {exc}", exc)
            return
        self._finish(spec, started, result.status, self._detail(result), None)
        if spec.action == "identify":
            target = Target.from_detail(result.detail)
            if target is not None:
                self.journal.update_incident(self.incident.id, self.ctx.clock(),
                                             user_name=target.user_name,
                                             account_id=target.account_id)
        self._maybe_contained()

    @staticmethod
    def _detail(result: StepResult) -> dict[str, Any]:
        detail = dict(result.detail)
        if result.effective_at is not None:
            detail["effective_at"] = iso(result.effective_at)
        return detail

    def _fail(self, spec: StepSpec, started: datetime, message: str, exc: Exception,
              detail: Mapping[str, Any] | None = None) -> None:
        self._finish(spec, started, "failed", detail or {}, message)
        if spec.on_failure == "continue" or not REGISTRY[spec.action].critical:
            log.warning("step.failed_continuing", step=spec.name, error=message)
            return
        raise StepFailed(spec.name, message) from exc

    def _finish(
        self, spec: StepSpec, started: datetime, status: Any, detail: Mapping[str, Any],
        error: str | None,
    ) -> None:
        ended = self.ctx.clock()
        self.journal.step_finished(self.incident.id, spec.name, status=status, now=ended,
                                   detail=detail, error=error)
        duration_ms = round((ended - started).total_seconds() * 1000)
        log.info("step.end", step=spec.name, status=status, duration_ms=duration_ms, error=error)

    def _maybe_contained(self) -> None:
        record = self.journal.get(self.incident.id)
        if record.contained_at is not None:
            return
        containing = [s for s in self.journal.steps(self.incident.id)
                      if REGISTRY[s.action].contains]
        if not containing or any(s.status != "done" for s in containing):
            return
        moments = [parse_iso(s.detail.get("effective_at")) or s.ended_at for s in containing]
        contained = max(m for m in moments if m is not None)
        self.journal.update_incident(self.incident.id, self.ctx.clock(), contained_at=contained)
        log.info("incident.contained", contained_at=iso(contained),
                 seconds=round((contained - self.incident.started_at).total_seconds(), 3))


@dataclass(frozen=True)
class BufferedCall:
    call: ApiCall
    intent_at: datetime
    ok: bool = False
    attempts: int = 0
    result: Any = None
    error: str | None = None
    result_at: datetime | None = None


class BufferRecorder:
    """Holds identify's calls made before the incident exists, to journal them after."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self.calls: list[BufferedCall] = []

    def intent(self, call: ApiCall) -> int:
        self.calls.append(BufferedCall(call, self._clock()))
        return len(self.calls) - 1

    def sending(self, token: int) -> None:
        """identify only reads; nothing to mark."""

    def result(
        self, token: int, *, ok: bool, attempts: int, result: Any = None, error: str | None = None
    ) -> None:
        pending = self.calls[token]
        self.calls[token] = BufferedCall(pending.call, pending.intent_at, ok, attempts, result,
                                         error, self._clock())


@dataclass(frozen=True)
class Identified:
    """identify's outcome, reached before any incident is opened."""

    incident: Incident
    target: Target
    result: StepResult
    started: datetime
    ended: datetime
    calls: tuple[BufferedCall, ...]


@dataclass(frozen=True)
class Plan:
    """What --dry-run found and would do."""

    identified: Identified
    steps: tuple[tuple[StepSpec, tuple[ApiCall, ...]], ...]


def checked_key(ctx: RunContext, access_key_id: str) -> tuple[str, boto3.Session]:
    """The key id if it is well formed and not the one this responder signs with (local
    checks, no AWS call), with the session that was checked."""
    key = check_access_key_id(access_key_id)
    session = ctx.session_factory()
    check_not_own_key(key, caller_access_key(session))
    return key, session


def identify(
    ctx: RunContext, playbook: Playbook, key: str, session: boto3.Session | None = None
) -> Identified:
    """The read-only identify step for a checked key, with no journal trace yet.

    Runs before an incident is opened so that a refusal (root key, not found, another
    account) leaves nothing behind but its one-line message.
    """
    session = session or ctx.session_factory()
    started = ctx.clock()
    incident = Incident(new_incident_id(started), key, playbook.name, started)
    spec = playbook.steps[0]
    recorder = BufferRecorder(ctx.clock)
    try:
        result = REGISTRY[spec.action]().run(
            StepInput(ctx, incident, None, spec.settings), Api(session, ctx.retry, recorder)
        )
    except AwsCallFailed as exc:
        raise StepFailed(spec.name, explain(exc)) from exc
    target = Target.from_detail(result.detail)
    if target is None:
        raise StepFailed(spec.name, "identify did not name the key's owner")
    return Identified(incident, target, result, started, ctx.clock(), tuple(recorder.calls))


def plan(ctx: RunContext, playbook: Playbook, access_key_id: str) -> Plan:
    """Dry run: the read-only identify step for real, every other step only planned."""
    found = identify(ctx, playbook, *checked_key(ctx, access_key_id))
    planned = tuple(
        (spec, REGISTRY[spec.action]().plan(
            StepInput(ctx, found.incident, found.target, spec.settings)))
        for spec in playbook.steps[1:]
    )
    return Plan(found, planned)


def _journal_identified(journal: Journal, found: Identified, playbook: Playbook) -> None:
    incident_id, name = found.incident.id, playbook.steps[0].name
    journal.step_started(incident_id, name, found.started)
    for buffered in found.calls:
        token = journal.intent(incident_id, name, buffered.call, buffered.intent_at)
        journal.result(token, ok=buffered.ok, attempts=buffered.attempts,
                       now=buffered.result_at or found.ended, result=buffered.result,
                       error=buffered.error)
    journal.step_finished(incident_id, name, status="done", now=found.ended,
                          detail=found.result.detail, error=None)
    journal.update_incident(incident_id, found.ended, user_name=found.target.user_name,
                            account_id=found.target.account_id)


def _still_contained(
    ctx: RunContext, session: boto3.Session, history: list[IncidentRecord]
) -> IncidentRecord | None:
    """The last completed incident of this key, if the key is still Inactive or gone.

    Re-running a finished response must not issue another replacement key; but a key
    that someone re-enabled since is live again and gets a new incident.
    """
    done = [r for r in history if r.status == "completed" and r.user_name]
    if not done:
        return None
    last = done[-1]
    api = Api(session, ctx.retry)
    try:
        keys = api.call(ApiCall("iam", "ListAccessKeys", {"UserName": last.user_name}))
    except AwsCallFailed as exc:
        if exc.code == "NoSuchEntity":  # the user is gone, and the key with it
            return last
        raise StepFailed("identify", explain(exc)) from exc
    status = next((k["Status"] for k in keys.get("AccessKeyMetadata", [])
                   if k["AccessKeyId"] == last.access_key_id), "Deleted")
    return None if status == "Active" else last


def via_role(ctx: RunContext, role_arn: str) -> RunContext:
    """The same run, acting through `role_arn` (remembered so a resume uses it again)."""
    return dataclasses.replace(
        ctx,
        session_factory=assuming(ctx.session_factory, role_arn),
        options=dataclasses.replace(ctx.options, role_arn=role_arn),
    )


def respond(
    ctx: RunContext, journal: Journal, playbook: Playbook, access_key_id: str, *,
    owner: str | None = None, finding_id: str | None = None,
) -> IncidentRecord:
    """Start an incident for the key, or join the open one, and run it to the end."""
    owner = owner or new_owner()
    key, session = checked_key(ctx, access_key_id)
    existing = journal.find_open(key)
    if existing is not None:
        log.info("incident.join", incident_id=existing.id)
        return resume(ctx, journal, existing.id, owner)
    history = journal.history_for_key(key)
    handled = _still_contained(ctx, session, history)
    if handled is not None:
        log.info("incident.already_contained", incident_id=handled.id)
        return handled
    try:
        found = identify(ctx, playbook, key, session)
    except OtherAccount as other:
        if not ctx.role_arn_template or ctx.options.role_arn:
            raise
        ctx = via_role(ctx, ctx.role_arn_template.format(account_id=other.owner_account))
        found = identify(ctx, playbook, key)
    resumed = bool(history)
    try:
        record = journal.create_incident(
            incident_id=found.incident.id,
            access_key_id=key,
            playbook=playbook.to_dict(),
            started_at=found.started,
            source=ctx.source,
            options=ctx.options.as_dict(),
            owner=owner,
            lease_seconds=ctx.lease_seconds,
            finding_id=finding_id,
        )
    except IncidentExists as exists:
        prior = journal.find_by_finding(finding_id) if finding_id else None
        if prior is not None:
            raise AlreadyHandled(finding_id or "", prior.id, prior.status) from exists
        log.info("incident.join", incident_id=exists.incident_id)
        return resume(ctx, journal, exists.incident_id, owner)
    _journal_identified(journal, found, playbook)
    return IncidentRun(ctx, journal, record, owner, resumed=resumed, identified=found).run()


def resume(
    ctx: RunContext, journal: Journal, incident_id: str, owner: str | None = None
) -> IncidentRecord:
    """Continue an incident from its first step not done; each step re-observes."""
    owner = owner or new_owner()
    record = journal.get(incident_id)
    if not record.is_open:
        return record
    try:
        journal.acquire_lease(incident_id, owner, ctx.clock(), ctx.lease_seconds)
    except LeaseHeld as held:
        if not owner_is_dead(held.owner):
            raise
        log.warning("lease.taken_over", incident_id=incident_id, dead_owner=held.owner)
        journal.take_over_lease(incident_id, held.owner, owner, ctx.clock(), ctx.lease_seconds)
    options = ctx.options.resumed_with(record.options)
    if options.role_arn and not ctx.options.role_arn:
        ctx = via_role(ctx, options.role_arn)
    if record.options.get("slack_webhook") and not options.slack_webhook:
        log.warning("notify.slack_webhook_missing", incident_id=incident_id,
                    hint="set RESPONDER_SLACK_WEBHOOK to notify Slack on resume")
    resumed_ctx = dataclasses.replace(ctx, options=options)
    return IncidentRun(resumed_ctx, journal, record, owner, resumed=True).run()


def graph(playbook: Playbook) -> str:
    """The playbook's state machine as Graphviz DOT (no graphviz dependency needed)."""
    lines = [f'digraph "{playbook.name}" {{', "  rankdir=LR;", '  node [shape=box];']
    specs = playbook.steps
    for i, spec in enumerate(specs):
        dest = specs[i + 1].name if i + 1 < len(specs) else "completed"
        label = "advance" if spec.on_failure == "halt" else "advance (continue on failure)"
        lines.append(f'  "{spec.name}" -> "{dest}" [label="{label}"];')
        lines.append(f'  "{spec.name}" -> "halted" [style=dashed];')
    lines.append(f'  "{specs[0].name}" -> "refused" [style=dashed];')
    lines += ['  "completed" [shape=doublecircle];', '  "halted" [shape=octagon];',
              '  "refused" [shape=octagon];', "}"]
    return "\n".join(lines)
