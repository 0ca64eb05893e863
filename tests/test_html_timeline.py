"""report.html's timeline over a long span: the attack window in focus, the whole span as
an overview, every label naming only events that lie under it; and the page's memory
flat with the size of the evidence file (it is streamed, never held)."""

from __future__ import annotations

import importlib.util
import random
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import responded_to_a_backdoor

from responder.evidence.summary import HIGH_RISK
from responder.incident.view import IncidentView
from responder.report.document import report_of
from responder.report.html import html_of, page, render_html
from responder.report.html_events import EvidenceFile, Survey
from responder.report.html_timeline import GAP, WIDTH, Scale, focus
from responder.report.model import ReportDocument

TIMES = "\N{MULTIPLICATION SIGN}"
END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _benchmark() -> ModuleType:
    """benchmarks/html_memory.py, whose synthetic CloudTrail records the tests share."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "html_memory.py"
    spec = importlib.util.spec_from_file_location("html_memory", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _benchmark()


def _at(seconds: float) -> str:
    return (END + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def report() -> dict[str, Any]:
    """A response starting at END: contained in a second, evidence collected in 30."""
    return {"incident_id": "inc-long", "status": "completed", "access_key_id": BENCH.KEY,
            "user_name": "alice", "started_at": _at(0), "contained_at": _at(1),
            "timeline": [
                {"step": "disable-key", "status": "done", "started_at": _at(0.1),
                 "ended_at": _at(0.6)},
                {"step": "revoke-sessions", "status": "done", "started_at": _at(0.6),
                 "ended_at": _at(1)},
                {"step": "collect-evidence", "status": "done", "started_at": _at(1.1),
                 "ended_at": _at(31)}]}


def seconds(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def svg_of(text: str) -> ET.Element:
    start, end = text.index("<svg"), text.index("</svg>") + len("</svg>")
    return ET.fromstring(text[start:end])  # noqa: S314 - our own output is what is tested


def of_class(svg: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in svg.iter() if e.attrib.get("class") == cls]


def pieces(label: str) -> Iterator[tuple[str, int | None]]:
    """`DeleteTrail` times 3, `CreateUser` as (name, count); a name cut short (…) has no
    count."""
    for piece in label.split(", "):
        if piece.endswith("…"):
            yield piece[:-1], None
        else:
            name, _, count = piece.partition(f" {TIMES}")
            yield name, int(count) if count else 1


def assert_labels_true(svg: ET.Element, events: list[dict[str, Any]]) -> list[str]:
    """Each label names events that lie under it: for each name, exactly as many events of
    that name lie between the label's first and last time as it says; its text is drawn
    over its bracket. Returns the labels' texts."""
    timed = [(seconds(e["eventTime"]), e["eventName"]) for e in events
             if isinstance(e.get("eventTime"), str)]
    said = []
    for group in of_class(svg, "label"):
        (text,) = ["".join(t.itertext()) for t in group.iter("text")]
        (bracket,) = group.iter("line")
        lo, hi = float(group.attrib["data-from"]), float(group.attrib["data-to"])
        assert lo <= hi
        for name, count in pieces(text):
            under = [n for t, n in timed if lo <= t <= hi]
            if count is None:
                assert any(n.startswith(name) for n in under), (text, under[:5])
            else:
                assert under.count(name) == count, (text, name, under.count(name))
        x = float(next(group.iter("text")).attrib["x"])
        half = 3.4 * len(text)
        a, b = float(bracket.attrib["x1"]), float(bracket.attrib["x2"])
        assert x - half <= b + 1
        assert x + half >= a - 1, (text, x, a, b)
        said.append(text)
    return said


