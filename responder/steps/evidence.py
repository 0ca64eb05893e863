"""collect-evidence: every CloudTrail event of the key, all enabled regions, all pages.

Regions run in parallel, each behind a 2 requests/s token bucket (LookupEvents' quota),
so the step is as fast as the service allows and throttling only retries. Temporary
keys that the key minted (GetSessionToken, AssumeRole, ...) are looked up too: what an
attacker did with a session is what they did with the key.

No silent gaps: a lookup that still fails after its retries is read once more when the
other regions are done; a region still unread is recorded (the incident then exits 5),
and a resume of this step, or the next sweep, reads it again over the whole lookback
and merges what it holds into the evidence, each event once.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from responder.aws import FATAL_CODES, Api, ApiCall
from responder.aws.parallel import map_abandoning
from responder.aws.ratelimit import TokenBucket
from responder.context import iso, parse_iso
from responder.errors import AwsCallFailed, StepFailed
from responder.evidence.assemble import assemble, merge, summarize
from responder.evidence.collect import RegionResult, fetch_region, lookup_call
from responder.evidence.summary import Summary
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import EvidenceCollected
from responder.incident.shapes import EvidenceWindow, TemporaryKey
from responder.logging import get_logger

log = get_logger("responder.evidence")

HOME_REGION = "us-east-1"  # IAM and STS events are recorded here
REQUESTS_PER_SECOND = 2.0  # LookupEvents quota per region; a burst of 2 is within it
MAX_WORKERS = 32
MAX_PIVOT_KEYS = 50


def enabled_regions(api: Api) -> tuple[list[str], str | None]:
    """The account's enabled regions (us-east-1 always among them), and the error if they
    could not be listed, in which case us-east-1 and the session's own region stand in."""
    try:
        found = api.call(ApiCall("ec2", "DescribeRegions", {"AllRegions": False}))
    except AwsCallFailed as exc:
        fallback = {HOME_REGION, api.session.region_name or HOME_REGION}
        return sorted(fallback), f"{exc.code}: {exc.aws_message}"
    names = {r["RegionName"] for r in found.get("Regions", [])
             if r.get("OptInStatus", "opt-in-not-required") != "not-opted-in"}
    return sorted(names | {HOME_REGION}), None


def _window(inp: StepInput, end: datetime) -> tuple[datetime, datetime]:
    days = int(inp.settings.get("lookback_days", 90))
    return end - timedelta(days=days), end


def known_keys(inp: StepInput) -> list[str]:
    """The leaked key, the temporary keys the evidence names, those sweeps found since."""
    view = inp.view
    keys = [inp.incident.access_key_id]
    if view is not None and view.evidence is not None:
        keys += view.evidence.temporary_key_ids
    for found in view.sweeps_found if view is not None else ():
        keys += found.new_keys
    return list(dict.fromkeys(keys))


def lookback_start(inp: StepInput, evidence: EvidenceCollected, days: int = 90) -> datetime:
    """Where the evidence's lookback began (its window's start): what reading an unread
    region again covers."""
    start = parse_iso(evidence.window.start if evidence.window is not None else None)
    return start or (inp.incident.started_at - timedelta(days=days))


def read_again(inp: StepInput, api: Api, keys: list[str], *, unread: list[str],
               regions: list[str], window: tuple[datetime, datetime], parts: Path,
               ) -> list[RegionResult]:
    """Every known key in each unread region over `window` (the whole lookback); a
    temporary key minted there is then looked up in every region (`regions`) too."""
    return collect_keys(inp, api, [(k, None) for k in keys], regions=unread, window=window,
                        parts=parts, pivot_regions=sorted({*regions, *unread}))


def failures(results: list[RegionResult]) -> dict[str, str]:
    """Region: the error of a lookup there that failed (for any key)."""
    failed: dict[str, str] = {}
    for result in results:
        if result.error:
            failed.setdefault(result.region, result.error)
    return failed


class Abandoned(BaseException):
    """Raised in a worker whose collection was abandoned (SIGINT/SIGTERM); not an
    Exception, so nothing on the way mistakes it for a failed lookup."""


class _Progress:
    """Counts pages and regions across worker threads and reports to the context."""

    def __init__(self, inp: StepInput, tasks: int) -> None:
        self._inp = inp
        self._lock = threading.Lock()
        self._abandoned = threading.Event()
        self.tasks = tasks
        self.done = 0
        self.events = 0

    def page(self, events: int) -> None:
        if self._abandoned.is_set():
            raise Abandoned
        with self._lock:
            self.events += events
            self._report()

    def abandon(self) -> None:
        self._abandoned.set()

    def finished(self) -> None:
        with self._lock:
            self.done += 1
            self._report()

    def _report(self) -> None:
        if self._inp.ctx.progress is not None:
            self._inp.ctx.progress("collect-evidence", {
                "lookups_done": self.done, "lookups": self.tasks, "events": self.events})


