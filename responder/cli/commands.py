"""`respond`'s commands: each runs what was parsed and prints the outcome; all work
happens in the service and the runner. Imported only once a command runs (responder.cli
parses first), so `respond --help` and `--version` load none of the AWS stack.

Exit codes (DESIGN §2, responder.errors): 0 completed or planned, 1 halted (resumable),
2 bad input, 3 refused by a guardrail, 4 another runner holds the incident's lease, and
5: completed (contained, replaced) but a notification could not be delivered.
"""

from __future__ import annotations

import argparse
import os
import signal
import traceback
from datetime import timedelta
from typing import Any

from responder import playbook
from responder.cli.lifecycle import cmd_audit, cmd_harden, cmd_rollback, cmd_rotate
from responder.cli.output import (
    confirmed_plan,
    context,
    countdown,
    err,
    finish,
    journal_of,
    journal_to_act,
    out,
    out_json,
    print_doc,
    swept,
)
from responder.context import RunContext, utcnow
from responder.errors import EXIT_BAD_INPUT, EXIT_HALTED, BadInput, Interrupted, ResponderError
from responder.guardrails import check_principal_arn
from responder.incident.view import IncidentView
from responder.journal import Journal
from responder.logging import configure
from responder.run import service


def cmd_compromised(args: argparse.Namespace) -> int:
    pb = playbook.load(args.playbook or service.default_playbook(args.access_key_id))
    principal = check_principal_arn(args.principal)
    if principal is not None and service.key_kind(pb) != "temporary":
        raise BadInput("--principal names a temporary key's session; "
                       f"{args.access_key_id.strip()} is a long-term key")
    if args.dry_run:
        from responder.run import dry_run  # noqa: PLC0415 - a dry run only

        ctx = context(args)
        print_doc(dry_run.document(service.plan(ctx, pb, args.access_key_id)), args.output)
        return 0
    ctx = context(args)
    identified = None
    if not args.yes:
        planned = confirmed_plan(lambda: service.plan(ctx, pb, args.access_key_id), "act")
        if planned is None:
            return EXIT_BAD_INPUT
        identified = planned.identified
    journal = journal_to_act(args)
    record = service.respond(ctx, journal, pb, args.access_key_id, identified=identified)
    if args.watch and record.status == "completed":
        if args.output != "json":  # one JSON object only: the incident after its sweeps
            finish(journal, record.id, args.output)
        return _watched(ctx, journal, record.id, args.output)
    return finish(journal, record.id, args.output)


def _watched(ctx: RunContext, journal: Journal, incident_id: str, output: str) -> int:
    """Run every sweep still due, each at its time; prints the incident once, after."""
    from responder.run import followup  # noqa: PLC0415 - sweeps only

    done = followup.watch(ctx, journal, incident_id, countdown)
    if not done:
        err(f"no sweep is due for {incident_id}")
        return finish(journal, incident_id, output)
    return swept(journal, done[-1], output)


def cmd_sweep(args: argparse.Namespace) -> int:
    journal = journal_of(args)
    ctx = context(args)
    if args.watch:
        return _watched(ctx, journal, args.incident_id, args.output)
    from responder.run import followup  # noqa: PLC0415 - sweeps only

    return swept(journal, followup.sweep(ctx, journal, args.incident_id), args.output)


def cmd_resume(args: argparse.Namespace) -> int:
    journal = journal_of(args)
    record = service.resume(context(args), journal, args.incident_id)
    return finish(journal, record.id, args.output)


def cmd_status(args: argparse.Namespace) -> int:
    from responder.report import document as report  # noqa: PLC0415 - after containment

    journal = journal_of(args)
    now = utcnow()
    if args.incident_id:
        print_doc(report.document_of(IncidentView.load(journal, args.incident_id), now),
                  args.output)
        return 0
    everything = journal.recent(-1)  # every open incident is listed, however old
    opened = [r for r in everything if r.is_open]
    closed = [r for r in everything if not r.is_open]
    records = opened + (closed if args.all else closed[: args.limit])
    views = [IncidentView.of(r, journal.steps(r.id)) for r in records]
    docs = [report.document_of(v, now) for v in views]
    if args.output == "json":
        out_json({"incidents": [d.to_json() for d in docs]})
        return 0
    if not views:
        out("no incidents in the journal")
        return 0
    out(f"{'INCIDENT':<28} {'STATUS':<9} {'ACCESS KEY':<20}  {'USER':<16} {'STEP':<17} "
         f"{'SWEEPS':<20} AGE")
    for v, doc in zip(views, docs, strict=True):
        r = v.record
        who = r.user_name or (f"role/{v.session.role_name}" if v.session else None) or "?"
        out(f"{r.id:<28} {doc.status:<9} {r.access_key_id:<20}  {who:<16} "
             f"{v.current_step or '-':<17} {_sweeps(v):<20} {_age(now - r.started_at)}")
    hidden = len(closed) - (len(closed) if args.all else min(len(closed), args.limit))
    if hidden:
        out(f"({hidden} older finished incidents not shown: --limit N or --all)")
    return 0


