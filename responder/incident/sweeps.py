"""When an incident's sweeps are due, and which regions they must read again.

Due: the playbook's `sweeps` settings counted from containment. Each moment
(contained_at + after_minutes) stays due until a sweep read CloudTrail at or after it,
whatever ran by hand before; one sweep after several overdue moments covers them all.
Read by the view (what is due) and by schedule-sweeps (what to schedule), so the two can
never disagree.

Unread: a region whose LookupEvents failed is an evidence gap until a later read covers
it whole; the view's `regions_unread` is computed here, and the exit code, the report's
headline, replace-key and the next sweep all read that one property.

Shut: what each sweep's containment shut first, for the report.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from responder.incident.facts import AttackerContained, EvidenceCollected, Facts, SweepFound

DEFAULT_AFTER_MINUTES = (15, 60)
DEFAULT_OVERLAP_MINUTES = 30


def due_times(settings: Mapping[str, Any], contained_at: datetime) -> list[datetime]:
    """Every scheduled moment, in order, whether or not a sweep covered it yet."""
    minutes = settings.get("after_minutes", DEFAULT_AFTER_MINUTES)
    return [contained_at + timedelta(minutes=int(m)) for m in sorted(minutes)]


def still_due(settings: Mapping[str, Any], contained_at: datetime,
              swept: Iterable[datetime]) -> list[datetime]:
    """The scheduled moments no sweep covered yet, in order. A moment is covered by a
    sweep that read CloudTrail at or after it (`swept`: when each finished sweep read);
    a sweep before it covers nothing, however many ran, because CloudTrail may still be
    delivering what the moment waits for."""
    latest = max(swept, default=None)
    return [m for m in due_times(settings, contained_at) if latest is None or m > latest]


def _region_of(lookup: str) -> str:
    """A sweep names a failed lookup "KEY region"; the evidence step names the region."""
    return lookup.rpartition(" ")[2] or lookup


def evidence_failures(facts: EvidenceCollected) -> dict[str, str]:
    """The regions the evidence step could not read, for the key or for a temporary key
    it minted: region, its (first) error."""
    failed = dict(facts.regions_failed)
    for temporary in facts.temporary_keys:
        for region, error in temporary.regions_failed.items():
            failed.setdefault(region, error)
    return failed


def sweep_failures(facts: SweepFound) -> dict[str, str]:
    """The regions a sweep could not read, for any key: region, its (first) error."""
    failed: dict[str, str] = {}
    for lookup, error in facts.regions_failed.items():
        failed.setdefault(_region_of(lookup), error)
    return failed


def regions_unread_after(reads: Iterable[tuple[str, Facts]]
                         ) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Walk the evidence step's and the finished sweeps' facts (step name, facts), in the
    order they ran. The evidence step leaves unread the regions it failed in (a resume
    that collects again reads every unread region, so its facts say what is still
    unread); a sweep reads every unread region again over the whole lookback, so after it
    the unread regions are exactly those it failed in (a gap region still failing, or one
    it missed in its own window). Returns the regions unread at the end (region: the last
    error), and for each sweep the unread regions it read again."""
    unread: dict[str, str] = {}
    reread: dict[str, tuple[str, ...]] = {}
    for name, facts in reads:
        if isinstance(facts, EvidenceCollected):
            unread = evidence_failures(facts)
        elif isinstance(facts, SweepFound):
            failed = sweep_failures(facts)
            reread[name] = tuple(sorted(set(unread) - set(failed)))
            unread = failed
    return dict(sorted(unread.items())), reread


def shut_first(steps: Iterable[tuple[str, Facts]]) -> dict[str, AttackerContained]:
    """contain-attacker's and the sweeps' facts (step name, facts), in the order they ran:
    for each sweep that contained, what it shut that no step before it had, and what it
    left for a human. A sweep contains on the whole evidence, so its lists also name, as
    `already`, what was shut before; here each thing is told once, by who shut it."""
    keys: set[tuple[str, str]] = set()
    principals: set[tuple[str, str]] = set()
    sessions: set[tuple[str, str]] = set()
    shut: dict[str, AttackerContained] = {}
    for name, facts in steps:
        found = facts.attacker if isinstance(facts, SweepFound) else facts
        if not isinstance(found, AttackerContained):
            continue
        first = dataclasses.replace(
            found,
            keys_disabled=tuple(k for k in found.keys_disabled
                                if (k.user_name, k.access_key_id) not in keys),
            principals_quarantined=tuple(p for p in found.principals_quarantined
                                         if (p.type, p.name) not in principals),
            sessions_revoked=tuple(
                dataclasses.replace(r, sessions=tuple(
                    x for x in r.sessions if (r.role_name, x) not in sessions))
                for r in found.sessions_revoked
                if any((r.role_name, x) not in sessions for x in r.sessions)))
        keys |= {(k.user_name, k.access_key_id) for k in found.keys_disabled}
        principals |= {(p.type, p.name) for p in found.principals_quarantined}
        sessions |= {(r.role_name, x) for r in found.sessions_revoked for x in r.sessions}
        if isinstance(facts, SweepFound):
            shut[name] = first
    return shut
