"""`respond status --all --output json` against the size of the journal: 10 vs 1,000
incidents.

    python benchmarks/status.py [--small 10] [--large 1000] [--quick] [--before]

One real incident is made with the drill (the production pipeline against its fake
account, in a temporary RESPONDER_HOME): its record, its steps with their details and
its 85 journaled AWS calls are the template. Each size gets its own SQLite journal,
written through the journal API as a run writes it (create_incident, step_started, every
call's intent and result, step_finished, update_incident), one incident per key, started
a minute apart, every tenth one left halted halfway (open). Then, for each size, a fresh
process runs `respond status --all --output json` in-process (responder.cli.main, stdout
redirected to a sink that only counts) after one warm-up listing of a one-incident
journal (imports and first-call caches are not counted): once for the wall time, once
under tracemalloc for the peak, CPython's tuple free lists filled first (see
fill_free_lists). Goal (issue 32): the peak at the large size at most 1.5x
the peak at the small one; the time grows with the incidents, linearly.

`--before` measures the listing as it was before issue 32 (every incident's whole §2
document, built all at once, printed as one object) with the same harness, for the
comparison. Results: benchmarks/results/status.json. `--quick` uses 5 and 50 incidents
(CI: it runs and writes valid JSON; the figures are not checked).
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
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common import peak_rss_mib

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Template:
    """One journaled incident, as the drill left it."""

    record: Any
    steps: list[Any]
    calls: list[Any]


def template() -> Template:
    """The drill's incident (`respond drill`'s default scenario), read back whole."""
    from responder.drill import run  # noqa: PLC0415 - after RESPONDER_HOME is set
    from responder.journal.sqlite import SqliteJournal  # noqa: PLC0415

    with contextlib.redirect_stderr(io.StringIO()):
        result = run()
    journal = SqliteJournal(Path(result.home) / "responder.db")
    found = Template(journal.get(result.view.id), journal.steps(result.view.id),
                     journal.calls(result.view.id))
    journal.close()
    return found


def build(path: Path, count: int, like: Template) -> None:
    """`count` incidents like the template in a new SQLite journal at `path`, written
    through the journal API (synchronous=OFF: the benchmark's file need not survive a
    power cut, and the build takes seconds instead of minutes)."""
    from responder.aws import ApiCall  # noqa: PLC0415
    from responder.journal.sqlite import SqliteJournal  # noqa: PLC0415

    journal = SqliteJournal(path)
    journal._db.execute("PRAGMA synchronous=OFF")  # the private handle: a benchmark file
    base = like.record
    first = base.started_at - timedelta(minutes=count)
    for i in range(count):
        incident = f"inc-bench-{i:06d}"
        started = first + timedelta(minutes=i)
        shift = started - base.started_at
        journal.create_incident(
            incident_id=incident, access_key_id=f"AKIABENCH{i:011d}", playbook=base.playbook,
            started_at=started, source=base.source, options=base.options, owner="bench",
            lease_seconds=60)
        halted = i % 10 == 9
        steps = like.steps[: len(like.steps) // 2] if halted else like.steps
        playbook = {s["name"] for s in base.playbook["steps"]}
        for step in steps:
            at = (step.started_at or base.started_at) + shift
            if step.name not in playbook:
                journal.add_step(incident, step.name, step.action, at,
                                 on_failure=step.on_failure)
            journal.step_started(incident, step.name, at)
            for call in (c for c in like.calls if c.step == step.name):
                handle = journal.intent(incident, step.name, ApiCall(
                    call.service, call.operation, call.params, call.mutating), at)
                journal.result(handle, ok=call.outcome == "ok", attempts=call.attempts,
                               now=at, result=call.result, error=call.error)
            journal.step_finished(incident, step.name, status=step.status,
                                  now=(step.ended_at or at) + shift, detail=step.detail,
                                  error=step.error)
        end = (base.updated_at + shift)
        if halted:
            journal.update_incident(incident, end, status="halted", user_name=base.user_name,
                                    account_id=base.account_id,
                                    error=f"halted at {like.steps[len(steps)].name}")
        else:
            journal.update_incident(
                incident, end, status=base.status, user_name=base.user_name,
                account_id=base.account_id,
                contained_at=base.contained_at + shift if base.contained_at else None,
                verification=base.verification, report=base.report)
        journal.release_lease(incident, "bench")
    journal.close()


class Sink(io.TextIOBase):
    """stdout for the measured run: counts what is written, keeps nothing (a StringIO
    would hold the output and count it as the command's memory)."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)

    def writable(self) -> bool:
        return True


def _before(state: str) -> None:
    """`respond status --all --output json` as it was before issue 32."""
    from responder.cli.output import out_json  # noqa: PLC0415
    from responder.context import utcnow  # noqa: PLC0415
    from responder.incident.view import IncidentView  # noqa: PLC0415
    from responder.journal.sqlite import SqliteJournal  # noqa: PLC0415
    from responder.report import document as report  # noqa: PLC0415

    journal = SqliteJournal(Path(state))
    now = utcnow()
    records = journal.recent(-1)
    views = [IncidentView.of(r, journal.steps(r.id)) for r in records]
    docs = [report.document_of(v, now) for v in views]
    out_json({"incidents": [d.to_json() for d in docs]})
    journal.close()


def _status(state: str, before: bool) -> int:
    from responder.cli import main  # noqa: PLC0415

    if before:
        _before(state)
        return 0
    return main(["status", "--all", "--output", "json", "--state", state])


def fill_free_lists() -> None:
    """Fill CPython's tuple free lists (2,000 tuples of each size under 20) before
    tracing. A tuple built from a generator is allocated large and shrunk, so each one
    freed lands in the free list of a smaller size while the next is allocated anew:
    until those lists are full (a few MB at most, once per process) traced memory grows
    with the work done even though nothing is kept. Filled first, the peak shows what
    the command holds, which is what the goal is about; VmHWM is reported beside it."""
    kept = [tuple(range(size)) for size in range(1, 20) for _ in range(2000)]
    del kept


def _child(state: str, warm: str, before: bool) -> dict[str, Any]:
    """In a fresh process: a warm-up listing, then the timed run, then the traced one."""
    with contextlib.redirect_stdout(Sink()):
        _status(warm, before)
    fill_free_lists()
    sink = Sink()
    with contextlib.redirect_stdout(sink):
        began = time.perf_counter()
        code = _status(state, before)
        seconds = time.perf_counter() - began
    traced = Sink()
    tracemalloc.start()
    with contextlib.redirect_stdout(traced):
        _status(state, before)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"exit_code": code, "seconds": round(seconds, 3), "peak_bytes": peak,
            "stdout_bytes": sink.chars, "peak_rss_mib": peak_rss_mib()}


