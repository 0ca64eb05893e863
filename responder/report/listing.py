"""`respond status`'s listing: every incident as a summary of a few hundred bytes, read
from the journal one incident at a time.

Why a summary and not the §2 document: the listing answers "where does each incident
stand", and the whole document (every step's detail, snapshots, evidence summaries)
made 1,000 incidents print 60 MB of JSON and hold 447 MB while doing it. A summary is
built from the incident's record and its steps (never its calls) and let go before the
next incident is read, so `respond status` keeps the same memory whatever the journal
holds; `respond status ID` still prints the whole document.

The human table and `--output json` are two renderings of the same IncidentSummary, so
they cannot disagree (status, step, sweeps, age).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from responder.context import iso, parse_iso
from responder.errors import UnknownIncident
from responder.incident.view import IncidentView
from responder.journal import Journal
from responder.report.entry import Entry
from responder.report.incident_document import evidence_of

UNITS: Final = (("day", 86400), ("hour", 3600), ("minute", 60))
HEADER: Final = (f"{'INCIDENT':<28} {'STATUS':<11} {'ACCESS KEY':<20}  {'USER':<16} "
                 f"{'STEP':<17} {'SWEEPS':<20} AGE")


@dataclass(frozen=True)
class SummaryCounts(Entry):
    """How much there is of each thing, so a reader can tell which incident needs a look
    without loading it."""

    events: int | None = None
    """CloudTrail events in the evidence, after the last sweep; null before evidence."""
    steps_done: int = 0
    """The playbook's steps done or skipped."""
    steps_total: int = 0
    """The playbook's steps (follow-ups such as sweeps are not counted)."""
    sweeps_done: int = 0
    """Sweeps that finished and read CloudTrail again."""
    needs_human: int = 0
    """Changes of the attacker's left for a human to undo (contain-attacker's and the
    sweeps'): `respond status ID` and the report list each with its command."""


@dataclass(frozen=True)
class IncidentSummary(Entry):
    """One incident in the listing (`--output json`: `{"incidents": [...]}`). Nothing
    here is a Python repr: text, numbers and ISO-8601 times, null where unknown."""

    incident_id: str = ""
    status: str = ""
    """The §2 status, except `halted` for an incident whose runner is gone (as `respond
    status ID` shows it) and `rolled-back` once a rollback finished."""
    access_key_id: str = ""
    user_name: str | None = None
    """The key's IAM user (for a temporary key, the session's user, if a user's)."""
    role_name: str | None = None
    """For a role's temporary key: the role and the session (null otherwise)."""
    session_name: str | None = None
    account_id: str | None = None
    started_at: str | None = None
    contained_at: str | None = None
    current_step: str | None = None
    """The first playbook step not done or skipped; null once every one is."""
    age_seconds: int = 0
    """Since the incident started."""
    age: str = ""
    """The same in words: `12 minutes`, `3 days`."""
    next_sweep_at: str | None = None
    counts: SummaryCounts = field(default_factory=SummaryCounts)


def age_words(seconds: int) -> str:
    """`40 seconds`, `1 minute`, `5 hours`, `2 days`: the largest whole unit."""
    for unit, size in (*UNITS, ("second", 1)):
        if seconds >= size or size == 1:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return ""  # pragma: no cover - the loop always returns


def summary_of(view: IncidentView, now: datetime) -> IncidentSummary:
    """The summary of an incident loaded without its calls (IncidentView.of(record,
    steps)), as of `now`."""
    record, session = view.record, view.session
    evidence = evidence_of(view)
    due = view.sweeps_due
    carriers = [view.attacker, *(found.attacker for found in view.sweeps_found)]
    undo = {(h.event_id, h.what, h.undo) for c in carriers if c is not None
            for h in c.needs_human}
    seconds = max(0, int((now - record.started_at).total_seconds()))
    if view.rolled_back is not None:
        status = "rolled-back"
    else:
        status = "halted" if view.abandoned(now) else record.status
    return IncidentSummary(
        incident_id=record.id, status=status, access_key_id=record.access_key_id,
        user_name=record.user_name or (session.user_name if session else None),
        role_name=session.role_name if session else None,
        session_name=session.session_name if session and session.role_name else None,
        account_id=record.account_id, started_at=iso(record.started_at),
        contained_at=iso(record.contained_at), current_step=view.current_step,
        age_seconds=seconds, age=age_words(seconds),
        next_sweep_at=iso(due[0]) if due else None,
        counts=SummaryCounts(
            events=evidence.events if evidence is not None else None,
            steps_done=sum(s.status in {"done", "skipped"} for s in view.steps),
            steps_total=len(view.steps), sweeps_done=len(view.sweeps_found),
            needs_human=len(undo)))


class Shown:
    """The ids a listing shows, from the journal's listing (open incidents first, each
    group newest first): every open incident, then at most `limit` finished ones (all
    with None). Counts the finished ones it leaves out as it goes (`hidden`, said under
    the table), so the listing is read once and never held."""

    def __init__(self, listed: Iterable[tuple[str, bool]], limit: int | None) -> None:
        self._listed = listed
        self._limit = limit
        self.hidden = 0

    def __iter__(self) -> Iterator[str]:
        finished = 0
        for incident_id, is_open in self._listed:
            if not is_open:
                finished += 1
                if self._limit is not None and finished > self._limit:
                    self.hidden += 1
                    continue
            yield incident_id


def summaries(journal: Journal, ids: Iterable[str], now: datetime
              ) -> Iterator[IncidentSummary]:
    """Each incident's summary, read (record and steps) only when it is asked for and
    let go once the caller moves on. An incident gone since it was listed (DynamoDB's
    TTL) is left out."""
    for incident_id in ids:
        try:
            record = journal.get(incident_id)
        except UnknownIncident:
            continue
        yield summary_of(IncidentView.of(record, journal.steps(incident_id)), now)


def row(summary: IncidentSummary) -> str:
    """The summary as a line of the human table (HEADER's columns)."""
    who = summary.user_name or (f"role/{summary.role_name}" if summary.role_name else "?")
    done, due = summary.counts.sweeps_done, parse_iso(summary.next_sweep_at)
    sweeps = "-" if not done and due is None else \
        f"{done} done" + (f", next {due:%H:%M}Z" if due is not None else "")
    return (f"{summary.incident_id:<28} {summary.status:<11} {summary.access_key_id:<20}  "
            f"{who:<16} {summary.current_step or '-':<17} {sweeps:<20} "
            f"{_short_age(summary.age_seconds)}")


def _short_age(seconds: int) -> str:
    """The table's AGE: `7s`, `12m`, `3h`, `2d`."""
    for unit, size in UNITS:
        if seconds >= size:
            return f"{seconds // size}{unit[0]}"
    return f"{seconds}s"


__all__ = ["HEADER", "IncidentSummary", "Shown", "SummaryCounts", "age_words", "row",
           "summaries", "summary_of"]
