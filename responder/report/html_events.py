"""The evidence file, read for the page in bounded memory, whatever its size.

cloudtrail.jsonl may hold a hundred thousand events (a busy key, a day and more of
them). The page needs only aggregates of a size fixed in advance: when the events start
and end, where the high-risk ones cluster, how dense the whole span is, and, in the part
drawn in focus, how many events of each name lie under each label, how dense each pixel
column is, and one event per dot to point at. So the file is streamed twice, never
held: `survey` finds the span and the clusters, the timeline picks its focus from them,
and `tally` counts against that focus. Memory is the same at a thousand events as at a
hundred thousand.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from os import PathLike
from typing import Any

from responder.context import parse_iso
from responder.evidence.summary import HIGH_RISK
from responder.incident.shapes import refusal
from responder.report.story import words

CLUSTERS = 16
"""Runs of nearby times kept by `survey` (high-risk events, and all events)."""
SLOTS = 6
"""Names counted exactly per label chunk (high-risk ones first); the rest are `others`."""
CHARS, TIP_CHARS = 120, 400
"""A tooltip value, and a whole tooltip, are cut to this: an attacker's megabyte user
agent stays in the file."""
TIP = ("eventName", "errorCode", "eventTime", "awsRegion", "sourceIPAddress", "eventID")
"""A dot's tooltip (with the access key): enough to find the record in the file."""
Span = tuple[float, float]
"""From, to: seconds since the epoch."""


