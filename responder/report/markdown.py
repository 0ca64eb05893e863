"""report.md: the incident's story (responder.report.story) for humans and auditors,
then the details an investigator looks up.

Every value goes through responder.report.md: escaped as text or shown as code, since
much of it is CloudTrail's, that is, the attacker's.
"""

from __future__ import annotations

from responder.incident.facts import AttackerContained, NoticeSent
from responder.incident.facts_rollback import RolledBack
from responder.incident.shapes import IamSnapshot
from responder.report import hardening as report_hardening
from responder.report import leads as report_leads
from responder.report import md
from responder.report import rotation as report_rotation
from responder.report.model import AttackerEntry, IncidentDocument, ReportDocument
from responder.report.story import EvidenceStory, StepLine, story_of, whose
from responder.report.todo import MANUAL, Todo

__all__ = ["attacker_facts", "markdown_of", "todo_markdown", "whose"]


def markdown_of(report: ReportDocument) -> str:
    """report.md: the story first (headline, what the attacker did, what was shut, what
    it read and let in, what to do), then evidence, timeline, hardening, details."""
    doc, more = report.document, report.extras
    told = story_of(doc, more)
    out = [f"# {md.text(told.title)}", "", f"**{md.text(told.headline)}**", ""]
    out += [f"Observed in AWS: {md.text(told.verified)}", ""] if told.verified else []
    out += [f"- **{md.text(alert)}**" for alert in told.alerts]
    out += [""] if told.alerts else []
    out += _list("What the attacker did", [d.line for d in told.did])
    out += _list("What was shut", told.shut)
    out += _leads(report_leads.leads_of(doc))
    if told.todo:
        out += ["## What you must do", "", *todo_markdown(told.todo)]
    if told.evidence is not None:
        out += _evidence(told.evidence)
    out += _timeline("Timeline", told.timeline)
    if more.followups:
        out += _timeline("After the playbook (schedule, sweeps, evidence bucket)",
                         story_of(doc, type(more)(timeline=more.followups)).timeline)
    out += _list("Hardening", told.hardening)
    out += report_rotation.markdown(doc.rotation)
    out += _details(report, told.facts)
    return "\n".join(out) + "\n"


def _list(title: str, items: tuple[str, ...] | list[str]) -> list[str]:
    return [f"## {title}", "", *(f"- {md.text(i)}" for i in items), ""] if items else []


def todo_markdown(items: tuple[Todo, ...]) -> list[str]:
    """Numbered; each command in its own fenced block, so it is copied exactly."""
    out: list[str] = []
    for i, item in enumerate(items, 1):
        out.append(f"{i}. {md.text(item.what)}")
        for command in item.commands:
            out += ["", *(f"   {line}" for line in md.fenced([command], "sh"))]
        if item.manual:
            out += ["", f"   *{MANUAL}: replace each \\<placeholder\\>*"]
        if item.note:
            out += ["", f"   {md.text(item.note)}"]
        out.append("")
    return out


def _leads(leads: report_leads.Leads) -> list[str]:
    """What the attacker read (rotate each: the commands are in what you must do) and
    whom outside the account it let in."""
    out: list[str] = []
    if leads.credentials_read:
        out += ["## Credentials the attacker read — rotate each", "",
                "| name | kind | region | read |", "|---|---|---|---|"]
        out += [md.row(md.cell(c.name), md.cell(c.kind), md.cell(c.region),
                       md.cell(report_leads.when(c.event_name, c.time)))
                for c in leads.credentials_read]
        out.append("")
    if leads.granted_to:
        out += ["## Access granted outside the account", "",
                "| principal | resource | what | event |", "|---|---|---|---|"]
        out += [md.row(md.cell(report_leads.principal(g.principal)), md.cell(g.resource),
                       md.cell(g.what), md.cell(report_leads.when(g.event_name, g.time)))
                for g in leads.granted_to]
        out.append("")
    return out


