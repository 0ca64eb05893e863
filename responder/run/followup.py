"""Work on an incident after its playbook ran: sweeps (CloudTrail again, for what it
delivered late) and copies of its files to the evidence bucket.

Each is a step appended to the incident (`sweep-1`, `sweep-2`, ..., `archive`), so it is
journaled like any step (intent and outcome of every AWS call, under the incident's
lease) and read back by the same view, report and status. A sweep killed halfway is
run again by the next `respond sweep`, under the same name. Copies never block anything:
a bucket that cannot be written is recorded (exit 5) and the files stay local.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from responder.aws import Api
from responder.context import RunContext, iso
from responder.errors import AwsCallFailed, NotVerified, Refused
from responder.incident.action import REGISTRY, Action
from responder.incident.facts import Incident
from responder.incident.sweeps import DEFAULT_OVERLAP_MINUTES
from responder.incident.verification import AFTER_ROLLBACK, after_sweep
from responder.incident.view import IncidentView
from responder.journal import IncidentRecord, Journal
from responder.journal.owner import new_owner
from responder.logging import get_logger, incident_log
from responder.report import document as report
from responder.run import verify
from responder.run.executor import Executor, IncidentSteps
from responder.run.lease import Lease, acquire
from responder.steps import archive as archive_step
from responder.steps.archive import ArchiveEvidence
from responder.steps.harden import Harden
from responder.steps.rollback import RollbackContainment
from responder.steps.rotate_watch import ReactivateOldKey
from responder.steps.schedule import ScheduleSweeps
from responder.steps.sweep import SweepCloudTrail

log = get_logger("responder.run.followup")

ARCHIVE_STEP = "archive"
SCHEDULE_STEP = "schedule-sweeps"
ROLLBACK_STEP = "rollback"
REACTIVATE_STEP = "reactivate-old"


def context_for(ctx: RunContext, record: IncidentRecord) -> RunContext:
    """The context to go on with an incident: its stored options (what this invocation
    says wins), acting through the role it was started with."""
    options = ctx.options.resumed_with(record.options)
    if options.role_arn and not ctx.options.role_arn:
        ctx = ctx.via_role(options.role_arn)
    if record.options.get("slack_webhook") and not options.slack_webhook:
        log.warning("notify.slack_webhook_missing", incident_id=record.id,
                    hint="set RESPONDER_SLACK_WEBHOOK to notify Slack on resume")
    return dataclasses.replace(ctx, options=options)


def run_appended(ctx: RunContext, journal: Journal, lease: Lease, incident_id: str, *,
                 name: str, action: type[Action], settings: Mapping[str, Any],
                 again: str = ""
                 ) -> tuple[str, str | None]:
    """Run `action` as step `name` appended to the incident; (status, error). Never
    raises for the step's own failure: it is journaled, and the caller decides. `again`
    is the command that runs it again (by default the next sweep)."""
    journal.add_step(incident_id, name, action.name, ctx.clock())
    view = IncidentView.load(journal, incident_id)
    record = view.record
    incident = Incident(record.id, record.access_key_id, view.playbook or "",
                        record.started_at, resumed=True)
    executor = Executor(ctx, incident, IncidentSteps(ctx, journal, lease, incident_id),
                        event="followup")
    ran = executor.run(name, action.name, settings, view=view,
                       history=tuple(journal.calls(incident_id, name)),
                       again=again or _sweep_again(incident_id), halts=False)
    return ran.status, ran.error


def archive(ctx: RunContext, journal: Journal, lease: Lease, incident_id: str) -> None:
    """Copy the incident's files to the evidence bucket, when one is set."""
    if ctx.options.evidence_bucket:
        run_appended(ctx, journal, lease, incident_id, name=ARCHIVE_STEP,
                     action=ArchiveEvidence, settings={})


def write_report(ctx: RunContext, journal: Journal, incident_id: str) -> None:
    """The incident's report.md and report.json as the journal holds it now."""
    try:
        path = report.write(IncidentView.load(journal, incident_id),  # calls: as written
                            ctx.incident_dir(incident_id), journal)
        journal.update_incident(incident_id, ctx.clock(), report=str(path))
    except OSError as exc:  # local files: said, never in the way of the outcome
        log.warning("report.unwritable", error=f"{type(exc).__name__}: {exc}")


