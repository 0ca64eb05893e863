"""report.html's timeline: the attack window in focus, the whole span as an overview.

A key may be used for a day and more before it is reported, and the response takes
seconds; drawn on one linear axis, either the attack or the response is a pixel. So the
main lane is drawn over the focus only: the runs of the attacker's high-risk events (of
all its events when none is high-risk) and the response, each part to scale, a gap
between parts drawn short and said so (≈). Under it a small strip draws the density of
the whole span, the focus shaded, so nothing outside the focus passes unseen.

Labels name only what lies under them: the lane is cut into chunks of a few pixels,
counted exactly as the file is streamed; the chunks holding high-risk events are
labelled first, then the busiest, each in the first of three rows with room, naming the
chunk's own names (high-risk first, then the most frequent, each with how many) over a
bracket spanning those events. Every value goes through html_text.text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise

from responder.context import iso
from responder.report.html_events import (
    Chunk,
    Events,
    Grid,
    Named,
    Span,
    Survey,
    Tally,
    seconds,
    survey,
    tally,
)
from responder.report.html_text import text
from responder.report.model import ReportDocument
from responder.report.story import counted

WIDTH, GUTTER, RIGHT = 980, 150, 24
LANE = WIDTH - GUTTER - RIGHT
HALF = 3.4
"""Half the width of a 10px character: how labels are fitted."""
ROWS, ROW = 3, 18
COLUMN, CELL, CHUNK, GAP = 4.0, 10.0, 16.0, 56.0
"""Pixels: a density column, a dot, a chunk (what one label may name), a gap not drawn to
scale."""
LABEL_CHARS = 32
RESPONSE_SHARE = 0.4
"""The least share of the lane's width (before scaling to fit) the response is drawn in."""
PARTS = 3
"""Parts in focus at most: more, and the eye loses which scale is which."""
BINS = 160
"""The overview's bins over the whole span."""
STATUS_FILL = {"done": "#2e7d32", "failed": "#c62828", "skipped": "#9e9e9e", "running": "#1565c0"}
DOT_Y, BAR_BASE, BAR_MAX, STEPS_Y = 62, 82, 14, 110


def _when(at: float) -> str:
    """ISO time; a padded bound before year 1 or after 9999 (an event time at the edge of
    what ISO can say) is said in words, never fatal."""
    try:
        return iso(datetime.fromtimestamp(at, UTC)) or ""
    except (ValueError, OverflowError, OSError):
        return "before year 1" if at < 0 else "after year 9999"


def _offset(secs: float, digits: int) -> str:
    """`+3m5.25s`: relative, because what matters is how long things took."""
    minutes, sec = divmod(round(secs, digits), 60)
    hours, mins = divmod(int(minutes), 60)
    days, hours = divmod(hours, 24)
    big = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "m")) if n)
    return f"+{big}{sec:.{digits}f}s"


