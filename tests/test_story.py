"""One story in every medium (issue 31): the terminal, report.md, SNS and Slack lead with
the same headline, the same "what was shut" and "what you must do", then the evidence,
the steps and hardening; no Python value ever reaches their text; every command pastes
as printed; report.md escapes what an attacker controls.

The incidents are real runs: the drill's fake account (moto), its attacker and the
playbook, through the same code as `respond compromised`.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from responder import drill
from responder.incident.shapes import EvidenceSummary, HumanAction
from responder.incident.view import IncidentView
from responder.report.document import report_of
from responder.report.markdown import markdown_of
from responder.report.model import (
    AttackerEntry,
    EvidenceSummaryEntry,
    IncidentDocument,
    ReportDocument,
    ReportExtras,
    SessionEntry,
)
from responder.report.notice import build_notice
from responder.report.notify import render_text, slack_payload
from responder.report.story import Story, story_of
from responder.report.terminal import summary
from responder.report.todo import Todo

SCENARIOS = ("persistence", "exfiltration", "session-pivot")
PYTHON = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|NoneType|\{'|\['|\d+ days?, \d+:\d\d:\d\d"
                    r"|datetime\.|Decimal\(|<object |\(\)")
"""What Python leaves in text when a value is formatted unread: None, booleans, reprs of
dicts, lists and timedeltas."""


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, IncidentView]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RESPONDER_HOME", str(tmp_path_factory.mktemp("home")))
        yield {name: drill.run(name).view for name in SCENARIOS}


def _media(view: IncidentView) -> dict[str, str]:
    """Each medium's text for one incident, as a human reads it."""
    typed = report_of(view)
    notice = build_notice("completed", view)
    _, body = render_text(notice)
    slack = "\n".join(_slack_text(b) for b in slack_payload(notice)["blocks"])
    return {"terminal": summary(typed.document, typed.extras),
            "markdown": _rendered(markdown_of(typed)), "sns": body, "slack": slack}


def _slack_text(block: dict[str, object]) -> str:
    text = block.get("text")
    fields = block.get("fields")
    said = [text["text"]] if isinstance(text, dict) else []
    said += [f["text"] for f in fields] if isinstance(fields, list) else []
    return "\n".join(said).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class _Page(HTMLParser):
    """The text of an HTML page and the tags it made."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _page(markdown: str) -> _Page:
    page = _Page()
    page.feed(MarkdownIt("commonmark").enable("table").render(markdown))
    return page


def _rendered(markdown: str) -> str:
    """report.md as a Markdown renderer shows it (CommonMark, raw HTML allowed)."""
    return "".join(_page(markdown).text)


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_python_value_reaches_any_medium(views: dict[str, IncidentView], name: str) -> None:
    for medium, text in _media(views[name]).items():
        found = PYTHON.search(text)
        assert found is None, (medium, text[max(0, found.start() - 80):found.end() + 80])


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_medium_tells_the_story_in_one_order(views: dict[str, IncidentView],
                                                   name: str) -> None:
    """The headline first; what was shut and what to do before the evidence and the
    steps; hardening last. The same items, in each."""
    typed = report_of(views[name])
    told = story_of(typed.document, typed.extras)
    assert told.state == "CONTAINED"
    for medium, text in _media(views[name]).items():
        flat = " ".join(text.split())
        head = flat.index(told.headline[:60])
        for item in (*told.shut, *(t.what for t in told.todo)):
            assert " ".join(item.split()) in flat, (medium, item)
        shut = flat.index(" ".join(told.shut[0].split()))
        todo = flat.index(" ".join(told.todo[0].what.split()))
        evidence = flat.index("user agents")
        steps = flat.index("revoke-sessions")
        hardening = flat.rindex("least privilege")
        assert head < shut < todo < evidence < steps < hardening, medium


def test_the_terminal_leads_with_what_the_attacker_did_and_what_was_shut(
        views: dict[str, IncidentView]) -> None:
    typed = report_of(views["persistence"])
    lines = summary(typed.document, typed.extras).splitlines()
    assert lines[1].startswith("  CONTAINED: key ")
    did = lines.index("WHAT THE ATTACKER DID")
    assert any("CreateUser" in line and "creates access" in line for line in lines[did:])
    shut = lines[lines.index("WHAT WAS SHUT"):lines.index("WHAT YOU MUST DO")]
    assert any("support-backup" in line and "quarantined" in line for line in shut)
    assert lines.index("WHAT YOU MUST DO") < lines.index("STEPS") < lines.index("HARDENING")
    assert lines[-1].startswith("  ")  # hardening is the last section


def _commands(told: Story) -> list[Todo]:
    return [t for t in told.todo if t.commands]


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_command_pastes_as_printed(views: dict[str, IncidentView], name: str) -> None:
    """shlex-quoted (it reads back to the same words and prints the same way), one
    command per alternative, a <placeholder> only where the item is marked manual."""
    typed = report_of(views[name])
    told = story_of(typed.document, typed.extras)
    assert _commands(told), "a run with an attacker leaves something to do by command"
    for item in _commands(told):
        for command in item.commands:
            words = shlex.split(command)
            assert shlex.join(words) == command, command
            assert words[0] in {"aws", "respond"}, command
            assert (re.search(r"<[a-z-]+>", command) is not None) == item.manual, command
            assert " or " not in command, command  # prose never rides inside a command
            assert "(" not in command, command


HOSTILE = {
    "session": "<script>alert(2)</script>",
    "policy": "<b>pwn</b>",
    "agent": '"><img src=x onerror=alert(1)>',
    "event": "<i>ListBuckets</i>",
    "link": "[click](javascript:alert(3))",
    "ticks": "x` <b>out</b> `",
}


def _hostile() -> ReportDocument:
    """A report whose CloudTrail-derived values are the attacker's markup."""
    action = HumanAction(event_name=HOSTILE["event"], what=f"policy {HOSTILE['policy']} "
                         f"attached {HOSTILE['link']}", meaning="widens a policy",
                         undo=shlex.join(["aws", "iam", "delete-user-policy", "--policy-name",
                                          HOSTILE["policy"] + HOSTILE["ticks"]]))
    summary_ = EvidenceSummary(events=2, user_agents={HOSTILE["agent"]: 2},
                               source_ips={HOSTILE["ticks"]: 2},
                               by_event_name={HOSTILE["event"]: 1, "PutUserPolicy": 1},
                               high_risk=({"eventName": HOSTILE["event"], "refused": False},),
                               high_risk_total=1)
    doc = IncidentDocument(
        incident_id="inc-1", status="completed", access_key_id="ASIAEXAMPLE",
        session=SessionEntry(principal_type="AssumedRole", role_name=HOSTILE["policy"],
                             session_name=HOSTILE["session"]),
        attacker=AttackerEntry(needs_human=(action,)))
    todo = (Todo(f"Undo {HOSTILE['session']}", (action.undo,), note=HOSTILE["link"]),)
    return ReportDocument(doc, ReportExtras(
        todo=todo, evidence_summary=EvidenceSummaryEntry(events=2, summary=summary_)))


