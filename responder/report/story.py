"""The incident as one story, told the same way in every medium (terminal, report.md,
report.html, SNS, Slack): a headline (contained or not, verified when), what the
attacker did, what was shut, what it read and let in, what a human must do, then the
evidence, the timeline and, last, hardening.

Built once from the typed report document; every renderer lays out these sections in
this order and only escapes (or redacts) as its medium needs, so no medium can tell a
different story or lead with something else. Every value is already words here: no
renderer ever formats a None, a bool or a mapping itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from responder.catalog.registry import BY_EVENT
from responder.evidence.summary import HIGH_RISK_BESIDES
from responder.incident.shapes import EvidenceSummary
from responder.report import leads as report_leads
from responder.report.model import (
    AttackerEntry,
    CallEntry,
    EvidenceSummaryEntry,
    HardeningEntry,
    IncidentDocument,
    ReportExtras,
    RetirementEntry,
    SweepDone,
    TimelineEntry,
)
from responder.report.story_model import (
    HIGH_RISK_SHOWN,
    TIMES,
    TOP,
    Did,
    EvidenceStory,
    Risky,
    StepLine,
    Story,
    counted,
    scrubbed,
    words,
)

OTHER = "other high-risk"
MEANING_OF = {name: entries[0].meaning.value for (_, name), entries in BY_EVENT.items()}
"""What an event name means, from the catalog (the first entry holding the name)."""


# --------------------------------------------------------------------------- building


def story_of(doc: IncidentDocument, extras: ReportExtras | None = None) -> Story:
    """The story of `doc` (and, for a report or notice, what its extras add)."""
    extras = extras or ReportExtras()
    evidence = _evidence(doc, extras.evidence_summary)
    leads = report_leads.leads_of(doc)
    return Story(
        incident_id=words(doc.incident_id),
        title=_title(doc),
        state=_state(doc),
        headline=_headline(doc),
        verified=doc.verification.headline() if doc.verification is not None else "",
        alerts=_alerts(doc, extras),
        facts=_facts(doc, extras),
        did=_did(extras.evidence_summary),
        shut=_shut(doc),
        read=tuple(report_leads.credential(c) for c in leads.credentials_read),
        granted=tuple(report_leads.grant(g) for g in leads.granted_to),
        todo=extras.todo,
        evidence=evidence,
        timeline=tuple(_step(t) for t in extras.timeline),
        hardening=_hardening(doc.hardening),
    )


def whose(doc: IncidentDocument) -> str:
    """`user alice`, or for a temporary key the session it is."""
    session = doc.session
    if not session:
        return f"user {words(doc.user_name, '?')}"
    if session.role_name:
        instance = " (EC2 instance)" if session.instance_id else ""
        return f"session {session.role_name}/{words(session.session_name, '?')}{instance}"
    return f"session of user {words(session.user_name, '?')}"


def _title(doc: IncidentDocument) -> str:
    what = ("leaked temporary key" if doc.session else "rotation of access key"
            if doc.rotation else "retirement of unused access key" if doc.retirement
            else "compromised access key")
    return f"Incident {words(doc.incident_id)}: {what} {words(doc.access_key_id, '?')}"


def _state(doc: IncidentDocument) -> str:
    if doc.rolled_back is not None:
        return "ROLLED BACK"
    if doc.rotation is not None:
        return "ROTATION"
    if doc.retirement is not None and doc.status not in {"planned", "refused", "closed"}:
        return {"Inactive": "RETIRED", "Active": "KEPT"}.get(doc.retirement.status,
                                                             "NOT RETIRED")
    if doc.status in {"planned", "refused", "closed"}:
        return str(doc.status).upper()
    return "CONTAINED" if doc.contained_at else "NOT CONTAINED"


def _headline(doc: IncidentDocument) -> str:
    """One line: contained or not, and what AWS showed when it was last re-read."""
    state, key = _state(doc), words(doc.access_key_id, "?")
    rolled, rotation, why = doc.rolled_back, doc.rotation, words(doc.error, "no reason recorded")
    fixed = {
        "ROLLED BACK": f"ROLLED BACK as a false positive ({rolled.why}): key {key} "
                       f"{rolled.seen}" if rolled is not None else "",
        "ROTATION": f"ROTATION of {key}: {words(rotation.stage, 'started')}"
                    if rotation is not None else "",
        "PLANNED": f"PLANNED (dry run): nothing was changed; the steps below say what a run "
                   f"would do to {key} of {whose(doc)}",
        "REFUSED": f"REFUSED: nothing was changed ({why})",
        "CLOSED": f"CLOSED: a human took over ({why})",
        "NOT CONTAINED": f"NOT CONTAINED: key {key} of {whose(doc)} may still work"
                         + (f"; halted: {doc.error}" if doc.error else ""),
    }
    if state in fixed:
        return fixed[state]
    if doc.retirement is not None:
        return _retired(doc, state, doc.retirement)
    return _as_read(doc, "CONTAINED", f"key {key} of {whose(doc)} disabled and its sessions "
                    "denied")


def _as_read(doc: IncidentDocument, state: str, what: str) -> str:
    """`state: what`, and whether AWS showed it when the incident last re-read it."""
    verified = doc.verification
    if verified is None:
        return f"{state}: {what} (not re-read since)"
    if not verified.ok:
        return f"{state}, BUT NOT VERIFIED: {what}; AWS showed otherwise when re-read"
    return f"{state}: {what}, as AWS showed when re-read at {words(verified.at)}"


def _retired(doc: IncidentDocument, state: str, retired: RetirementEntry) -> str:
    """An unused key's retirement: Inactive as re-read, kept (and why), or not yet."""
    key = f"key {words(doc.access_key_id, '?')} of {whose(doc)}"
    if state == "KEPT":
        return f"KEPT: {key} left Active: {words(retired.kept_because)}"
    if state == "NOT RETIRED":
        return f"NOT RETIRED: {key} was not set Inactive" + (
            f"; halted: {doc.error}; `respond resume {doc.incident_id}` goes on"
            if doc.error else "")
    used = (f"last used {retired.last_used}" if retired.last_used else "never used")
    return _as_read(doc, "RETIRED", f"{key} set Inactive, unused for "
                    f"{words(retired.idle_days, '?')} days ({used})")


