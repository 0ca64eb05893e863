"""What every `respond` command shares: its output (stdout for the result, stderr for
the rest), the run's context from the parsed options, and the journal it names. The
commands only parse and print; this is the printing and the wiring."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from responder.aws import RetryPolicy, env_number, session_factory
from responder.cli import interrupts
from responder.context import Options, RunContext, SessionHint, responder_home, utcnow
from responder.errors import EXIT_HALTED, MESSAGE_CHARS, BadInput, clipped
from responder.guardrails import check_bucket, check_role_arn, check_topic_arn
from responder.incident.view import IncidentView
from responder.journal import Journal, check_state, open_journal, open_journal_to_act
from responder.journal.sqlite import SqliteJournal
from responder.logging import get_logger

if TYPE_CHECKING:
    from responder.aws import AnySession
    from responder.report.model import IncidentDocument
    from responder.run.followup import Swept
    from responder.run.service import Plan


log = get_logger("responder.cli")

FULL_CHARS = 100_000
"""How much of a cut error line -v still shows (a line of megabytes helps no one)."""

JOURNAL_COMMANDS = ("compromised", "finding", "resume", "sweep", "status", "report",
                    "rollback", "close", "rotate", "harden")
"""The subcommands that read or write the journal: a printed one names it (--state)."""
_COMMAND = re.compile(r"(?<![\w./-])respond (" + "|".join(JOURNAL_COMMANDS) + r")\b"
                      r"(?!\s+--state\b)")


class _Edge:
    """What everything the CLI writes passes through: the journal printed commands must
    name, and whether stdout has had its say."""

    def __init__(self) -> None:
        self.state: str | None = None
        self.printed = False


EDGE = _Edge()


def begin(state: str | None) -> None:
    """A command starts: nothing printed yet, and `--state` (when it is not the default
    journal) named in every printed command."""
    EDGE.printed = False
    use_state(state_of(state))


def use_state(location: str | None) -> None:
    """From now on every printed `respond` command names this journal (None: the default
    one, which needs no naming)."""
    EDGE.state = location
    interrupts.STOP.said = pasteable


def state_of(state: str | None) -> str | None:
    """`--state` as a pasted command must give it: a DynamoDB URL as it is, a path made
    absolute (the paste may happen in another directory); None for the default journal."""
    if not state:
        return None
    if state.startswith("dynamodb://"):
        return state
    path = Path(state).expanduser().absolute()
    return None if path == (responder_home() / "responder.db").absolute() else str(path)


def pasteable(text: str, escape: Callable[[str], str] = str) -> str:
    """`text` with `--state LOCATION` after each `respond <subcommand>` that uses the
    journal, when the journal is not the default one: every command the CLI prints works
    when pasted, wherever in the code its text was made (reports, errors, notices).
    `escape` makes the inserted text fit the document (html.escape for a page)."""
    if EDGE.state is None:
        return text
    named = escape(f" --state {shlex.quote(EDGE.state)}")
    return _COMMAND.sub(lambda found: found.group(0) + named, text)


def _pasteable_json(value: Any) -> Any:
    if isinstance(value, str):
        return pasteable(value)
    if isinstance(value, Mapping):
        return {k: _pasteable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_pasteable_json(v) for v in value]
    return value


@contextmanager
def _signals_held() -> Iterator[None]:
    """Interrupts (and a waiting interrupt's look again) wait while a line or the JSON
    object is written, so none leaves half of it, or it unsaid: they land just after."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {*interrupts.SIGNALS, signal.SIGALRM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _write(stream: TextIO, text: str) -> None:
    with _signals_held():
        stream.write(text)
        stream.flush()
        if stream is sys.stdout:
            EDGE.printed = True


def out(text: str, escape: Callable[[str], str] = str) -> None:
    """A result on stdout (see pasteable for `escape`)."""
    _write(sys.stdout, pasteable(text, escape) + "\n")


def out_json(value: Any) -> None:
    """The one JSON object of `--output json` (DESIGN §2), on stdout."""
    out(json.dumps(_pasteable_json(value), indent=2, default=str))


def out_json_items(key: str, items: Iterable[Mapping[str, Any]]) -> None:
    """The one JSON object `{key: [...]}`, laid out as out_json lays it out, written one
    item at a time: a listing of any length is never held whole (`respond status`). An
    item that cannot be made once some are out still leaves one JSON object on stdout,
    closed after those (the error is said on stderr and the exit code says it); before
    any is out, nothing is written and the command's failure prints its own object."""
    from responder.report.json_text import pieces  # noqa: PLC0415 - listings only

    written = False
    try:
        for item in items:
            text = "".join(pieces(item, "    ", pasteable))
            _write(sys.stdout, (",\n    " if written else f"{{\n  {json.dumps(key)}: [\n    ")
                   + text)
            written = True
    except BaseException:
        if written:
            _write(sys.stdout, "\n  ]\n}\n")
        raise
    _write(sys.stdout, "\n  ]\n}\n" if written else json.dumps({key: []}, indent=2) + "\n")


def out_json_text(parts: Iterable[str]) -> None:
    """The one JSON object, from its text in pieces (report.json_text), written a chunk
    at a time: a report whose journal holds thousands of calls is never held whole."""
    from responder.report.json_text import chunks  # noqa: PLC0415 - reports only

    for chunk in chunks(parts):
        _write(sys.stdout, chunk)
    _write(sys.stdout, "\n")


def printed() -> bool:
    """Whether this run has written to stdout (the one JSON object is never doubled)."""
    return EDGE.printed


def err(text: str) -> None:
    """One line on stderr, `respond: ` first. At most MESSAGE_CHARS of `text`: whatever
    embedded user input a message (a 200,000-entry finding file once made 19.7 MB), the
    line stays readable and the terminal usable; the cut says how much more there was,
    and -v logs the whole of it (up to FULL_CHARS)."""
    shown = clipped(text, MESSAGE_CHARS)
    if shown != text:
        log.debug("error.untruncated", message=clipped(text, FULL_CHARS))
    _write(sys.stderr, pasteable(f"respond: {shown}\n"))


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


def checked_state(args: argparse.Namespace) -> BadInput | None:
    """`--state` checked once, before any command opens (or creates) anything: a path or
    `dynamodb://TABLE`, never another URL (`s3://b/x` would otherwise become the SQLite
    file ./s3:/b/x). A refused location is dropped from args, so nothing opens it and no
    printed command names it; run() says the refusal like any other."""
    try:
        check_state(args.state)
    except BadInput as exc:
        args.state = None
        return exc
    return None


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
    journal.open_journal_to_act), it is said in one line. When it is a fallback, the
    commands printed from here on name it."""
    journal, warning = open_journal_to_act(args.state, responder_home(), journal_session(args))
    if warning:
        if isinstance(journal, SqliteJournal) and journal.location != ":memory:":
            use_state(journal.location)
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


def print_view(view: IncidentView, output: str, now: datetime | None = None) -> None:
    """An incident as journaled: the §2 object (`--output json`), or its story on the
    terminal (with what the report adds: the evidence and what a human must do)."""
    from responder.report import document as report  # noqa: PLC0415 - after containment

    if output == "json":
        out_json(report.document_of(view, now).to_json())
    else:
        out(report.told(view, now))


def show(view: IncidentView, output: str) -> int:
    """Print the incident (the §2 object, or its story); its exit code."""
    print_view(view, output)
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
    if done.status == "failed":
        err(f"{done.step} failed: {done.error}; {done.again} runs it again")
    view = IncidentView.load(journal, done.record.id)
    print_view(view, output)
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
    _write(sys.stderr, pasteable(report.summary(dry_run.document(planned))) + "\n")
    if ask("Proceed?"):
        return planned
    err("aborted; nothing was changed")
    return None