@register("collect_cloudtrail")
class CollectCloudTrail(Action):
    permissions = ("cloudtrail:LookupEvents", "ec2:DescribeRegions")
    kind = "evidence"
    result = EvidenceCollected
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "lookback_days": {"type": "integer", "minimum": 1, "maximum": 90},
            "regions": {
                "oneOf": [
                    {"const": "all"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1},
                ]
            },
        },
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        calls: list[ApiCall] = []
        if inp.settings.get("regions", "all") == "all":
            calls.append(ApiCall("ec2", "DescribeRegions", {"AllRegions": False}))
        start, end = _window(inp, inp.incident.started_at)
        calls.append(lookup_call(inp.incident.access_key_id, start, end))
        return tuple(calls)

    def run(self, inp: StepInput, api: Api) -> StepResult:
        view = inp.view
        before = view.evidence if view is not None else None
        if view is not None and before is not None and view.regions_unread and \
                before.path and Path(before.path).is_file():
            return self._read_again(inp, api, before, Path(before.path),
                                    sorted(view.regions_unread))
        regions, regions_error = self._regions(inp, api)
        window = _window(inp, inp.ctx.clock())
        incident_dir = inp.ctx.incident_dir(inp.incident.id)
        parts = incident_dir / "evidence-parts"
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
        results = collect_keys(inp, api, [(inp.incident.access_key_id, None)],
                               regions=regions, window=window, parts=parts)
        summary = Summary()
        assembled = assemble((r.part for r in results), incident_dir / "cloudtrail.jsonl",
                             summary)
        shutil.rmtree(parts, ignore_errors=True)
        key = inp.incident.access_key_id
        primary = [r for r in results if r.access_key_id == key]
        failed = {r.region: str(r.error) for r in primary if r.error}
        if len(failed) == len(primary):
            raise StepFailed(self.name, f"CloudTrail lookup failed in every region: {failed}")
        pivots = sorted({r.access_key_id for r in results} - {key})
        return StepResult("done", EvidenceCollected(
            events=assembled.events,
            regions=tuple(sorted(r.region for r in primary if not r.error)),
            regions_failed=failed,
            path=str(assembled.path),
            sha256=assembled.sha256,
            duplicates_dropped=assembled.duplicates,
            pages=sum(r.pages for r in results),
            window=EvidenceWindow(iso(window[0]), iso(window[1])),
            temporary_keys=tuple(
                TemporaryKey(t, sum(r.events for r in results if r.access_key_id == t),
                             {r.region: str(r.error) for r in results
                              if r.access_key_id == t and r.error})
                for t in pivots
            ),
            roles_assumed=tuple(sorted({role for r in results for role in r.roles})),
            summary=summary.shape(),
            describe_regions_error=regions_error or None,
        ))

    def _regions(self, inp: StepInput, api: Api) -> tuple[list[str], str | None]:
        setting = inp.settings.get("regions", "all")
        if setting != "all":
            return sorted({*setting, HOME_REGION}), None
        return enabled_regions(api)

    def _read_again(self, inp: StepInput, api: Api, before: EvidenceCollected, path: Path,
                    unread: list[str]) -> StepResult:
        """A resume of an evidence step that left regions unread: read them again over
        the whole lookback, every key known so far, and merge what they hold into the
        evidence (each event once); the window stays the one first read, so the next
        sweep still starts where every other region was read up to. Never fails: a
        region still unread stays recorded as such."""
        regions, regions_error = self._regions(inp, api)
        directory = inp.ctx.incident_dir(inp.incident.id)
        parts = directory / "evidence-parts"
        shutil.rmtree(parts, ignore_errors=True)
        window = (lookback_start(inp, before, int(inp.settings.get("lookback_days", 90))),
                  inp.ctx.clock())
        results = read_again(inp, api, known_keys(inp), unread=unread, regions=regions,
                             window=window, parts=parts)
        pending = directory / f"{inp.step_name or self.name}.new.jsonl"
        merged = merge((r.part for r in results), path, Summary(), pending)
        pending.unlink(missing_ok=True)  # contain-attacker reads the whole evidence
        shutil.rmtree(parts, ignore_errors=True)
        failed = failures(results)
        log.info("evidence.read_again", regions=unread, still_unread=sorted(failed),
                 events_added=len(merged.added))
        temporary = [TemporaryKey(
            t.access_key_id,
            t.events + sum(r.events for r in results if r.access_key_id == t.access_key_id
                           and r.region in t.regions_failed and not r.error),
            {r: failed[r] for r in t.regions_failed if r in failed})
            for t in before.temporary_keys]
        known = {inp.incident.access_key_id, *before.temporary_key_ids}
        temporary += [TemporaryKey(t, sum(r.events for r in results if r.access_key_id == t),
                                   {r.region: str(r.error) for r in results
                                    if r.access_key_id == t and r.error})
                      for t in sorted({r.access_key_id for r in results} - known)]
        return StepResult("done", dataclasses.replace(
            before, events=merged.events,
            regions=tuple(sorted({*before.regions, *(r for r in unread if r not in failed)})),
            regions_failed=failed, sha256=merged.sha256,
            pages=before.pages + sum(r.pages for r in results),
            temporary_keys=tuple(temporary),
            roles_assumed=tuple(sorted({*before.roles_assumed,
                                        *(role for r in results for role in r.roles)})),
            summary=summarize(path).shape(),
            describe_regions_error=regions_error or None))