def _gap(doc: IncidentDocument) -> list[str]:
    """First thing said when CloudTrail is unread somewhere: which regions, what it
    means for containment, the command that reads them again, and each region's error."""
    unread = doc.evidence.regions_unread if doc.evidence is not None else {}
    if not unread:
        return []
    again = f"respond sweep {doc.incident_id}"
    if doc.contained_at is None:
        again = f"respond resume {doc.incident_id}"
    elif doc.status == "halted":
        again += f"` or `respond resume {doc.incident_id}"
    home = "; IAM and STS calls are recorded in us-east-1" if "us-east-1" in unread else ""
    return [f"EVIDENCE GAP: CloudTrail could not be read in {', '.join(unread)}: attacker "
            f"containment may be incomplete there (what the key did there is unseen{home})",
            f"`{again}` reads {'it' if len(unread) == 1 else 'them'} again over the whole "
            "lookback",
            *(f"{region} unread: {error}" for region, error in unread.items())]


def _alerts(doc: IncidentDocument, extras: ReportExtras) -> tuple[str, ...]:
    out = _gap(doc)
    if doc.status == "halted" and doc.contained_at and doc.error:
        out.append(f"HALTED after containment: {doc.error}; `respond resume "
                   f"{doc.incident_id}` continues")
    told = extras.notifications or {}
    failed = told.get("failed")
    if isinstance(failed, list) and failed:
        out.append("NOTIFICATION FAILED: " + "; ".join(
            f"{words(f.get('channel'), '?')}: {words(f.get('error'))}"
            for f in failed if isinstance(f, Mapping)))
    if doc.evidence is not None and doc.evidence.archive_error:
        out.append(f"EVIDENCE NOT COPIED to the bucket: {doc.evidence.archive_error}")
    out += [f"AWS QUARANTINE {p} is attached to the user: leave it until AWS support says "
            "otherwise" for p in extras.aws_quarantine]
    return tuple(out)


