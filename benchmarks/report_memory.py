"""report.md, report.json and the page's memory against the size of the evidence: 1,000 vs 100,000
events.

    python benchmarks/report_memory.py [--small 1000] [--large 100000] [--quick]

collect-evidence journals one LookupEvents call per page of 50 events, and report.json's
timeline lists every call: 100,000 events are 2,000 calls, and the report used to hold
each one (its params, its counted result, then its timeline entry, its JSON form, the
text) at once. The drill's incident (benchmarks/status.py's template: its steps and 85
calls) is written to a SQLite journal, with collect-evidence's pages for `small` and
for `large` events added as a run journals them (lookup_call's params, NextToken
included, the counted result). Then, each in a fresh process after one warm-up of every
form on the template alone (imports and first-call caches not counted) and CPython's
tuple free lists filled (status.fill_free_lists): the peak traced memory of
`respond report ID --output json`, of `respond report ID` (Markdown), of `respond
report ID --output html` (the drill's incident has no evidence file: the page's own
events are html_memory.py's) and of document.write (both files, as a run writes
them). Goal (issue 32): each at most 1.5x at the large size what it is at the small
one.

`--before` measures each form as it was before issue 32 (the view loaded with every
call, the whole document built), to compare. Results: benchmarks/results/
report_memory.json (report_memory_before.json). `--quick`: 1,000 and 10,000 events.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

from status import Sink, Template, build, fill_free_lists, template

RESULTS = Path(__file__).resolve().parent / "results"
FORMS = ("json", "md", "html", "write")


def add_pages(state: Path, events: int) -> None:
    """collect-evidence's LookupEvents pages for `events` events, in four regions'
    turns (a NextToken on every page but each region's first), journaled as
    evidence.collect journals them: params as lookup_call makes them, counts only."""
    from responder.evidence.collect import PAGE_SIZE, lookup_call  # noqa: PLC0415
    from responder.journal.sqlite import SqliteJournal  # noqa: PLC0415

    journal = SqliteJournal(state)
    journal._db.execute("PRAGMA synchronous=OFF")  # the private handle: a benchmark file
    incident, _ = next(journal.listing())
    record = journal.get(incident)
    pages = max(1, events // PAGE_SIZE)
    start, end = record.started_at - timedelta(days=90), record.started_at
    for n in range(pages):
        token = None if n % max(1, pages // 4) == 0 else f"{n:08d}" + "Tk" * 150
        handle = journal.intent(incident, "collect-evidence",
                                lookup_call(record.access_key_id, start, end, token=token),
                                record.started_at)
        journal.result(handle, ok=True, attempts=1, now=record.started_at,
                       result={"Events": PAGE_SIZE, "NextToken": n + 1 < pages})
    journal.close()


def _before(form: str, state: str, incident: str, directory: Path) -> None:
    """Each form as it was before issue 32: the view loaded with every call, the whole
    document built, then its text."""
    from responder.cli.output import out, out_json  # noqa: PLC0415
    from responder.incident.view import IncidentView  # noqa: PLC0415
    from responder.journal.sqlite import SqliteJournal  # noqa: PLC0415
    from responder.report import document  # noqa: PLC0415
    from responder.report.html import page  # noqa: PLC0415
    from responder.report.markdown import markdown_of  # noqa: PLC0415

    journal = SqliteJournal(Path(state))
    view = IncidentView.load(journal, incident, calls=True)
    if form == "write":
        document.write(view, directory)
    elif form == "html":
        with contextlib.redirect_stdout(Sink()):
            out(page(view))
    else:
        typed = document.report_of(view)
        with contextlib.redirect_stdout(Sink()):
            if form == "json":
                out_json(typed.to_json())
            else:
                out(markdown_of(typed))
    journal.close()


def _run(form: str, state: str, incident: str, directory: Path) -> None:
    from responder.cli import main  # noqa: PLC0415
    from responder.incident.view import IncidentView  # noqa: PLC0415
    from responder.journal.sqlite import SqliteJournal  # noqa: PLC0415
    from responder.report import document  # noqa: PLC0415

    if os.environ.get("REPORT_MEMORY_BEFORE"):
        _before(form, state, incident, directory)
        return
    if form == "write":
        journal = SqliteJournal(Path(state))
        document.write(IncidentView.load(journal, incident), directory, journal)
        journal.close()
        return
    with contextlib.redirect_stdout(Sink()):
        main(["report", incident, *(["--output", form] if form != "md" else []),
              "--state", state])


def _child(form: str, state: str, warm: str) -> dict[str, Any]:
    """In a fresh process: every form once on the template, then `form` traced."""
    from responder.journal.sqlite import SqliteJournal  # noqa: PLC0415

    def first(path: str) -> str:
        journal = SqliteJournal(Path(path))
        found = next(journal.listing())[0]
        journal.close()
        return found

    with tempfile.TemporaryDirectory() as out:
        for each in FORMS:
            _run(each, warm, first(warm), Path(out) / "warm")
        incident = first(state)
        fill_free_lists()
        began = time.perf_counter()
        tracemalloc.start()
        _run(form, state, incident, Path(out) / "measured")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        seconds = time.perf_counter() - began
        sizes = {p.name: p.stat().st_size for p in (Path(out) / "measured").glob("report.*")}
    return {"peak_bytes": peak, "seconds_traced": round(seconds, 3), "files": sizes}


def measure(sizes: list[int], like: Template, home: Path) -> dict[str, Any]:
    warm = home / "warm.db"
    build(warm, 1, like)
    found: dict[str, Any] = {}
    for events in sizes:
        state = home / f"report-{events}.db"
        build(state, 1, like)
        add_pages(state, events)
        for form in FORMS:
            child = subprocess.run(  # noqa: S603 - this interpreter, this file
                [sys.executable, __file__, "--child", form, str(state), str(warm)],
                check=True, capture_output=True, text=True, env={**os.environ})
            found.setdefault(form, {})[str(events)] = json.loads(child.stdout)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 events")
    parser.add_argument("--before", action="store_true",
                        help="each form as before issue 32 (every call held), to compare")
    parser.add_argument("--child", nargs=3, metavar=("FORM", "STATE", "WARM"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.stdout.write(json.dumps(_child(*args.child)) + "\n")
        return 0
    small, large = (1_000, 10_000) if args.quick else (args.small, args.large)
    if args.before:
        os.environ["REPORT_MEMORY_BEFORE"] = "1"  # read by the children
    with tempfile.TemporaryDirectory() as home:
        os.environ["RESPONDER_HOME"] = home
        with contextlib.redirect_stderr(io.StringIO()):
            like = template()
        found = measure([small, large], like, Path(home))
    results: dict[str, Any] = {"quick": args.quick, "before": args.before,
                               "events": [small, large],
                               "goal": 1.5, "forms": found}
    for form, by_size in found.items():
        low, high = by_size[str(small)]["peak_bytes"], by_size[str(large)]["peak_bytes"]
        results[f"{form}_peak_mib"] = [round(low / 2**20, 2), round(high / 2**20, 2)]
        results[f"{form}_ratio"] = round(high / low, 3)
    RESULTS.mkdir(exist_ok=True)
    name = "report_memory_before.json" if args.before else "report_memory.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