def _sweeps(view: IncidentView) -> str:
    """`1 done, next 09:45Z`: what status says of an incident's sweeps."""
    done = len(view.sweeps_found)
    due = view.sweeps_due
    if not done and not due:
        return "-"
    return f"{done} done" + (f", next {due[0]:%H:%M}Z" if due else "")


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cmd_report(args: argparse.Namespace) -> int:
    from responder.report import document as report  # noqa: PLC0415 - after containment
    from responder.report.markdown import markdown_of  # noqa: PLC0415

    journal = journal_of(args)
    view = IncidentView.load(journal, args.incident_id, calls=True)
    if args.format == "html":
        from responder.report import html as report_html  # noqa: PLC0415 - html only

        out(report_html.page(view))
        return 0
    typed = report.report_of(view)
    if args.format == "json":
        out_json(typed.to_json())
    else:
        out(markdown_of(typed))
    return 0


def cmd_playbooks(args: argparse.Namespace) -> int:
    if args.pb_command == "list":
        for name in playbook.shipped_names():
            pb = playbook.load(name)
            out(f"{name:<20} v{pb.version}  {pb.description}")
    elif args.pb_command == "show":
        pb = playbook.load(args.name)
        out_json(pb.to_dict())
    elif args.pb_command == "validate":
        pb = playbook.load(args.file)
        out(f"{args.file}: valid playbook {pb.name!r} v{pb.version} with {len(pb.steps)} steps")
    else:
        pb = playbook.load(args.name)
        from responder.run import machine  # noqa: PLC0415 - only this command draws

        out(machine.graph(pb))
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    from responder import drill  # noqa: PLC0415 - moto is an optional extra

    if args.list:
        if args.output == "json":
            out_json(drill.describe())
        else:
            out("\n".join(f"{s['name']:<18} {s['summary']}" for s in drill.describe()))
        return 0
    if args.scenario != "all":
        drill.check_name(args.scenario)  # a typo is exit 2 before any fake account is built
    results = drill.run_all() if args.scenario == "all" else [drill.run(args.scenario)]
    if args.output == "json":
        docs = [r.as_dict() for r in results]
        out_json(docs[0] if args.scenario != "all" else
                  {"passed": all(r.passed for r in results), "scenarios": docs})
    else:
        out("\n\n".join(r.render() for r in results))
    return 0 if all(r.passed for r in results) else 1


def cmd_finding(args: argparse.Namespace) -> int:
    from responder import findings  # noqa: PLC0415 - for findings only
    from responder.report import document as report  # noqa: PLC0415
    from responder.run import trigger  # noqa: PLC0415

    parsed = findings.load_each(args.file)
    journal = journal_to_act(args)
    outcomes = trigger.respond_all(context(args), journal, parsed)
    for outcome in outcomes:
        if outcome.error is not None:
            err(outcome.error)
    if args.output == "json":
        out_json(trigger.result_document(outcomes))
    else:
        for outcome in outcomes:
            if outcome.ran:
                out(report.summary(outcome.document.document))
    return trigger.worst(outcomes)


COMMANDS = {
    "compromised": cmd_compromised,
    "finding": cmd_finding,
    "resume": cmd_resume,
    "sweep": cmd_sweep,
    "status": cmd_status,
    "report": cmd_report,
    "playbooks": cmd_playbooks,
    "drill": cmd_drill,
    "audit": cmd_audit,
    "rollback": cmd_rollback,
    "rotate": cmd_rotate,
    "harden": cmd_harden,
}


def _on_sigterm(signum: int, _frame: Any) -> None:
    """SIGTERM ends a run like Ctrl-C does: the incident is marked halted and the output
    still says which one and how to resume, instead of a silent exit 143."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _failed(args: argparse.Namespace, exc: ResponderError) -> int:
    """One line on stderr; with --output json still the one object on stdout."""
    from responder.report import document as report  # noqa: PLC0415 - after containment

    err(str(exc))
    output = getattr(args, "output", "human")
    if exc.incident_id is not None:
        journal = getattr(args, "opened_journal", None) or journal_of(args)
        doc = report.document_of(IncidentView.load(journal, exc.incident_id))
        if output == "json":
            out_json(doc.to_json())
        elif exc.exit_code == EXIT_HALTED:
            out(report.summary(doc))
    elif output == "json":
        out_json(report.refusal_of(exc, getattr(args, "access_key_id", None)).to_json())
    return exc.exit_code


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit code (DESIGN §2)."""
    configure(verbose=args.verbose)
    os.umask(0o077)  # journal, evidence, reports and logs are for their owner only
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return COMMANDS[args.command](args)
    except ResponderError as exc:
        return _failed(args, exc)
    except KeyboardInterrupt as stop:  # before any incident was opened
        return _failed(args, Interrupted(str(stop) or "SIGINT"))
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        err(f"internal error: {type(exc).__name__}: {exc}"
             + ("" if args.verbose else " (run with -v for the traceback)"))
        if args.verbose:
            traceback.print_exc()
        return EXIT_HALTED
    finally:
        signal.signal(signal.SIGTERM, previous)
