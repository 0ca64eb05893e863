"""The harden step's facts as the §2 object's `hardening` field, the report's Hardening
section and the terminal summary; null (or nothing) before any harden step finished."""

from __future__ import annotations

import json
from collections.abc import Callable

from responder.incident.facts_hardening import Hardened
from responder.incident.shapes import MfaFinding, UnusedPermission
from responder.incident.view import IncidentView
from responder.report import md
from responder.report.model import HardeningEntry
from responder.report.story import proof_line


def latest(view: IncidentView) -> Hardened | None:
    """The newest hardening done: the playbook's proposal, or a later `respond harden`."""
    for step in reversed(view.all_steps):
        if step.status == "done" and isinstance(step.facts, Hardened):
            return step.facts
    return None


def hardening_of(facts: Hardened | None) -> HardeningEntry | None:
    if facts is None:
        return None
    return HardeningEntry(
        user_name=facts.user_name,
        compromised_at=facts.compromised_at,
        compromised_at_source=facts.compromised_at_source,
        lookback_days=facts.lookback_days,
        mfa=facts.mfa,
        proposed_policy=dict(facts.proposed_policy),
        proposed_policy_path=facts.proposed_policy_path,
        proposed_policy_chars=facts.proposed_policy_chars,
        proposal_note=facts.proposal_note,
        used_actions=tuple(facts.used_actions),
        unused_permissions=facts.unused_permissions,
        new_source_ips=tuple(facts.new_source_ips),
        events=facts.events,
        regions_failed=dict(facts.regions_failed),
        truncated=facts.truncated,
        applied=facts.applied,
        finish_commands=tuple(facts.finish_commands),
        window=facts.window,
        proof=facts.proof,
        any_resource=dict(facts.any_resource),
        cannot_show=tuple(facts.cannot_show),
        grace=facts.grace,
        mapping_source=facts.mapping_source,
    )


def grace_line(hard: HardeningEntry) -> str | None:
    return hard.grace.reason if hard.grace is not None and hard.grace.reason else None


def _plain(value: str) -> str:
    return value


def _lookups(count: int) -> str:
    return f"{count:,} lookup" + ("" if count == 1 else "s")


def window_lines(hard: HardeningEntry, text: Callable[[str], str] = _plain,
                 code: Callable[[str], str] = _plain) -> list[str]:
    """What the proposal was drawn from: the window the user's history was read over
    (from when to when, how many events, of about how many) and what came from the
    incident's evidence. A reader trusts a proposal only as far as its window: one read
    from yesterday on knows nothing of the job that runs monthly. `text` and `code`
    escape for the medium."""
    w = hard.window
    if w is None:  # journaled before issue 32
        return [text("only the newest events were read; the window was not recorded")
                ] if hard.truncated else []
    lines: list[str] = []
    if w.read_from is not None and w.read_to is not None:  # else no region could be read
        where = ", ".join(w.regions)
        head = f"history read by user name in {where} from {w.read_from} to {w.read_to}: "
        if hard.truncated:
            about = w.events_estimated
            of = f" of about {about:,}" if about is not None and about > w.events_read else ""
            line = text(f"{head}{w.events_read:,} events{of} ({_lookups(w.lookups)}), "
                        f"stopped at {w.read_limit or 'a limit'}; actions used only before "
                        f"{w.read_from} may be missing")
            if w.read_all:
                line += text(": ") + code(w.read_all) + text(" reads every page")
            lines.append(line)
        else:
            lines.append(text(f"{head}every page, {w.events_read:,} events "
                              f"({_lookups(w.lookups)})"))
    if w.evidence_from or w.evidence_events:
        lines.append(text(
            f"the leaked key's {w.evidence_events:,} events in the lookback came from the "
            f"incident's evidence (every region, {w.evidence_from or 'start not recorded'} "
            f"to {w.evidence_to or 'end not recorded'}), not read again"))
    return lines


def _unused_line(u: UnusedPermission) -> str:
    covers = f" (covers {', '.join(u.covers_used)})" if u.covers_used else ""
    return f"{u.action} on {u.resource} from {u.policy} ({u.source}): {u.reason}{covers}"


