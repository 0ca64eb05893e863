"""The journal: the one source of truth about an incident (see base.Journal).

Backends: SQLite (one file, the default) and DynamoDB (Lambda, teams); both implement
base.Journal and pass the same tests.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

from responder.errors import BadInput, JournalUnavailable, clipped
from responder.journal.base import Journal
from responder.journal.records import (
    OPEN_STATUSES,
    CallHandle,
    CallRecord,
    IncidentExists,
    IncidentRecord,
    IncidentStatus,
    StepRecord,
    StepStatus,
)
from responder.journal.sqlite import SqliteJournal

if TYPE_CHECKING:
    from responder.aws import AnySession

__all__ = [
    "OPEN_STATUSES",
    "CallHandle",
    "CallRecord",
    "IncidentExists",
    "IncidentRecord",
    "IncidentStatus",
    "Journal",
    "StepRecord",
    "StepStatus",
    "check_state",
    "open_journal",
    "open_journal_to_act",
]


DYNAMODB_URL: Final = "dynamodb://"
_TABLE: Final = re.compile(r"[A-Za-z0-9_.-]{3,255}")
"""A DynamoDB table name (journal/dynamodb.py checks the same; that module needs boto3)."""
_URL: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def check_state(state: str | None) -> str | None:
    """`--state` (or RESPONDER_STATE) as a journal location: None or a filesystem path
    (SQLite), or `dynamodb://TABLE`. Anything else shaped like a URL is BadInput, said
    before anything is opened: otherwise `s3://b/x` is taken for a relative path and the
    SQLite journal silently created as ./s3:/b/x, and `dynamodb://` with no table fails
    only later, somewhere less clear. Returns the location unchanged."""
    if not state:
        return state
    if state.startswith(DYNAMODB_URL):
        if _TABLE.fullmatch(state.removeprefix(DYNAMODB_URL)):
            return state
        raise BadInput(f"--state {clipped(state)}: expected dynamodb://TABLE with a DynamoDB "
                       "table name (3-255 characters: letters, digits, '_', '-', '.'); "
                       "nothing was opened or created")
    if _URL.match(state):
        scheme = state.split("://", 1)[0]
        raise BadInput(f"--state {clipped(state)}: a {clipped(scheme, 20)}:// URL is not a "
                       "journal; give a file path (SQLite) or dynamodb://TABLE; nothing was "
                       "opened or created")
    return state


def open_journal(
    state: str | None, home: Path, session: AnySession | None = None
) -> Journal:
    """`--state`: a SQLite path (default $RESPONDER_HOME/responder.db), or
    `dynamodb://TABLE` for the DynamoDB journal, reached through `session` (the run's,
    so `--profile` and `--region` choose the table's account and region as they do for
    every other call); a run's DynamoDB journal writes back what its lease holds
    (dynamodb_writeback.py). Any other URL is BadInput (check_state)."""
    check_state(state)
    if state and state.startswith(DYNAMODB_URL):
        from responder.journal.dynamodb_writeback import (  # noqa: PLC0415 - boto3
            WriteBackJournal,
        )

        return WriteBackJournal.from_url(state, session=session)
    return SqliteJournal(Path(state) if state else home / "responder.db")


def open_journal_to_act(
    state: str | None, home: Path, session: AnySession | None = None
) -> tuple[Journal, str | None]:
    """The journal a response acts with, and a warning when it is not the one asked for.

    A local journal that cannot be written (a directory, a corrupt file, a read-only or
    full disk) must not stand between a leaked key and its containment: the response is
    journaled in a fresh file in a temporary directory instead (then, if even that fails,
    in memory), and the warning names where. That is safe because the journal is this
    run's write-ahead record, not the record of what AWS holds: every step observes AWS
    before it acts, so a later run with the usual journal finds the key contained and
    acts on nothing twice. A DynamoDB journal is shared state, so it is never replaced.
    """
    try:
        return open_journal(state, home, session), None
    except JournalUnavailable as exc:
        if state and state.startswith(DYNAMODB_URL):
            raise
        problem = str(exc)
    try:
        fallback = Path(tempfile.mkdtemp(prefix="responder-")) / "responder.db"
        return SqliteJournal(fallback), f"{problem}; journaling this response in {fallback}"
    except (OSError, JournalUnavailable):
        return SqliteJournal(Path(":memory:")), (
            f"{problem}, and no temporary directory is writable: this response is journaled "
            "in memory only (the report and `respond status` will not keep it)")