def _facts(doc: IncidentDocument, extras: ReportExtras) -> tuple[tuple[str, str], ...]:
    took = extras.time_to_contain_seconds
    rows = [("Access key", words(doc.access_key_id)),
            ("Session" if doc.session else "User", whose(doc).split(" ", 1)[-1]),
            ("Account", words(doc.account_id)),
            ("Playbook", words(doc.playbook)),
            ("Started", words(doc.started_at))]
    if doc.retirement is not None:  # hygiene, not a leak: nothing was contained
        rows.append(("Set Inactive", words(doc.retirement.at) if doc.retirement.status ==
                     "Inactive" else "no"))
    else:
        rows += [("Contained", words(doc.contained_at, "not contained")),
                 ("Time to contain", f"{words(took)} s" if took is not None else
                  "not recorded" if doc.contained_at else "not contained")]
    if doc.replacement is not None:
        rows.append(("Replacement key", f"{words(doc.replacement.access_key_id)} (secret "
                                        f"{words(doc.replacement.secret_ref)})"))
    return tuple(rows)


def _did(found: EvidenceSummaryEntry | None) -> tuple[Did, ...]:
    """The attacker's high-risk calls grouped by what they mean; the rest counted."""
    summary = (found.summary if found is not None else None) or EvidenceSummary()
    refused: dict[str, Counter[str]] = {}
    for e in summary.high_risk:
        if e.get("refused") or e.get("errorCode"):
            refused.setdefault(str(e.get("eventName")), Counter())[str(e.get("errorCode"))] += 1
    groups: dict[str, list[tuple[str, int]]] = {}
    no: dict[str, list[tuple[str, str]]] = {}
    rest: list[tuple[str, int]] = []
    for name, count in summary.by_event_name.items():
        meaning = MEANING_OF.get(name, OTHER if name in HIGH_RISK_BESIDES else "")
        if not meaning:
            rest.append((name, count))
            continue
        said = refused.get(name, Counter())
        if (done := count - sum(said.values())) > 0:
            groups.setdefault(meaning, []).append((name, done))
        no.setdefault(meaning, []).extend(
            (counted(name, n), code) for code, n in said.items())
    out = [Did(m, tuple(groups.get(m, ())), tuple(no.get(m, ())))
           for m in dict.fromkeys([*groups, *no])]
    if rest:
        shown = rest[:TOP]
        more = sum(c for _, c in rest[TOP:])
        out.append(Did("other calls", tuple(shown) + ((("others", more),) if more else ())))
    return tuple(out)


def _shut(doc: IncidentDocument) -> tuple[str, ...]:
    out: list[str] = []
    if doc.contained_at and doc.rolled_back is None:
        out.append(f"key {words(doc.access_key_id)} of {whose(doc)}: disabled")
    attacker = doc.attacker or AttackerEntry()
    if attacker.cutoff and doc.rolled_back is None:
        out.append(f"sessions minted before {attacker.cutoff}: denied (the user's own too)")
    sweeps: Iterable[SweepDone] = doc.sweeps.done if doc.sweeps is not None else ()
    carriers: list[AttackerEntry | SweepDone] = [attacker]
    carriers += [s for s in sweeps if s.status == "done"]
    for found in carriers:
        out += [f"attacker's key {k.access_key_id} of {k.user_name}: "
                + ("already Inactive" if k.already else "disabled") for k in found.keys_disabled]
        out += [f"{p.type} {p.name} (the attacker's): quarantined (deny-all policy)"
                + (f", keys {', '.join(p.keys_disabled)} disabled" if p.keys_disabled else "")
                for p in found.principals_quarantined]
        out += [f"role {r.role_name}: the attacker's sessions {', '.join(r.sessions)} denied"
                for r in found.sessions_revoked]
    out += [report_leads.defense(r) for r in report_leads.leads_of(doc).restored]
    return tuple(dict.fromkeys(out))


def _evidence(doc: IncidentDocument, found: EvidenceSummaryEntry | None
              ) -> EvidenceStory | None:
    kept = doc.evidence
    if kept is None and found is None:
        return None
    summary = (found.summary if found is not None else None) or EvidenceSummary()
    unread = dict(kept.regions_unread) if kept is not None else {}
    return EvidenceStory(
        events=kept.events if kept is not None else found.events if found else 0,
        path=words(kept.path if kept is not None else found.path if found else None),
        sha256=words(kept.sha256 if kept is not None else found.sha256 if found else None),
        regions_read=tuple(r for r in (kept.regions if kept is not None else
                                       found.regions if found else ()) if r not in unread),
        regions_unread=tuple(unread.items()),
        first_event=words(summary.first_event, "none"),
        last_event=words(summary.last_event, "none"),
        source_ips=tuple(list(summary.source_ips.items())[:TOP]),
        user_agents=tuple(list(summary.user_agents.items())[:TOP]),
        high_risk=tuple(_risky(e) for e in summary.high_risk),
        high_risk_total=summary.high_risk_total or len(summary.high_risk),
        temporary_keys=tuple(t.access_key_id for t in (found.temporary_keys if found else ())),
        roles_assumed=tuple(found.roles_assumed if found else ()),
        copy=words(kept.s3_uri if kept is not None else None, ""),
        not_copied=words(kept.archive_error if kept is not None else None, ""),
    )