def restore_evidence(ctx: RunContext, view: IncidentView) -> None:
    """A machine that lacks the incident's evidence file (a fresh Lambda instance) fetches
    it from the evidence bucket before anything reads it."""
    evidence = view.evidence
    bucket = ctx.options.evidence_bucket
    if evidence is None or not evidence.path or not bucket or Path(evidence.path).is_file():
        return
    try:
        restored = archive_step.restore(Api(ctx.session_factory(), ctx.retry), bucket,
                                        view.id, Path(evidence.path))
    except AwsCallFailed as exc:
        log.warning("evidence.unrestorable", bucket=bucket, error=exc.explain())
        return
    log.info("evidence.restored" if restored else "evidence.not_in_bucket", bucket=bucket,
             path=evidence.path)


@dataclass(frozen=True)
class Swept:
    """One follow-up (`respond sweep`, `respond rollback`): the incident afterwards, how
    its step ended, and the command that runs it again."""

    record: IncidentRecord
    step: str
    status: str
    error: str | None
    again: str


def _sweep_settings(view: IncidentView) -> dict[str, Any]:
    """The playbook's sweep overlap and notify topic, as journaled with the incident."""
    playbook = view.record.playbook
    sweeps = playbook.get("sweeps") or {}
    settings: dict[str, Any] = {
        "overlap_minutes": int(sweeps.get("overlap_minutes", DEFAULT_OVERLAP_MINUTES))}
    steps = playbook.get("steps", [])
    for spec in steps if isinstance(steps, list) else []:
        action = REGISTRY.get(str(spec.get("action")))
        given = spec.get("with") or {}
        if action is not None and action.kind == "notification" and given.get("sns_topic_arn"):
            settings["sns_topic_arn"] = given["sns_topic_arn"]
    return settings


def schedule(ctx: RunContext, journal: Journal, lease: Lease, incident_id: str,
             sweeps: Mapping[str, Any]) -> None:
    """Record when the sweeps are due (and, in Lambda, schedule them)."""
    run_appended(ctx, journal, lease, incident_id, name=SCHEDULE_STEP, action=ScheduleSweeps,
                 settings=sweeps)


def next_sweep(view: IncidentView) -> str:
    """The sweep step to run: one an earlier sweep left unfinished, else a new one."""
    steps = view.sweep_steps
    if steps and steps[-1].status not in {"done", "skipped"}:
        return steps[-1].name
    return f"sweep-{len(steps) + 1}"


@contextmanager
def _holding(ctx: RunContext, journal: Journal, incident_id: str,
             owner: str | None = None) -> Iterator[Lease]:
    """The incident's lease, kept alive, with its log, for work appended after the run."""
    owner = owner or new_owner()
    acquire(ctx, journal, incident_id, owner)
    lease = Lease(ctx, journal, incident_id, owner)
    try:
        with incident_log(ctx.incident_dir(incident_id) / "log.jsonl",
                          incident_id=incident_id), lease.kept_alive():
            yield lease
    finally:
        lease.release()


def sweep(ctx: RunContext, journal: Journal, incident_id: str,
          owner: str | None = None) -> Swept:
    """Look at CloudTrail again for an incident that contained its key."""
    record = journal.get(incident_id)
    if record.contained_at is None:
        raise Refused(f"incident {incident_id} never contained its key ({record.status}): "
                      f"there is nothing to sweep after; `respond resume {incident_id}` "
                      "finishes the response first")
    ctx = context_for(ctx, record)
    with _holding(ctx, journal, incident_id, owner) as lease:
        view = IncidentView.load(journal, incident_id)
        if (rolled := view.rolled_back) is not None:
            raise Refused(f"incident {incident_id} was rolled back ({rolled.why}): a sweep "
                          "would shut again what the rollback reopened; nothing was changed")
        restore_evidence(ctx, view)
        name = next_sweep(view)
        log.info("sweep.start", step=name, contained_at=iso(record.contained_at))
        status, error = run_appended(ctx, journal, lease, incident_id, name=name,
                                     action=SweepCloudTrail, settings=_sweep_settings(view))
        status, error = _observed(ctx, journal, incident_id, after_sweep(name),
                                  status=status, error=error, halt=True)
        write_report(ctx, journal, incident_id)
        if ctx.options.evidence_bucket:
            archive(ctx, journal, lease, incident_id)
            write_report(ctx, journal, incident_id)
    return Swept(journal.get(incident_id), name, status, error, _sweep_again(incident_id))


