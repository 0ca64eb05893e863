"""report.md: the report document (document.report_of) for humans and auditors."""

from __future__ import annotations

from responder.incident.facts import AttackerContained, NoticeSent
from responder.incident.facts_rollback import RolledBack
from responder.incident.shapes import EvidenceSummary, marked
from responder.report import hardening as report_hardening
from responder.report import leads as report_leads
from responder.report import rotation as report_rotation
from responder.report.model import (
    AttackerEntry,
    IncidentDocument,
    ReportDocument,
    TimelineEntry,
)


def whose(doc: IncidentDocument) -> str:
    """`user alice`, or for a temporary key the session it is."""
    session = doc.session
    if not session:
        return f"user {doc.user_name or '?'}"
    if session.role_name:
        instance = " (EC2 instance)" if session.instance_id else ""
        return f"session {session.role_name}/{session.session_name}{instance}"
    return f"session of user {session.user_name or '?'}"


def markdown_of(report: ReportDocument) -> str:
    """report.md for humans and auditors."""
    doc, more = report.document, report.extras
    what = "leaked temporary key" if doc.session else "rotation of access key" \
        if doc.rotation else "compromised access key"
    out = [
        f"# Incident {doc.incident_id}: {what} `{doc.access_key_id}`",
        "",
        "| | |",
        "|---|---|",
        f"| Status | **{doc.status}** |",
        f"| Principal | {whose(doc)} |" if doc.session else
        f"| User | `{doc.user_name}` |",
        f"| Account | `{doc.account_id}` |",
        f"| Playbook | {doc.playbook} |",
        f"| Started | {doc.started_at} |",
        f"| Contained | {doc.contained_at} |",
        f"| Time to contain | {more.time_to_contain_seconds} s |",
        f"| Sessions cut off | issued before {more.sessions_cutoff} |",
        "",
    ]
    if doc.error:
        said = {"closed": "Closed", "refused": "Refused"}.get(str(doc.status), "Halted")
        out += [f"**{said}:** {doc.error}", ""]
    if doc.verification is not None:
        out += [f"**Observed in AWS:** {doc.verification.headline()}", ""]
    if doc.rolled_back is not None:
        out += [f"**Rolled back:** {doc.rolled_back.why}", ""]
    if doc.evidence is not None and doc.evidence.regions_unread:
        out += [f"**Evidence gap:** CloudTrail could not be read in "
                f"{', '.join(doc.evidence.regions_unread)}; attacker containment may be "
                "incomplete there", ""]
    if more.aws_quarantine:
        out += [
            "## AWS already acted",
            "",
            f"AWS attached {', '.join(more.aws_quarantine)} to this user. The replacement "
            "key inherits its denials until the AWS support case says to detach it; this "
            "tool never detaches it.",
            "",
        ]
    out += report_rotation.markdown(doc.rotation)
    out += report_hardening.markdown(doc.hardening)
    if more.rollback:
        out += _rollback_markdown(RolledBack.from_detail(more.rollback))
    out += ["## Next actions", ""] + [f"1. {a}" for a in more.next_actions] + [""]
    out += _timeline_markdown("Timeline", more.timeline)
    if more.followups:
        out += _timeline_markdown("After the playbook (schedule, sweeps, evidence bucket)",
                                  more.followups)
    evidence = more.evidence_summary
    if evidence:
        summary = evidence.summary or EvidenceSummary()
        out += [
            "## Evidence",
            "",
            f"- {evidence.events} CloudTrail events in `{evidence.path}`",
            f"- sha256 `{evidence.sha256}`",
            f"- regions: {', '.join(evidence.regions)}"
            + (f"; failed: {dict(evidence.regions_failed)}" if evidence.regions_failed
               else ""),
            f"- first event {summary.first_event}, last {summary.last_event}",
            f"- temporary keys: {[t.access_key_id for t in evidence.temporary_keys]}"
            f"; roles assumed: {list(evidence.roles_assumed)}",
            "",
            "| high-risk action | time | region | source IP | key |",
            "|---|---|---|---|---|",
        ]
        out += [f"| {marked(e)} | {e['eventTime']} | {e['region']} | "
                f"{e['sourceIPAddress']} | {e['accessKeyId']} |"
                for e in summary.high_risk]
        out += ["", "| event | count |", "|---|---|"]
        out += [f"| {name} | {n} |" for name, n in summary.by_event_name.items()]
        out.append("")
    out += _attacker_markdown(doc.attacker, attacker_facts(doc), report_leads.leads_of(doc))
    replacement = doc.replacement
    out += ["## Replacement", ""]
    out.append(f"- new key `{replacement.access_key_id}`, secret `{replacement.secret_ref}`"
               if replacement else "- none issued")
    out += ["", "## Notifications", ""]
    notes = more.notifications or {}
    told = NoticeSent.from_detail(notes)  # a skipped step's detail: none, and its reason
    out += [f"- {n.channel}: sent" + (f" ({n.message_id})" if n.message_id else "")
            for n in told.sent]
    out += [f"- {n.channel}: FAILED: {n.error}" for n in told.failed]
    if not told.sent and not told.failed:
        out.append(f"- none ({notes.get('reason', 'not run')})")
    out += ["", "## IAM snapshot", ""]
    snapshots = more.iam_snapshot
    for label, snap in (("at containment", snapshots.at_containment),
                        ("after replacement", snapshots.after_replacement)):
        if snap:
            # access_keys and attached_policies items are AWS's own (AccessKeyId, ...);
            # lists print as lists, as they did when the snapshot was a plain mapping.
            keys = ", ".join(f"{k.get('AccessKeyId')} {k.get('Status')}"
                             for k in snap.access_keys or ())
            inline = None if snap.inline_policies is None else list(snap.inline_policies)
            out.append(f"- {label}: keys [{keys}], inline "
                       f"{inline}, attached "
                       f"{[p.get('PolicyName') for p in snap.attached_policies or ()]}, "
                       f"groups {list(snap.groups)}, MFA {snap.has_mfa}")
    return "\n".join(out) + "\n"


