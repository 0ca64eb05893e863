"""`respond`'s commands: each runs what was parsed and prints the outcome; all work
happens in the service and the runner. Imported only once a command runs (responder.cli
parses first), so `respond --help` and `--version` load none of the AWS stack.

Exit codes (DESIGN §2, responder.errors): 0 completed or planned, 1 halted (resumable),
2 bad input, 3 refused by a guardrail, 4 another runner holds the incident's lease, and
5: completed (contained, replaced) but a notification could not be delivered.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from responder import playbook, service
from responder.aws import RetryPolicy, env_number, session_factory
from responder.context import Options, RunContext, SessionHint, responder_home, utcnow
from responder.errors import EXIT_BAD_INPUT, EXIT_HALTED, BadInput, Interrupted, ResponderError
from responder.guardrails import (
    check_bucket,
    check_principal_arn,
    check_role_arn,
    check_topic_arn,
)
from responder.journal import Journal, open_journal, open_journal_to_act
from responder.logging import configure, hold, release
from responder.view import IncidentView

if TYPE_CHECKING:
    from responder.aws import AnySession
    from responder.followup import Swept

def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _out_json(value: Any) -> None:
    """The one JSON object of `--output json` (DESIGN §2), on stdout."""
    _out(json.dumps(value, indent=2, default=str))


def _err(text: str) -> None:
    sys.stderr.write(f"respond: {text}\n")
    sys.stderr.flush()


def _terminal_progress(step: str, info: Mapping[str, Any]) -> None:
    """One self-overwriting line on stderr while a long step works."""
    line = f"  {step}: {info['lookups_done']}/{info['lookups']} lookups, {info['events']} events"
    end = "\n" if info["lookups_done"] == info["lookups"] else ""
    sys.stderr.write(f"\r{line}\x1b[K{end}")
    sys.stderr.flush()


def _context(args: argparse.Namespace) -> RunContext:
    return RunContext(
        session_factory=session_factory(
            getattr(args, "profile", None), getattr(args, "region", None),
            getattr(args, "role_arn", None),
        ),
        home=responder_home(),
        retry=RetryPolicy.from_env(),
        options=Options(
            replace=not getattr(args, "no_replace", False),
            notify_topic=check_topic_arn(getattr(args, "notify_topic", None)),
            slack_webhook=getattr(args, "slack_webhook", None)
            or os.environ.get("RESPONDER_SLACK_WEBHOOK") or None,
            role_arn=check_role_arn(getattr(args, "role_arn", None)),
            session=SessionHint(principal_arn=args.principal)
            if getattr(args, "principal", None) else None,
            evidence_bucket=check_bucket(getattr(args, "evidence_bucket", None)),
        ),
        lease_seconds=env_number("RESPONDER_LEASE_SECONDS", 60.0),
        role_arn_template=check_role_arn(os.environ.get("RESPONDER_ROLE_ARN_TEMPLATE") or None,
                                         "RESPONDER_ROLE_ARN_TEMPLATE"),
        progress=_terminal_progress if sys.stderr.isatty() else None,
    )


def _journal_session(args: argparse.Namespace) -> AnySession | None:
    """A DynamoDB journal is reached with `--profile` and `--region` (never through
    `--role-arn`: the journal stays in the responder's own account)."""
    if args.state and str(args.state).startswith("dynamodb://"):
        session: AnySession = session_factory(getattr(args, "profile", None),
                                                 getattr(args, "region", None))()
        return session
    return None


def _journal(args: argparse.Namespace) -> Journal:
    """The journal `--state` names, for commands that read or continue an incident."""
    args.opened_journal = open_journal(args.state, responder_home(), _journal_session(args))
    return args.opened_journal  # type: ignore[no-any-return]


def _journal_to_act(args: argparse.Namespace) -> Journal:
    """The journal for a new response: local trouble never blocks containment (see
    journal.open_journal_to_act), it is said in one line."""
    journal, warning = open_journal_to_act(args.state, responder_home(), _journal_session(args))
    if warning:
        _err(warning)
    args.opened_journal = journal
    return journal


def _print_doc(doc: dict[str, Any], output: str) -> None:
    from responder import report  # noqa: PLC0415 - after containment

    if output == "json":
        _out_json(doc)
    else:
        _out(report.render_human(doc))


def _finish(journal: Journal, record_id: str, output: str) -> int:
    from responder import report  # noqa: PLC0415 - after containment

    view = IncidentView.load(journal, record_id)
    _print_doc(report.incident_document(view), output)
    return view.exit_code


def cmd_compromised(args: argparse.Namespace) -> int:
    pb = playbook.load(args.playbook or service.default_playbook(args.access_key_id))
    principal = check_principal_arn(args.principal)
    if principal is not None and service.key_kind(pb) != "temporary":
        raise BadInput("--principal names a temporary key's session; "
                       f"{args.access_key_id.strip()} is a long-term key")
    if args.dry_run:
        from responder import report  # noqa: PLC0415 - no report module before containment

        ctx = _context(args)
        _print_doc(report.plan_document(service.plan(ctx, pb, args.access_key_id)), args.output)
        return 0
    ctx = _context(args)
    identified = None
    if not args.yes:
        from responder import report  # noqa: PLC0415 - no report module before containment

        if not sys.stdin.isatty():
            raise BadInput("no terminal to confirm on: pass --yes to act (or --dry-run to look)")
        planned = service.plan(ctx, pb, args.access_key_id)
        identified = planned.identified
        sys.stderr.write(report.render_human(report.plan_document(planned)) + "\n")
        sys.stderr.write("Proceed? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in {"y", "yes"}:
            _err("aborted; nothing was changed")
            return EXIT_BAD_INPUT
    journal = _journal_to_act(args)
    record = service.respond(ctx, journal, pb, args.access_key_id, identified=identified)
    if args.watch and record.status == "completed":
        if args.output != "json":  # one JSON object only: the incident after its sweeps
            _finish(journal, record.id, args.output)
        return _watched(ctx, journal, record.id, args.output)
    return _finish(journal, record.id, args.output)


def _countdown(step: str, due: datetime) -> None:
    """Wait for `due` where the human can see it: a line that counts down on a terminal."""
    tty = sys.stderr.isatty()
    _err(f"{step} due at {due:%H:%M:%S}Z; Ctrl-C stops watching (`respond sweep` later)")
    while (left := (due - utcnow()).total_seconds()) > 0:
        if tty:
            sys.stderr.write(f"\r  {step} in {int(left) // 60:02d}:{int(left) % 60:02d} ")
            sys.stderr.flush()
        time.sleep(min(1.0, left))
    if tty:
        sys.stderr.write("\n")


def _watched(ctx: RunContext, journal: Journal, incident_id: str, output: str) -> int:
    """Run every sweep still due, each at its time; prints the incident once, after."""
    from responder import followup  # noqa: PLC0415 - sweeps only

    swept = followup.watch(ctx, journal, incident_id, _countdown)
    if not swept:
        _err(f"no sweep is due for {incident_id}")
        return _finish(journal, incident_id, output)
    return _swept(journal, swept[-1], output)


def _swept(journal: Journal, done: Swept, output: str) -> int:
    from responder import report  # noqa: PLC0415 - after containment

    if done.status == "failed":
        _err(f"{done.step} failed: {done.error}; {done.again} runs it again")
    view = IncidentView.load(journal, done.record.id)
    _print_doc(report.incident_document(view), output)
    return EXIT_HALTED if done.status == "failed" else view.exit_code


def cmd_sweep(args: argparse.Namespace) -> int:
    journal = _journal(args)
    ctx = _context(args)
    if args.watch:
        return _watched(ctx, journal, args.incident_id, args.output)
    from responder import followup  # noqa: PLC0415 - sweeps only

    return _swept(journal, followup.sweep(ctx, journal, args.incident_id), args.output)


def cmd_resume(args: argparse.Namespace) -> int:
    journal = _journal(args)
    record = service.resume(_context(args), journal, args.incident_id)
    return _finish(journal, record.id, args.output)


def cmd_status(args: argparse.Namespace) -> int:
    from responder import report  # noqa: PLC0415 - after containment

    journal = _journal(args)
    now = utcnow()
    if args.incident_id:
        _print_doc(report.incident_document(IncidentView.load(journal, args.incident_id), now),
                   args.output)
        return 0
    everything = journal.recent(-1)  # every open incident is listed, however old
    opened = [r for r in everything if r.is_open]
    closed = [r for r in everything if not r.is_open]
    records = opened + (closed if args.all else closed[: args.limit])
    views = [IncidentView.of(r, journal.steps(r.id)) for r in records]
    docs = [report.incident_document(v, now) for v in views]
    if args.output == "json":
        _out_json({"incidents": docs})
        return 0
    if not views:
        _out("no incidents in the journal")
        return 0
    _out(f"{'INCIDENT':<28} {'STATUS':<9} {'ACCESS KEY':<20}  {'USER':<16} {'STEP':<17} "
         f"{'SWEEPS':<20} AGE")
    for v, doc in zip(views, docs, strict=True):
        r = v.record
        who = r.user_name or (f"role/{v.session.role_name}" if v.session else None) or "?"
        _out(f"{r.id:<28} {doc['status']:<9} {r.access_key_id:<20}  {who:<16} "
             f"{v.current_step or '-':<17} {_sweeps(v):<20} {_age(now - r.started_at)}")
    hidden = len(closed) - (len(closed) if args.all else min(len(closed), args.limit))
    if hidden:
        _out(f"({hidden} older finished incidents not shown: --limit N or --all)")
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
    from responder import report  # noqa: PLC0415 - after containment

    journal = _journal(args)
    view = IncidentView.load(journal, args.incident_id, calls=True)
    if args.format == "html":
        from responder import report_html  # noqa: PLC0415 - html only

        _out(report_html.page(view))
        return 0
    doc = report.report_document(view)
    if args.format == "json":
        _out_json(doc)
    else:
        _out(report.render_markdown(doc))
    return 0


def cmd_playbooks(args: argparse.Namespace) -> int:
    if args.pb_command == "list":
        for name in playbook.shipped_names():
            pb = playbook.load(name)
            _out(f"{name:<20} v{pb.version}  {pb.description}")
    elif args.pb_command == "show":
        pb = playbook.load(args.name)
        _out_json(pb.to_dict())
    elif args.pb_command == "validate":
        pb = playbook.load(args.file)
        _out(f"{args.file}: valid playbook {pb.name!r} v{pb.version} with {len(pb.steps)} steps")
    else:
        pb = playbook.load(args.name)
        from responder import machine  # noqa: PLC0415 - only this command draws

        _out(machine.graph(pb))
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    from responder import drill  # noqa: PLC0415 - moto is an optional extra

    if args.list:
        if args.output == "json":
            _out_json(drill.describe())
        else:
            _out("\n".join(f"{s['name']:<18} {s['summary']}" for s in drill.describe()))
        return 0
    if args.scenario != "all":
        drill.check_name(args.scenario)  # a typo is exit 2 before any fake account is built
    results = drill.run_all() if args.scenario == "all" else [drill.run(args.scenario)]
    if args.output == "json":
        docs = [r.as_dict() for r in results]
        _out_json(docs[0] if args.scenario != "all" else
                  {"passed": all(r.passed for r in results), "scenarios": docs})
    else:
        _out("\n\n".join(r.render() for r in results))
    return 0 if all(r.passed for r in results) else 1


def cmd_finding(args: argparse.Namespace) -> int:
    from responder import findings, report, trigger  # noqa: PLC0415 - for findings only

    parsed = findings.load_each(args.file)
    journal = _journal_to_act(args)
    outcomes = trigger.respond_all(_context(args), journal, parsed)
    for outcome in outcomes:
        if outcome.error is not None:
            _err(outcome.error)
    if args.output == "json":
        _out_json(trigger.result_document(outcomes))
    else:
        for outcome in outcomes:
            if outcome.ran:
                _out(report.render_human(outcome.document))
    return trigger.worst(outcomes)


def cmd_rollback(args: argparse.Namespace) -> int:
    """Without --yes: the plan, exit 2 (nothing changed). With it: undone, journaled."""
    from responder import followup  # noqa: PLC0415 - rollback only
    from responder.steps.rollback import undo_plan  # noqa: PLC0415

    journal = _journal(args)
    plan = undo_plan(IncidentView.load(journal, args.incident_id))
    if not args.yes:
        if args.output == "json":
            _out_json({"incident_id": args.incident_id, "would_undo": plan})
        else:
            _out("\n".join([f"rollback of {args.incident_id} would:",
                             *[f"  {line}" for line in plan or ["undo nothing"]],
                             "nothing was changed: pass --yes --reason TEXT to undo it"]))
        return EXIT_BAD_INPUT
    if not (args.reason or "").strip():
        raise BadInput("--reason is required with --yes: say why it was a false positive")
    done = followup.rollback(_context(args), journal, args.incident_id, args.reason.strip())
    return _swept(journal, done, args.output)


def cmd_audit(args: argparse.Namespace) -> int:
    """Read-only: findings are printed, never acted on; exit 0 either way."""
    from responder import audit  # noqa: PLC0415 - audit only
    from responder.aws import Api  # noqa: PLC0415

    ctx = _context(args)
    settings = audit.Settings(max_age_days=args.max_age_days, unused_days=args.unused_days)
    found = audit.audit(Api(ctx.session_factory(), ctx.retry), ctx.clock(), settings,
                        responder_home() / "audit" / "seen.json")
    if args.output == "json":
        _out_json({"findings": [f.as_dict() for f in found], "settings": {
            "max_age_days": settings.max_age_days, "unused_days": settings.unused_days}})
    else:
        _out(audit.render(found, args.output))
    return 0


MAY_CONTAIN = frozenset({"compromised", "resume", "finding"})
"""The commands that may disable a key: nothing they can defer may come before it."""

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
}


def _on_sigterm(signum: int, _frame: Any) -> None:
    """SIGTERM ends a run like Ctrl-C does: the incident is marked halted and the output
    still says which one and how to resume, instead of a silent exit 143."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _failed(args: argparse.Namespace, exc: ResponderError) -> int:
    """One line on stderr; with --output json still the one object on stdout."""
    from responder import report  # noqa: PLC0415 - after containment

    _err(str(exc))
    output = getattr(args, "output", "human")
    if exc.incident_id is not None:
        journal = getattr(args, "opened_journal", None) or _journal(args)
        doc = report.incident_document(IncidentView.load(journal, exc.incident_id))
        if output == "json":
            _out_json(doc)
        elif exc.exit_code == EXIT_HALTED:
            _out(report.render_human(doc))
    elif output == "json":
        _out_json(report.error_document(exc, getattr(args, "access_key_id", None)))
    return exc.exit_code


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit code (DESIGN §2)."""
    if args.command in MAY_CONTAIN and not getattr(args, "dry_run", False):
        hold()  # structlog loads once the key is contained (see responder.logging)
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
        _err(f"internal error: {type(exc).__name__}: {exc}"
             + ("" if args.verbose else " (run with -v for the traceback)"))
        if args.verbose:
            traceback.print_exc()
        return EXIT_HALTED
    finally:
        release()
        signal.signal(signal.SIGTERM, previous)
