"""harden: after a leak, propose (and only on request apply) what would have made it
matter less: MFA for a console user, and a least-privilege policy drawn from what the
user really did in CloudTrail before the compromise.

In a playbook it runs last, after the notice, in proposal mode (`with: {apply: false}`),
so every incident report carries the proposal; `respond harden USER --apply --yes` puts
it in place (hardening/apply.py: additions only). What the attacker did must not become
the user's "usage", so everything at or after the compromise time is left out, and the
step says which time it chose and why.

The history is read as collect-evidence reads (hardening/history.py): regions in
parallel at LookupEvents' 2 requests/s each, and the window read is always said. Inside
an incident the leaked key's events come from the evidence file, and the lookup by user
name (for the user's other credentials) stops at the compromise time and, in the
playbook, after IN_INCIDENT_EVENTS per region: a busy user's 100,000 events take 1,000 s
to page through, which must not hold the incident open (docs/decisions.md 42).
`respond harden USER --incident ID` reads every page.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from responder.aws import Api, ApiCall
from responder.aws.ratelimit import empty_bucket
from responder.context import iso, parse_iso
from responder.errors import Refused, StepFailed
from responder.hardening import apply as applying
from responder.hardening import grace, history, reads, trail
from responder.hardening.policy import require_mfa_policy, unused_permissions
from responder.hardening.proposal import draw, source_line
from responder.hardening.usage import Tally, Usage
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import EvidenceCollected
from responder.incident.facts_hardening import Hardened, HistoryWindow
from responder.incident.shapes import MfaFinding, UnusedPermission
from responder.logging import get_logger
from responder.steps.evidence import HOME_REGION, REQUESTS_PER_SECOND, enabled_regions

log = get_logger("responder.harden")

PROPOSAL_FILE = "proposed-policy.json"
DEFAULT_BEFORE_HOURS = 24.0
HINT_DAYS = 7
IN_INCIDENT_EVENTS = 500
"""Per region, inside the playbook: ten pages, about 5 s at 2 requests/s (the bucket
starts empty: collect-evidence may have just spent the region's quota). The rest is
`respond harden USER --incident ID`'s to read."""
PROGRAMMATIC_ONLY = ("no console password: the user signs in only with access keys, and an "
                     "MFA condition would deny every call of its applications (they carry no "
                     "MFA); not proposed")


def compromised_at(inp: StepInput, now: datetime) -> tuple[datetime, str]:
    """The moment from which the user's events are the attacker's, and why that one."""
    given = inp.settings.get("compromised_at")
    if given:
        return parse_iso(str(given)) or now, "given (--compromised-at)"
    hours = float(inp.settings.get("before_hours", DEFAULT_BEFORE_HOURS))
    view = inp.view
    if view is None:
        return now - timedelta(hours=hours), f"{hours:g} h before now (no incident named)"
    first_seen = view.record.options.get("finding_first_seen")
    if view.record.finding_id and isinstance(first_seen, str) and parse_iso(first_seen):
        return parse_iso(first_seen) or now, \
            f"the first-seen time of finding {view.record.finding_id}"
    return view.started_at - timedelta(hours=hours), \
        f"{hours:g} h before incident {view.id} started"


def in_playbook(inp: StepInput) -> bool:
    """Whether the step runs as one of its incident's playbook steps (not appended to the
    incident by `respond harden --incident`, nor on its own without an incident)."""
    return inp.view is not None and any(s.name == inp.step_name for s in inp.view.steps)


def reused_evidence(inp: StepInput) -> EvidenceCollected | None:
    """The incident's evidence, when its file is here to read: the leaked key's every
    event in every enabled region, which the proposal takes instead of reading again."""
    evidence = inp.view.evidence if inp.view is not None else None
    if evidence is None or not evidence.path or not Path(evidence.path).is_file():
        return None
    return evidence


def read_limit(inp: StepInput) -> tuple[int | None, str | None]:
    """Events per region after which the lookup by user name stops (None: every page),
    and how the report says it."""
    given = inp.settings.get("max_events")
    if given == "all":
        return None, None
    if given is not None:
        return int(given), f"max_events {int(given)} per region"
    if in_playbook(inp):
        return IN_INCIDENT_EVENTS, (f"{IN_INCIDENT_EVENTS} events per region, the most read "
                                    "inside the incident so it completes in seconds")
    return None, None


def read_all_command(inp: StepInput, user: str) -> str:
    """The command that reads the whole lookback with this step's other settings (and
    journals it with the incident)."""
    words = ["respond", "harden", user]
    if inp.view is not None:
        words += ["--incident", inp.view.id]
    settings = inp.settings
    if settings.get("compromised_at"):
        words += ["--compromised-at", str(settings["compromised_at"])]
    if int(settings.get("lookback_days", 90)) != 90:
        words += ["--lookback-days", str(settings["lookback_days"])]
    regions = settings.get("regions")
    if regions:
        words += ["--regions", "all" if regions == "all" else ",".join(map(str, regions))]
    return shlex.join(words)


def window_facts(inp: StepInput, user: str, found: history.History, *,
                 evidence: EvidenceCollected | None, taken: int,
                 limit_why: str | None) -> HistoryWindow:
    """The window read, as journaled and reported (see HistoryWindow)."""
    asked = found.window
    span = evidence.window if evidence is not None else None
    return HistoryWindow(
        regions=found.read,
        read_from=iso(found.read_from) if found.read_from else None,
        read_to=iso(asked[1]) if asked is not None else None,
        events_read=found.events, events_estimated=found.estimated, lookups=found.pages,
        read_limit=limit_why if found.truncated else None,
        read_all=read_all_command(inp, user) if found.truncated else None,
        evidence_events=taken,
        evidence_from=span.start if span is not None else None,
        evidence_to=span.end if span is not None else None)


def trail_words(read: trail.TrailRead | None, user: str) -> str | None:
    """What reading a trail's data events gave, in the words the proposal says it: None
    when no trail was named (the proposal then says data events are not read)."""
    if read is None:
        return None
    said = (f"data events read from {read.location}: {read.events} of {user}'s in "
            f"{read.files} log files, {read.read_from or '?'} to {read.read_to or '?'}")
    if read.truncated:
        said += " (stopped at its file limit: older ones are not read)"
    if read.errors:
        said += "; NOT read: " + "; ".join(f"{k}: {v}" for k, v in
                                           sorted(read.errors.items())[:5])
    return said


def _progress(inp: StepInput) -> history.Progress | None:
    """Lookups and events so far, drawn by the CLI on a terminal like collect-evidence's."""
    report = inp.ctx.progress
    if report is None:
        return None

    def told(done: int, regions: int, events: int) -> None:
        report("harden", {"lookups_done": done, "lookups": regions, "events": events})

    return told


@register("harden")
class Harden(Action):
    permissions = (*reads.READ_PERMISSIONS, "ec2:DescribeRegions")  # grace's too
    permissions_when: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "apply": applying.APPLY_PERMISSIONS, "data_events": trail.READ_PERMISSIONS}
    kind = "hardening"
    result = Hardened
    critical = False  # advice after the fact: never what halts a response
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "apply": {"type": "boolean"},
            "dry_run": {"type": "boolean"},
            "compromised_at": {"type": "string", "minLength": 1},
            "before_hours": {"type": "number", "exclusiveMinimum": 0},
            "lookback_days": {"type": "integer", "minimum": 1, "maximum": 90},
            "max_events": {"oneOf": [{"type": "integer", "minimum": 1}, {"const": "all"}]},
            "regions": {"oneOf": [{"const": "all"}, {"type": "array", "minItems": 1,
                                                     "items": {"type": "string"}}]},
            "data_events": {"type": "string", "pattern": "^s3://[^/]+"},
            "grace_days": {"type": "integer", "minimum": 0, "maximum": 365},
        },
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        user = inp.target.user_name if inp.target else None
        calls = [ApiCall("cloudtrail", "LookupEvents", {"LookupAttributes": [
            {"AttributeKey": "Username", "AttributeValue": user}]},
            note="each region at once, 2 requests/s each, over the lookback; inside an "
                 "incident up to the compromise time (the key's own events come from the "
                 "evidence)"),
            ApiCall("iam", "GetLoginProfile", {"UserName": user}),
            ApiCall("iam", "ListMFADevices", {"UserName": user}),
            ApiCall("iam", "ListUserPolicies", {"UserName": user},
                    note="and the attached and group policies, each read"),
            ApiCall("iam", "GetPolicy", {"PolicyArn": applying.proposed_arn(
                str(user), inp.target.account_id if inp.target else "ACCOUNT")},
                note="the proposal in place, if applied: its grace period")]
        if inp.settings.get("data_events"):
            bucket, prefix = trail.parse_location(str(inp.settings["data_events"]))
            calls.append(ApiCall("s3", "ListObjectsV2", {"Bucket": bucket, "Prefix": prefix},
                                 note="each day's log files in the lookback, and GetObject "
                                      "of each"))
        if inp.settings.get("apply"):
            calls += [ApiCall("iam", "CreatePolicy", {"PolicyName": applying.proposed_name(
                str(user))}, mutating=True, note="or a new version if it differs"),
                ApiCall("iam", "AttachUserPolicy", {"UserName": user}, mutating=True,
                        note="unless attached"),
                ApiCall("iam", "PutUserPolicy", {"UserName": user, "PolicyName":
                                                 "responder-require-mfa"}, mutating=True,
                        note="a console user without MFA only")]
        return tuple(calls)

    def _regions(self, inp: StepInput, api: Api) -> tuple[str, ...]:
        chosen = inp.settings.get("regions")
        if chosen == "all":
            return tuple(enabled_regions(api)[0])
        if isinstance(chosen, list):
            return tuple(dict.fromkeys(str(r) for r in chosen))
        return tuple(dict.fromkeys([HOME_REGION, api.session.region_name or HOME_REGION]))

    def run(self, inp: StepInput, api: Api) -> StepResult:
        target = inp.require_target(self.name)
        user = target.user_name
        if user is None:
            return StepResult.skipped("a role's session: hardening applies to IAM users")
        now = inp.ctx.clock()
        cutoff, why = compromised_at(inp, now)
        days = int(inp.settings.get("lookback_days", 90))
        start = cutoff - timedelta(days=days)
        evidence = reused_evidence(inp)
        # After the compromise time nothing is usage, and what the leaked key did then is
        # in the evidence: with it, the lookup by user name stops at the compromise time.
        window = (start, cutoff if evidence is not None else now)
        limit, limit_why = read_limit(inp)
        log.info("harden.window", user=user, compromised_at=iso(cutoff), source=why,
                 read_to=iso(window[1]), limit=limit)
        placed = grace.in_place(api, user, target.account_id)
        # CloudTrail keeps whole seconds: an event in the cutoff's own second is "at" it.
        # Since the proposal was put in place, what the user did is checked against it.
        tally = Tally(before=cutoff.replace(microsecond=0),
                      since=placed.since if placed is not None else None)
        taken = 0

        def meanwhile() -> None:
            nonlocal taken
            if evidence is not None and evidence.path:
                taken = history.from_evidence(Path(evidence.path), user, start, tally)

        regions = self._regions(inp, api)
        found = history.read(
            api, user, regions, window, tally=tally, limit=limit, meanwhile=meanwhile,
            buckets={r: empty_bucket(REQUESTS_PER_SECOND, monotonic=inp.ctx.monotonic,
                                     sleep=inp.ctx.sleep) for r in regions},
            progress=_progress(inp))
        log.info("harden.read", events_read=found.events, lookups=found.pages,
                 read_from=iso(found.read_from) if found.read_from else None,
                 events_estimated=found.estimated, evidence_events=taken)
        location = inp.settings.get("data_events")
        trail_read = trail.read_trail(api, str(location), user, (start, window[1]), tally,
                                      account=target.account_id) if location else None
        drawn = draw(tally, user, start=start, days=days,
                     data_events=trail_words(trail_read, user))
        usages, proposal = drawn.usages, drawn.proposal
        mfa = reads.mfa_state(api, user)
        wants_mfa = mfa.console and not mfa.mfa_device
        reason = ("a console password and no MFA device: propose responder-require-mfa"
                  if wants_mfa else PROGRAMMATIC_ONLY if not mfa.console
                  else "an MFA device is already enabled: nothing to propose")
        held = reads.grants(api, user)
        unused = unused_permissions([h.grant for h in held], {u.action for u in usages})
        dry = bool(inp.settings.get("dry_run"))
        path = None if dry else self._write(inp, proposal.document)
        applied = None
        if inp.settings.get("apply") and not dry:
            if trail_read is not None and (trail_read.errors or trail_read.truncated):
                raise StepFailed(self.name, f"not applying: {trail_words(trail_read, user)}; "
                                 "the proposal may miss the data events the user's "
                                 "applications need")
            self._check_applicable(inp, user, usages, found)
            applied = applying.apply(
                api, user, target.account_id, proposal.document,
                mfa_document=require_mfa_policy() if wants_mfa else None)
        if applied is not None and applied.policy != "unchanged":  # in place from now
            placed = grace.InPlace(applied.policy_arn, now, proposal.document, True)
        elif applied is not None and placed is not None:
            placed = replace(placed, attached=True)
        grace_days = int(inp.settings.get("grace_days", grace.GRACE_DAYS))
        waited = grace.judge(user, placed, now, grace_days, denied=tally.denied,
                             since_usages=tally.since_usages())
        return StepResult("done", Hardened(
            user_name=user, compromised_at=iso(cutoff), compromised_at_source=why,
            lookback_days=days,
            mfa=MfaFinding(mfa.console, mfa.mfa_device, wants_mfa, reason),
            proposed_policy=proposal.document, proposed_policy_path=path,
            proposed_policy_chars=proposal.chars, proposal_note=proposal.note,
            used_actions=tuple(u.action for u in usages),
            unused_permissions=tuple(UnusedPermission(u.policy, u.source, u.action, u.resource,
                                                      u.covers_used, u.reason)
                                     for u in unused),
            new_source_ips=tally.new_source_ips(now - timedelta(days=HINT_DAYS)),
            events=tally.events, regions=found.regions, regions_failed=dict(found.failed),
            truncated=found.truncated,
            window=window_facts(inp, user, found, evidence=evidence, taken=taken,
                                limit_why=limit_why),
            applied=applied, grace=waited,
            finish_commands=applying.finish_commands(user, held) if waited.ready else (),
            proof=drawn.proof, any_resource=drawn.any_resource,
            cannot_show=drawn.cannot_show, mapping_source=source_line()))

    def _check_applicable(self, inp: StepInput, user: str, usages: tuple[Usage, ...],
                          found: reads.History) -> None:
        """A proposal drawn from a partial or empty history would take away what the user
        needs: say so instead of applying it. A history that could not be read fails the
        step (read it again: exit 1). An empty one is a deny of everything, which is never
        applied whatever is run again: for `respond harden --apply` (on its own or
        appended to an incident) that is a guardrail's refusal, exit 3 with nothing
        changed; inside a playbook run, whose earlier steps did change AWS, it stays the
        step's failure, never the incident's refusal."""
        if found.failed:
            where = "; ".join(f"{r}: {why}" for r, why in sorted(found.failed.items()))
            raise StepFailed(self.name, f"not applying: CloudTrail could not be read ({where}), "
                             "so the proposal may miss what the user needs. Fix that and run "
                             "again, or pass --regions")
        if found.truncated:
            raise StepFailed(self.name, "not applying: the history was read only from "
                             f"{iso(found.read_from) if found.read_from else 'its newest pages'}"
                             " (a limit stopped it), so the proposal may miss what the user "
                             "did before that. Run it without max_events: `respond harden "
                             f"{user} --apply` reads every page")
        if not usages:
            said = (f"not applying: CloudTrail shows no use by {user} before the compromise "
                    "time, and a policy of nothing would lock the user out (a deny of "
                    "everything); nothing was applied. Check --compromised-at and "
                    "--lookback-days")
            if in_playbook(inp):
                raise StepFailed(self.name, said)
            raise Refused(f"{self.name}: {said}")

    def _write(self, inp: StepInput, document: Mapping[str, Any]) -> str | None:
        """proposed-policy.json in the incident's directory; a local failure is logged,
        never what fails the step (the proposal is in the journal too)."""
        path = Path(inp.ctx.incident_dir(inp.incident.id)) / PROPOSAL_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document, indent=2) + "\n")
        except OSError as exc:
            log.warning("harden.file_failed", path=str(path), error=str(exc))
            return None
        return str(path)
