"""report.html: one self-contained page, built from a real incident, every attacker-chosen
value escaped and every secret-shaped one redacted, whatever the times look like."""

from __future__ import annotations

import copy
import json
import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import (
    DROPPED_ENV,
    FAST_RETRY,
    ISOLATED_ENV,
    REGION,
    make_account,
    record_backdoor,
)
from moto import mock_aws

from responder import playbook
from responder.aws.ratelimit import VirtualClock
from responder.context import RunContext
from responder.drill.cloudtrail import CloudTrailFake
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.report import document as report
from responder.report.html import WIDTH, render_html
from responder.run import service

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
    home = tmp_path_factory.mktemp("report-html")
    trail = CloudTrailFake()
    with pytest.MonkeyPatch.context() as env, mock_aws(), trail.installed():
        for name in DROPPED_ENV:
            env.delenv(name, raising=False)
        for name, value in {**ISOLATED_ENV, "RESPONDER_HOME": str(home / "home")}.items():
            env.setenv(name, value)
        account = make_account(boto3.Session(region_name=REGION))
        record_backdoor(account, trail, "ASIAATTACKERSESSION1")
        clock = VirtualClock()
        ctx = RunContext(session_factory=lambda: boto3.Session(region_name=REGION),
                         home=home / "home", retry=FAST_RETRY, monotonic=clock.monotonic,
                         sleep=clock.sleep)
        journal = SqliteJournal(home / "journal.db")
        try:
            record = service.respond(ctx, journal, playbook.load("compromised-key"),
                                     account.leaked_key)
            view = IncidentView.load(journal, record.id, calls=True)
            doc = report.report_of(view).to_json()
        finally:
            journal.close()
    lines = Path(doc["evidence"]["path"]).read_text().splitlines()
    return doc, [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def real(incident: tuple[dict[str, Any], list[dict[str, Any]]]
         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A copy each test may change."""
    return copy.deepcopy(incident)


def test_a_real_incident_page_shows_both_lanes_on_one_axis(
        real: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    doc, events = real
    assert doc["status"] == "completed"
    assert {e["eventName"] for e in events} == {"GetSessionToken", "CreateUser",
                                                 "CreateAccessKey"}
    text = render_html(doc, events)
    page = parse(text)
    assert_self_contained(text)
    assert doc["incident_id"] in page.title
    assert f"<h1>Incident {doc['incident_id']}</h1>" in text
    for value in (doc["access_key_id"], "alice", doc["account_id"], "completed",
                  doc["evidence"]["sha256"], "backdoor", "iam:UpdateAccessKey"):
        assert value in text, value
    for section in ("timeline", "evidence", "shut", "next"):
        assert f'<section id="{section}">' in text
    assert page.tags.count("li") == len(doc["next_actions"])
    svg = svg_of(text)
    assert_on_canvas(svg)
    labels = texts(svg)
    assert "contained" in labels
    assert {e["eventName"] for e in events} <= set(labels)
    assert any(t.startswith("CreateUser | ") for t in texts(svg, "title"))
    bars = list(svg.iter("rect"))
    assert len(bars) == len([t for t in doc["timeline"] if t["started_at"]])
    marks = list(svg.iter("circle"))
    assert len(marks) == len(events)
    # The attacker's lane is above the responder's, and both share the axis: the attacker
    # acted minutes before the response, so every mark is left of every bar.
    assert max(float(c.attrib["cy"]) for c in marks) < min(float(r.attrib["y"]) for r in bars)
    assert max(float(c.attrib["cx"]) for c in marks) < min(float(r.attrib["x"]) for r in bars)
    # Three minutes of nothing between them is drawn short and said so.
    assert any(t.startswith("≈ ") for t in labels)
    # 24 regions' LookupEvents pages are counted, not listed one by one.
    assert re.search(r"cloudtrail:LookupEvents x\d+", text)


def test_attacker_text_is_escaped_and_secrets_redacted(
        real: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    doc, events = real
    doc["user_name"] = SCRIPT
    doc["next_actions"].append(f"rotate {SECRET} <b>now</b>")
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
    labels = texts(svg_of(text))
    assert SCRIPT in labels  # drawn, as text
    assert "CreateUser" in labels
    text.encode("utf-8")  # no lone surrogate left to break writing the file


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
    assert "not contained" in text
    assert "iam:UpdateAccessKey (3 attempts, error)" in text
    svg = svg_of(text)
    assert_on_canvas(svg)
    assert "contained" not in texts(svg)
    assert list(svg.iter("circle")) == []
    bars = list(svg.iter("rect"))
    assert len(bars) == 2
    assert float(bars[1].attrib["width"]) > 0  # no end: still a visible mark
    assert "no evidence collected" in text


def test_a_bare_document_still_renders() -> None:
    """Nothing but an id: no times to draw at all."""
    text = render_html({"incident_id": "inc-bare"})
    page = parse(text)
    assert_self_contained(text)
    assert "inc-bare" in page.title
    assert "no times recorded" in texts(svg_of(text))


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
    assert {"contained", "CreateUser", "CreateAccessKey"} <= set(texts(svg))


def test_events_days_before_keep_the_response_readable() -> None:
    """An attacker active three days before the key was reported does not squeeze a
    three-second response into a pixel; malformed event times are skipped and counted."""
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
    assert {"GetCallerIdentity", "CreateUser"} <= set(labels)
    assert sum(t.startswith("≈ ") for t in labels) == 2
    assert any("2 events not drawn" in t for t in labels)
    widths = [float(r.attrib["width"]) for r in svg.iter("rect")]
    assert max(widths) > 100


def test_a_busy_attacker_is_capped_and_the_response_keeps_its_share() -> None:
    """A thousand events over ninety days: the high-risk ones are drawn first, the rest are
    counted, and the response is not squeezed into a sliver."""
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
    assert len(list(svg.iter("circle"))) == 400
    assert sum(t.startswith("CreateAccessKey") for t in texts(svg, "title")) == 5
    assert any("600 events not drawn" in t for t in texts(svg))
    (bar,) = svg.iter("rect")
    assert float(bar.attrib["width"]) > (WIDTH - 200) / 5


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
