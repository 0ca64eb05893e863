"""The journal: the one source of truth about an incident (see base.Journal).

Backends: SQLite (one file, the default) and DynamoDB (Lambda, teams); both implement
base.Journal and pass the same tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    import boto3

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
]


def open_journal(
    state: str | None, home: Path, session: boto3.Session | None = None
) -> Journal:
    """`--state`: a SQLite path (default $RESPONDER_HOME/responder.db), or
    `dynamodb://TABLE` for the DynamoDB journal, reached through `session` (the run's,
    so `--profile` and `--region` choose the table's account and region as they do for
    every other call)."""
    if state and state.startswith("dynamodb://"):
        from responder.journal.dynamodb import DynamoDbJournal  # noqa: PLC0415

        return DynamoDbJournal.from_url(state, session=session)
    from responder.journal.sqlite import SqliteJournal  # noqa: PLC0415 - sqlite imports us

    return SqliteJournal(Path(state) if state else home / "responder.db")
