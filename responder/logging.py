"""structlog setup: human lines on stderr, JSON lines in the incident's log.jsonl.

A redaction processor runs before both sinks, so a secret that slips into an event
(a SecretAccessKey in a response, a session token in an error) is never written.

Every event is written the moment it is logged (log.jsonl is flushed line by line), so
what a run said survives its being killed. The incident's id is bound with
structlog.contextvars while `incident_log` runs; tests read events with
structlog.testing.capture_logs(), which `configure()` leaves in place.
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


class _Console:
    """The last processor: the event as one human line, then `text` applied to it (the
    CLI makes the commands in it pasteable, as it does for everything it prints)."""

    def __init__(self, text: Callable[[str], str] | None) -> None:
        self._render = structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
        self._text = text

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> str:
        line = self._render(logger, name, event)
        return self._text(line) if self._text is not None else line


def _processors(console_text: Callable[[str], str] | None = None) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,  # incident_log's fields; the event's win
        structlog.processors.add_log_level,
        # "2026-01-05T09:00:00.123456Z": UTC, ISO 8601, "Z" rather than "+00:00".
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        redact_secrets,
        SINK,
        _Console(console_text),
    ]


def _stderr(*_: Any) -> structlog.PrintLogger:
    """A logger on the stderr of the moment (a test's capture, a redirected stream):
    never stdout, which holds only the result (`--output json`'s one object)."""
    return structlog.PrintLogger(sys.stderr)


def configure(verbose: bool = False, stream: TextIO | None = None,
              console_text: Callable[[str], str] | None = None) -> None:
    """Log at INFO (DEBUG when verbose) to `stream` (stderr) and the open log.jsonl;
    `console_text` rewrites each console line (not log.jsonl).

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
        processors=current if capturing else _processors(console_text),
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
                hint="the response goes on; this incident's log is on stderr only")
        try:
            yield
        finally:
            SINK.close_file()


def get_logger(name: str) -> FilteringBoundLogger:
    """A logger for `name`, bound lazily: it uses whatever configuration is current."""
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger


if not structlog.is_configured():
    configure()  # on stderr from the first event on (see configure)
