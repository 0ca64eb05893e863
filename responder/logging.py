"""structlog setup: human lines on stderr, JSON lines in the incident's log.jsonl.

A redaction processor runs before both sinks, so a secret that slips into an event
(a SecretAccessKey in a response, a session token in an error) is never written.

Every event is written the moment it is logged (log.jsonl is flushed line by line), so
what a run said survives its being killed. The incident's id is bound with
structlog.contextvars while `incident_log` runs; tests read events with
structlog.testing.capture_logs(), which `configure()` leaves in place.

The CLI configures a quiet console (`quiet=True`, unless -v): log.jsonl still gets every
event, but stderr, which a human reads next to the command's story, gets only one short
line per finished step (on a terminal) and one readable line per warning or error.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import structlog
from structlog.testing import LogCapture

from responder.redaction import SECRET_FIELDS, redact

if TYPE_CHECKING:
    from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger


def redact_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Processor: drop secret-shaped values and secret-named fields from every event."""
    return {k: "<redacted>" if k in SECRET_FIELDS else redact(v) for k, v in event.items()}


class JsonlSink:
    """Processor that appends each event to the current incident's log.jsonl."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._file: TextIO | None = None

    def open(self, path: Path) -> str | None:
        """Start appending to `path`; the reason it cannot be written, else None. A log
        file is never a reason to stop: the run goes on, logging to stderr only."""
        with self._lock:
            self.close_file()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = path.open("a", encoding="utf-8")
            except OSError as exc:
                return f"{type(exc).__name__}: {exc.strerror or exc}"
        return None

    def close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __call__(self, _: WrappedLogger, __: str, event: EventDict) -> EventDict:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.write(json.dumps(event, default=str, sort_keys=True) + "\n")
                    self._file.flush()
                except OSError:  # a full disk: stop writing the file, keep stderr
                    self._file = None
        return event


SINK = JsonlSink()


PROGRESS_EVENTS = frozenset({"step.end", "followup.end"})
"""The events a quiet console shows on a terminal, one line per finished step."""
_SHOWN_LEVELS = frozenset({"warning", "error", "critical"})
"""A quiet console still shows these: the human must know (a log it cannot write)."""
_MARKS = {"done": "ok", "failed": "!!", "waiting": "..", "skipped": "--"}
_NOT_FIELDS = frozenset({"event", "error", "hint", "timestamp", "level", "logger",
                         "exc_info", "stack_info"})
"""Keys a warning's human line says in its own way, or not at all (a traceback is for
-v and log.jsonl)."""


def _one_line(value: Any) -> str:
    """`value` as text on a single line: an error message may span several."""
    return " ".join(str(value).split())


def _field(value: Any) -> str:
    """A field's value as ConsoleRenderer shows it: quoted unless it is one word of text,
    so where one value ends and the next key starts stays clear."""
    if isinstance(value, str) and value and not any(c.isspace() for c in value):
        return value
    return repr(value)


def _fields(event: EventDict) -> str:
    """`key=value ...` (sorted, as in the full log) of what a warning says beyond its
    event, error and hint. Fields bound for the whole incident (its id) are left out:
    the command's output names it."""
    bound = structlog.contextvars.get_contextvars()
    return " ".join(f"{k}={_field(v)}" for k, v in sorted(event.items())
                    if k not in _NOT_FIELDS and v is not None
                    and not (k in bound and bound[k] == v))


def progress_line(event: EventDict) -> str:
    """`  [ok] disable-key  0.19s` or `  [!!] notify  failed: <error>`: how a step ended,
    for the human watching; its fields are in log.jsonl."""
    status = str(event.get("status", "?"))
    line = f"  [{_MARKS.get(status, '??')}] {event.get('step', '?')}"
    if status != "done":
        error = event.get("error")
        return f"{line}  {status}" + (f": {_one_line(error)}" if error else "")
    took = event.get("duration_ms")
    return f"{line}  {took / 1000:.2f}s" if isinstance(took, int | float) else line


def warning_line(event: EventDict) -> str:
    """`respond: warning: incident_log.unwritable: <error> (path=...) - <hint>`: a warning
    or error in one line, like the CLI's own (`respond: ...`)."""
    fields = _fields(event)
    line = f"respond: {event.get('level', 'warning')}: {event.get('event')}"
    if event.get("error"):
        line += f": {_one_line(event['error'])}"
    if fields:
        line += f" ({_one_line(fields)})"
    if event.get("hint"):
        line += f" - {_one_line(event['hint'])}"
    return line


