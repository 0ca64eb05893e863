"""`respond`'s commands for the key's life outside an emergency: rollback, audit,
rotate (and their printing). Like commands.py they parse and print; the work is in
followup.py, audit.py and rotation.py."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from responder.cli.output import (
    ask,
    confirmed_plan,
    context,
    countdown,
    err,
    journal_of,
    journal_to_act,
    out,
    out_json,
    print_doc,
    show,
    swept,
)
from responder.context import RunContext, iso, parse_iso, responder_home
from responder.errors import (
    EXIT_BAD_INPUT,
    EXIT_COMPLETED,
    EXIT_FINDINGS,
    EXIT_HALTED,
    EXIT_INCOMPLETE,
    BadInput,
)
from responder.incident.view import IncidentView

if TYPE_CHECKING:
    from responder.audit.retire import Candidate, Outcome
    from responder.audit.run import AuditRun


def cmd_rollback(args: argparse.Namespace) -> int:
    """Without --yes: the plan (each item once, what sweeps shut included), exit 0 as
    every preview (DESIGN §2; nothing changed). With it: undone, re-read, journaled with
    every reason given."""
    from responder.run import followup  # noqa: PLC0415 - rollback only
    from responder.steps.rollback import earlier_reasons, undo_plan  # noqa: PLC0415

    journal = journal_of(args)
    view = IncidentView.load(journal, args.incident_id)
    plan, earlier = undo_plan(view), earlier_reasons(view)
    if not args.yes:
        if args.output == "json":
            out_json({"incident_id": args.incident_id, "would_undo": plan,
                      "rolled_back_before": [r.to_detail() for r in earlier]})
        else:
            before = [f"rolled back before ({r.at or 'time not recorded'}): {r.reason}"
                      for r in earlier] + (["running it again re-reads everything from AWS "
                                            "and finishes what is left"] if earlier else [])
            out("\n".join([*before, f"rollback of {args.incident_id} would:",
                             *[f"  {line}" for line in plan or ["undo nothing"]],
                             "nothing was changed: pass --yes --reason TEXT to undo it"]))
        return EXIT_COMPLETED
    if not (args.reason or "").strip():
        raise BadInput("--reason is required with --yes: say why it was a false positive")
    done = followup.rollback(context(args), journal, args.incident_id, args.reason.strip())
    return swept(journal, done, args.output)


def cmd_audit(args: argparse.Namespace) -> int:
    """Findings are printed (and imported with --to-security-hub), never acted on."""
    from responder.audit import run as auditing  # noqa: PLC0415 - audit only
    from responder.audit import text as audit_text  # noqa: PLC0415
    from responder.audit.credential_report import Settings  # noqa: PLC0415
    from responder.aws import Api  # noqa: PLC0415

    def progress(done: int, total: int, last: Any) -> None:
        sys.stderr.write(f"\r{audit_text.progress_line(done, total, last)}\x1b[K"
                         + ("\n" if done == total else ""))
        sys.stderr.flush()

    ctx = context(args)
    days = args.deactivate_unused
    if args.yes and not days:
        raise BadInput("--yes goes with --deactivate-unused DAYS: the audit alone changes "
                       "nothing")
    if days and args.output in {"csv", "md", "asff", "sarif"}:
        raise BadInput(f"--deactivate-unused prints its plan and outcomes as human or json, "
                       f"not {args.output}: run the audit for the {args.output} apart")
    asked = auditing.Asked(
        Settings(max_age_days=args.max_age_days, unused_days=days or args.unused_days,
                 role_check_keys=args.role_check_keys),
        organization=args.org, role_template=ctx.role_arn_template, workers=args.workers,
        to_security_hub=args.to_security_hub)
    done = auditing.run(Api(ctx.session_factory(), ctx.retry), ctx.clock(), asked,
                        seen_dir=responder_home() / "audit" / "seen",
                        progress=progress if sys.stderr.isatty() else None)
    if not (days and args.output == "json"):
        out(audit_text.text(done, args.output, ctx.clock()))
    wanted, retired = _retire(args, ctx, done, days) if days else ([], None)
    if days and args.output == "json":  # one JSON object: the audit and what it did
        out_json({**audit_text.as_json(done),
                  "deactivate_unused": audit_text.retirement_json(wanted, days, retired)})
    for missed in done.unreachable:
        err(f"account {missed.account_id} {missed.name} NOT audited: {missed.error}")
    for account, imported in done.imported.items():
        err(f"Security Hub, account {account}: " + (imported if isinstance(imported, str)
            else f"{imported.imported} imported, {imported.archived} archived, "
                 f"{len(imported.failed)} failed"))
    if retired is not None and not all(o.retired_or_kept for o in retired):
        return EXIT_HALTED
    failing = done.failing(args.fail_on)
    if failing:
        err(f"{failing} finding(s) at or above {args.fail_on}: exit {EXIT_FINDINGS}")
        return EXIT_FINDINGS
    incomplete = done.unreachable or any(
        isinstance(i, str) or i.failed for i in done.imported.values())
    return EXIT_INCOMPLETE if incomplete else EXIT_COMPLETED


def _retire(args: argparse.Namespace, ctx: RunContext, done: AuditRun, days: int
            ) -> tuple[list[Candidate], list[Outcome] | None]:
    """--deactivate-unused: the plan, or (--yes) each key retired in its own incident,
    printed as it ends (human output)."""
    from responder.audit import retire  # noqa: PLC0415 - audit only
    from responder.audit import text as audit_text  # noqa: PLC0415

    found = [(r.account_id, f) for r in done.results for f in r.findings]
    journal = journal_to_act(args) if args.yes else journal_of(args)
    wanted = retire.held_back(journal, retire.candidates(found, days, ctx.clock()))
    human = args.output != "json"
    if human:
        out("\n".join(audit_text.retirement_plan(wanted, days, doing=args.yes)))
    if not args.yes:
        return wanted, None

    def progress(outcome: Outcome) -> None:
        if human:
            out("\n".join(audit_text.retirement_lines([outcome])))

    return wanted, retire.retire_all(ctx, journal, wanted, days, progress=progress)


def _rotation_context(args: argparse.Namespace) -> RunContext:
    ctx = context(args)
    return dataclasses.replace(ctx, options=dataclasses.replace(
        ctx.options, check_command=getattr(args, "check_command", None),
        grace_hours=getattr(args, "grace_hours", None)))


def _said(view: IncidentView, output: str) -> int:
    """The rotation as it stands, and on stderr what moves it on."""
    from responder.report.rotation import awaiting  # noqa: PLC0415 - rotation only

    code = show(view, output)
    waiting = awaiting(view)
    if view.status == "waiting" and waiting is not None:
        until = f" until {waiting.until}" if waiting.until else ""
        err(f"waiting{until}: {waiting.reason}; next: `{waiting.next}`")
    return code


def _start_rotation(args: argparse.Namespace) -> int:
    from responder.rotation import lifecycle as rotation  # noqa: PLC0415
    from responder.run import dry_run  # noqa: PLC0415

    ctx = _rotation_context(args)
    if args.dry_run:
        print_doc(dry_run.document(rotation.plan(ctx, args.target)), args.output)
        return 0
    if not args.yes and confirmed_plan(lambda: rotation.plan(ctx, args.target),
                                       "rotate") is None:
        return EXIT_BAD_INPUT
    journal = journal_to_act(args)
    record = rotation.start(ctx, journal, args.target)
    return _said(IncidentView.load(journal, record.id), args.output)


def _continue_rotation(args: argparse.Namespace) -> int:
    from responder.report.rotation import alert_of, awaiting  # noqa: PLC0415
    from responder.rotation import lifecycle as rotation  # noqa: PLC0415 - rotation only
    from responder.run import service  # noqa: PLC0415

    journal = journal_of(args)
    ctx = _rotation_context(args)
    record = rotation.proceed(ctx, journal, args.continue_id)
    view = IncidentView.load(journal, record.id)
    while args.watch and view.status == "waiting":
        waiting = awaiting(view)
        until = parse_iso(waiting.until) if waiting is not None and waiting.until else None
        if until is None:  # waiting for people, not for time: nothing to watch
            break
        countdown("the end of the grace period", until)
        view = IncidentView.load(journal, service.resume(ctx, journal, record.id).id)
    code = _said(view, args.output)
    if view.status == "halted" and alert_of(view) is not None and args.output == "human" \
            and sys.stdin.isatty() \
            and ask(f"Re-activate {record.access_key_id} for the missed application?"):
        return swept(journal, rotation.reactivate(ctx, journal, record.id), args.output)
    return code


def _reactivate(args: argparse.Namespace) -> int:
    from responder.rotation import lifecycle as rotation  # noqa: PLC0415 - rotation only

    journal = journal_of(args)
    if not args.yes:  # a preview, as rollback's: exit 0 (DESIGN §2)
        record = journal.get(args.reactivate_id)  # an unknown id is bad input (exit 2)
        if args.output == "json":
            out_json({"incident_id": record.id, "would_reactivate": record.access_key_id})
        else:
            out(f"would re-activate {record.access_key_id}, the old key of rotation "
                f"{record.id}; nothing was changed: pass --yes to do it")
        return EXIT_COMPLETED
    return swept(journal, rotation.reactivate(context(args), journal, args.reactivate_id),
                 args.output)


def cmd_rotate(args: argparse.Namespace) -> int:
    """Start a rotation, continue one, or re-activate its old key (exactly one of them)."""
    chosen = [n for n in ("target", "continue_id", "reactivate_id") if getattr(args, n)]
    if len(chosen) != 1:
        raise BadInput("give exactly one of ACCESS_KEY_ID, --continue ID or --reactivate ID")
    if args.continue_id:
        return _continue_rotation(args)
    if args.reactivate_id:
        return _reactivate(args)
    return _start_rotation(args)


def _harden_settings(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """The harden step's settings from the command line; bad values change nothing."""
    settings: dict[str, Any] = {"apply": bool(args.apply and not args.dry_run),
                                "dry_run": bool(args.dry_run)}
    if args.lookback_days > 90:
        raise BadInput("--lookback-days: CloudTrail's event history keeps 90 days at most")
    settings["lookback_days"] = args.lookback_days
    if args.compromised_at:
        try:
            at = parse_iso(args.compromised_at.strip())
        except ValueError:
            at = None
        if at is None:
            raise BadInput(f"--compromised-at {args.compromised_at!r} is not an ISO 8601 time "
                           "(e.g. 2026-11-25T09:00:00Z)")
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        if at > now:
            raise BadInput(f"--compromised-at {args.compromised_at} is in the future")
        settings["compromised_at"] = iso(at)
    if args.regions:
        settings["regions"] = "all" if args.regions.strip() == "all" else [
            r.strip() for r in args.regions.split(",") if r.strip()]
    if args.data_events:
        from responder.hardening.trail import parse_location  # noqa: PLC0415 - harden only

        parse_location(args.data_events)  # BadInput, naming it, before anything is read
        settings["data_events"] = args.data_events.strip()
    settings["grace_days"] = args.grace_days
    return settings


def cmd_harden(args: argparse.Namespace) -> int:
    """A proposal (exit 0); with --apply --yes also applied. Without --yes, --apply asks."""
    from responder.run import harden as run  # noqa: PLC0415 - harden only

    ctx = context(args)
    settings = _harden_settings(args, ctx.clock())
    if settings["apply"] and not args.yes:
        if not sys.stdin.isatty():
            raise BadInput("no terminal to confirm on: pass --yes with --apply (or leave out "
                           "--apply to see the proposal)")
        if not ask(f"Create, attach and put the proposed policies for {args.user}?"):
            err("aborted; nothing was changed")
            return EXIT_BAD_INPUT
    if args.incident:
        done = run.for_incident(ctx, journal_of(args), args.incident, args.user, settings)
    else:
        done = run.standalone(ctx, args.user, settings)
    if done.error:
        err(done.error)
    if args.output == "json":
        out_json(done.document.to_json())
    else:
        from responder.report import hardening as report_hardening  # noqa: PLC0415

        hard = done.document.hardening
        out("\n".join(report_hardening.human_lines(hard)))
        if hard is not None and hard.proposed_policy:
            out(json.dumps(hard.proposed_policy, indent=2))
    return done.exit_code
