"""sweep: look at CloudTrail again after containment, for what it delivered late.

CloudTrail delivers events minutes late, so the attacker's last calls before the key died
show up only after the response. A sweep re-reads the incident's keys (the leaked key,
every temporary key known so far, and the ones it finds minted meanwhile) from
`overlap_minutes` before the end of what was already covered up to now, merges the new
events into `cloudtrail.jsonl` once each (by eventID; the new sha256 in its facts), then,
only if something is new, contains what it reveals (contain-attacker, on the whole
evidence: every change is observed first, so what was already shut is not touched
again) and tells the humans. A sweep that finds nothing new changes nothing in AWS.

A region the evidence could not read (the view's `regions_unread`: the evidence step's
failed lookups, or an earlier sweep's) is read again over the whole lookback, not just
the overlap, every known key; what it holds is merged and contained the same way, and
the gap is closed once the region was read (the sweep's `regions_failed` no longer names
it: incident/sweeps.py).

Journaled as a step appended to the incident (sweep-1, sweep-2, ...); run again after a
crash, it finds the events it had merged in its own file (`sweep-N.new.jsonl`) and
finishes containing them.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from responder.aws import Api, ApiCall
from responder.context import iso, parse_iso
from responder.errors import StepFailed
from responder.evidence.assemble import merge
from responder.evidence.collect import lookup_call
from responder.evidence.summary import Summary
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import AttackerContained, SweepFound
from responder.incident.shapes import EvidenceWindow, Notified
from responder.incident.sweeps import DEFAULT_OVERLAP_MINUTES
from responder.report.notice import build_sweep_notice
from responder.steps.attacker import ContainAttacker
from responder.steps.evidence import (
    collect_keys,
    enabled_regions,
    known_keys,
    lookback_start,
    read_again,
)
from responder.steps.notify import targets, tell


def _only_new(facts: AttackerContained, new: set[str]) -> AttackerContained:
    """contain-attacker's facts, with the lists of events narrowed to the new ones (what
    it shut is listed as it did it: `already` tells what an earlier run had shut)."""
    return dataclasses.replace(
        facts, needs_human=tuple(h for h in facts.needs_human if h.event_id in new),
        covered_by_cutoff=tuple(c for c in facts.covered_by_cutoff if c.event_id in new),
        credentials_read=tuple(c for c in facts.credentials_read if c.event_id in new),
        granted_to=tuple(g for g in facts.granted_to if g.event_id in new),
        restored=tuple(r for r in facts.restored if r.event_id in new or not r.already))


@register("sweep_cloudtrail")
class SweepCloudTrail(Action):
    permissions = ("cloudtrail:LookupEvents", "ec2:DescribeRegions", *ContainAttacker.permissions,
                   "sns:Publish")
    kind = "sweep"
    result = SweepFound
    critical = False
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "overlap_minutes": {"type": "integer", "minimum": 0, "maximum": 1440},
            "sns_topic_arn": {"type": ["string", "null"]},
        },
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        start = inp.incident.started_at
        return (ApiCall("ec2", "DescribeRegions", {"AllRegions": False}),
                lookup_call(inp.incident.access_key_id, start, start))

    def run(self, inp: StepInput, api: Api) -> StepResult:
        view = inp.view
        evidence = view.evidence if view is not None else None
        if view is None or evidence is None or not evidence.path:
            raise StepFailed(self.name, "the incident has no evidence to add to: its "
                             "collect-evidence step never finished")
        path = Path(evidence.path)
        if not path.is_file():
            raise StepFailed(self.name, f"the evidence file {path} is missing here (and in "
                             "the evidence bucket, if one is set)")
        earlier = view.sweeps_found
        window_before = earlier[-1].window if earlier else evidence.window
        covered = parse_iso(window_before.end if window_before else None) or view.started_at
        overlap = int(inp.settings.get("overlap_minutes", DEFAULT_OVERLAP_MINUTES))
        window = (covered - timedelta(minutes=overlap), inp.ctx.clock())
        keys = known_keys(inp)
        regions, _ = enabled_regions(api)
        unread = sorted(view.regions_unread)
        directory = inp.ctx.incident_dir(inp.incident.id)
        parts = directory / f"{self.name}-parts"
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
        results = collect_keys(inp, api, [(k, None) for k in keys],
                               regions=[r for r in regions if r not in unread],
                               window=window, parts=parts)
        if unread:  # the whole lookback there, every key known (those just found too)
            found = list(dict.fromkeys([*keys, *(r.access_key_id for r in results)]))
            results += read_again(inp, api, found, unread=unread, regions=regions,
                                  window=(lookback_start(inp, evidence), window[1]),
                                  parts=parts / "unread")
        failed = {f"{r.access_key_id} {r.region}": str(r.error) for r in results if r.error}
        if len(failed) == len(results):
            raise StepFailed(self.name, f"CloudTrail lookup failed everywhere: {failed}")
        summary = Summary()
        merged = merge((r.part for r in results), path, summary,
                       directory / f"{inp.step_name or self.name}.new.jsonl")
        shutil.rmtree(parts, ignore_errors=True)
        facts = SweepFound(
            window=EvidenceWindow(iso(window[0]), iso(window[1])), keys=tuple(keys),
            new_keys=tuple(sorted({r.access_key_id for r in results} - set(keys))),
            new_events=len(merged.added), new_event_ids=merged.added,
            events_total=merged.events, sha256=merged.sha256, regions_failed=failed,
            summary=summary.shape())
        if not merged.added:
            return StepResult("done", facts)
        contained = ContainAttacker().run(inp, api).facts
        if isinstance(contained, AttackerContained):
            facts = dataclasses.replace(facts, attacker=_only_new(contained, set(merged.added)))
        return self._tell(inp, api, facts)

    def _tell(self, inp: StepInput, api: Api, facts: SweepFound) -> StepResult:
        """Something was new: the humans hear of it (SNS once, even across a crash)."""
        topic, webhook = targets(inp.settings, inp.ctx.options)
        if (not topic and not webhook) or inp.view is None:
            return StepResult("done", facts)
        sent, failed = tell(inp, api, build_sweep_notice(inp.view, facts))
        notified = Notified(tuple(sent), tuple(failed))
        return StepResult("done", dataclasses.replace(facts, notified=notified))
