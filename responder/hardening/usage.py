"""What a user really did, read from CloudTrail records (the parsed `CloudTrailEvent` JSON).

Each record's actions and ARNs come from needs.py (iam-dataset's map, IAM's catalog);
this module adds them up over a history that can be 100,000 events, and keeps what a
reviewer must be told besides: the calls no IAM action is known for, the calls refused,
and how much of the history came from console sessions.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from responder.hardening.needs import DENIED_CODES, Need, event_key, needed

AWS_SOURCE_IPS: frozenset[str] = frozenset({"AWS Internal"})


@dataclass(frozen=True)
class Usage:
    """One action as the user exercised it: enough to write a statement and to tell a
    reviewer how often and when, so a one-off call can be questioned before it is kept."""

    action: str
    resources: tuple[str, ...]
    """Sorted ARNs; empty means any resource ("*")."""
    count: int
    first_seen: datetime
    last_seen: datetime
    why_any: str | None = None
    """Why any resource, when resources is empty: IAM takes no ARN for the action, or a
    call did not name its resource."""
    guessed: bool = False
    """The map does not know the call: `<namespace>:<eventName>`, which IAM has."""


def event_time(record: Mapping[str, Any]) -> datetime:
    """eventTime as an aware UTC datetime. A record without one is refused rather than
    skipped: dropping it would silently drop usage from the proposal."""
    try:
        moment = datetime.fromisoformat(record["eventTime"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"CloudTrail record without an eventTime: {record.get('eventID')}"
                         ) from error
    return _as_utc(moment)


def _as_utc(moment: datetime) -> datetime:
    """CloudTrail times are UTC; a naive datetime from a caller is taken to be UTC too,
    so comparing it with event times cannot raise."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


_Row = tuple[set[str] | None, int, datetime, datetime, str | None, bool]
"""An action's tally: ARNs (None: any), count, first and last seen, why any, guessed."""


class Tally:
    """Usage and source addresses gathered one record at a time, each eventID once.

    The history of a busy user is 100,000 events or more: holding every record to
    summarise it afterwards cost hundreds of MB, and the same events come twice inside an
    incident (the leaked key's, from the evidence file and from the lookup by user
    name). Memory grows with the distinct actions, resources, addresses and event ids,
    never with whole records. Records at or after `before` are the attacker's time: they
    count as events and for source addresses, never as usage. Thread-safe: the regions
    are read in parallel.
    """

    def __init__(self, before: datetime | None = None, since: datetime | None = None
                 ) -> None:
        self._before = _as_utc(before) if before is not None else None
        self._since = _as_utc(since) if since is not None else None
        self._seen: set[str] = set()
        self._usage: dict[str, _Row] = {}
        self._recent: dict[str, _Row] = {}
        self._first_ip: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self.events = 0
        """Distinct records added."""
        self.unknown: Counter[str] = Counter()
        """Calls before `before` that no IAM action is known for, by `ns:eventName`."""
        self.denied: dict[str, tuple[int, datetime]] = {}
        """Calls IAM refused (at or after `since`, when given), by `host:eventName`: how
        many, and the latest."""
        self.console = 0
        """Usage events made in a console session (sessionCredentialFromConsole)."""

    def add(self, record: Mapping[str, Any], *, once: bool = True) -> bool:
        """Count `record` unless `once` and its eventID was added already; True when
        counted. Plain records handed in whole (tests) pass once=False."""
        event_id = record.get("eventID")
        found = needed(record)
        address = record.get("sourceIPAddress")
        located = isinstance(address, str) and bool(address) \
            and address not in AWS_SOURCE_IPS and not address.endswith(".amazonaws.com")
        refused = record.get("errorCode") in DENIED_CODES
        timed = found.needs or found.unknown or located or refused
        moment = event_time(record) if timed else None
        with self._lock:
            if once and isinstance(event_id, str) and event_id:
                if event_id in self._seen:
                    return False
                self._seen.add(event_id)
            self.events += 1
            if moment is None:
                return True
            if located:
                known = self._first_ip.get(str(address))
                if known is None or moment < known:
                    self._first_ip[str(address)] = moment
            if refused and (self._since is None or moment >= self._since):
                self._refused(record, moment)
            if self._before is not None and moment >= self._before:
                return True
            if found.unknown:
                self.unknown[found.unknown] += 1
            if found.needs and _from_console(record):
                self.console += 1
            for need in found.needs:
                _use(self._usage, need, moment)
                if self._since is not None and moment >= self._since:
                    _use(self._recent, need, moment)
        return True

    def _refused(self, record: Mapping[str, Any], moment: datetime) -> None:
        key = event_key({**record, "errorCode": None})
        if key is not None:
            name = f"{key[0]}:{key[1]}"
            count, last = self.denied.get(name, (0, moment))
            self.denied[name] = (count + 1, max(last, moment))

    def usages(self) -> tuple[Usage, ...]:
        """One Usage per action, sorted by action.

        Resources are unioned over the action's events, but a single event with no
        narrowable resource makes the action "any": narrowing it would deny that very call.
        """
        with self._lock:
            return _usages(self._usage)

    def since_usages(self) -> tuple[Usage, ...]:
        """usages() of the events at or after `since` only (none without it)."""
        with self._lock:
            return _usages(self._recent)

    def new_source_ips(self, since: datetime) -> tuple[str, ...]:
        """Addresses first seen at or after `since` (see `new_source_ips`)."""
        cutoff = _as_utc(since)
        with self._lock:
            return tuple(sorted(a for a, moment in self._first_ip.items() if moment >= cutoff))


def _use(rows: dict[str, _Row], need: Need, moment: datetime) -> None:
    row = rows.get(need.action)
    if row is None:
        rows[need.action] = (set(need.resources) if need.resources else None, 1, moment,
                             moment, need.why_any, need.guessed)
        return
    union, count, first, last, why, guessed = row
    if union is not None:
        union = union | set(need.resources) if need.resources else None
    rows[need.action] = (union, count + 1, min(first, moment), max(last, moment),
                         why or need.why_any, guessed and need.guessed)


def _usages(rows: Mapping[str, _Row]) -> tuple[Usage, ...]:
    return tuple(Usage(action=action, resources=tuple(sorted(union)) if union else (),
                       count=count, first_seen=first, last_seen=last,
                       why_any=None if union else why, guessed=guessed)
                 for action, (union, count, first, last, why, guessed) in sorted(rows.items()))


def _from_console(record: Mapping[str, Any]) -> bool:
    """CloudTrail's top-level sessionCredentialFromConsole (record format 1.08 on) is
    present, as "true", only for a call from a console session."""
    return str(record.get("sessionCredentialFromConsole", "")).lower() == "true"


def summarize(records: Iterable[Mapping[str, Any]]) -> tuple[Usage, ...]:
    """One Usage per action, sorted by action (Tally.usages, over every record given).

    Resources are unioned over the action's events, but a single event with no narrowable
    resource makes the action "any": narrowing it would deny that very call.
    """
    tally = Tally()
    for record in records:
        tally.add(record, once=False)
    return tally.usages()


def new_source_ips(records: Iterable[Mapping[str, Any]], *, since: datetime) -> tuple[str, ...]:
    """Addresses first seen at or after `since`: the user's usual addresses show up before
    the compromise, so a new one afterwards hints at where the attacker came from.

    AWS service hosts (calls a service made on the user's behalf) are left out: they are
    not anyone's location.
    """
    tally = Tally()
    for record in records:
        tally.add(record, once=False)
    return tally.new_source_ips(since)
