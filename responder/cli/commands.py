"""`respond`'s commands: each runs what was parsed and prints the outcome; all work
happens in the service and the runner. Imported only once a command runs (responder.cli
parses first), so `respond --help` and `--version` load none of the AWS stack.

Exit codes (DESIGN §2, responder.errors), one table for every command: 0 completed or
planned (a dry run, and every preview: rollback or --reactivate without --yes), 1 halted
(resumable), 2 bad input (and a `Proceed?` answered no), nothing changed, 3 refused by a
guardrail, nothing changed, 4 another runner holds the incident's lease, and 5 completed
and contained but something is missing (a notification, the evidence upload, a region's
evidence). An interrupt is answered by `interrupted` (see responder.cli.main).
"""

from __future__ import annotations

import argparse
import html
import itertools
import os
import traceback

from responder import playbook
from responder.cli import interrupts
from responder.cli.lifecycle import cmd_audit, cmd_harden, cmd_rollback, cmd_rotate
from responder.cli.output import (
    begin,
    checked_state,
    confirmed_plan,
    context,
    countdown,
    err,
    finish,
    journal_of,
    journal_to_act,
    out,
    out_json,
    out_json_items,
    out_json_text,
    pasteable,
    print_doc,
    print_view,
    printed,
    swept,
)
from responder.context import RunContext, utcnow
from responder.errors import (
    EXIT_BAD_INPUT,
    EXIT_COMPLETED,
    EXIT_HALTED,
    BadInput,
    Interrupted,
    ResponderError,
    UnknownIncident,
)
from responder.guardrails import check_principal_arn
from responder.incident.view import IncidentView
from responder.journal import IncidentRecord, Journal
from responder.logging import configure
from responder.run import close as closing
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
    """One incident as its §2 document, or the listing: one summary per incident, each
    read and printed before the next is read (responder.report.listing)."""
    from responder.report import listing  # noqa: PLC0415 - after containment

    journal = journal_of(args)
    now = utcnow()
    if args.incident_id:
        print_view(IncidentView.load(journal, args.incident_id), args.output, now)
        return 0
    shown = listing.Shown(journal.listing(), None if args.all else args.limit)
    summaries = listing.summaries(journal, shown, now)
    if args.output == "json":
        out_json_items("incidents", (s.to_json() for s in summaries))
        return 0
    first = next(summaries, None)
    if first is None:
        out("no incidents in the journal")
        return 0
    out(listing.HEADER)
    for summary in itertools.chain((first,), summaries):
        out(listing.row(summary))
    if shown.hidden:
        out(f"({shown.hidden} older finished incidents not shown: --limit N or --all)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from responder.report import document as report  # noqa: PLC0415 - after containment

    journal = journal_of(args)
    view = IncidentView.load(journal, args.incident_id)  # its calls: read as written
    if args.output == "html":
        from responder.report import html as report_html  # noqa: PLC0415 - html only

        out(report_html.page(view, journal), escape=html.escape)  # a pasted --state
        return 0
    if args.output == "json":
        out_json_text(report.json_text(view, journal, text=pasteable))
    else:
        out(report.markdown_text(view, journal))
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    """A human takes the incident over: closed, with the reason, under its lease."""
    journal = journal_of(args)
    record = closing.close(context(args), journal, args.incident_id, args.reason or "")
    err(f"incident {record.id} is {record.error}")  # "closed by a human: REASON"
    return finish(journal, record.id, args.output)


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


FINDING_LINES = 20
"""How many findings' refusals `respond finding` says one line each; the rest are counted
(a file of thousands of bad findings must not print thousands of lines)."""


def cmd_finding(args: argparse.Namespace) -> int:
    from responder import findings  # noqa: PLC0415 - for findings only
    from responder.report import document as report  # noqa: PLC0415
    from responder.run import trigger  # noqa: PLC0415

    parsed = findings.load_each(args.file)
    journal = journal_to_act(args)
    outcomes = trigger.respond_all(context(args), journal, parsed)
    said = [o.error for o in outcomes if o.error is not None]
    for error in said[:FINDING_LINES]:
        err(error)
    if len(said) > FINDING_LINES:
        err(f"and {len(said) - FINDING_LINES} more findings not answered"
            + ("" if args.output == "json" else " (--output json lists every one)"))
    if args.output == "json":
        out_json(trigger.result_document(outcomes))
    else:
        for outcome in outcomes:
            incident = outcome.document.document.incident_id
            if outcome.ran and incident is not None:
                out(report.told(IncidentView.load(journal, incident)))
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
    "close": cmd_close,
}


