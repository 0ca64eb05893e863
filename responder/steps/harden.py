"""harden: after a leak, propose (and only on request apply) what would have made it
matter less: MFA for a console user, and a least-privilege policy drawn from what the
user really did in CloudTrail before the compromise.

In a playbook it runs last, in proposal mode (`with: {apply: false}`), so every incident
report carries the proposal; `respond harden USER --apply --yes` puts it in place
(hardening/apply.py: additions only). What the attacker did must not become the user's
"usage", so everything at or after the compromise time is left out, and the step says
which time it chose and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from responder.aws import Api, ApiCall
from responder.context import iso, parse_iso
from responder.errors import Refused, StepFailed
from responder.hardening import apply as applying
from responder.hardening import reads
from responder.hardening.policy import propose, require_mfa_policy, unused_permissions
from responder.hardening.usage import Usage, event_time, new_source_ips, summarize
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts_hardening import Hardened
from responder.incident.shapes import MfaFinding, UnusedPermission
from responder.logging import get_logger
from responder.steps.evidence import HOME_REGION, enabled_regions

log = get_logger("responder.harden")

PROPOSAL_FILE = "proposed-policy.json"
DEFAULT_BEFORE_HOURS = 24.0
HINT_DAYS = 7
MAX_EVENTS = 50_000
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


@register("harden")
class Harden(Action):
    permissions = (*reads.READ_PERMISSIONS, "ec2:DescribeRegions")
    permissions_when: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "apply": applying.APPLY_PERMISSIONS}
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
            "max_events": {"type": "integer", "minimum": 1},
            "regions": {"oneOf": [{"const": "all"}, {"type": "array", "minItems": 1,
                                                     "items": {"type": "string"}}]},
        },
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        user = inp.target.user_name if inp.target else None
        calls = [ApiCall("cloudtrail", "LookupEvents", {"LookupAttributes": [
            {"AttributeKey": "Username", "AttributeValue": user}]},
            note="each region, over the lookback, before the compromise time"),
            ApiCall("iam", "GetLoginProfile", {"UserName": user}),
            ApiCall("iam", "ListMFADevices", {"UserName": user}),
            ApiCall("iam", "ListUserPolicies", {"UserName": user},
                    note="and the attached and group policies, each read")]
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
        log.info("harden.window", user=user, compromised_at=iso(cutoff), source=why)
        found = reads.history(api, user, self._regions(inp, api),
                              (cutoff - timedelta(days=days), now),
                              int(inp.settings.get("max_events", MAX_EVENTS)))
        # CloudTrail keeps whole seconds: an event in the cutoff's own second is "at" it.
        whole = cutoff.replace(microsecond=0)
        usages = summarize(r for r in found.records if event_time(r) < whole)
        proposal = propose(usages)
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
            self._check_applicable(inp, user, usages, found)
            applied = applying.apply(
                api, user, target.account_id, proposal.document,
                mfa_document=require_mfa_policy() if wants_mfa else None)
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
            new_source_ips=new_source_ips(found.records, since=now - timedelta(days=HINT_DAYS)),
            events=len(found.records), regions=found.regions, regions_failed=found.failed,
            truncated=found.truncated, applied=applied,
            finish_commands=applying.finish_commands(user, held)))

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