def _evidence(e: EvidenceStory) -> list[str]:
    out = ["## Evidence", "",
           f"- {e.events} CloudTrail events in {md.code(e.path)}, sha256 {md.code(e.sha256)}",
           f"- first event {md.text(e.first_event)}, last {md.text(e.last_event)}",
           f"- regions read: {len(e.regions_read)}"
           + ("; **NOT read**: " + ", ".join(f"{md.text(r)} ({md.text(why)})"
                                            for r, why in e.regions_unread)
              if e.regions_unread else "")]
    out += [f"- copy in {md.code(e.copy)}"] if e.copy else []
    out += [f"- **not copied to the evidence bucket**: {md.text(e.not_copied)}"] \
        if e.not_copied else []
    out += [f"- source IPs: {_counts(e.source_ips)}", f"- user agents: {_counts(e.user_agents)}"]
    out += [f"- temporary keys minted: {md.text(e.temporary_keys)}"] if e.temporary_keys else []
    out += [f"- roles assumed: {md.text(e.roles_assumed)}"] if e.roles_assumed else []
    out += ["", f"High-risk actions: {e.high_risk_total}", ""]
    if e.high_risk:
        out += ["| action | time | region | source IP | key |", "|---|---|---|---|---|"]
        out += [md.row(md.cell(r.label), md.cell(r.time), md.cell(r.region),
                       md.cell(r.source_ip), md.cell(r.access_key_id)) for r in e.high_risk]
        if (more := e.high_risk_total - len(e.high_risk)) > 0:
            out += ["", f"and {more} more in the evidence file"]
    return [*out, ""]


def _counts(items: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f"{md.code(k)} ({n})" for k, n in items) or "none recorded"


def _timeline(title: str, rows: tuple[StepLine, ...]) -> list[str]:
    if not rows:
        return []
    out = [f"## {title}", "", "| step | status | started | seconds | AWS calls | error |",
           "|---|---|---|---|---|---|"]
    out += [md.row(md.cell(t.name), md.cell(t.status), md.cell(t.started_at),
                   md.cell(t.seconds), md.cell(", ".join(t.calls)), md.cell(t.error))
            for t in rows]
    return [*out, ""]


def _details(report: ReportDocument, facts: tuple[tuple[str, str], ...]) -> list[str]:
    """What an investigator looks up after the story: the facts, the attacker's items in
    full, the rollback, AWS's own quarantine, the notices, the IAM snapshots (as the page
    has them, in the same place)."""
    doc, more = report.document, report.extras
    out = ["## Details", "", "| | |", "|---|---|",
           *(md.row(md.cell(k), md.cell(v)) for k, v in facts), ""]
    out += _attacker(doc.attacker, attacker_facts(doc))
    if more.rollback:
        out += _rollback(RolledBack.from_detail(more.rollback))
    if more.aws_quarantine:
        out += ["### AWS already acted", "",
                f"AWS attached {md.text(more.aws_quarantine)} to this user. The replacement "
                "key inherits its denials until the AWS support case says to detach it; this "
                "tool never detaches it.", ""]
    out += report_hardening.markdown(doc.hardening)
    out += ["### Notifications", ""]
    notes = more.notifications or {}
    told_ = NoticeSent.from_detail(notes)  # a skipped step's detail: none, and its reason
    out += [f"- {md.text(n.channel)}: sent" + (f" ({md.code(n.message_id)})"
                                              if n.message_id else "") for n in told_.sent]
    out += [f"- {md.text(n.channel)}: **FAILED**: {md.text(n.error)}" for n in told_.failed]
    if not told_.sent and not told_.failed:
        out.append(f"- none ({md.text(notes.get('reason'), 'not run')})")
    out += ["", "### IAM snapshot", ""]
    snapshots = more.iam_snapshot
    for label, snap in (("at containment", snapshots.at_containment),
                        ("after replacement", snapshots.after_replacement)):
        if snap:
            out.append(f"- {label}: {_snapshot(snap)}")
    return [*out, ""]


def _snapshot(snap: IamSnapshot) -> str:
    keys = [f"{k.get('AccessKeyId')} {k.get('Status')}" for k in snap.access_keys or ()]
    inline = "not read" if snap.inline_policies is None else "none"
    attached = [p.get("PolicyName") for p in snap.attached_policies or ()]
    return (f"keys: {md.text(keys, 'none')}; inline policies: "
            f"{md.text(snap.inline_policies, inline)}; attached: {md.text(attached, 'none')}"
            f"; groups: {md.text(snap.groups, 'none')}; MFA: {md.text(snap.has_mfa)}")


