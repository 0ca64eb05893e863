"""report.html: the incident on one self-contained page, for those not at the terminal.

It tells the one story every medium tells (report/story.py), in its order: the headline
first (contained or not, and what must be seen with it), what the attacker did, what was
shut, what it read and let in, what you must do (each command in its own block, copied
exactly), then the evidence, the timeline and hardening; the details an investigator
looks up come after. A story section with nothing to tell is left out, in every part
alike.

Values come from the report document and CloudTrail (text the attacker chose), so each
goes through html_text.text: redacted, as the page gets mailed around, and escaped.
Nothing is fetched, not even a font: it is opened offline from evidence archives and must
tell no one it was read. The evidence file is streamed, never held (html_events.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from responder.incident.facts import FactKind, NoticeSent
from responder.incident.facts_rollback import RolledBack
from responder.report import document as report
from responder.report import leads as report_leads
from responder.report.html_events import Events, EvidenceFile
from responder.report.html_text import text as _text
from responder.report.html_timeline import WIDTH, svg
from responder.report.markdown import attacker_facts
from responder.report.model import ReportDocument
from responder.report.story import HIGH_RISK_SHOWN, EvidenceStory, Story, counted, story_of
from responder.report.todo import MANUAL, Todo

if TYPE_CHECKING:
    from responder.incident.view import IncidentView
    from responder.journal import Journal

__all__ = ["WIDTH", "html_of", "page", "render_html"]

SHUTTING: tuple[FactKind, ...] = ("containment", "attacker")
"""The kinds of fact whose steps shut something: the key, its sessions, the attacker's."""
NONE = '<p class="none">none</p>'
STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:1.6em}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#eee}
code,pre,.cmd td:last-child{font-family:monospace;font-size:12px;word-break:break-all}
pre{background:#f4f4f4;border:1px solid #ddd;padding:6px 8px;white-space:pre-wrap;margin:4px 0}
.none{color:#777}.bad{color:#c62828}.state{font-size:1.3em;font-weight:bold;margin:0}
.state.bad{color:#c62828}.state.ok{color:#2e7d32}.alerts li{color:#c62828;font-weight:bold}
.manual{color:#ef6c00;font-weight:bold}svg{background:#fcfcfc;border:1px solid #ddd}"""


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    body = "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in r) + "</tr>" for r in rows)
    heads = "".join(f"<th>{_text(h)}</th>" for h in head)
    return f'<table class="{cls}"><tr>{heads}</tr>{body}</table>' if body else NONE


def _facts(rows: Iterable[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>"
                               for k, v in rows) + "</table>"


def _section(name: str, title: str, body: str) -> str:
    return f'<section id="{name}"><h2>{_text(title)}</h2>{body}</section>'


def _list(name: str, title: str, items: Sequence[str]) -> str:
    """A story section as a list; left out when it has nothing to tell."""
    lis = "".join(f"<li>{_text(i)}</li>" for i in items)
    return _section(name, title, f"<ul>{lis}</ul>") if items else ""


def _headline(told: Story) -> str:
    """What a person sees first: contained or not, and what must be seen with it."""
    # "RETIRED, BUT NOT VERIFIED: ..." is not ok: only the state as AWS showed it is.
    ok = told.state in {"CONTAINED", "RETIRED", "KEPT"} and \
        told.headline.startswith(f"{told.state}:")
    alerts = "".join(f"<li>{_text(a)}</li>" for a in told.alerts)
    return (f'<section id="headline"><p class="state {"ok" if ok else "bad"}">'
            f'{_text(told.state)}</p><p class="headline">{_text(told.headline)}</p>'
            + (f'<p class="verified">{_text(told.verified)}</p>' if told.verified else "")
            + (f'<ul class="alerts">{alerts}</ul>' if alerts else "") + "</section>")


def _todo(items: Sequence[Todo], next_actions: Sequence[str]) -> str:
    """Each thing to do in words, then each command in its own block, copied exactly
    (alternatives are separate blocks), marked when a <placeholder> must be filled in.
    A report from before the todo list (next_actions only) lists those as said."""
    if not items:
        return _section("todo", "What you must do", "<ol>" + "".join(
            f"<li>{_text(a)}</li>" for a in next_actions) + "</ol>") if next_actions else ""
    out = []
    for item in items:
        cmds = "".join(f"<pre><code>{_text(c)}</code></pre>" for c in item.commands)
        manual = (f'<p class="manual">{_text(f"{MANUAL}: replace each <placeholder>")}</p>'
                  if item.manual else "")
        note = f'<p class="note">{_text(item.note)}</p>' if item.note else ""
        out.append(f"<li><p>{_text(item.what)}</p>{cmds}{manual}{note}</li>")
    return _section("todo", "What you must do", f"<ol>{''.join(out)}</ol>")


def _evidence(e: EvidenceStory | None) -> str:
    """What an investigator checks first, and which file (and digest) holds the rest."""
    if e is None:
        return ""
    unread = [f"{r} ({why})" for r, why in e.regions_unread]
    rows: list[tuple[str, Any]] = [
        ("Events", f"{e.events} CloudTrail events, {e.first_event} to {e.last_event}"),
        ("File", e.path), ("sha256", e.sha256)]
    rows += [("Copy", e.copy)] if e.copy else []
    rows += [("NOT copied", e.not_copied)] if e.not_copied else []
    rows += [("Regions read", f"{len(e.regions_read)}: {', '.join(e.regions_read)}"
              if e.regions_read else "none")]
    rows += [("Regions NOT read", unread)] if unread else []
    rows += [("Source IPs", [counted(ip, n) for ip, n in e.source_ips] or "none recorded"),
             ("User agents", [counted(ua, n) for ua, n in e.user_agents] or "none recorded")]
    rows += [("Temporary keys minted", e.temporary_keys)] if e.temporary_keys else []
    rows += [("Roles assumed", e.roles_assumed)] if e.roles_assumed else []
    rows.append(("High-risk actions", e.high_risk_total))
    shown = e.high_risk[:HIGH_RISK_SHOWN]
    more = e.high_risk_total - len(shown)
    return _section("evidence", "Evidence", _facts(rows) + "<h3>High-risk actions</h3>" + _table(
        ["action", "time", "region", "source IP", "key"],  # a refused call is marked so
        [[r.label, r.time, r.region, r.source_ip, r.access_key_id] for r in shown])
        + (f"<p>and {more} more in the evidence file</p>" if more > 0 else ""))


def _timeline(told: Story, typed: ReportDocument, events: Events) -> list[str]:
    """The drawing, then the steps with their AWS calls grouped. Parts, joined once with
    the page: the drawing is the page's largest part, and is not copied again."""
    drawn = svg(typed, events)
    if not drawn and not told.timeline:
        return []
    head = ["step", "status", "started", "seconds", "AWS calls", "error"]
    later = story_of(typed.document, type(typed.extras)(timeline=typed.extras.followups))
    return ['<section id="timeline"><h2>Timeline</h2>',
            *(drawn or ['<p class="none">no times recorded</p>']),
            _table(head, [[t.name, t.status, t.started_at, t.seconds, t.calls, t.error]
                          for t in told.timeline]),
            "<h3>After the playbook (schedule, sweeps, evidence bucket)</h3>" + _table(
                head, [[t.name, t.status, t.started_at, t.seconds, t.calls, t.error]
                       for t in later.timeline]) if later.timeline else "", "</section>"]


def _attacker(typed: ReportDocument) -> str:
    """The attacker's items in full: what cannot wait (read, let in, turned back on),
    then what was shut, what a human must undo and what AWS refused."""
    doc = typed.document
    out = "".join(f"<h3>{_text(title)}</h3>" + _table(head, rows, "cmd" if commands else "")
                  for title, head, rows, commands in
                  report_leads.tables(report_leads.leads_of(doc)))
    attacker = doc.attacker
    if not attacker:
        return out
    if attacker.cutoff:
        out += (f"<p>Temporary credentials of the user issued before "
                f"{_text(attacker.cutoff)} are denied.</p>")
    facts = attacker_facts(doc)
    if facts is not None and facts.regions_unread:
        out += ('<p class="bad">Containment may be incomplete: CloudTrail could not be read in '
                f"{_text([f'{r} ({e})' for r, e in facts.regions_unread.items()])}; what the "
                "attacker did there was not seen, so nothing it opened there was shut.</p>")
    parts: tuple[tuple[str, tuple[str, ...], list[list[Any]], str], ...] = (
        ("Attacker keys set Inactive", ("access key id", "user name", "already Inactive"),
         [[k.access_key_id, k.user_name, k.already] for k in attacker.keys_disabled], ""),
        ("Quarantined (deny-all policy)", ("type", "name", "keys disabled"),
         [[p.type, p.name, p.keys_disabled or "none"]
          for p in attacker.principals_quarantined], ""),
        ("Attacker role sessions denied", ("role name", "sessions"),
         [[r.role_name, r.sessions] for r in attacker.sessions_revoked], ""),
        ("Changed by the attacker, for a human to undo (left untouched)",
         ("event", "time", "access key id", "meaning", "resource", "what", "undo"),
         [[n.event_name, n.time, n.access_key_id, n.meaning, n.resource, n.what,
           report_leads.command(n.undo, n.manual, n.note)] for n in attacker.needs_human],
         "cmd"),
        ("Refused by AWS (nothing changed, nothing to undo)",
         ("event", "time", "access key id", "refused"),
         [[r.event_name, r.time, r.access_key_id, r.error_code]
          for r in (facts.refused if facts is not None else ())], ""))
    for title, keys, rows, cls in parts:
        out += f"<h3>{_text(title)}</h3>" + _table(keys, rows, cls)
    return out


def _rollback(raw: Mapping[str, Any] | None) -> str:
    """The containment undone: every reason, and what AWS showed when re-read."""
    if not raw:
        return ""
    rolled = RolledBack.from_detail(raw)
    return ('<div id="rollback"><h3>Rolled back (a false positive)</h3>'
            + _table(["time", "reason"], [[r.at, r.reason] for r in rolled.history])
            + _facts([("Re-read from AWS at", rolled.verified_at),
                      ("Seen", f"key {rolled.seen}"),
                      ("Keys Active again", [f"{k.access_key_id} of {k.user_name}"
                                             for k in rolled.keys_reactivated] or "none"),
                      ("Quarantines removed", [f"{q.type} {q.name}"
                                               for q in rolled.quarantines_removed] or "none"),
                      ("Sessions restored", [f"{r.role_name}: {', '.join(r.sessions)}"
                                             for r in rolled.sessions_restored] or "none"),
                      ("Left alone", list(rolled.left_alone) or "none")]) + "</div>")


def _notices(raw: Mapping[str, Any] | None) -> str:
    told = NoticeSent.from_detail(raw or {})  # a skipped step's detail: none, and its reason
    rows = [[n.channel, "sent", n.message_id] for n in told.sent]
    rows += [[n.channel, "FAILED", n.error] for n in told.failed]
    if not rows:
        return f'<p class="none">none ({_text((raw or {}).get("reason"), "not run")})</p>'
    return _table(["channel", "outcome", "message id or error"], rows)


def _details(typed: ReportDocument, told: Story) -> str:
    """What an investigator looks up after the story."""
    doc, more = typed.document, typed.extras
    sweep = doc.sweeps.next if doc.sweeps else None
    shut = [s for s in doc.steps if s.kind in SHUTTING]
    return _section("details", "Details", "<h3>Incident</h3>" + _facts(
        [*told.facts, ("Status", doc.status)] + ([("Error", doc.error)] if doc.error else []))
        + _rollback(more.rollback)
        + ("<h3>Steps that shut something</h3>"
           + _table(["step", "status", "ended"], [[s.name, s.status, s.ended_at]
                                                  for s in shut]) if shut else "")
        + _attacker(typed)
        + (f"<h3>AWS already acted</h3><p>AWS attached {_text(more.aws_quarantine)} to this "
           "user; the replacement key inherits its denials until the AWS support case says "
           "to detach it. This tool never detaches it.</p>" if more.aws_quarantine else "")
        + "<h3>Notifications</h3>" + _notices(more.notifications)
        + (f"<h3>Next sweep</h3><p>Due {_text(sweep.at)}:</p><pre><code>{_text(sweep.command)}"
           "</code></pre>" if sweep is not None else ""))


def render_html(doc: Mapping[str, Any], events: Events = ()) -> str:
    """html_of a report document held as JSON (a test's own, hand-made page)."""
    return html_of(ReportDocument.from_json(doc), events)


def html_of(typed: ReportDocument, events: Events = ()) -> str:
    """A page to attach to the ticket or mail an auditor. events: the cloudtrail.jsonl
    lines, read twice and never held (a list, or an EvidenceFile)."""
    told = story_of(typed.document, typed.extras)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        # Defence in depth: were escaping ever to fail, the browser still runs nothing.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>Incident {_text(typed.document.incident_id)} report</title>",
        f"<style>{STYLE}</style></head><body>", f"<h1>{_text(told.title)}</h1>",
        _headline(told), _list("did", "What the attacker did", [d.line for d in told.did]),
        _list("shut", "What was shut", told.shut),
        _list("read", "Credentials the attacker read — rotate each", told.read),
        _list("granted", "Access granted outside the account", told.granted),
        _todo(told.todo, typed.extras.next_actions), _evidence(told.evidence),
        *_timeline(told, typed, events), _list("hardening", "Hardening", told.hardening),
        _details(typed, told), "</body></html>", ""])


def page(view: IncidentView, journal: Journal | None = None) -> str:
    """The page for an incident as journaled, with its evidence file's events (streamed:
    memory does not grow with the file). With `journal` (and `view` loaded without its
    calls), the calls are counted from the journal a page at a time, so the thousands of
    LookupEvents pages of a large incident are never held either."""
    typed = report.report_of(view) if journal is None else report.counted_report(view, journal)
    evidence = typed.document.evidence
    return html_of(typed, EvidenceFile(evidence.path if evidence else None))