def _timeline_markdown(title: str, rows: tuple[TimelineEntry, ...]) -> list[str]:
    out = [f"## {title}", "", "| step | status | started | duration (s) | API calls | error |",
           "|---|---|---|---|---|---|"]
    for t in rows:
        apis = ", ".join(
            f"{c.api}" + (f" x{c.attempts}" if c.attempts > 1 else "")
            + ("" if c.outcome == "ok" else f" ({c.outcome})")
            for c in t.calls
        )
        out.append(f"| {t.step} | {t.status} | {t.started_at} | "
                   f"{t.duration_seconds} | {apis} | {t.error or ''} |")
    return [*out, ""]


def attacker_facts(doc: IncidentDocument) -> AttackerContained | None:
    """contain-attacker's own facts, for what the document's attacker entry does not
    carry (the calls AWS refused, the regions CloudTrail could not be read in)."""
    step = next((s for s in doc.steps if s.kind == "attacker" and s.status == "done"), None)
    return AttackerContained.from_detail(step.detail) if step is not None else None


def _rollback_markdown(rollback: RolledBack) -> list[str]:
    """The containment undone: every reason given, and what AWS showed when re-read."""
    out = ["## Rolled back (a false positive)", "", "Reasons, oldest first:", ""]
    out += [f"1. {r.reason}" + (f" ({r.at})" if r.at else "") for r in rollback.history]
    out += ["", f"- Key now {rollback.key_status}; session deny removed: "
            f"{'yes' if rollback.deny_removed else 'no'}"
            + (f" (as AWS answered when re-read at {rollback.verified_at})"
               if rollback.verified_at else "")]
    out += [f"- key `{k.access_key_id}` of `{k.user_name}` Active again"
            for k in rollback.keys_reactivated]
    out += [f"- `responder-quarantine` removed from {q.type} `{q.name}`"
            for q in rollback.quarantines_removed]
    out += [f"- role `{r.role_name}`: sessions {', '.join(r.sessions)} no longer denied"
            for r in rollback.sessions_restored]
    return [*out, *[f"- Left alone: {x}" for x in rollback.left_alone], ""]


