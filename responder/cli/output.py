"""What every `respond` command shares: its output (stdout for the result, stderr for
the rest), the run's context from the parsed options, and the journal it names. The
commands only parse and print; this is the printing and the wiring."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from responder.aws import RetryPolicy, env_number, session_factory
from responder.context import Options, RunContext, SessionHint, responder_home, utcnow
from responder.errors import EXIT_HALTED, BadInput
from responder.guardrails import check_bucket, check_role_arn, check_topic_arn
from responder.incident.view import IncidentView
from responder.journal import Journal, open_journal, open_journal_to_act

if TYPE_CHECKING:
    from collections.abc import Callable

    from responder.aws import AnySession
    from responder.report.model import IncidentDocument
    from responder.run.followup import Swept
    from responder.run.service import Plan


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def out_json(value: Any) -> None:
    """The one JSON object of `--output json` (DESIGN §2), on stdout."""
    out(json.dumps(value, indent=2, default=str))


def err(text: str) -> None:
    sys.stderr.write(f"respond: {text}\n")
    sys.stderr.flush()


def terminal_progress(step: str, info: Mapping[str, Any]) -> None:
    """One self-overwriting line on stderr while a long step works."""
    line = f"  {step}: {info['lookups_done']}/{info['lookups']} lookups, {info['events']} events"
    end = "\n" if info["lookups_done"] == info["lookups"] else ""
    sys.stderr.write(f"\r{line}\x1b[K{end}")
    sys.stderr.flush()


def context(args: argparse.Namespace) -> RunContext:
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
        progress=terminal_progress if sys.stderr.isatty() else None,
    )


def journal_session(args: argparse.Namespace) -> AnySession | None:
    """A DynamoDB journal is reached with `--profile` and `--region` (never through
    `--role-arn`: the journal stays in the responder's own account)."""
    if args.state and str(args.state).startswith("dynamodb://"):
        session: AnySession = session_factory(getattr(args, "profile", None),
                                                 getattr(args, "region", None))()
        return session
    return None


def journal_of(args: argparse.Namespace) -> Journal:
    """The journal `--state` names, for commands that read or continue an incident."""
    args.opened_journal = open_journal(args.state, responder_home(), journal_session(args))
    return args.opened_journal  # type: ignore[no-any-return]


def journal_to_act(args: argparse.Namespace) -> Journal:
    """The journal for a new response: local trouble never blocks containment (see
    journal.open_journal_to_act), it is said in one line."""
    journal, warning = open_journal_to_act(args.state, responder_home(), journal_session(args))
    if warning:
        err(warning)
    args.opened_journal = journal
    return journal


def print_doc(doc: IncidentDocument, output: str) -> None:
    """The §2 object as JSON (`--output json`), or its terminal summary."""
    from responder.report import document as report  # noqa: PLC0415 - after containment

    if output == "json":
        out_json(doc.to_json())
    else:
        out(report.summary(doc))


def show(view: IncidentView, output: str) -> int:
    """Print the incident (the §2 object, or its summary); its exit code."""
    from responder.report import document as report  # noqa: PLC0415 - after containment

    print_doc(report.document_of(view), output)
    return view.exit_code


def finish(journal: Journal, record_id: str, output: str) -> int:
    return show(IncidentView.load(journal, record_id), output)


def countdown(step: str, due: datetime) -> None:
    """Wait for `due` where the human can see it: a line that counts down on a terminal."""
    tty = sys.stderr.isatty()
    err(f"{step} due at {due:%H:%M:%S}Z; Ctrl-C stops watching (`respond sweep` later)")
    while (left := (due - utcnow()).total_seconds()) > 0:
        if tty:
            sys.stderr.write(f"\r  {step} in {int(left) // 60:02d}:{int(left) % 60:02d} ")
            sys.stderr.flush()
        time.sleep(min(1.0, left))
    if tty:
        sys.stderr.write("\n")


def swept(journal: Journal, done: Swept, output: str) -> int:
    from responder.report import document as report  # noqa: PLC0415 - after containment

    if done.status == "failed":
        err(f"{done.step} failed: {done.error}; {done.again} runs it again")
    view = IncidentView.load(journal, done.record.id)
    print_doc(report.document_of(view), output)
    return EXIT_HALTED if done.status == "failed" else view.exit_code


def ask(question: str) -> bool:
    """A yes/no question on the terminal; anything but y or yes is no."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in {"y", "yes"}


def confirmed_plan(plan_of: Callable[[], Plan], what: str) -> Plan | None:
    """Without --yes: the plan on stderr, then `Proceed?`. The plan (found once, reused
    by the run), or None when the human said no (said on stderr). No terminal is bad
    input before anything is looked up."""
    if not sys.stdin.isatty():
        raise BadInput(f"no terminal to confirm on: pass --yes to {what} (or --dry-run to "
                       "look)")
    from responder.report import document as report  # noqa: PLC0415 - not before containment
    from responder.run import dry_run  # noqa: PLC0415

    planned = plan_of()
    sys.stderr.write(report.summary(dry_run.document(planned)) + "\n")
    if ask("Proceed?"):
        return planned
    err("aborted; nothing was changed")
    return None
