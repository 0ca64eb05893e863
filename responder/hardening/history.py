"""The user's CloudTrail history for a hardening proposal, read as collect-evidence reads
the key's: LookupEvents by user name, every region in parallel, each behind its own
2 requests/s token bucket, every page unless a limit is set, and then the window that was
read said exactly (from when to when, how many events, of about how many).

LookupEvents allows 2 requests per second per region and a throttled request counts
too: the sequential, unpaced reader this replaces spent 62 % of its calls on
ThrottlingExceptions at 100,000 events, and stopped at 50,000 with a bare "truncated".

Inside an incident the leaked key's own events are already in the incident's
cloudtrail.jsonl (collect-evidence read them in every region, every page): they are
taken from there (`from_evidence`), never asked for again. The user's other credentials
(another key, a deleted one, console sessions) have no evidence file, and only the
lookup by user name finds them (docs/decisions.md 42).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from responder.aws import Api
from responder.aws.parallel import map_abandoning
from responder.aws.ratelimit import TokenBucket
from responder.errors import AwsCallFailed
from responder.evidence.collect import lookup_call
from responder.hardening.usage import Tally, event_time

MAX_WORKERS = 32
Progress = Callable[[int, int, int], None]
"""(regions done, regions, events read so far): what a terminal shows meanwhile."""


@dataclass(frozen=True)
class RegionRead:
    """One region's lookup by user name: how far back it got, and whether it was all."""

    region: str
    events: int = 0
    pages: int = 0
    reached: datetime | None = None
    """Set when the read stopped at its limit with pages left: the oldest event read,
    so the region's history is known from there to the window's end only."""
    error: str | None = None


@dataclass(frozen=True)
class History:
    """The user's CloudTrail history as read: its window and what each region gave.

    `records` holds records handed in whole (tests of the step's decisions); the reader
    streams every record into a Tally instead and leaves it empty."""

    records: tuple[dict[str, Any], ...] = ()
    regions: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)
    """Region -> why it could not be read (the proposal may then miss actions)."""
    truncated: bool = False
    """A region stopped at its limit with pages left: the window's start was not reached."""
    window: tuple[datetime, datetime] | None = None
    """What was asked for: (lookback start, end)."""
    reads: tuple[RegionRead, ...] = ()

    @property
    def events(self) -> int:
        """Events the lookups returned (before removing those the evidence also holds)."""
        return sum(r.events for r in self.reads)

    @property
    def pages(self) -> int:
        return sum(r.pages for r in self.reads)

    @property
    def read(self) -> tuple[str, ...]:
        """The regions read without an error (`failed` names the others)."""
        return tuple(r.region for r in self.reads if not r.error)

    @property
    def read_from(self) -> datetime | None:
        """From when the history is known in every region read: the window's start when
        every page was read, else the latest point a stopped region reached back to;
        None when no region could be read."""
        if not self.read or self.window is None:
            return None
        reached = [r.reached for r in self.reads if r.reached is not None and not r.error]
        return max(reached) if reached else self.window[0]

    @property
    def estimated(self) -> int:
        """About how many events the window holds in the regions read: exact for a region
        read to the end; for one stopped early, its count scaled from the span it covered
        to the whole window (the rate of its newest events, so "about")."""
        if self.window is None:
            return self.events
        start, end = self.window
        total = 0.0
        for read in self.reads:
            if read.reached is None or read.error:
                total += read.events
                continue
            covered = max((end - read.reached).total_seconds(), 1.0)
            total += read.events * max((end - start).total_seconds(), covered) / covered
        return round(total)


class _Abandoned(BaseException):
    """Raised in a worker whose read was abandoned (SIGINT/SIGTERM): not an Exception, so
    nothing on the way mistakes it for a failed lookup."""


def read(api: Api, user: str, regions: tuple[str, ...], window: tuple[datetime, datetime], *,
         tally: Tally, buckets: Mapping[str, TokenBucket], limit: int | None = None,
         progress: Progress | None = None,
         meanwhile: Callable[[], None] | None = None) -> History:
    """LookupEvents by Username in every region of `regions` at once, newest first, each
    behind its bucket, every record into `tally`; a region stops after `limit` events
    (None: every page). `meanwhile` runs in this thread while the regions are read (the
    evidence file is parsed while the lookups wait on their buckets).

    Only what LookupEvents returns: management events (data events such as S3 GetObject
    are in trails, not here, unless the account's lookup returns them)."""
    for region in regions:  # clients are created here: creation is not thread-safe
        api.client("cloudtrail", region)
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"done": 0, "events": 0}

    def tell(done: int, events: int) -> None:
        with lock:
            counts["done"] += done
            counts["events"] += events
            if progress is not None:
                progress(counts["done"], len(regions), counts["events"])

    def one(region: str) -> RegionRead:
        found = _region(api, user, region, window, tally=tally, bucket=buckets[region],
                        limit=limit, stop=stop, tell=tell)
        tell(1, 0)
        return found

    reads = tuple(map_abandoning(one, regions, workers=MAX_WORKERS, abandon=stop.set,
                                 meanwhile=meanwhile))
    return History(regions=regions, window=window, reads=reads,
                   failed={r.region: r.error for r in reads if r.error},
                   truncated=any(r.reached is not None and not r.error for r in reads))


def _region(api: Api, user: str, region: str, window: tuple[datetime, datetime], *,
            tally: Tally, bucket: TokenBucket, limit: int | None, stop: threading.Event,
            tell: Callable[[int, int], None]) -> RegionRead:
    events = pages = 0
    oldest: datetime | None = None
    token: str | None = None
    while True:
        if stop.is_set():
            raise _Abandoned
        try:
            page = api.call(lookup_call(user, *window, token=token, attribute="Username"),
                            region=region, before_attempt=bucket.acquire)
        except AwsCallFailed as exc:
            return RegionRead(region, events, pages, None, f"{exc.code}: {exc.aws_message}")
        pages += 1
        got = 0
        for event in page.get("Events", []):
            raw = event.get("CloudTrailEvent")
            if isinstance(raw, str):
                record = json.loads(raw)
                tally.add(record)
                moment = event_time(record)
                oldest = moment if oldest is None else min(oldest, moment)
                got += 1
        events += got
        tell(0, got)
        token = page.get("NextToken")
        if not token:
            return RegionRead(region, events, pages)
        if limit is not None and events >= limit:
            return RegionRead(region, events, pages, reached=oldest)


def _is_users(record: Mapping[str, Any], user: str) -> bool:
    """An event the user made as itself (what a lookup by its user name returns): with
    the leaked key, or a session it minted with GetSessionToken. A role the key assumed
    acts under the role's policies, not the user's: not the user's usage."""
    identity = record.get("userIdentity")
    return isinstance(identity, Mapping) and identity.get("type") == "IAMUser" \
        and identity.get("userName") == user


def from_evidence(path: Path, user: str, since: datetime, tally: Tally) -> int:
    """Add to `tally` the evidence file's events the user made at or after `since`;
    returns how many there were. Streamed: memory stays flat however big the file."""
    found = 0
    floor = since.replace(microsecond=0)  # CloudTrail keeps whole seconds
    with path.open("rb") as source:
        for line in source:
            record = json.loads(line)
            if _is_users(record, user) and event_time(record) >= floor:
                tally.add(record)
                found += 1
    return found