def _cell(value: object) -> str:
    """A table cell: one line, its pipes kept from splitting the row."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _code(command: str, manual: bool = False, note: str = "") -> str:
    """A command as code (a backtick in it kept), marked when it must be edited first,
    its note after it."""
    text = (f"`` {command} ``" if "`" in command else f"`{command}`") if command else ""
    return _cell(text + (f" ({report_leads.MANUAL})" if manual and command else "")
                 + report_leads.after(command, note))


def _leads_markdown(leads: report_leads.Leads) -> list[str]:
    """What the attacker part opens with: what to rotate, who outside got in, what was
    turned back on."""
    out: list[str] = []
    if leads.credentials_read:
        out += ["**Credentials the attacker read — rotate each:**", "",
                "| name | kind | region | read | rotate with |", "|---|---|---|---|---|"]
        out += [f"| {_cell(c.name)} | {_cell(c.kind)} | {_cell(c.region or '')} | "
                f"{_cell(report_leads.when(c.event_name, c.time))} | "
                f"{_code(c.rotate, c.manual, c.note) or 'by hand: no command known'} |"
                for c in leads.credentials_read]
        out.append("")
    if leads.granted_to:
        out += ["**Access granted outside the account:**", "",
                "| principal | resource | what | event |", "|---|---|---|---|"]
        out += [f"| {_cell(report_leads.principal(g.principal))} | {_cell(g.resource)} | "
                f"{_cell(g.what)} | {_cell(report_leads.when(g.event_name, g.time))} |"
                for g in leads.granted_to]
        out.append("")
    if leads.restored:
        out += ["**Defenses turned back on:**", ""]
        out += [f"- {_cell(report_leads.defense(r))}" for r in leads.restored]
        out.append("")
    return out


def _attacker_markdown(attacker: AttackerEntry | None,
                       facts: AttackerContained | None = None,
                       leads: report_leads.Leads | None = None) -> list[str]:
    """What the attacker read and let in (first), what it opened, what was shut, what AWS
    refused, and what a human must undo; and where containment may be incomplete
    (regions CloudTrail did not answer)."""
    leads = leads if leads is not None else report_leads.gathered([attacker])
    if attacker is None and not leads:
        return []
    attacker = attacker or AttackerEntry()
    out = ["## The attacker", "", *_leads_markdown(leads)]
    unread = facts.regions_unread if facts is not None else {}
    if unread:
        out.append("- **containment may be incomplete**: CloudTrail could not be read in "
                   + ", ".join(f"{r} ({e})" for r, e in unread.items())
                   + "; what the attacker did there was not seen, so nothing it opened there"
                   " was shut")
    if attacker.cutoff:
        out.append(f"- temporary credentials of the user issued before {attacker.cutoff} "
                   "are denied (the user's own included: they must mint new ones)")
    out += [f"- key `{k.access_key_id}` of `{k.user_name}` (created by the "
            "attacker) set Inactive" for k in attacker.keys_disabled]
    out += [f"- {p.type} `{p.name}` (created by the attacker) quarantined: "
            "deny-all inline policy `responder-quarantine`"
            for p in attacker.principals_quarantined]
    out += [f"- role `{r.role_name}`: the attacker's sessions "
            f"{', '.join(r.sessions)} denied; its other sessions keep working"
            for r in attacker.sessions_revoked]
    needs = attacker.needs_human
    if needs:
        out += ["", "Changed by the attacker, for a human to undo (nothing here was touched):",
                "", "| event | time | key | meaning | what | undo |",
                "|---|---|---|---|---|---|"]
        out += [f"| {n.event_name} | {n.time} | {n.access_key_id} | {_cell(n.meaning)} | "
                f"{_cell(n.what)} | {_code(n.undo, n.manual, n.note)} |" for n in needs]
    refused = facts.refused if facts is not None else ()
    if refused:
        out += ["", "Refused by AWS (nothing changed, nothing to undo):", "",
                "| event | time | key | refused |", "|---|---|---|---|"]
        out += [f"| {r.event_name} | {r.time} | {r.access_key_id} | {r.error_code} |"
                for r in refused]
    return [*out, ""]
