"""report.html in a real browser (headless Chromium): it draws without an error, the text
the attacker chose stays text in every section, and a person sees the headline first.

Chromium is Debian's package (`apt-get install chromium`; .ci/run installs it when it
can). Without it these tests skip, saying so. Chromium starts three times per module: the
page's DOM after any script would have run (--dump-dom) with its console log, a
screenshot, and a canary page that must log a CSP violation (so that a quiet log proves
something).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from responder.report.html import render_html

SCRIPT = "<script>alert(2)</script>"
BOLD = "<b>pwn</b>"
AGENT = '"><img src=x onerror=alert(1)>'
EVENT = '<img src=y onerror=alert(3)><b>Delete</b>Trail'
HOSTILE = (SCRIPT, BOLD, AGENT, EVENT)
T0 = "2026-03-01T12:00:00.000Z"


def _at(second: float) -> str:
    """Seconds into the minute before the response."""
    return f"2026-03-01T11:59:{second:06.3f}Z"


def hostile() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A report whose CloudTrail-derived values are markup in every story section and in
    the events: a session name, a policy name, a user agent, an event name."""
    key = "ASIAHOSTILESESSION01"
    risky = [{"eventName": EVENT, "eventTime": _at(50), "region": "us-east-1",
              "sourceIPAddress": AGENT, "accessKeyId": key, "errorCode": SCRIPT},
             {"eventName": "AttachUserPolicy", "eventTime": _at(51), "region": "us-east-1",
              "sourceIPAddress": "203.0.113.9", "accessKeyId": key}]
    doc = {
        "incident_id": "inc-hostile", "status": "completed", "access_key_id": key,
        "account_id": "123456789012", "playbook": "compromised-key", "started_at": T0,
        "contained_at": "2026-03-01T12:00:00.800Z",
        "session": {"principal_type": "AssumedRole", "role_name": "ops",
                    "session_name": SCRIPT},
        "evidence": {"events": 4, "regions": ["us-east-1"], "path": "/x/cloudtrail.jsonl",
                     "sha256": "ab" * 32, "regions_unread": {"eu-west-1": SCRIPT}},
        "attacker": {
            "cutoff": T0,
            "keys_disabled": [{"user_name": BOLD, "access_key_id": "AKIABACKDOOR00000001",
                               "already": False}],
            "principals_quarantined": [{"type": "user", "name": BOLD,
                                        "keys_disabled": ["AKIABACKDOOR00000001"]}],
            "sessions_revoked": [{"role_name": "ops", "sessions": [SCRIPT]}],
            "needs_human": [{"event_name": EVENT, "time": _at(51), "access_key_id": key,
                             "what": f"attached {BOLD} to {SCRIPT}", "meaning": "grants access",
                             "resource": BOLD, "manual": True,
                             "undo": "aws iam detach-user-policy --user-name '<user>' "
                                     f"--policy-arn 'arn:aws:iam::123456789012:policy/{BOLD}'"}],
            "credentials_read": [{"kind": "secret", "name": SCRIPT, "region": "us-east-1",
                                  "event_name": "GetSecretValue", "time": _at(52),
                                  "rotate": "aws secretsmanager rotate-secret --secret-id "
                                            f"'{SCRIPT}'"}],
            "granted_to": [{"principal": AGENT, "resource": BOLD, "what": f"policy {BOLD}",
                            "event_name": EVENT, "time": _at(53)}],
            "restored": [{"kind": "trail", "name": BOLD, "region": "us-east-1"}]},
        "hardening": {"user_name": BOLD, "lookback_days": 90, "used_actions": [EVENT],
                      "regions_failed": {"eu-west-1": SCRIPT}},
        "timeline": [{"step": "disable-key", "status": "done", "started_at": T0,
                      "ended_at": "2026-03-01T12:00:00.800Z", "error": None,
                      "calls": [{"api": "iam:UpdateAccessKey", "outcome": "ok"}]},
                     {"step": "collect-evidence", "status": "failed",
                      "started_at": "2026-03-01T12:00:01.000Z",
                      "ended_at": "2026-03-01T12:00:03.000Z", "error": SCRIPT,
                      "calls": [{"api": "cloudtrail:LookupEvents", "outcome": "ok"}] * 48}],
        "evidence_summary": {"events": 4, "path": "/x/cloudtrail.jsonl", "summary": {
            "events": 4, "by_event_name": {EVENT: 1, "AttachUserPolicy": 1, "CreateUser": 2},
            "source_ips": {AGENT: 3}, "user_agents": {AGENT: 4}, "first_event": _at(50),
            "last_event": _at(53), "high_risk": risky, "high_risk_total": 2}},
        "todo": [{"what": f"Rotate secret {SCRIPT}: the attacker read it",
                  "commands": [f"aws secretsmanager rotate-secret --secret-id '{SCRIPT}'",
                               f"aws secretsmanager delete-secret --secret-id '{BOLD}'"],
                  "manual": True, "note": AGENT}],
        "notifications": {"sent": [{"channel": "sns", "message_id": BOLD}],
                          "failed": [{"channel": "slack", "error": AGENT}]},
    }
    events = [{"eventName": EVENT, "eventTime": _at(50), "userAgent": AGENT,
               "sourceIPAddress": AGENT, "errorCode": SCRIPT,
               "userIdentity": {"accessKeyId": key, "sessionContext": {"sessionName": SCRIPT}},
               "requestParameters": {"policyName": BOLD}},
              {"eventName": "AttachUserPolicy", "eventTime": _at(51), "userAgent": AGENT,
               "requestParameters": {"policyArn": f"arn:aws:iam::123456789012:policy/{BOLD}"},
               "userIdentity": {"accessKeyId": key}},
              {"eventName": SCRIPT, "eventTime": _at(52.5), "userAgent": AGENT,
               "userIdentity": {"accessKeyId": SCRIPT}},
              {"eventName": "CreateUser", "eventTime": _at(53), "userAgent": AGENT,
               "requestParameters": {"userName": BOLD}, "eventID": SCRIPT}]
    return doc, events


