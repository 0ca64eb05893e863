"""`respond`: argument parsing and output only; all work happens in the runner.

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
import traceback
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from responder import __version__, findings, machine, playbook, report, service, trigger
from responder.aws import RetryPolicy, env_number, session_factory
from responder.context import Options, RunContext, SessionHint, responder_home, utcnow
from responder.errors import EXIT_BAD_INPUT, EXIT_HALTED, BadInput, Interrupted, ResponderError
from responder.guardrails import check_principal_arn, check_role_arn, check_topic_arn
from responder.journal import Journal, open_journal, open_journal_to_act
from responder.logging import configure
from responder.view import IncidentView

if TYPE_CHECKING:
    import boto3

EXAMPLES = """\
examples:
  respond compromised AKIAIOSFODNN7EXAMPLE --dry-run      # see the plan, change nothing
  respond compromised AKIAIOSFODNN7EXAMPLE --yes          # contain it now
  respond compromised ASIAIOSFODNN7EXAMPLE --yes          # a leaked session: deny just it
  respond status                                          # open and recent incidents
  respond resume inc-20261125-092338-3f9a1c               # continue a halted incident
  respond resume inc-20261125-092338-3f9a1c --no-replace  # ... without a replacement key
  respond finding guardduty-event.json                    # answer a finding (or a list)
  respond drill                                           # rehearse against a fake account