def _risky(e: Mapping[str, object]) -> Risky:
    code = e.get("errorCode")
    return Risky(name=words(e.get("eventName"), "?"), time=words(e.get("eventTime")),
                 region=words(e.get("region"), "?"), source_ip=words(e.get("sourceIPAddress")),
                 access_key_id=words(e.get("accessKeyId"), "?"),
                 refused=words(code, "") if code or e.get("refused") else "")


def grouped_calls(calls: Iterable[CallEntry]) -> tuple[str, ...]:
    """Each API once, with how often it was called; retries and failures said."""
    counts: Counter[str] = Counter()
    for c in calls:
        notes = [f"{c.attempts} attempts"] if c.attempts > 1 else []
        notes += [] if c.outcome in {"ok", ""} else [c.outcome]
        counts[c.api + (f" ({', '.join(notes)})" if notes else "")] += 1
    return tuple(counted(api, n) for api, n in counts.items())


def _step(t: TimelineEntry) -> StepLine:
    return StepLine(name=t.step, status=t.status, started_at=words(t.started_at, ""),
                    seconds=words(t.duration_seconds, ""), calls=grouped_calls(t.calls),
                    error=words(t.error, ""))


def proof_line(hard: HardeningEntry) -> str | None:
    """Whether every used call was shown allowed by the proposal, in one line."""
    proof = hard.proof
    if proof is None or (not proof.checked and not proof.unproven):
        return None
    left = len(proof.unproven) + proof.unproven_more
    if not left:
        return (f"proved: all {proof.checked:,} used action and resource pairs are allowed "
                "by the proposal")
    return (f"NOT proved for {left:,} calls ({proof.allowed:,} of {proof.checked:,} used "
            "action and resource pairs allowed): the proposal may deny them")


def _hardening(hard: HardeningEntry | None) -> tuple[str, ...]:
    """Briefly: what was proposed and where it is; nothing is applied without a human."""
    if hard is None:
        return ()
    mfa = hard.mfa.reason if hard.mfa is not None and hard.mfa.reason else ""
    out = [f"least privilege for {hard.user_name}: {len(hard.used_actions)} actions used in "
           f"{hard.lookback_days} days; proposal "
           + (f"in {hard.proposed_policy_path}" if hard.proposed_policy_path
              else "not written") + ("; applied" if hard.applied else "; not applied")]
    w = hard.window
    if w is not None and w.read_from and w.read_to:  # the window, so nobody trusts it further
        if hard.truncated:
            about = w.events_estimated
            of = f" of about {about:,}" if about is not None and about > w.events_read else ""
            out.append(f"history read only from {w.read_from} to {w.read_to} "
                       f"({w.events_read:,} events{of}): actions used before may be missing"
                       + (f"; {w.read_all} reads every page" if w.read_all else ""))
        else:
            out.append(f"history read from {w.read_from} to {w.read_to} "
                       f"(every page, {w.events_read:,} events)")
    elif w is None and hard.truncated:
        out.append("only the newest events were read (window not recorded)")
    if w is not None and w.evidence_events:
        out.append(f"the leaked key's {w.evidence_events:,} events in the lookback came from "
                   "the evidence (not read again)")
    said = proof_line(hard)
    out += [said] if said else []
    out += [f"MFA: {mfa}"] if mfa else []
    out += [f"CloudTrail NOT read in {r}: the proposal may miss actions"
            for r in hard.regions_failed]
    if hard.unused_permissions:
        out.append(f"{len(hard.unused_permissions)} permissions granted but never used")
    return tuple(out)


__all__ = ["HIGH_RISK_SHOWN", "TIMES", "TOP", "Did", "EvidenceStory", "Risky", "StepLine",
           "Story", "counted", "grouped_calls", "proof_line", "scrubbed", "story_of", "whose",
           "words"]
