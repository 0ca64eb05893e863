"""structlog setup: human lines on stderr, JSON lines in the incident's log.jsonl.

A redaction processor runs before both sinks, so a secret that slips into an event
(a SecretAccessKey in a response, a session token in an error) is never written.

structlog (and asyncio, which it imports) costs tens of milliseconds, which a run that
has not yet disabled the key cannot spare: a command that may contain (`hold()`) keeps
its events, with their time and bound fields, until the key is contained, then sends
them through structlog in order (`release()`). A warning is never kept waiting: the
first one releases everything, since a run that warns is slow already.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

from responder.redaction import SECRET_FIELDS, redact

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger

_BOUND: ContextVar[Mapping[str, Any]] = ContextVar("responder_log_bound",
                                                    default=MappingProxyType({}))
"""Fields every event carries while incident_log runs (the incident's id)."""


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


def merge_bound(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Processor: the fields incident_log bound (an event's own fields win)."""
    return {**_BOUND.get(), **event}


def stamp(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Processor: the event's time, unless it was kept (it then carries when it happened)."""
    event.setdefault("timestamp", _now())
    return event


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class _Held(NamedTuple):
    """An event kept until release() (a tuple: cheaper to define than a dataclass)."""

    logger: str
    level: str
    event: str
    fields: Mapping[str, Any]


class _Holding:
    """The events kept while a command that may contain has not contained yet."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[_Held] | None = None
        self.config: tuple[bool, TextIO | None] | None = None

    def keep(self, held: _Held) -> bool:
        """Whether `held` was kept; a warning is, and releases everything with it."""
        with self.lock:
            if self.events is None:
                return False
            self.events.append(held)
        if held.level in {"warning", "error"}:
            release()
        return True


_HOLDING = _Holding()


def hold() -> None:
    """Keep events from now until release(); nothing to keep once structlog is loaded."""
    if "structlog" not in sys.modules:
        with _HOLDING.lock:
            if _HOLDING.events is None:
                _HOLDING.events = []


def release() -> None:
    """Load structlog, apply the configuration asked for meanwhile, and log what was
    kept, in order. Safe to call at any time, from any thread, more than once."""
    with _HOLDING.lock:
        kept, _HOLDING.events = _HOLDING.events, None
        config, _HOLDING.config = _HOLDING.config, None
    if kept is None:
        return
    import structlog  # noqa: PLC0415 - the point of holding

    if config is not None:
        configure(*config)
    elif not structlog.is_configured():
        configure()
    for held in kept:
        getattr(structlog.get_logger(held.logger), held.level)(held.event, **held.fields)


def configure(verbose: bool = False, stream: TextIO | None = None) -> None:
    with _HOLDING.lock:
        if _HOLDING.events is not None:
            _HOLDING.config = (verbose, stream)
            return
    import structlog  # noqa: PLC0415 - see hold()

    level = logging.DEBUG if verbose else logging.INFO
    structlog.configure(
        processors=[
            merge_bound,
            structlog.processors.add_log_level,
            stamp,
            redact_secrets,
            SINK,
            structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


@contextmanager
def incident_log(path: Path, **bind: Any) -> Iterator[None]:
    """Send events to `path` and bind incident fields while the block runs."""
    if _HOLDING.events is None and not _configured():
        # Library use (Lambda, tests, drill): the JSONL file must exist whoever called us.
        configure()
    problem = SINK.open(path)
    bound = _BOUND.set({**_BOUND.get(), **bind})
    if problem is not None:
        get_logger("responder.logging").warning(
            "incident_log.unwritable", path=str(path), error=problem,
            hint="the response goes on; this incident's log is on stderr only")
    try:
        yield
    finally:
        release()  # what was kept belongs in this incident's file
        _BOUND.reset(bound)
        SINK.close_file()


def _configured() -> bool:
    structlog = sys.modules.get("structlog")
    return structlog is not None and bool(structlog.is_configured())


class Logger:
    """A named logger that needs no structlog until an event must really be written."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def debug(self, event: str, **fields: Any) -> None:
        self._log("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log("error", event, fields)

    def _log(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if _HOLDING.events is not None and _HOLDING.keep(
                _Held(self.name, level, event, {**_BOUND.get(), **fields, "timestamp": _now()})):
            return
        import structlog  # noqa: PLC0415 - loaded once; see hold()

        getattr(structlog.get_logger(self.name), level)(event, **fields)


def get_logger(name: str) -> Logger:
    return Logger(name)