"""


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _out_json(value: Any) -> None:
    """The one JSON object of `--output json` (DESIGN §2), on stdout."""
    _out(json.dumps(value, indent=2, default=str))


def _err(text: str) -> None:
    sys.stderr.write(f"respond: {text}\n")
    sys.stderr.flush()


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--state", metavar="PATH", default=default,
                        help="journal location (default $RESPONDER_HOME/responder.db)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="debug logging on stderr")


def _aws_options(parser: argparse.ArgumentParser, *, role: bool = True) -> None:
    parser.add_argument("--profile", help="AWS profile (default: the AWS CLI's chain)")
    parser.add_argument("--region", help="AWS region (default: the AWS CLI's chain)")
    if role:
        parser.add_argument("--role-arn", help="assume this role first (cross-account)")


def _output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", choices=["human", "json"], default="human",
                        help="json prints exactly one JSON object on stdout")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="respond",
        description="Contain a leaked AWS access key (long-term or temporary) through a journaled, "
        "resumable playbook.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"respond {__version__}")
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    comp = sub.add_parser(
        "compromised", parents=[common], help="contain a leaked access key (AKIA or ASIA)",
        description="A long-term (AKIA) key: identify its owner, disable the key, revoke "
        "its sessions, collect evidence, contain the attacker, replace it and notify "
        "(compromised-key). A temporary (ASIA) key: identify its session through "
        "CloudTrail, deny exactly that session (an EC2 instance's only away from the "
        "instance), collect evidence, contain the attacker and notify; no key is disabled "
        "(compromised-session).",
        epilog="examples:\n  respond compromised AKIAIOSFODNN7EXAMPLE --dry-run\n"
        "  respond compromised AKIAIOSFODNN7EXAMPLE --yes --output json\n"
        "  respond compromised ASIAIOSFODNN7EXAMPLE --dry-run\n"
        "  respond compromised ASIAIOSFODNN7EXAMPLE --yes \\\n"
        "      --principal arn:aws:sts::123456789012:assumed-role/app/session-1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    comp.add_argument("access_key_id", metavar="ACCESS_KEY_ID")
    comp.add_argument("--dry-run", action="store_true",
                      help="run only the read-only identify step and print the plan")
    comp.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    comp.add_argument("--playbook", metavar="NAME|FILE",
                      help="default: compromised-key for AKIA keys, compromised-session for "
                      "ASIA keys")
    comp.add_argument("--principal", metavar="ARN",
                      help="ASIA keys only: the session's principal (arn:aws:sts::ACCOUNT:"
                      "assumed-role/ROLE/SESSION or arn:aws:iam::ACCOUNT:user/NAME), used "
                      "when CloudTrail has no event for the key yet")
    _aws_options(comp)
    comp.add_argument("--notify-topic", metavar="ARN", help="SNS topic for notifications")
    comp.add_argument("--slack-webhook", metavar="URL",
                      default=os.environ.get("RESPONDER_SLACK_WEBHOOK"),
                      help="Slack incoming webhook (or $RESPONDER_SLACK_WEBHOOK)")
    comp.add_argument("--no-replace", action="store_true", help="skip issuing a replacement key")
    _output_option(comp)

    find = sub.add_parser(
        "finding", parents=[common],
        help="respond to a GuardDuty / Health / Security Hub finding",
        description="Parse a finding (EventBridge event or raw finding JSON) and run the "
        "playbook it maps to (playbooks/triggers.json). Sample findings and findings "
        "already handled are refused (exit 3).",
        epilog="examples:\n  respond finding guardduty-event.json --output json\n"
        "  aws guardduty get-findings ... | respond finding -",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    find.add_argument("file", metavar="FILE|-")
    _aws_options(find)
    find.add_argument("--notify-topic", metavar="ARN", help="SNS topic for notifications")
    find.add_argument("--slack-webhook", metavar="URL",
                      default=os.environ.get("RESPONDER_SLACK_WEBHOOK"),
                      help="Slack incoming webhook (or $RESPONDER_SLACK_WEBHOOK)")
    _output_option(find)

    res = sub.add_parser("resume", parents=[common], help="continue a halted incident",
                         epilog="example:\n  respond resume inc-20261125-092338-3f9a1c",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    res.add_argument("incident_id", metavar="INCIDENT_ID")
    res.add_argument("--no-replace", action="store_true",
                     help="issue no replacement key from here on (the way past a replace-key "
                     "that cannot succeed)")
    res.add_argument("--yes", action="store_true",
                     help="accepted for symmetry with compromised; resume never asks")
    _aws_options(res)
    _output_option(res)

    stat = sub.add_parser("status", parents=[common],
                          help="list incidents, or show one (reads only the journal)")
    stat.add_argument("incident_id", nargs="?", metavar="INCIDENT_ID")
    stat.add_argument("--limit", type=_positive_int, default=20, metavar="N",
                      help="finished incidents to list after every open one (default 20)")
    stat.add_argument("--all", action="store_true", help="list every incident")
    _aws_options(stat, role=False)  # where a dynamodb:// journal is
    _output_option(stat)

    rep = sub.add_parser("report", parents=[common], help="print an incident's report")
    rep.add_argument("incident_id", metavar="INCIDENT_ID")
    _aws_options(rep, role=False)  # where a dynamodb:// journal is
    rep.add_argument("--format", choices=["md", "json"], default="md")

    drill = sub.add_parser("drill", parents=[common],
                           help="rehearse the playbook against an embedded fake AWS account")
    drill.add_argument("--scenario", default="basic")
    _output_option(drill)

    pbs = sub.add_parser("playbooks", parents=[common], help="list, show, validate, graph")
    pb_sub = pbs.add_subparsers(dest="pb_command", required=True, metavar="ACTION")
    pb_sub.add_parser("list", help="shipped playbooks")
    pb_sub.add_parser("show", help="print a playbook").add_argument("name", metavar="NAME")
    pb_sub.add_parser("validate", help="check a playbook file").add_argument("file",
                                                                             metavar="FILE")
    pb_sub.add_parser("graph", help="the state machine in Graphviz DOT").add_argument(
        "name", metavar="NAME")
    return parser


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
        ),
        lease_seconds=env_number("RESPONDER_LEASE_SECONDS", 60.0),
        role_arn_template=check_role_arn(os.environ.get("RESPONDER_ROLE_ARN_TEMPLATE") or None,
                                         "RESPONDER_ROLE_ARN_TEMPLATE"),
        progress=_terminal_progress if sys.stderr.isatty() else None,
    )


def _journal_session(args: argparse.Namespace) -> boto3.Session | None:
    """A DynamoDB journal is reached with `--profile` and `--region` (never through
    `--role-arn`: the journal stays in the responder's own account)."""
    if args.state and str(args.state).startswith("dynamodb://"):
        session: boto3.Session = session_factory(getattr(args, "profile", None),
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
    if output == "json":
        _out_json(doc)
    else:
        _out(report.render_human(doc))


def _finish(journal: Journal, record_id: str, output: str) -> int:
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
        ctx = _context(args)
        _print_doc(report.plan_document(service.plan(ctx, pb, args.access_key_id)), args.output)
        return 0
    ctx = _context(args)
    identified = None
    if not args.yes:
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
    return _finish(journal, record.id, args.output)


def cmd_resume(args: argparse.Namespace) -> int:
    journal = _journal(args)
    record = service.resume(_context(args), journal, args.incident_id)
    return _finish(journal, record.id, args.output)


def cmd_status(args: argparse.Namespace) -> int:
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
    _out(f"{'INCIDENT':<28} {'STATUS':<9} {'ACCESS KEY':<20}  {'USER':<16} {'STEP':<17} AGE")
    for v, doc in zip(views, docs, strict=True):
        r = v.record
        who = r.user_name or (f"role/{v.session.role_name}" if v.session else None) or "?"
        _out(f"{r.id:<28} {doc['status']:<9} {r.access_key_id:<20}  {who:<16} "
             f"{v.current_step or '-':<17} {_age(now - r.started_at)}")
    hidden = len(closed) - (len(closed) if args.all else min(len(closed), args.limit))
    if hidden:
        _out(f"({hidden} older finished incidents not shown: --limit N or --all)")
    return 0


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cmd_report(args: argparse.Namespace) -> int:
    journal = _journal(args)
    doc = report.report_document(IncidentView.load(journal, args.incident_id, calls=True))
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
        _out(machine.graph(pb))
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    from responder import drill  # noqa: PLC0415 - moto is an optional extra

    result = drill.run(args.scenario)
    if args.output == "json":
        _out_json(result.as_dict())
    else:
        _out(result.render())
    return 0 if result.passed else 1


def cmd_finding(args: argparse.Namespace) -> int:
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


COMMANDS = {
    "compromised": cmd_compromised,
    "finding": cmd_finding,
    "resume": cmd_resume,
    "status": cmd_status,
    "report": cmd_report,
    "playbooks": cmd_playbooks,
    "drill": cmd_drill,
}


def _on_sigterm(signum: int, _frame: Any) -> None:
    """SIGTERM ends a run like Ctrl-C does: the incident is marked halted and the output
    still says which one and how to resume, instead of a silent exit 143."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _failed(args: argparse.Namespace, exc: ResponderError) -> int:
    """One line on stderr; with --output json still the one object on stdout."""
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