@pytest.fixture(scope="module")
def long_span(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    """20,000 records over 33 hours (as the benchmark's 100,000: a burst of high-risk
    calls 1h30m before the response, ordinary reads all along), and the page of them."""
    path = tmp_path_factory.mktemp("long") / "cloudtrail.jsonl"
    BENCH.write(path, 20_000, END)
    events = list(BENCH.records(20_000, END))
    return html_of(ReportDocument.from_json(report()), EvidenceFile(path)), events


def test_a_33_hour_span_focuses_on_the_attack_and_the_response(
        long_span: tuple[str, list[dict[str, Any]]]) -> None:
    page, events = long_span
    svg = svg_of(page)
    said = assert_labels_true(svg, events)
    names = {name for label in said for name, _ in pieces(label)}
    assert len(names & HIGH_RISK) >= 5, said  # not every label "ListBuckets"
    burst = [seconds(e["eventTime"]) for e in events if e["eventName"] in HIGH_RISK]
    parts = [(float(r.attrib["data-from"]), float(r.attrib["data-to"]))
             for r in of_class(svg, "focus")]
    assert len(parts) == 2
    assert parts[0][0] <= min(burst) <= max(burst) <= parts[0][1]
    assert parts[1][0] <= END.timestamp() <= END.timestamp() + 31 <= parts[1][1]
    focused = sum(b - a for a, b in parts)
    assert focused < 0.05 * 33 * 3600  # the focus is the attack window, not the day
    texts = ["".join(t.itertext()) for t in svg.iter("text")]
    assert any("outside the focus" in t for t in texts)
    assert any(t.startswith("≈ 1h") for t in texts)  # the gap to the response, said
    overview = of_class(svg, "overview")[0]
    assert "20000 events over 1d9h" in " ".join("".join(t.itertext())
                                                for t in overview.iter("text"))
    # The response keeps a readable share: its 30 seconds are not a pixel.
    bars = [r for g in of_class(svg, "step") for r in g.iter("rect")]
    assert float(bars[-1].attrib["width"]) > 150


@pytest.mark.parametrize("seed", range(6))
def test_labels_are_true_whatever_the_times(seed: int) -> None:
    """Random names and times: clustered, spread, repeated to the millisecond, hostile
    names among them, and no time at all."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    names = ["ListBuckets", "GetObject", "CreateUser", "DeleteTrail", "AttachUserPolicy",
             "<b>Pwn</b>", "Describe" * 9, "Odd\u2028Name"]
    shape = seed % 3
    events: list[dict[str, Any]] = []
    for i in range(rng.randrange(1, 3000)):
        if shape == 0:
            offset = -rng.uniform(0, 86400 * 3)
        elif shape == 1:
            offset = -rng.choice([3600, 600, 10]) - rng.uniform(0, 30)
        else:
            offset = -rng.randrange(5) * 0.001 - 120
        events.append({"eventName": rng.choice(names), "eventTime": _at(offset)}
                      if i % 97 else {"eventName": "CreateUser"})
    svg = svg_of(render_html(report(), events))
    said = assert_labels_true(svg, events)
    assert said
    for element in svg.iter():
        for name in ("x", "x1", "x2", "cx", "width"):
            if name in element.attrib:
                assert 0 <= float(element.attrib[name]) <= WIDTH, (element.tag, name)


def test_the_scale_is_linear_within_each_part_and_a_fixed_gap_between() -> None:
    scale = Scale.over([(0.0, 100.0), (1000.0, 1010.0)], response=1000.0)
    assert scale.x(-1.0) is None
    assert scale.x(1011.0) is None
    a, b, c = (scale.x(t) for t in (0.0, 50.0, 100.0))
    assert a is not None
    assert b is not None
    assert c is not None
    assert abs((b - a) - (c - b)) < 1e-9
    start = scale.x(1000.0)
    assert start is not None
    assert abs(start - c - GAP) < 1e-9
    xs = [scale.x(float(t)) for t in range(0, 1011, 7)]
    assert all(x is not None for x in xs)
    assert xs == sorted(xs)  # type: ignore[type-var]
    # the ten-second response is drawn no narrower than the 100-second attack's floor
    end = scale.x(1010.0)
    assert end is not None
    assert end - start >= 0.25 * (c - a)


def test_the_focus_keeps_the_response_apart_from_far_attacker_runs() -> None:
    """Five lone high-risk calls a day apart and a response a minute after the last:
    the far calls are merged with each other, never into the response."""
    lone = tuple((-86400.0 * k - 60, -86400.0 * k - 60) for k in range(5))
    found = Survey(5, 0, lone[-1][0], lone[0][1], tuple(sorted(lone)), tuple(sorted(lone)))
    response = (0.0, 2.0)
    parts = focus(found, response)
    assert len(parts) == 3
    assert parts[-1][0] <= response[0] <= response[1] <= parts[-1][1]
    assert parts[-1][1] - parts[-1][0] < 5  # the response alone, to its own scale


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[IncidentView, Path, datetime]]:
    """A real compromised-key response (moto, the CloudTrail fake), its view, its
    evidence file (which the test rewrites) and when the response started."""
    with responded_to_a_backdoor(tmp_path_factory.mktemp("html-memory")) as view:
        doc = report_of(view).document
        assert doc.evidence is not None
        assert doc.evidence.path
        assert doc.started_at
        yield view, Path(doc.evidence.path), datetime.fromisoformat(
            doc.started_at.replace("Z", "+00:00"))


def _peak(view: IncidentView) -> int:
    tracemalloc.start()
    try:
        page(view)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_flat_with_the_evidence_file(
        real: tuple[IncidentView, Path, datetime]) -> None:
    """page(view) of a real incident whose evidence file holds 1,000, then 30,000
    synthetic records (benchmarks/html_memory.py measures 1,000 vs 100,000 through
    `respond report`): the file is streamed, so the peak does not grow with it. 30,000
    fill every column and label of the focus already, as 100,000 do."""
    view, evidence, started = real
    BENCH.write(evidence, 1_000, started)
    _peak(view)  # warm-up: first-call caches are not the file's
    low = _peak(view)
    BENCH.write(evidence, 30_000, started)
    high = _peak(view)
    assert high <= 1.5 * low, (low, high, high / low)