def _chromium() -> str | None:
    return next((found for name in ("chromium", "chromium-browser")
                 if (found := shutil.which(name))), None)


BROWSER = _chromium()
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no chromium binary on PATH: `apt-get install chromium` "
                            "(Debian's package) to run the browser tests")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0")


@dataclass(frozen=True)
class Opened:
    """What the browser made of a page: its DOM and the log lines about the page."""

    dom: str
    log: tuple[str, ...]


def _open(page: Path, profile: Path, *extra: str) -> Opened:
    assert BROWSER is not None
    done = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", *extra,
                           page.as_uri()], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    about = tuple(line for line in done.stderr.splitlines()
                  if ":CONSOLE" in line or page.as_uri() in line or "Uncaught" in line)
    return Opened(done.stdout, about)


class Dom(HTMLParser):
    """The dumped DOM's elements in order (tag, id), its attributes, and its text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, str]] = []
        self.attributes: list[str] = []
        self.chunks: list[str] = []
        self.stack: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs).get("id") or ""))
        self.attributes += [name for name, _ in attrs]

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def tags(self, tag: str) -> int:
        return sum(1 for t, _ in self.elements if t == tag)


def section_text(dom: str, name: str) -> str:
    """The text of <section id=name> in the dumped DOM."""
    start = dom.index(f'<section id="{name}">')
    return Dom(dom[start:dom.index("</section>", start)]).text


@pytest.fixture(scope="module")
def browsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The hostile page, as Chromium rendered it (DOM and log), its screenshot, and the
    canary's log."""
    where = tmp_path_factory.mktemp("browser")
    doc, events = hostile()
    source = render_html(doc, events)
    page = where / "report.html"
    page.write_text(source, "utf-8")
    canary = where / "canary.html"
    canary.write_text(source.replace("</body>", "<script>document.title='ran'</script>"
                                                "</body>"), "utf-8")
    shot = where / "shot.png"
    return {"source": source, "page": _open(page, where / "p1", "--dump-dom"),
            "canary": _open(canary, where / "p2", "--dump-dom"),
            "shot": (_open(page, where / "p3", "--window-size=1280,900",
                           f"--screenshot={shot}"), shot)}


def test_it_draws_without_errors(browsed: dict[str, Any]) -> None:
    """No console message, script error or CSP violation about the page; the timeline
    is in the DOM. The canary (the same page with an inline script) shows the log would
    have said so."""
    canary: Opened = browsed["canary"]
    assert any("Content Security Policy" in line for line in canary.log), canary.log
    assert "<title>ran</title>" not in canary.dom  # the CSP held: the script never ran
    opened: Opened = browsed["page"]
    assert opened.log == ()
    dom = Dom(opened.dom)
    assert dom.tags("svg") == 1
    assert dom.tags("circle") >= 3
    assert dom.tags("path") >= 1
    shown, shot = browsed["shot"]
    assert shown.log == ()
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1280, 900)


def test_attacker_text_stays_text(browsed: dict[str, Any]) -> None:
    """No <script>, <img> or <b> element, and no event handler, came from the markup the
    attacker chose; each value reads as the text it is, in every section."""
    dom = Dom(browsed["page"].dom)
    for tag in ("script", "img", "b", "i", "iframe", "object"):
        assert dom.tags(tag) == 0, tag
    assert not [name for name in dom.attributes if name.startswith("on")]
    assert set(dom.attributes) <= {
        "lang", "charset", "http-equiv", "content", "id", "class", "width", "height",
        "viewbox", "role", "font-family", "font-size", "font-weight", "x", "y", "x1", "y1",
        "x2", "y2", "cx", "cy", "r", "d", "fill", "fill-opacity", "stroke",
        "stroke-dasharray", "text-anchor", "data-from", "data-to"}
    for value in HOSTILE:
        assert value in dom.text, value
    sections = {"headline": (AGENT,), "did": (EVENT,), "shut": (BOLD,), "read": (SCRIPT,),
                "granted": (AGENT, BOLD), "todo": (SCRIPT, BOLD, AGENT),
                "evidence": (AGENT, EVENT, SCRIPT), "timeline": (EVENT, SCRIPT),
                "hardening": (BOLD,), "details": (BOLD, SCRIPT, EVENT, AGENT)}
    for name, values in sections.items():
        said = section_text(browsed["page"].dom, name)
        for value in values:
            assert value in said, (name, value)


def test_a_person_sees_the_headline_first_and_what_to_do_before_the_evidence(
        browsed: dict[str, Any]) -> None:
    dom = Dom(browsed["page"].dom)
    order = [(tag, id_) for tag, id_ in dom.elements if tag in {"h1", "section"}]
    assert order[0][0] == "h1"
    assert order[1] == ("section", "headline")
    ids = [id_ for tag, id_ in order if tag == "section"]
    assert ids.index("todo") < ids.index("evidence") < ids.index("timeline")
    assert ids == ["headline", "did", "shut", "read", "granted", "todo", "evidence",
                   "timeline", "hardening", "details"]
    headline = section_text(browsed["page"].dom, "headline")
    assert "CONTAINED" in headline
    assert "NOTIFICATION FAILED" in headline
    # each command in its own block, as it pastes (the browser shows the text as is)
    todo = section_text(browsed["page"].dom, "todo")
    assert f"aws secretsmanager rotate-secret --secret-id '{SCRIPT}'" in todo
    assert "edit before running: replace each <placeholder>" in todo