def _many(count: int, noun: str = "event") -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def duration(secs: float) -> str:
    """`1d9h`, `40m12s`, `5s`: the two largest units, for a gap or a span."""
    parts = [(int(secs // 86400), "d"), (int(secs % 86400 // 3600), "h"),
             (int(secs % 3600 // 60), "m"), (int(secs % 60), "s")]
    first = next((i for i, (n, _) in enumerate(parts) if n), 3)
    return "".join(f"{n}{u}" for n, u in parts[first:first + 2] if n) or "0s"


def focus(found: Survey, response: Span | None) -> tuple[Span, ...]:
    """The parts drawn to scale: each run padded by 5 % (the attacker's by 10 s at least,
    so the calls around a lone high-risk one are in view too; the response's by 0.5 s),
    runs merged when the gap between them is no longer than the shorter, then the
    closest attacker runs merged until PARTS are left (the response is merged with one
    only when nothing else is left to merge: it must not be squeezed by a merge)."""
    runs = [(s, e, 10.0) for s, e in found.high or found.every]
    runs += [(*response, 0.5)] if response else []
    padded = sorted((s - p, e + p) for s, e, least in runs
                    for p in [max((e - s) * 0.05, least)])
    merged: list[list[float]] = []
    for s, e in padded:
        if merged and s - merged[-1][1] <= min(e - s, merged[-1][1] - merged[-1][0]):
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])

    def ordinary(k: int) -> bool:
        return all(response is None or not merged[i][0] <= response[0] <= merged[i][1]
                   for i in (k, k + 1))

    while len(merged) > PARTS:
        pairs = [k for k in range(len(merged) - 1) if ordinary(k)] or range(len(merged) - 1)
        j = min(pairs, key=lambda k: merged[k + 1][0] - merged[k][1])
        merged[j][1] = max(merged[j][1], merged.pop(j + 1)[1])
    return tuple((s, e) for s, e in merged)


@dataclass(frozen=True)
class Scale:
    """Time to x over the focus: linear within each part, a gap GAP pixels wide (not to
    scale) between parts, nothing outside. Each part's width is its share of the focused
    time, RESPONSE_SHARE at least for the part holding the response and 1/(parts + 1)
    for the others, before all are scaled to fit: a short response beside a long attack
    stays readable."""

    parts: tuple[tuple[float, float, float, float], ...]
    """From, to (seconds), and where they are drawn (x)."""

    @classmethod
    def over(cls, spans: Sequence[Span], response: float | None = None) -> Scale:
        total = sum(e - s for s, e in spans)
        weights = [max((e - s) / total, RESPONSE_SHARE if response is not None and
                       s <= response <= e else 1 / (len(spans) + 1)) for s, e in spans]
        room, x, parts = LANE - GAP * (len(spans) - 1), float(GUTTER), []
        for (s, e), w in zip(spans, weights, strict=True):
            width = room * w / sum(weights)
            parts.append((s, e, x, x + width))
            x += width + GAP
        return cls(tuple(parts))

    def x(self, at: float) -> float | None:
        before: tuple[float, float] | None = None
        for t0, t1, x0, x1 in self.parts:
            if at < t0:
                return None if before is None else \
                    before[1] + (at - before[0]) / (t0 - before[0]) * (x0 - before[1])
            if at <= t1:
                return x0 + (at - t0) / (t1 - t0) * (x1 - x0)
            before = (t1, x1)
        return None

    def at(self, moment: float) -> float:
        """x, held to the focus's ends (the response is inside it by construction)."""
        x = self.x(min(max(moment, self.parts[0][0]), self.parts[-1][1]))
        return float(GUTTER) if x is None else x

    def place(self, at: float) -> float | None:
        """The offset in the lane, for html_events' columns and chunks."""
        x = self.x(at)
        return None if x is None else min(max(x - GUTTER, 0.0), LANE - 0.001)


def label_of(chunk: Chunk, chars: int) -> tuple[str, tuple[Named, ...]]:
    """The names that fit in `chars`, in order, each with its count; the first cut short
    (…) if even it does not fit. Never a name that is not in the chunk."""
    said: list[str] = []
    used: list[Named] = []
    for n in chunk.names:
        piece = counted(n.name, n.count)
        if len(", ".join([*said, piece])) <= chars:
            said.append(piece)
            used.append(n)
            continue
        if not said:
            said.append(n.name[:max(chars - 1, 1)] + "…")
            used.append(n)
        break
    return ", ".join(said), tuple(used)


def _labels(counted_: Tally, scale: Scale) -> list[str]:
    """Chunks with high-risk events labelled first, then the busiest: each in the first
    row where it overlaps no label, with all the names that fit, else its first name
    only, else none (its events keep their dots, and the overview)."""
    rows: list[list[tuple[float, float]]] = [[] for _ in range(ROWS)]
    out: list[str] = []
    for chunk in sorted(counted_.chunks, key=lambda c: (
            -sum(n.count for n in c.names if n.high), -c.total, c.index)):
        if not chunk.names:
            continue
        top = chunk.names[0]
        for chars in (LABEL_CHARS, min(len(counted(top.name, top.count)), LABEL_CHARS)):
            label, used = label_of(chunk, chars)
            first, last = min(n.first for n in used), max(n.last for n in used)
            xa, xb = scale.at(first), scale.at(last)
            half = HALF * len(label)
            spot = min(max((xa + xb) / 2, half + 2), WIDTH - half - 2)
            row = next((r for r in range(ROWS) if all(
                spot + half + 6 <= a or spot - half - 6 >= b for a, b in rows[r])), None)
            if row is not None:
                break
        else:
            continue
        rows[row].append((spot - half, spot + half))
        y = 24 + row * 12
        tip = ", ".join(f"{counted(n.name, n.count)} ({_when(n.first)} to {_when(n.last)})"
                        for n in chunk.names) + (f", and {chunk.others} more" if chunk.others
                                                 else "")
        out.append(f'<g class="label" data-from="{first!r}" data-to="{last!r}"><title>'
                   f"{text(f'{_many(chunk.total)} here: {tip}')}</title><line "
                   f'x1="{min(xa, xb - 2):.1f}" y1="{y + 3}" x2="{max(xb, xa + 2):.1f}" '
                   f'y2="{y + 3}" stroke="#999"/><text x="{spot:.1f}" y="{y}" '
                   f'text-anchor="middle">{text(label)}</text></g>')
    return out


def _bars(bars: Sequence[tuple[float, float]], base: float, width: float, fill: str,
          tip: str) -> str:
    """Bars (x, height) as one path: hundreds of them in one element, so the page does not
    grow with how much of the lane is filled."""
    d = "".join(f"M{x:.1f} {base}h{width:.2f}v{-h:.1f}h{-width:.2f}z" for x, h in bars)
    return f'<path class="density" d="{d}" fill="{fill}"><title>{text(tip)}</title></path>' \
        if d else ""


def _attacker(counted_: Tally, scale: Scale) -> list[str]:
    """Density per column (log scale: one event still shows), then the kept events as
    dots, each with its tooltip."""
    peak = math.log1p(max((c.count for c in counted_.columns), default=1))

    def tall(count: int) -> float:
        return 2 + (BAR_MAX - 2) * math.log1p(count) / peak

    tip = f"events per {COLUMN:.0f} pixels, log scale"
    out = [_bars([(GUTTER + c.index * COLUMN, tall(c.count)) for c in counted_.columns],
                 BAR_BASE, COLUMN - 1, "#bdbdbd", tip),
           _bars([(GUTTER + c.index * COLUMN, tall(c.high)) for c in counted_.columns
                  if c.high], BAR_BASE, COLUMN - 1, "#c62828", f"high-risk {tip}")]
    for s in counted_.seen:
        fill = "#9e9e9e" if s.refused else "#c62828" if s.high else "#ef6c00"
        out.append(f'<g class="dot"><title>{text(s.tip)}</title>'
                   f'<circle cx="{scale.at(s.at):.1f}" cy="{DOT_Y}" r="4" fill="{fill}"/></g>')
    return out


def _axis(scale: Scale, y: int, origin: float) -> list[str]:
    """Ticks within each part; each gap dashed and labelled: compressed time must not pass
    for real time."""
    out, last = [], -1e9
    for t0, t1, x0, x1 in scale.parts:
        out.append(f'<line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" stroke="#555"/>')
        n = max(1, int((x1 - x0) / 110))
        step = (t1 - t0) / n
        digits = 0 if step >= 10 else 1 if step >= 0.1 else 2
        for k in range(n + 1):
            x, label = x0 + (x1 - x0) * k / n, _offset(t0 + step * k - origin, digits)
            half = HALF * len(label)
            if (spot := min(max(x, half + 2), WIDTH - half - 2)) - half >= last:
                out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" '
                           f'stroke="#555"/><text x="{spot:.1f}" y="{y + 15}" '
                           f'text-anchor="middle">{text(label)}</text>')
                last = spot + half + 10
    for (_, a, _, xa), (b, _, xb, _) in pairwise(scale.parts):
        gap = text(duration(b - a))
        out.append(f'<line x1="{xa:.1f}" y1="{y}" x2="{xb:.1f}" y2="{y}" stroke="#555" '
                   f'stroke-dasharray="3 3"><title>{gap} not drawn to scale</title></line>'
                   f'<text x="{(xa + xb) / 2:.1f}" y="{y - 4}" text-anchor="middle">≈ {gap}'
                   "</text>")
    return out


def _overview(counted_: Tally, scale: Scale, span: Span, top: int, events: int) -> list[str]:
    """The whole span: density per bin (high-risk in red), the focus shaded."""
    lo, hi = span

    def ox(at: float) -> float:
        return GUTTER + (LANE * (at - lo) / (hi - lo) if hi > lo else LANE / 2)

    width, base = LANE / BINS, top + 28
    peak = math.log1p(max(counted_.overview, default=1) or 1)
    out = [f'<g class="overview"><text x="8" y="{top + 20}" font-weight="bold">whole span'
           f'</text><rect x="{GUTTER}" y="{top}" width="{LANE}" height="30" fill="none" '
           'stroke="#ddd"/>']
    for counts, fill, what in ((counted_.overview, "#9e9e9e", "events"),
                               (counted_.overview_high, "#c62828", "high-risk events")):
        out.append(_bars([(GUTTER + i * width, 2 + 22 * math.log1p(n) / peak)
                          for i, n in enumerate(counts) if n], base, width, fill,
                         f"{what} per {duration((hi - lo) / BINS)}, log scale"))
    for t0, t1, _, _ in scale.parts:
        a, b = ox(max(t0, lo)), ox(min(t1, hi))
        out.append(f'<rect class="focus" data-from="{t0!r}" data-to="{t1!r}" '
                   f'x="{min(a, WIDTH - RIGHT - 2.0):.1f}" y="{top}" '
                   f'width="{max(b - a, 2.0):.1f}" height="30" fill="#1565c0" '
                   'fill-opacity="0.15" stroke="#1565c0"/>')
    note = f"{_many(events)} over {duration(hi - lo)}; shaded: drawn to scale above"
    out += [f'<text x="{GUTTER}" y="{top + 42}">{text(_when(lo))}</text>',
            f'<text x="{WIDTH - RIGHT}" y="{top + 42}" text-anchor="end">{text(_when(hi))}'
            "</text>",
            f'<text x="{GUTTER + LANE / 2:.1f}" y="{top + 42}" text-anchor="middle">'
            f"{text(note)}</text></g>"]
    return out


def svg(report: ReportDocument, events: Events) -> list[str]:
    """Attacker and responder on one axis, in parts the page joins once with the rest;
    none when there is no time to draw at all."""
    steps = [(s, t0, seconds(s.ended_at)) for s in report.extras.timeline
             if (t0 := seconds(s.started_at)) is not None]
    doc = report.document
    contained = seconds(doc.contained_at)
    response = [t for _, t0, t1 in steps for t in (t0, t1) if t is not None]
    response += [t for t in (seconds(doc.started_at), contained) if t is not None]
    found = survey(events)
    spans = focus(found, (min(response), max(response)) if response else None)
    if not spans:
        return []
    scale = Scale.over(spans, min(response) if response else None)
    span = (min(x for x in (found.first, *response) if x is not None),
            max(x for x in (found.last, *response) if x is not None))
    counted_ = tally(events, Grid(span, BINS, scale.place, LANE, COLUMN, CELL, CHUNK)) \
        if found.events > found.undated else Tally((0,) * BINS, (0,) * BINS, (), (), (), 0, 0)
    axis = STEPS_Y + ROW * len(steps) + 6
    top = axis + 46 if found.first is not None else axis + 20
    height = top + 50 if found.first is not None else top
    out = [f'<svg width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
           'role="img" font-family="sans-serif" font-size="10"><title>timeline</title>',
           '<text x="8" y="72" font-weight="bold">attacker</text>',
           f'<line x1="0" y1="88" x2="{WIDTH}" y2="88" stroke="#ddd"/>',
           '<text x="8" y="104" font-weight="bold">responder</text>',
           *_labels(counted_, scale), *_attacker(counted_, scale)]
    for i, (step, t0, t1) in enumerate(steps):
        y, x0 = STEPS_Y + i * ROW, scale.at(t0)
        width = max((scale.at(t1) if t1 is not None else x0) - x0, 3.0)
        tip = " | ".join(text(v, "") for v in (step.step, step.status, step.started_at,
                                                step.ended_at, step.error) if v)
        out.append(f'<g class="step"><title>{tip}</title><text x="{GUTTER - 6}" y="{y + 11}" '
                   f'text-anchor="end">{text(step.step)}</text><rect x="{x0:.1f}" y="{y}" '
                   f'width="{min(width, WIDTH - x0):.1f}" height="{ROW - 4}" '
                   f'fill="{STATUS_FILL.get(step.status, "#757575")}"/></g>')
    if contained is not None:
        x = scale.at(contained)
        out.append(f'<line x1="{x:.1f}" y1="12" x2="{x:.1f}" y2="{axis}" stroke="#1565c0" '
                   f'stroke-dasharray="4 3"/><text x="{x:.1f}" y="10" fill="#1565c0" '
                   f'text-anchor="{"end" if x > WIDTH - 60 else "start"}">contained</text>')
    origin = spans[0][0]
    notes = [f"time after {_when(origin)}"]
    notes += ["≈: a gap not drawn to scale"] if len(spans) > 1 else []
    notes += [f"{_many(counted_.outside)} outside the focus: see the whole span below"] \
        if counted_.outside else []
    notes += [f"{_many(found.undated)} without a time not drawn"] if found.undated else []
    out += [*_axis(scale, axis, origin),
            f'<text x="{GUTTER}" y="{axis + 32}">{text("; ".join(notes))}</text>']
    if found.first is not None:
        out += _overview(counted_, scale, span, top, found.events - found.undated)
    return [*out, "</svg>"]