def markdown(hard: HardeningEntry | None) -> list[str]:
    """The report's hardening details (empty before any harden step finished); the
    story's hardening lines say it briefly, up front."""
    if not hard:
        return []
    mfa = hard.mfa or MfaFinding()
    out = ["### Hardening proposal", "",
           f"- Usage counted before {md.text(hard.compromised_at)} "
           f"({md.text(hard.compromised_at_source)}), over {hard.lookback_days} days: "
           f"{hard.events} events, {len(hard.used_actions)} actions used",
           *(f"- {line}" for line in window_lines(hard, md.text, md.code)),
           f"- MFA: console {'yes' if mfa.console else 'no'}, MFA device "
           f"{'yes' if mfa.mfa_device else 'no'}: {md.text(mfa.reason)}"]
    if hard.new_source_ips:
        out.append(f"- Source IPs first seen in the last days: {md.text(hard.new_source_ips)}")
    if hard.proposal_note:
        out.append(f"- Note: {md.text(hard.proposal_note)}")
    said = proof_line(hard)
    out += [f"- {md.text(said)}"] if said else []
    out += [f"  - not proved: {md.text(u)}" for u in (hard.proof.unproven if hard.proof
                                                      else ())]
    out += [f"- `*` for {md.code(action)}: {md.text(why)}"
            for action, why in sorted(hard.any_resource.items())]
    out += [f"- The history cannot show: {md.text(line)}" for line in hard.cannot_show]
    if hard.mapping_source:
        out.append(f"- Actions and ARN formats from: {md.text(hard.mapping_source)}")
    out += [f"- **CloudTrail not read in {md.text(region)}**: {md.text(why)}; the proposal "
            "may miss actions" for region, why in hard.regions_failed.items()]
    out += ["", f"Proposed policy ({hard.proposed_policy_chars} characters"
            + (f", {md.code(hard.proposed_policy_path)}" if hard.proposed_policy_path else "")
            + "), not applied unless said below:", "",
            *md.fenced(json.dumps(hard.proposed_policy, indent=2).splitlines(), "json"), ""]
    if hard.unused_permissions:
        out += ["Granted but never used:", ""]
        out += [f"- {md.text(_unused_line(u))}" for u in hard.unused_permissions]
        out.append("")
    if hard.applied:
        applied = hard.applied
        out += [f"Applied: {md.code(applied.policy_arn)} ({md.text(applied.policy)}, "
                f"version {md.text(applied.version)}), MFA policy "
                f"{md.text(applied.mfa_policy)}.", ""]
    if grace_line(hard):
        out += [f"Grace period: {md.text(grace_line(hard))}", ""]
    if hard.finish_commands:
        out += ["To finish the switch (take away what the user holds besides it):", "",
                *md.fenced(hard.finish_commands, "sh"), ""]
    return out


def human_lines(hard: HardeningEntry | None) -> list[str]:
    """The terminal summary's hardening lines."""
    if not hard:
        return []
    lines = [f"  hardening of {hard.user_name}: usage before {hard.compromised_at} "
             f"({hard.compromised_at_source})",
             f"    MFA: {(hard.mfa or MfaFinding()).reason}",
             f"    proposal: {len(hard.used_actions)} actions "
             f"({hard.proposed_policy_path or 'not written'})"]
    lines += [f"    CloudTrail NOT read in {region}: {why} (the proposal may miss actions)"
              for region, why in hard.regions_failed.items()]
    lines += [f"    {line}" for line in window_lines(hard)]
    lines += [f"    unused: {_unused_line(u)}" for u in hard.unused_permissions]
    if hard.new_source_ips:
        lines.append(f"    source IPs first seen lately: {', '.join(hard.new_source_ips)}")
    said = proof_line(hard)
    lines += [f"    {said}"] if said else []
    lines += [f"      not proved: {u}" for u in (hard.proof.unproven if hard.proof else ())]
    lines += [f"    * for {a}: {why}" for a, why in sorted(hard.any_resource.items())]
    lines += [f"    cannot show: {line}" for line in hard.cannot_show]
    if hard.applied:
        lines.append(f"    applied: {hard.applied.policy_arn} ({hard.applied.policy})")
    if grace_line(hard):
        lines.append(f"    grace period: {grace_line(hard)}")
    if hard.finish_commands:
        lines.append("    to finish the switch:")
        lines += [f"      {c}" for c in hard.finish_commands]
    return lines