Task = tuple[str, str | None, str]
"""(key, the key that minted it, region): one key's lookup in one region."""


def collect_keys(inp: StepInput, api: Api, seeds: list[tuple[str, str | None]], *,
                 regions: list[str], window: tuple[datetime, datetime], parts: Path,
                 pivot_regions: list[str] | None = None) -> list[RegionResult]:
    """Every event of the `seeds` keys (key, the key that minted it) in every region,
    then each round of temporary keys they (or those) minted (in `pivot_regions`, by
    default the same regions), into part files. A lookup that failed after its retries
    (for a reason a retry may fix) is read once more when the rest of its round is done:
    a region down for a moment leaves no gap."""
    everywhere = sorted({*regions, *(pivot_regions or ())})
    if not seeds or not everywhere:
        return []
    parts.mkdir(parents=True, exist_ok=True)
    for region in everywhere:  # clients are created here: creation is not thread-safe
        api.client("cloudtrail", region)
    buckets = {
        r: TokenBucket(REQUESTS_PER_SECOND, capacity=REQUESTS_PER_SECOND,
                       monotonic=inp.ctx.monotonic, sleep=inp.ctx.sleep)
        for r in everywhere
    }
    results: list[RegionResult] = []
    seen = {key for key, _ in seeds}
    frontier = list(seeds)
    where = regions
    while frontier:
        tasks = [(k, p, r) for k, p in frontier for r in where]
        batch = _lookups(inp, api, tasks, buckets, window=window, parts=parts)
        failed = [t for t, r in zip(tasks, batch, strict=True) if r.error
                  and r.error.split(":", 1)[0] not in FATAL_CODES]  # DESIGN §5
        if failed:
            log.warning("evidence.lookup_again",
                        lookups=[f"{k} {r}" for k, _, r in failed])
            again = dict(zip(failed, _lookups(inp, api, failed, buckets, window=window,
                                              parts=parts), strict=True))
            batch = [again.get(t, r) for t, r in zip(tasks, batch, strict=True)]
        results += batch
        minted = {t: r.access_key_id for r in batch for t in sorted(r.temporary_keys)}
        new = sorted(set(minted) - seen)[: max(0, MAX_PIVOT_KEYS - len(seen) + 1)]
        seen.update(new)
        frontier = [(t, minted[t]) for t in new]
        where = pivot_regions or regions
    return results


def _lookups(inp: StepInput, api: Api, tasks: list[Task], buckets: dict[str, TokenBucket],
             *, window: tuple[datetime, datetime], parts: Path) -> list[RegionResult]:
    """The lookups, in parallel, each region behind its own bucket; one part file each
    (a lookup done again rewrites its part whole)."""
    if not tasks:
        return []
    progress = _Progress(inp, len(tasks))

    def one(task: Task) -> RegionResult:
        key, parent, region = task
        result = fetch_region(api, region, key, window=window, bucket=buckets[region],
                              part=parts / f"{key}-{region}.jsonl", parent=parent,
                              on_page=progress.page)
        progress.finished()
        return result

    # Interrupted: each worker stops after the page in flight instead of paging on
    # while the process waits to exit.
    return map_abandoning(one, tasks, workers=MAX_WORKERS, abandon=progress.abandon)