def quiet_line(event: EventDict, *, tty: bool) -> str | None:
    """What a quiet console shows of `event`: a warning always, a step's end on a
    terminal (pipes, CI and tests get no progress), else nothing."""
    if event.get("level") in _SHOWN_LEVELS:  # add_log_level's
        return warning_line(event)
    if tty and event.get("event") in PROGRESS_EVENTS:
        return progress_line(event)
    return None


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # closed: nothing to show progress on
        return False


class _Console:
    """The last processor: the event as one human line, then `text` applied to it (the
    CLI makes the commands in it pasteable, as it does for everything it prints). A
    quiet console drops what it does not show (log.jsonl has it already)."""

    def __init__(self, text: Callable[[str], str] | None, *, quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        self._render = structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
        self._text = text
        self.quiet = quiet
        self._stream = stream
        """The stream configured, else None: the stderr of the moment (see _stderr)."""

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> str:
        stream = self._stream if self._stream is not None else sys.stderr
        line = (quiet_line(event, tty=_is_tty(stream)) if self.quiet
                else self._render(logger, name, event))
        if line is None:
            raise structlog.DropEvent
        return self._text(line) if self._text is not None else line


def _processors(console_text: Callable[[str], str] | None = None, *, quiet: bool = False,
                stream: TextIO | None = None) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,  # incident_log's fields; the event's win
        structlog.processors.add_log_level,
        # "2026-01-05T09:00:00.123456Z": UTC, ISO 8601, "Z" rather than "+00:00".
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        redact_secrets,
        SINK,
        _Console(console_text, quiet=quiet, stream=stream),
    ]


def _stderr(*_: Any) -> structlog.PrintLogger:
    """A logger on the stderr of the moment (a test's capture, a redirected stream):
    never stdout, which holds only the result (`--output json`'s one object)."""
    return structlog.PrintLogger(sys.stderr)


def configure(verbose: bool = False, stream: TextIO | None = None,
              console_text: Callable[[str], str] | None = None, *,
              quiet: bool = False) -> None:
    """Log at INFO (DEBUG when verbose) to `stream` (stderr) and the open log.jsonl;
    `console_text` rewrites each console line (not log.jsonl).

    `quiet` (the CLI without -v; `verbose` wins) keeps the console to what a human needs
    next to a command's story: warnings and errors, one line each, and on a terminal one
    progress line per finished step (see quiet_line). log.jsonl still gets every event
    at INFO and above. The default, for the Lambda and library use, is the full log.

    Loggers are not cached (cache_logger_on_first_use=False), so a module-level
    `get_logger(...)` follows later configuration and structlog.testing.capture_logs().
    A capture in progress is kept: code under test that configures (the Lambda handler
    does on every invocation) still has its events captured.

    Every handler writes to stderr: this configuration, the one this module installs
    when imported (structlog's own default prints to stdout, and an event logged before
    a command configures, or while an interrupt is answered, must not land before the
    JSON object), and the standard library's, which is left alone (botocore and urllib3
    log through it; with no handler configured, logging.lastResort writes to stderr)."""
    level = logging.DEBUG if verbose else logging.INFO
    current = structlog.get_config()["processors"]
    capturing = any(isinstance(p, LogCapture) for p in current)
    structlog.configure(
        processors=current if capturing else _processors(
            console_text, quiet=quiet and not verbose, stream=stream),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream) if stream is not None else _stderr,
        cache_logger_on_first_use=False,
    )


@contextmanager
def incident_log(path: Path, **bind: Any) -> Iterator[None]:
    """Send events to `path` and bind incident fields while the block runs."""
    if not structlog.is_configured():
        # Library use (Lambda, tests, drill): the JSONL file must exist whoever called us.
        configure()
    problem = SINK.open(path)
    with structlog.contextvars.bound_contextvars(**bind):
        if problem is not None:
            get_logger("responder.logging").warning(
                "incident_log.unwritable", path=str(path), error=problem,
                hint=_unwritable_hint())
        try:
            yield
        finally:
            SINK.close_file()


def _unwritable_hint() -> str:
    """Where the incident's log is when its file cannot be written: a quiet console
    shows only warnings, so the human learns that -v shows the rest."""
    if any(isinstance(p, _Console) and p.quiet for p in structlog.get_config()["processors"]):
        return "the response goes on without this incident's log file; -v shows it on stderr"
    return "the response goes on; this incident's log is on stderr only"


def get_logger(name: str) -> FilteringBoundLogger:
    """A logger for `name`, bound lazily: it uses whatever configuration is current."""
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger


if not structlog.is_configured():
    configure()  # on stderr from the first event on (see configure)
