"""The journal: the one source of truth about an incident (see base.Journal).

Backends: SQLite (one file, the default) and DynamoDB (Lambda, teams); both implement
base.Journal and pass the same tests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from responder.errors import JournalUnavailable
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
    "open_journal",
    "open_journal_to_act",
]


def open_journal(
    state: str | None, home: Path, session: AnySession | None = None
) -> Journal:
    """`--state`: a SQLite path (default $RESPONDER_HOME/responder.db), or
    `dynamodb://TABLE` for the DynamoDB journal, reached through `session` (the run's,
    so `--profile` and `--region` choose the table's account and region as they do for
    every other call); a run's DynamoDB journal writes back what its lease holds
    (dynamodb_writeback.py)."""
    if state and state.startswith("dynamodb://"):
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
        if state and state.startswith("dynamodb://"):
            raise
        problem = str(exc)
    try:
        fallback = Path(tempfile.mkdtemp(prefix="responder-")) / "responder.db"
        return SqliteJournal(fallback), f"{problem}; journaling this response in {fallback}"
    except (OSError, JournalUnavailable):
        return SqliteJournal(Path(":memory:")), (
            f"{problem}, and no temporary directory is writable: this response is journaled "
            "in memory only (the report and `respond status` will not keep it)")