def measure(sizes: list[int], *, before: bool) -> list[dict[str, Any]]:
    out = []
    with tempfile.TemporaryDirectory() as home:
        os.environ["RESPONDER_HOME"] = home
        like = template()
        warm = Path(home) / "warm.db"
        build(warm, 1, like)
        for count in sizes:
            state = Path(home) / f"status-{count}.db"
            began = time.perf_counter()
            build(state, count, like)
            built = time.perf_counter() - began
            child = subprocess.run(  # noqa: S603 - this interpreter, this file
                [sys.executable, __file__, "--child", str(state), str(warm),
                 *(["--before"] if before else [])],
                check=True, capture_output=True, text=True, env={**os.environ})
            found = json.loads(child.stdout)
            if found["exit_code"] != 0:
                raise RuntimeError(f"respond status failed: {child.stderr}")
            out.append({"incidents": count, "build_seconds": round(built, 1),
                        "journal_mib": round(state.stat().st_size / 2**20, 1), **found})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=1_000)
    parser.add_argument("--quick", action="store_true", help="5 and 50 incidents")
    parser.add_argument("--before", action="store_true",
                        help="the listing as it was before issue 32 (whole documents)")
    parser.add_argument("--child", nargs=2, metavar=("STATE", "WARM"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.stdout.write(json.dumps(_child(*args.child, args.before)) + "\n")
        return 0
    small, large = (5, 50) if args.quick else (args.small, args.large)
    low, high = measure([small, large], before=args.before)
    results = {
        "quick": args.quick, "before": args.before,
        "command": "respond status --all --output json",
        "measured_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "small": low, "large": high,
        "small_peak_mib": round(low["peak_bytes"] / 2**20, 2),
        "large_peak_mib": round(high["peak_bytes"] / 2**20, 2),
        "peak_ratio": round(high["peak_bytes"] / low["peak_bytes"], 3),
        "time_ratio": round(high["seconds"] / max(low["seconds"], 1e-6), 1),
        "stdout_bytes_per_incident": round(high["stdout_bytes"] / large),
        "goal": {"peak_ratio": 1.5}}
    RESULTS.mkdir(exist_ok=True)
    name = "status_before.json" if args.before else "status.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
