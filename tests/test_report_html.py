"""report.html: one self-contained page, built from a real incident, every attacker-chosen
value escaped and every secret-shaped one redacted, whatever the times look like."""

from __future__ import annotations

import copy
import html
import json
import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import responded_to_a_backdoor

from responder.report import document as report
from responder.report.html import WIDTH, render_html

SCRIPT = "<script>alert(1)</script>"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 characters: secret-shaped
VOID = {"meta", "br", "hr", "img", "input", "link"}


class Page(HTMLParser):
    """The tags of a page, checked to nest properly, and the text of its <title>."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.open: list[str] = []
        self.title = ""
        self.attributes: set[str] = set()
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.update(name for name, _ in attrs)
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open.pop() == tag, f"</{tag}> closes the wrong element"

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] == "title" and "svg" not in self.open:
            self.title += data


def parse(text: str) -> Page:
    """Parsed, every element closed, and no attribute that could fetch anything."""
    page = Page(text)
    assert page.open == []
    assert text.startswith("<!DOCTYPE html>")
    assert not {"src", "href", "xlink:href", "srcset", "action"} & page.attributes
    return page


def assert_self_contained(text: str) -> None:
    """Nothing to fetch, nothing to run (on a page whose data holds none of these)."""
    lowered = text.lower()
    for needle in ("http://", "https://", "src=", "<script", "@import", "url(", "href=", "//"):
        assert needle not in lowered, needle


def svg_of(text: str) -> ET.Element:
    """The inline timeline, which must be well-formed XML too."""
    start, end = text.index("<svg"), text.index("</svg>") + len("</svg>")
    return ET.fromstring(text[start:end])  # noqa: S314 - our own output is what is tested


def texts(svg: ET.Element, tag: str = "text") -> list[str]:
    return ["".join(e.itertext()) for e in svg.iter(tag)]


def assert_on_canvas(svg: ET.Element) -> None:
    """No coordinate is NaN, infinite or off the drawing, whatever the times were."""
    for element in svg.iter():
        for name in ("x", "x1", "x2", "cx", "width"):
            if name in element.attrib:
                value = float(element.attrib[name])
                assert math.isfinite(value)
                assert 0 <= value <= WIDTH, (element.tag, name, value)


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One real compromised-key response (moto, the CloudTrail fake) to a key that made a
    backdoor user: its report document and the lines of its cloudtrail.jsonl."""
    with responded_to_a_backdoor(tmp_path_factory.mktemp("report-html")) as view:
        doc = report.report_of(view).to_json()
    lines = Path(doc["evidence"]["path"]).read_text().splitlines()
    return doc, [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def real(incident: tuple[dict[str, Any], list[dict[str, Any]]]
         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A copy each test may change."""
    return copy.deepcopy(incident)


def sections(text: str) -> list[str]:
    """The ids of the page's sections, in document order."""
    return re.findall(r'<section id="([a-z]+)">', text)


def of_class(svg: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in svg.iter() if e.attrib.get("class") == cls]


def label_texts(svg: ET.Element) -> list[str]:
    """What the attacker lane's labels say."""
    return ["".join(t.itertext()) for g in of_class(svg, "label") for t in g.iter("text")]


def test_a_real_incident_page_tells_the_story_then_draws_both_lanes(
        real: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    doc, events = real
    assert doc["status"] == "completed"
    assert {e["eventName"] for e in events} == {"GetSessionToken", "CreateUser",
                                                 "CreateAccessKey"}
    text = render_html(doc, events)
    page = parse(text)
    assert_self_contained(text)
    assert doc["incident_id"] in page.title
    assert f"<h1>Incident {doc['incident_id']}: compromised access key " in text
    for value in (doc["access_key_id"], "alice", doc["account_id"], "completed",
                  doc["evidence"]["sha256"], "backdoor", "iam:UpdateAccessKey"):
        assert value in text, value
    found = sections(text)
    assert found[0] == "headline"
    story = [s for s in ("headline", "did", "shut", "read", "granted", "todo", "evidence",
                         "timeline", "hardening", "details") if s in found]
    assert found == story, found
    assert {"headline", "did", "shut", "evidence", "timeline", "details"} <= set(found)
    headline = text.split('<section id="headline">', 1)[1].split("</section>", 1)[0]
    assert "CONTAINED" in headline
    for item in doc["todo"]:  # each command in its own block, exactly as it pastes
        for command in item["commands"]:
            assert f"<pre><code>{html.escape(command)}</code></pre>" in text
    svg = svg_of(text)
    assert_on_canvas(svg)
    assert "contained" in texts(svg)
    said = " ".join(label_texts(svg))
    assert all(e["eventName"] in said for e in events), said
    assert any(t.startswith("CreateUser | ") for t in texts(svg, "title"))
    bars = [r for g in of_class(svg, "step") for r in g.iter("rect")]
    assert len(bars) == len([t for t in doc["timeline"] if t["started_at"]])
    marks = [c for g in of_class(svg, "dot") for c in g.iter("circle")]
    assert 1 <= len(marks) <= len(events)
    # The attacker's lane is above the responder's, and both share the axis: the attacker
    # acted minutes before the response, so every mark is left of every bar.
    assert max(float(c.attrib["cy"]) for c in marks) < min(float(r.attrib["y"]) for r in bars)
    assert max(float(c.attrib["cx"]) for c in marks) < min(float(r.attrib["x"]) for r in bars)
    # Three minutes of nothing between them is drawn short and said so.
    assert any(t.startswith("≈ ") for t in texts(svg))
    # 24 regions' LookupEvents pages are counted, not listed one by one.
    assert re.search(r"cloudtrail:LookupEvents \N{MULTIPLICATION SIGN}\d+", text)
    # The whole span below, the focus shaded on it.
    assert of_class(svg, "overview")
    assert of_class(svg, "focus")


def test_attacker_text_is_escaped_and_secrets_redacted(
        real: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    doc, events = real
    doc["user_name"] = SCRIPT
    doc["todo"].append({"what": f"rotate {SECRET} <b>now</b>", "commands": [SCRIPT]})
    events[0]["eventName"] = SCRIPT
    events[1]["sourceIPAddress"] = '"><img src=x onerror=alert(1)>'
    events[2]["eventName"] = "Create\x00User\x0b\ud800"  # not even valid XML escaped
    doc["evidence_summary"]["summary"]["high_risk"][0]["eventName"] = SCRIPT
    text = render_html(doc, events)
    page = parse(text)
    assert SCRIPT not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert {"script", "img", "b"}.isdisjoint(page.tags)
    assert SECRET not in text
    assert "&lt;redacted&gt;" in text
    svg = svg_of(text)
    said = " ".join(label_texts(svg)) + " ".join(texts(svg, "title"))
    assert SCRIPT in said  # drawn, as text
    assert "CreateUser" in said
    text.encode("utf-8")  # no lone surrogate left to break writing the file


def test_no_python_value_reaches_the_page(
        real: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    """What was shut, the attacker's keys (`already`), the notices: words, never a repr."""
    doc, events = real
    text = render_html(doc, events)
    visible = re.sub(r"<[^>]+>", " ", text.split("</style>", 1)[1])
    for needle in ("None", "True", "False", "already=", "effective_at=", "{'", "=False"):
        assert needle not in visible, needle


def test_no_events_and_no_containment() -> None:
    """A halted incident: no evidence, nothing contained, a step that never ended, one
    that never started."""
    doc = {"incident_id": "inc-halted-1", "status": "halted", "access_key_id": "AKIAEXAMPLE",
           "user_name": "alice", "started_at": "2026-01-02T03:04:05.000Z",
           "contained_at": None, "error": "disable-key: AccessDenied",
           "timeline": [
               {"step": "identify", "status": "done", "started_at": "2026-01-02T03:04:05.000Z",
                "ended_at": "2026-01-02T03:04:05.400Z", "calls": []},
               {"step": "disable-key", "status": "failed",
                "started_at": "2026-01-02T03:04:05.500Z", "ended_at": None,
                "error": "AccessDenied", "calls": [{"api": "iam:UpdateAccessKey",
                                                    "attempts": 3, "outcome": "error"}]},
               {"step": "notify", "status": "pending", "started_at": None, "ended_at": None},
           ]}
    text = render_html(doc)
    page = parse(text)
    assert_self_contained(text)
    assert "inc-halted-1" in page.title
    headline = text.split('<section id="headline">', 1)[1].split("</section>", 1)[0]
    assert "NOT CONTAINED" in headline
    assert "iam:UpdateAccessKey (3 attempts, error)" in text
    svg = svg_of(text)
    assert_on_canvas(svg)
    assert "contained" not in texts(svg)
    assert list(svg.iter("circle")) == []
    bars = [r for g in of_class(svg, "step") for r in g.iter("rect")]
    assert len(bars) == 2
    assert float(bars[1].attrib["width"]) > 0  # no end: still a visible mark
    assert "evidence" not in sections(text)  # none collected: the section is left out


def test_a_bare_document_still_renders() -> None:
    """Nothing but an id: no times to draw at all, no story section but the headline."""
    text = render_html({"incident_id": "inc-bare"})
    page = parse(text)
    assert_self_contained(text)
    assert "inc-bare" in page.title
    assert "<svg" not in text
    assert sections(text) == ["headline", "details"]


def test_all_times_equal_draws_without_dividing_by_zero() -> None:
    at = "2026-01-02T03:04:05Z"
    doc = {"incident_id": "inc-same", "status": "completed", "started_at": at,
           "contained_at": at, "timeline": [
               {"step": "disable-key", "status": "done", "started_at": at, "ended_at": at}]}
    events = [{"eventName": "CreateUser", "eventTime": at},
              {"eventName": "CreateAccessKey", "eventTime": at}]
    text = render_html(doc, events)
    parse(text)
    assert_self_contained(text)
    svg = svg_of(text)
    assert_on_canvas(svg)
    assert "contained" in texts(svg)
    said = " ".join(label_texts(svg))
    assert "CreateUser" in said
    assert "CreateAccessKey" in said


@pytest.mark.parametrize("times", [
    ["0001-01-01T00:00:00Z"], ["9999-12-31T23:59:59.999999Z"],
    ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"],
    ["2026-01-02T03:04:05+14:00", "2026-01-02T03:04:05", 7, None]])
def test_times_at_the_edges_of_iso_still_render(times: list[Any]) -> None:
    """Year 1, year 9999, an offset, no zone, not a string: the page renders, on canvas."""
    doc = {"incident_id": "inc-edge", "status": "completed",
           "started_at": "2026-01-02T03:04:05Z", "timeline": [
               {"step": "disable-key", "status": "done", "started_at": "2026-01-02T03:04:05Z",
                "ended_at": "2026-01-02T03:04:06Z"}]}
    text = render_html(doc, [{"eventName": "CreateUser", "eventTime": t} for t in times])
    parse(text)
    assert_on_canvas(svg_of(text))


def test_events_days_before_keep_the_response_readable() -> None:
    """An attacker active days before the key was reported does not squeeze a
    three-second response into a pixel: the focus is its high-risk call and the response,
    the call two days earlier is in the whole span below; malformed times are counted."""
    start = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def at(seconds: float) -> str:
        return (start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    doc = {"incident_id": "inc-far", "status": "completed", "started_at": at(0),
           "contained_at": at(0.4), "timeline": [
               {"step": "disable-key", "status": "done", "started_at": at(0.1),
                "ended_at": at(0.4)},
               {"step": "collect-evidence", "status": "done", "started_at": at(0.5),
                "ended_at": at(3)}]}
    events = [{"eventName": "GetCallerIdentity", "eventTime": at(-3 * 86400)},
              {"eventName": "CreateUser", "eventTime": at(-86400)},
              {"eventName": "ListBuckets", "eventTime": "yesterday"},
              {"eventName": "DeleteTrail"}]
    text = render_html(doc, events)
    parse(text)
    assert_self_contained(text)
    svg = svg_of(text)
    assert_on_canvas(svg)
    labels = texts(svg)
    assert label_texts(svg) == ["CreateUser"]
    assert sum(t.startswith("≈ ") for t in labels) == 1
    assert any("2 events without a time" in t for t in labels)
    assert any("1 event outside the focus" in t for t in labels)
    widths = [float(r.attrib["width"]) for g in of_class(svg, "step") for r in g.iter("rect")]
    assert max(widths) > 100
    overview = " ".join(texts(of_class(svg, "overview")[0]))
    assert "2 events over 3d" in overview


def test_a_busy_attacker_is_drawn_in_bounded_ink_and_the_response_keeps_its_share() -> None:
    """A thousand events over ninety days: the focus is the high-risk calls and the
    response; the dots are bounded, the labels name the high-risk calls, and the
    response is not squeezed into a sliver."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    events = [{"eventName": "CreateAccessKey" if i % 200 == 0 else "GetObject",
               "eventTime": (start - timedelta(minutes=130 * i + 1)).isoformat()}
              for i in range(1000)]
    end = (start + timedelta(seconds=2)).isoformat()
    doc = {"incident_id": "inc-busy", "status": "completed", "started_at": start.isoformat(),
           "contained_at": end, "timeline": [{"step": "disable-key", "status": "done",
                                              "started_at": start.isoformat(), "ended_at": end}]}
    text = render_html(doc, events)
    parse(text)
    assert_self_contained(text)
    svg = svg_of(text)
    assert_on_canvas(svg)
    dots = of_class(svg, "dot")
    assert 5 <= len(dots) <= 110
    assert sum(t.startswith("CreateAccessKey") for t in texts(svg, "title")) == 5
    assert "CreateAccessKey" in " ".join(label_texts(svg))
    assert any("outside the focus" in t for t in texts(svg))
    (bar,) = [r for g in of_class(svg, "step") for r in g.iter("rect")]
    assert float(bar.attrib["width"]) > WIDTH / 10


def test_what_you_must_do_shows_each_command_alone_and_marks_placeholders() -> None:
    """Each command in its own block (alternatives too), the placeholder warning beside
    it, the note after it; the section comes before the evidence and the timeline."""
    doc = {"incident_id": "inc-todo", "status": "completed", "access_key_id": "AKIAEXAMPLE",
           "user_name": "alice", "started_at": "2026-01-02T03:04:05Z",
           "contained_at": "2026-01-02T03:04:06Z",
           "evidence": {"events": 1, "path": "/x/cloudtrail.jsonl", "sha256": "ab"},
           "timeline": [{"step": "disable-key", "status": "done",
                         "started_at": "2026-01-02T03:04:05Z",
                         "ended_at": "2026-01-02T03:04:06Z"}],
           "todo": [{"what": "Rotate secret prod/db", "commands": [
                         "aws secretsmanager rotate-secret --secret-id prod/db",
                         "aws secretsmanager put-secret-value --secret-id prod/db "
                         "--secret-string '<new value>'"],
                     "manual": True, "note": "tell the database team"},
                    {"what": "Enable MFA for alice"}]}
    text = render_html(doc, [{"eventName": "CreateUser", "eventTime": "2026-01-02T03:01:00Z"}])
    parse(text)
    todo = text.split('<section id="todo">', 1)[1].split("</section>", 1)[0]
    assert todo.count("<pre><code>") == 2
    assert ("<pre><code>aws secretsmanager put-secret-value --secret-id prod/db "
            "--secret-string &#x27;&lt;new value&gt;&#x27;</code></pre>") in todo
    assert "edit before running: replace each &lt;placeholder&gt;" in todo
    assert todo.index("</pre>") < todo.index("tell the database team")
    assert todo.count("<li>") == 2
    order = sections(text)
    assert order.index("todo") < order.index("evidence") < order.index("timeline")


def test_report_command_writes_the_page(server_account: Any, cli: Any) -> None:
    """`respond report ID --format html`: the page of a real run, self-contained, naming
    the incident and drawing the attacker's events from its evidence file."""
    run = cli("compromised", server_account.leaked_key, "--yes", "--no-replace",
              "--output", "json")
    assert run.code == 0, run.stderr
    incident = json.loads(run.stdout)["incident_id"]
    page = cli("report", incident, "--format", "html")
    assert page.code == 0, page.stderr
    assert_self_contained(page.stdout)
    assert f"<title>Incident {incident} report</title>" in page.stdout
    assert "contained" in texts(svg_of(page.stdout))