def test_markdown_keeps_what_the_attacker_wrote_inert() -> None:
    """Rendered by a CommonMark renderer that passes raw HTML through: not one tag or link
    comes from the attacker's text, and the text itself is still there to read."""
    page = _page(markdown_of(_hostile()))
    made = set(page.tags)
    assert not made & {"script", "img", "b", "i", "a"}, made
    text = "".join(page.text)
    for value in HOSTILE.values():
        assert value in text or value.strip("` ") in text, value


def test_a_fence_inside_a_command_cannot_close_its_block() -> None:
    """A command holding backticks is still one code block, printed whole."""
    command = shlex.join(["aws", "iam", "get-user", "--user-name", "a```b<b>x</b>"])
    doc = ReportDocument(IncidentDocument(incident_id="inc-2"),
                         ReportExtras(todo=(Todo("look", (command,)),)))
    html = MarkdownIt("commonmark").render(markdown_of(doc))
    block = re.search(r"<pre><code[^>]*>(.*?)</code></pre>", html, re.S)
    assert block is not None
    assert block.group(1).strip() == command.replace("&", "&amp;").replace("<", "&lt;") \
        .replace(">", "&gt;").replace('"', "&quot;")
    assert "<b>" not in html


def test_a_blank_document_says_words_not_python() -> None:
    """A plan, a refusal, a halted run: every field null, still no Python in the text."""
    for status in ("planned", "refused", "halted", "closed"):
        doc = IncidentDocument(incident_id="inc-3", status=status, access_key_id="AKIA1")
        report = ReportDocument(doc, ReportExtras())
        for text in (summary(doc), markdown_of(report), json.dumps(story_of(doc).headline)):
            assert PYTHON.search(text) is None, (status, text)


def test_the_markdown_file_is_what_the_report_writes(views: dict[str, IncidentView],
                                                     tmp_path: Path) -> None:
    """report.md on disk opens with the title and the headline, not the hardening."""
    from responder.report.document import write

    text = write(views["persistence"], tmp_path).read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# Incident ")
    assert lines[2].startswith("**CONTAINED: key ")
    assert text.index("## What you must do") < text.index("## Evidence") \
        < text.index("## Timeline") < text.index("## Hardening") < text.index("```json")