def _appended(ctx: RunContext, journal: Journal, incident_id: str, *, name: str,
              action: type[Action],
              settings: Mapping[str, Any], again: str, before: str,
              start: Mapping[str, Any] | None = None) -> Swept:
    """One step appended to an incident that is not running (`before` says what would be
    done, for the refusal), under its lease, its report written after; `start`, when
    given, is logged as `<name>.start` in the incident's log."""
    record = journal.get(incident_id)
    if record.status == "running":
        raise Refused(f"incident {incident_id} is still running: let it end (or `respond "
                      f"resume {incident_id}`) before {before}")
    ctx = context_for(ctx, record)
    with _holding(ctx, journal, incident_id) as lease:
        if start is not None:
            log.info(f"{name}.start", **start)
        status, error = run_appended(ctx, journal, lease, incident_id, name=name,
                                     action=action, settings=settings, again=again)
        if action is RollbackContainment:
            status, error = _observed(ctx, journal, incident_id, AFTER_ROLLBACK,
                                      status=status, error=error, halt=False)
        write_report(ctx, journal, incident_id)
    return Swept(journal.get(incident_id), name, status, error, again)


def _observed(ctx: RunContext, journal: Journal, incident_id: str, moment: str, *,
              status: str, error: str | None, halt: bool) -> tuple[str, str | None]:
    """After a follow-up that changed AWS, what AWS shows of every claim (run/verify.py),
    journaled; a mismatch fails the follow-up naming it, and with `halt` the incident is
    halted too (`respond resume` reads it again), never left saying completed."""
    if status != "done":
        return status, error
    found = verify.observed(ctx, journal, incident_id, moment,
                            Api(ctx.session_factory(), ctx.retry), halt=False)
    if found.ok:
        return status, error
    said = str(NotVerified(moment, found.said()))
    if halt:
        journal.update_incident(incident_id, ctx.clock(), status="halted", error=said)
    return "failed", said


def rollback(ctx: RunContext, journal: Journal, incident_id: str, reason: str) -> Swept:
    """Undo a false positive's containment (steps/rollback.py), journaled as a step of
    the incident with `reason`; run again, it finishes what a cut-short one began."""
    return _appended(ctx, journal, incident_id, name=ROLLBACK_STEP,
                     action=RollbackContainment, settings={"reason": reason},
                     again=f"`respond rollback {incident_id} --yes`",
                     before="rolling it back", start={"reason": reason})


def harden(ctx: RunContext, journal: Journal, incident_id: str,
           settings: Mapping[str, Any]) -> Swept:
    """`respond harden --incident`: the harden step again, appended to the incident
    (harden-2, harden-3, ...), with this invocation's settings (apply, cutoff)."""
    taken = {s.name for s in journal.steps(incident_id)}
    name = next(f"harden-{n}" for n in range(2, len(taken) + 3) if f"harden-{n}" not in taken)
    return _appended(ctx, journal, incident_id, name=name, action=Harden, settings=settings,
                     again="`respond harden` with the same options", before="hardening")


def reactivate_old(ctx: RunContext, journal: Journal, incident_id: str) -> Swept:
    """A rotation's old key Active again (steps/rotate_watch.py), journaled as a step of
    the rotation; `respond rotate --continue` later deactivates it again."""
    return _appended(ctx, journal, incident_id, name=REACTIVATE_STEP,
                     action=ReactivateOldKey, settings={},
                     again=f"`respond rotate --reactivate {incident_id} --yes`",
                     before="re-activating its old key")


def _sweep_again(incident_id: str) -> str:
    return f"`respond sweep {incident_id}`"


def watch(ctx: RunContext, journal: Journal, incident_id: str,
          waiting: Callable[[str, datetime], None]) -> list[Swept]:
    """Run every sweep still due, each at its time; `waiting(step, due)` is told before
    each wait (the CLI draws a countdown). A moment stays due until a sweep read at or
    after it (incident/sweeps.py), so sweeps run by hand earlier leave it due; one sweep
    after several overdue moments covers them all."""
    swept: list[Swept] = []
    covered: datetime | None = None
    while True:
        view = IncidentView.load(journal, incident_id)
        if not view.sweeps_due or view.sweeps_due[0] == covered:
            return swept  # nothing due, or a clock that does not move: never loop on it
        due = view.sweeps_due[0]
        waiting(next_sweep(view), due)
        remaining = (due - ctx.clock()).total_seconds()
        if remaining > 0:
            ctx.sleep(remaining)
        done = sweep(ctx, journal, incident_id)
        swept.append(done)
        if done.status == "failed":
            return swept
        covered = due