def _failed(args: argparse.Namespace, exc: ResponderError) -> int:
    """One line on stderr; with --output json still the one object on stdout."""
    from responder.report import document as report  # noqa: PLC0415 - after containment

    err(str(exc))
    output = getattr(args, "output", "human")
    if output == "json" and printed():
        return exc.exit_code  # the one object is out already (an interrupt after it)
    if exc.incident_id is not None:
        journal = getattr(args, "opened_journal", None) or journal_of(args)
        view = IncidentView.load(journal, exc.incident_id)
        if output == "json":
            out_json(report.document_of(view).to_json())
        elif exc.exit_code == EXIT_HALTED:
            out(report.told(view))
    elif output == "json":
        out_json(report.refusal_of(exc, getattr(args, "access_key_id", None)).to_json())
    return exc.exit_code


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit code (DESIGN §2). An interrupt is not caught
    here: responder.cli.main answers it, through `interrupted`, wherever it lands."""
    args.started_at = utcnow()
    refused = checked_state(args)
    begin(args.state)
    configure(verbose=args.verbose, console_text=pasteable, quiet=not args.verbose)
    os.umask(0o077)  # journal, evidence, reports and logs are for their owner only
    if refused is not None:
        return _failed(args, refused)
    try:
        return COMMANDS[args.command](args)
    except ResponderError as exc:
        return _failed(args, exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if interrupts.interrupted():  # e.g. a RuntimeError Python made of the interrupt
            return interrupted(args, interrupts.signal_name())
        err(f"internal error: {type(exc).__name__}: {exc}"
             + ("" if args.verbose else " (run with -v for the traceback)"))
        if args.verbose:
            traceback.print_exc()
        return EXIT_HALTED


FOLLOW_UPS = frozenset({"sweep", "rollback", "harden", "rotate", "close"})
"""Commands that work on an incident after its run: cut short, they are run again."""


def interrupted(args: argparse.Namespace, signal_name: str) -> int:
    """What an interrupt left, in one line (and the §2 object once, with --output json);
    its exit code (see responder.cli.main). A journal that cannot say is said too."""
    try:
        return _interrupted(args, signal_name)
    except Exception as exc:  # noqa: BLE001 - the answer to Ctrl-C must not be a traceback
        err(f"interrupted by {signal_name}; `respond status` shows where incidents stand "
            f"(the journal could not say: {type(exc).__name__}: {exc})")
        return EXIT_HALTED


def _interrupted(args: argparse.Namespace, signal_name: str) -> int:
    journal: Journal | None = getattr(args, "opened_journal", None)
    record, touched = _incident_of(args, journal) if journal is not None else (None, False)
    if journal is None or record is None:
        return _failed(args, _unchanged(args, signal_name))
    record = closing.halt_interrupted(journal, record.id, signal_name, utcnow())
    if touched and record.status == "halted" and args.command not in FOLLOW_UPS \
            and record.error == f"interrupted by {signal_name}":  # it halted this run
        return _failed(args, Interrupted(signal_name, record.id))
    if getattr(args, "watch", False) and record.contained_at is not None:
        code, said = EXIT_COMPLETED, (
            f"stopped watching; incident {record.id} is contained, `respond sweep "
            f"{record.id}` runs the sweeps still due")
    elif not touched:
        return _failed(args, _unchanged(args, signal_name))
    elif args.command in FOLLOW_UPS:
        return _failed(args, Interrupted(signal_name, record.id, said=(
            f"interrupted by {signal_name}: `respond {args.command}` on incident "
            f"{record.id} stopped before it finished ({record.id} is {record.status}); "
            "run it again")))
    else:
        view = IncidentView.load(journal, record.id)
        code, said = view.exit_code, (
            f"interrupted by {signal_name} after incident {record.id} ended "
            f"({record.status}); `respond status {record.id}` shows it")
    err(said)
    if not printed():
        finish(journal, record.id, getattr(args, "output", "human"))
    return code


def _unchanged(args: argparse.Namespace, signal_name: str) -> Interrupted:
    """The interrupt came before this run wrote anything."""
    return Interrupted(signal_name, said=None if args.command in {"compromised", "finding"}
                       else f"interrupted by {signal_name}; nothing was changed")


def _incident_of(args: argparse.Namespace, journal: Journal
                 ) -> tuple[IncidentRecord | None, bool]:
    """The incident the command names, or else the one this run wrote to last; and
    whether this run wrote to it (opened, ran, appended to it)."""
    started = getattr(args, "started_at", None)
    if started is None:
        return None, False
    started = started.replace(microsecond=started.microsecond // 1000 * 1000)  # journal: ms
    named = next((getattr(args, n) for n in ("incident_id", "continue_id", "reactivate_id",
                                             "incident") if getattr(args, n, None)), None)
    if named is not None:
        try:
            record = journal.get(named)
        except UnknownIncident:
            return None, False
        return record, record.updated_at >= started
    key = getattr(args, "access_key_id", None) or getattr(args, "target", None)
    candidates = journal.history_for_key(key.strip()) if key else journal.recent(-1)
    touched = [r for r in candidates if r.updated_at >= started]
    return (max(touched, key=lambda r: r.updated_at), True) if touched else (None, False)