def attacker_facts(doc: IncidentDocument) -> AttackerContained | None:
    """contain-attacker's own facts, for what the document's attacker entry does not
    carry (the calls AWS refused, the regions CloudTrail could not be read in)."""
    step = next((s for s in doc.steps if s.kind == "attacker" and s.status == "done"), None)
    return AttackerContained.from_detail(step.detail) if step is not None else None


def _rollback(rollback: RolledBack) -> list[str]:
    """The containment undone: every reason given, and what AWS showed when re-read."""
    out = ["### Rolled back (a false positive)", "", "Reasons, oldest first:", ""]
    out += [f"1. {md.text(r.reason)}" + (f" ({md.text(r.at)})" if r.at else "")
            for r in rollback.history]
    out += ["", f"- Key now {md.text(rollback.key_status)}; session deny removed: "
            f"{'yes' if rollback.deny_removed else 'no'}"
            + (f" (as AWS answered when re-read at {md.text(rollback.verified_at)})"
               if rollback.verified_at else "")]
    out += [f"- key {md.code(k.access_key_id)} of {md.code(k.user_name)} Active again"
            for k in rollback.keys_reactivated]
    out += [f"- `responder-quarantine` removed from {md.text(q.type)} {md.code(q.name)}"
            for q in rollback.quarantines_removed]
    out += [f"- role {md.code(r.role_name)}: sessions {md.text(r.sessions)} no longer denied"
            for r in rollback.sessions_restored]
    return [*out, *[f"- Left alone: {md.text(x)}" for x in rollback.left_alone], ""]


def _command(command: str, manual: bool, note: str) -> str:
    """A command in a table cell: code, marked when it must be edited first, its note
    after it (never inside it: the command pastes as printed)."""
    said = md.code(command, in_table=True)
    noted = md.text(note, "")
    return said + (f" ({MANUAL})" if manual and command else "") + (
        (f" — {noted}" if said else noted) if noted else "")


def _attacker(attacker: AttackerEntry | None, facts: AttackerContained | None) -> list[str]:
    """The attacker's items in full: what was shut, what a human must undo (with the
    meaning and resource), what AWS refused, and where CloudTrail was not read."""
    if attacker is None:
        return []
    out = ["### The attacker", ""]
    unread = facts.regions_unread if facts is not None else {}
    if unread:
        out.append("- **containment may be incomplete**: CloudTrail could not be read in "
                   + ", ".join(f"{md.text(r)} ({md.text(e)})" for r, e in unread.items())
                   + "; what the attacker did there was not seen, so nothing it opened there"
                   " was shut")
    if attacker.cutoff:
        out.append(f"- temporary credentials of the user issued before "
                   f"{md.text(attacker.cutoff)} are denied (the user's own included: they "
                   "must mint new ones)")
    out += [f"- key {md.code(k.access_key_id)} of {md.code(k.user_name)} (created by the "
            "attacker) set Inactive" for k in attacker.keys_disabled]
    out += [f"- {md.text(p.type)} {md.code(p.name)} (created by the attacker) quarantined: "
            "deny-all inline policy `responder-quarantine`"
            for p in attacker.principals_quarantined]
    out += [f"- role {md.code(r.role_name)}: the attacker's sessions "
            f"{md.text(r.sessions)} denied; its other sessions keep working"
            for r in attacker.sessions_revoked]
    out += [f"- {md.text(report_leads.defense(r))}" for r in attacker.restored]
    if attacker.needs_human:
        out += ["", "Changed by the attacker, for a human to undo (nothing here was touched):",
                "", "| event | time | key | meaning | what | undo |",
                "|---|---|---|---|---|---|"]
        out += [md.row(md.cell(n.event_name), md.cell(n.time), md.cell(n.access_key_id),
                       md.cell(n.meaning), md.cell(n.what), _command(n.undo, n.manual, n.note))
                for n in attacker.needs_human]
    refused = facts.refused if facts is not None else ()
    if refused:
        out += ["", "Refused by AWS (nothing changed, nothing to undo):", "",
                "| event | time | key | refused |", "|---|---|---|---|"]
        out += [md.row(md.cell(r.event_name), md.cell(r.time), md.cell(r.access_key_id),
                       md.cell(r.error_code)) for r in refused]
    return [*out, ""]