class EvidenceFile:
    """cloudtrail.jsonl as events, read from disk again on each iteration and never held.
    A missing or unreadable file, or a line that is not a JSON object, is no event: the
    page must always render."""

    def __init__(self, path: str | PathLike[str] | None) -> None:
        self.path = path

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        if not self.path:
            return
        try:
            with open(self.path, encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(event, dict):
                        yield event
        except OSError:
            return


Events = list[Mapping[str, Any]] | tuple[Mapping[str, Any], ...] | EvidenceFile
"""What the page reads twice: a test's own list, or the evidence file (never a generator,
whose second reading would be empty)."""


def seconds(value: object) -> float | None:
    """An ISO time as seconds since the epoch; None when missing or malformed (skipped and
    counted, never fatal)."""
    if not isinstance(value, str):
        return None
    try:
        moment = parse_iso(value)
    except ValueError:
        return None
    if moment is None:
        return None
    return moment.replace(tzinfo=moment.tzinfo or UTC).timestamp()


def name_of(event: Mapping[str, Any]) -> str:
    name = event.get("eventName")
    return name[:80] if isinstance(name, str) and name else "?"


class _Clusters:
    """At most `cap` runs of nearby times: a time joins the run it falls in, else starts
    its own; over the cap, the two runs closest together become one. Bounded, whatever
    the order of the file (CloudTrail is read region by region, newest first)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.starts: list[float] = []
        self.ends: list[float] = []

    def add(self, at: float) -> None:
        i = bisect_right(self.starts, at)
        if i and at <= self.ends[i - 1]:
            return
        self.starts.insert(i, at)
        self.ends.insert(i, at)
        if len(self.starts) > self.cap:
            j = min(range(self.cap), key=lambda k: self.starts[k + 1] - self.ends[k])
            self.ends[j] = max(self.ends[j], self.ends.pop(j + 1))
            del self.starts[j + 1]

    def spans(self) -> tuple[Span, ...]:
        return tuple(zip(self.starts, self.ends, strict=True))


@dataclass(frozen=True)
class Survey:
    """The first reading: how many events, when, and where they cluster."""

    events: int
    undated: int
    first: float | None
    last: float | None
    high: tuple[Span, ...]
    """Where the high-risk events are (refused ones too: an attempt tells intent)."""
    every: tuple[Span, ...]
    """Where any events are: the focus when none is high-risk."""


def survey(events: Events) -> Survey:
    count = undated = 0
    first = last = None
    high, every = _Clusters(CLUSTERS), _Clusters(CLUSTERS)
    for event in events:
        count += 1
        at = seconds(event.get("eventTime"))
        if at is None:
            undated += 1
            continue
        first = at if first is None else min(first, at)
        last = at if last is None else max(last, at)
        every.add(at)
        if name_of(event) in HIGH_RISK:
            high.add(at)
    return Survey(count, undated, first, last, high.spans(), every.spans())


@dataclass(frozen=True)
class Named:
    """Events of one name under one label: how many, the first and the last."""

    name: str
    count: int
    first: float
    last: float
    high: bool


@dataclass(frozen=True)
class Chunk:
    """The events under one label's stretch of the focused lane."""

    index: int
    names: tuple[Named, ...]
    """High-risk names first, then the most frequent."""
    total: int
    others: int
    """Events whose names were not kept (more than SLOTS names here)."""


@dataclass(frozen=True)
class Column:
    """One pixel column of the focused lane: how dense, how much of it high-risk."""

    index: int
    count: int
    high: int


@dataclass(frozen=True)
class Seen:
    """One event kept to draw as a dot (one per cell, a dot's width, high-risk first: more
    would be drawn over each other), with its tooltip (cut short, not yet escaped)."""

    at: float
    name: str
    high: bool
    refused: bool
    tip: str


@dataclass(frozen=True)
class Tally:
    """The second reading, against the focus the timeline chose."""

    overview: tuple[int, ...]
    """Events per bin over the whole span."""
    overview_high: tuple[int, ...]
    columns: tuple[Column, ...]
    chunks: tuple[Chunk, ...]
    seen: tuple[Seen, ...]
    inside: int
    outside: int
    """Dated events the focus does not cover: only the overview shows them."""


@dataclass(frozen=True)
class Grid:
    """How the second reading bins: the whole span into `bins`, and the focused lane
    (`place`: seconds to a pixel offset in it, None outside) into columns, cells (one
    dot each) and chunks (one label each)."""

    span: Span
    bins: int
    place: Callable[[float], float | None]
    lane: float
    column: float
    cell: float
    chunk: float


class _Chunk:
    """Counts under one label: SLOTS names tracked exactly from their first event here, a
    high-risk name taking the slot of the least frequent ordinary one when all are held;
    a name without a slot (or that lost one) is only counted in `others`, so every name
    kept has its true count."""

    def __init__(self) -> None:
        self.names: dict[str, list[float]] = {}  # name: [count, first, last]
        self.others = self.total = 0

    def add(self, name: str, at: float, high: bool) -> None:
        self.total += 1
        kept = self.names.get(name)
        if kept is not None:
            kept[0] += 1
            kept[1], kept[2] = min(kept[1], at), max(kept[2], at)
            return
        if len(self.names) >= SLOTS:
            ordinary = [n for n in self.names if n not in HIGH_RISK]
            if not high or not ordinary:
                self.others += 1
                return
            least = min(ordinary, key=lambda n: self.names[n][0])
            self.others += int(self.names.pop(least)[0])
        self.names[name] = [1, at, at]

    def frozen(self, index: int) -> Chunk:
        named = [Named(n, int(c), f, last, n in HIGH_RISK)
                 for n, (c, f, last) in self.names.items()]
        named.sort(key=lambda n: (not n.high, -n.count, n.first))
        return Chunk(index, tuple(named), self.total, self.others)


def _seen(event: Mapping[str, Any], at: float, name: str, high: bool) -> Seen:
    who = event.get("userIdentity")
    values = [*(event.get(k) for k in TIP), who.get("accessKeyId") if isinstance(who, Mapping)
              else None]
    return Seen(at, name, high, refusal(event) is not None,
                " | ".join(words(v, "")[:CHARS] for v in values)[:TIP_CHARS])


def tally(events: Events, grid: Grid) -> Tally:
    lo, hi = grid.span
    width = (hi - lo) / grid.bins if hi > lo else 0.0
    overview, overview_high = [0] * grid.bins, [0] * grid.bins
    columns = int(grid.lane // grid.column) + 1
    counts, highs = [0] * columns, [0] * columns
    chunks: dict[int, _Chunk] = {}
    samples: dict[int, Seen] = {}
    inside = outside = 0
    for event in events:
        at = seconds(event.get("eventTime"))
        if at is None:
            continue
        name = name_of(event)
        high = name in HIGH_RISK
        b = min(int((at - lo) / width), grid.bins - 1) if width else grid.bins // 2
        overview[b] += 1
        overview_high[b] += high
        x = grid.place(at)
        if x is None:
            outside += 1
            continue
        inside += 1
        c = min(int(x // grid.column), columns - 1)
        counts[c] += 1
        highs[c] += high
        chunks.setdefault(int(x // grid.chunk), _Chunk()).add(name, at, high)
        cell = int(x // grid.cell)
        kept = samples.get(cell)
        if kept is None or (high and not kept.high):
            samples[cell] = _seen(event, at, name, high)
    return Tally(
        tuple(overview), tuple(overview_high),
        tuple(Column(i, n, h) for i, (n, h) in enumerate(zip(counts, highs, strict=True)) if n),
        tuple(chunk.frozen(i) for i, chunk in sorted(chunks.items())),
        tuple(sorted(samples.values(), key=lambda s: s.at)), inside, outside)
