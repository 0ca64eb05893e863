"""report.json, report.md and the page read an incident's calls from the journal as
they are written (issue 32).

collect-evidence journals one LookupEvents call per page of 50 events and report.json's
timeline lists every call, so an incident of 100,000 events has 2,000 calls: the report
used to hold all of them, several times over (9 MB traced against 0.8 MB at 1,000
events). Now the files and the page are written with one page of calls in memory, and say exactly
what they said when the whole document was built.
"""

from __future__ import annotations

import json
import os
import signal
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from responder import playbook
from responder.aws import ApiCall
from responder.cli import interrupts, main
from responder.evidence.collect import PAGE_SIZE, lookup_call
from responder.incident.facts import EvidenceCollected, OwnerFound, SweepFound
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.report import document, html
from responder.report.json_text import Lazy, pieces
from responder.report.markdown import markdown_of
from responder.report.story_model import TIMES

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KEY = "AKIAIOSFODNN7EXAMPLE"
INCIDENT = "inc-report-memory"


def _journal(path: Path, events: int) -> SqliteJournal:
    """A completed incident whose evidence took events / 50 LookupEvents pages, with a
    retried call, a refused one and a sweep after the playbook."""
    journal = SqliteJournal(path)
    journal._db.execute("PRAGMA synchronous=OFF")  # a test's file
    journal.create_incident(
        incident_id=INCIDENT, access_key_id=KEY,
        playbook=playbook.load("compromised-key").to_dict(), started_at=T0, source="test",
        options={}, owner="test", lease_seconds=60)
    for step in ("identify", "disable-key", "revoke-sessions", "collect-evidence"):
        journal.step_started(INCIDENT, step, T0)
    handle = journal.intent(INCIDENT, "identify", ApiCall("iam", "GetAccessKeyLastUsed",
                                                          {"AccessKeyId": KEY}), T0)
    journal.result(handle, ok=True, attempts=3, now=T0, result={"UserName": "alice"})
    handle = journal.intent(INCIDENT, "disable-key", ApiCall(
        "iam", "UpdateAccessKey", {"AccessKeyId": KEY, "Status": "Inactive"}, True), T0)
    journal.result(handle, ok=False, attempts=1, now=T0, error="AccessDenied: no")
    pages = max(1, events // PAGE_SIZE)
    for n in range(pages):
        at = T0 + timedelta(milliseconds=500 * n)
        call = lookup_call(KEY, T0 - timedelta(days=90), T0,
                           token=f"{n:06d}" + "t" * 200 if n else None)
        handle = journal.intent(INCIDENT, "collect-evidence", call, at)
        journal.result(handle, ok=True, attempts=1, now=at,
                       result={"Events": PAGE_SIZE, "NextToken": n + 1 < pages})
    journal.step_finished(INCIDENT, "identify", status="done", now=T0,
                          detail=OwnerFound("alice", "123456789012").to_detail(), error=None)
    journal.step_finished(INCIDENT, "collect-evidence", status="done", now=T0,
                          detail=EvidenceCollected(events=events, regions=("us-east-1",),
                                                   pages=pages).to_detail(), error=None)
    journal.add_step(INCIDENT, "sweep-1", "sweep_cloudtrail", T0)
    journal.step_started(INCIDENT, "sweep-1", T0)
    handle = journal.intent(INCIDENT, "sweep-1", lookup_call(KEY, T0, T0), T0)
    journal.result(handle, ok=True, attempts=1, now=T0, result={"Events": 0})
    journal.step_finished(INCIDENT, "sweep-1", status="done", now=T0,
                          detail=SweepFound(events_total=events).to_detail(), error=None)
    journal.update_incident(INCIDENT, T0, status="completed", user_name="alice")
    return journal


def test_the_files_say_what_the_whole_document_said(tmp_path: Path) -> None:
    """Byte for byte: report.json as json.dumps(indent=2) of report_of(view) loaded with
    its calls, report.md as markdown_of of it (calls counted by API and outcome)."""
    journal = _journal(tmp_path / "j.db", 1_000)
    whole = document.report_of(IncidentView.load(journal, INCIDENT, calls=True))
    md = tmp_path / "out" / "report.md"
    whole = replace(whole, document=replace(whole.document, report=str(md)))
    assert document.write(IncidentView.load(journal, INCIDENT), md.parent, journal) == md
    assert (md.parent / "report.json").read_text() == \
        json.dumps(whole.to_json(), indent=2, default=str) + "\n"
    assert md.read_text() == markdown_of(whole)
    assert f"cloudtrail:LookupEvents {TIMES}20" in md.read_text()
    assert "iam:GetAccessKeyLastUsed (3 attempts)" in md.read_text()
    assert len(json.loads((md.parent / "report.json").read_text())["timeline"][3]["calls"]) \
        == 20


def test_the_page_says_what_it_said_with_every_call(tmp_path: Path) -> None:
    """The page counts each step's calls from the journal: the same page as from the view
    loaded with its calls."""
    journal = _journal(tmp_path / "j.db", 1_000)
    whole = html.page(IncidentView.load(journal, INCIDENT, calls=True))
    assert html.page(IncidentView.load(journal, INCIDENT), journal) == whole
    assert f"cloudtrail:LookupEvents {TIMES}20" in whole


@pytest.mark.usefixtures("fresh_structlog")
def test_respond_report_prints_the_same_json(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`respond report ID --output json` prints one JSON object, laid out as before, with
    the calls the whole document listed."""
    journal = _journal(tmp_path / "j.db", 500)
    whole = document.report_of(IncidentView.load(journal, INCIDENT, calls=True)).to_json()
    journal.close()
    handlers = {s: signal.getsignal(s) for s in (*interrupts.SIGNALS, signal.SIGALRM)}
    mask = os.umask(0o022)
    os.umask(mask)
    try:
        assert main(["report", INCIDENT, "--output", "json", "--state",
                     str(tmp_path / "j.db")]) == 0
    finally:  # what main sets for the process
        os.umask(mask)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    out = capsys.readouterr().out
    assert json.loads(out)["timeline"] == whole["timeline"]
    assert out == json.dumps(json.loads(out), indent=2) + "\n"
    assert [c["api"] for c in json.loads(out)["followups"][0]["calls"]] == [
        "cloudtrail:LookupEvents"]


@pytest.mark.parametrize("value", [
    {}, [], {"a": [], "b": {}, "c": [1, 2.5, None, True, "x\n\u00e9"]},
    {"nested": [{"k": [[], [{}]]}], 1: "int key", None: "none key"},
])
def test_pieces_lay_json_out_as_json_dumps(value: object) -> None:
    """The writer behind both files and the listing: json.dumps(indent=2), exactly."""
    assert "".join(pieces(value)) == json.dumps(value, indent=2, default=str)
    lazy = {"items": Lazy(lambda: iter([{"n": 1}, {"n": 2}])), "none": Lazy(lambda: iter(()))}
    assert "".join(pieces(lazy)) == json.dumps({"items": [{"n": 1}, {"n": 2}], "none": []},
                                               indent=2)


def _write(journal: SqliteJournal, directory: Path) -> None:
    document.write(IncidentView.load(journal, INCIDENT), directory, journal)


def _page(journal: SqliteJournal, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.html").write_text(html.page(IncidentView.load(journal, INCIDENT),
                                                     journal))


def _peak(write: Callable[[SqliteJournal, Path], None], journal: SqliteJournal,
          directory: Path) -> int:
    kept = [tuple(range(size)) for size in range(1, 20) for _ in range(2000)]
    del kept  # CPython's tuple free lists full first (benchmarks/status.py)
    tracemalloc.start()
    try:
        write(journal, directory)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("write", [_write, _page], ids=["files", "page"])
def test_memory_is_flat_with_the_evidence(
        tmp_path: Path, write: Callable[[SqliteJournal, Path], None]) -> None:
    """30,000 events (600 journaled pages) peak within 1.5x of 1,000 (20 pages): it was
    9x at 100,000 for the files, 15x for the page. A warm-up write first (imports,
    first-call caches)."""
    small = _journal(tmp_path / "small.db", 1_000)
    large = _journal(tmp_path / "large.db", 30_000)
    write(small, tmp_path / "warm")
    low, high = (_peak(write, small, tmp_path / "small"),
                 _peak(write, large, tmp_path / "large"))
    assert high <= 1.5 * low, (low, high)
