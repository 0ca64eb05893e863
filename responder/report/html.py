"""report.html: the incident on one self-contained page, for those not at the terminal.

Values come from the report document (document.report_of) and CloudTrail (text the
attacker chose), so each goes through _text: redacted, as the page gets mailed around, and
escaped. Nothing is fetched, not even a font: it is opened offline from evidence archives
and must tell no one it was read.
"""

from __future__ import annotations

import html
import json
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, pairwise
from typing import TYPE_CHECKING, Any

from responder.context import iso, parse_iso
from responder.evidence.summary import HIGH_RISK
from responder.incident.facts import FactKind
from responder.incident.facts_rollback import RolledBack
from responder.incident.shapes import EvidenceSummary, marked, refusal
from responder.redaction import redact
from responder.report import document as report
from responder.report import leads as report_leads
from responder.report.markdown import attacker_facts
from responder.report.model import (
    EvidenceEntry,
    EvidenceSummaryEntry,
    ReportDocument,
    SessionEntry,
    TimelineEntry,
)

if TYPE_CHECKING:
    from responder.incident.view import IncidentView

# XML forbids these even escaped: one in an eventName would make the inline svg invalid.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
WIDTH, GUTTER, RIGHT, LABEL_ROWS, ROW = 980, 150, 24, 3, 18
HALF = 3.4  # half the width of a 10px character: labels that would overlap are left out
MAX_EVENTS = 400  # marks drawn at most: beyond, the lane is all ink; the file has them all
STATUS_FILL = {"done": "#2e7d32", "failed": "#c62828", "skipped": "#9e9e9e", "running": "#1565c0"}
TIP = ("eventName", "errorCode", "eventTime", "eventSource", "awsRegion", "sourceIPAddress",
       "eventID")
SHUTTING: tuple[FactKind, ...] = ("containment", "attacker")
"""The kinds of fact whose steps shut something: the key, its sessions, the attacker's."""
NONE = '<p class="none">none</p>'
STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:1.6em}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#eee}
code,.cmd td:last-child{font-family:monospace;font-size:12px;word-break:break-all}.none{color:#777}
.bad{color:#c62828}svg{background:#fcfcfc;border:1px solid #ddd}"""


def _text(value: Any) -> str:
    """The only way onto the page, so that nothing skips redaction or escaping."""
    value = redact(value)
    text = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    clean = html.escape(_NOT_XML.sub("", redact(text)), quote=True)
    return clean if value is not None and clean else "—"


def _when(value: Any) -> datetime | None:
    """A malformed or missing time is skipped, never fatal: the report must always render."""
    try:
        moment = parse_iso(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment.replace(tzinfo=moment.tzinfo or UTC) if moment else None


def _offset(seconds: float, digits: int) -> str:
    """`+3m5.25s`: relative, because what matters is how long things took."""
    minutes, sec = divmod(round(seconds, digits), 60)
    hours, mins = divmod(int(minutes), 60)
    days, hours = divmod(hours, 24)
    big = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "m")) if n)
    return f"+{big}{sec:.{digits}f}s"


@dataclass(frozen=True)
class _Scale:
    """Time to x, piecewise linear. The response is drawn to scale; a gap outside it no longer
    than the response (1 s at least), all of them no longer than three responses: an attacker
    busy for weeks before the key was reported does not squeeze the response into a pixel."""

    origin: datetime
    points: tuple[float, ...]
    shown: tuple[float, ...]
    cut: tuple[bool, ...]

    @classmethod
    def over(cls, times: Sequence[datetime], response: Sequence[datetime]) -> _Scale:
        ordered = sorted(set(times))
        secs = [(t - ordered[0]).total_seconds() for t in ordered]
        inside = [(t - ordered[0]).total_seconds() for t in response] or [0.0]
        lo, hi, span = min(inside), max(inside), max(1.0, max(inside) - min(inside))
        gaps = [b - a for a, b in pairwise(secs)]
        out = [a < lo or b > hi for a, b in pairwise(secs)]  # gaps outside the response
        cap = min(span, 3 * span / max(sum(out), 1))
        cut = tuple(o and g > cap for o, g in zip(out, gaps, strict=True))
        shown = accumulate((cap if c else g for c, g in zip(cut, gaps, strict=True)), initial=0.0)
        return cls(ordered[0], tuple(secs), tuple(shown), cut)

    def x(self, moment: datetime | float) -> float:
        pad = self.shown[-1] * 0.03 or 0.5  # all times equal: one point, drawn mid-axis
        at = moment if isinstance(moment, float) else (moment - self.origin).total_seconds()
        i = min(max(bisect_right(self.points, at) - 1, 0), len(self.points) - 1)
        j = min(i + 1, len(self.points) - 1)
        a, b, sa, sb = self.points[i], self.points[j], self.shown[i], self.shown[j]
        shown = sa + ((min(max(at, a), b) - a) / (b - a) * (sb - sa) if b > a else 0.0)
        return GUTTER + (shown + pad) / (self.shown[-1] + 2 * pad) * (WIDTH - GUTTER - RIGHT)

    def segments(self) -> list[tuple[float, float]]:
        """The runs drawn to scale: only within one do evenly spaced ticks mean anything."""
        cuts = [i for i, c in enumerate(self.cut) if c]
        bounds = zip([0, *(i + 1 for i in cuts)], [*cuts, len(self.points) - 1], strict=True)
        return [(self.points[a], self.points[b]) for a, b in bounds]


def _ticks(scale: _Scale, y: float) -> list[str]:
    """Ticks, and gaps dashed and labelled: compressed time must not pass for real time."""
    out, last = [], -1e9
    runs = scale.segments()
    for a, b in runs:
        n = max(1, int((scale.x(b) - scale.x(a)) / 110))
        step = (b - a) / n
        digits = 0 if step == 0 or step >= 10 else 1 if step >= 0.1 else 2
        for k in range(n + 1 if b > a else 1):
            x = scale.x(s := a + step * k)
            half = HALF * len(label := _offset(s, digits))
            if (spot := min(x, WIDTH - half - 2)) - half >= last:
                out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" '
                           f'stroke="#555"/><text x="{spot:.1f}" y="{y + 15}" '
                           f'text-anchor="middle">{_text(label)}</text>')
                last = spot + half + 10
    last = -1e9
    for (_, a), (b, _) in pairwise(runs):  # dashed: not to scale; how long, where it fits
        x0, x1, gap = scale.x(a), scale.x(b), _text(_offset(b - a, 0)[1:])
        out.append(f'<line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" stroke="#fcfcfc" '
                   f'stroke-dasharray="3 3"><title>{gap} not drawn to scale</title></line>')
        if (mid := (x0 + x1) / 2) - HALF * len(gap) - 8 >= last:
            last = mid + HALF * len(gap) + 16
            out.append(f'<text x="{mid:.1f}" y="{y - 4}" text-anchor="middle">≈ {gap}</text>')
    return out


def _svg(report: ReportDocument, events: Sequence[Mapping[str, Any]]) -> str:
    """Attacker and responder on one time axis: how long the attacker had, at a glance."""
    dated = [(t, e) for e in events if (t := _when(e.get("eventTime")))]
    # High-risk events are the ones drawn when there are too many (sorts are stable).
    dated.sort(key=lambda p: str(p[1].get("eventName")) not in HIGH_RISK)
    marks = sorted(dated[:MAX_EVENTS], key=lambda p: p[0])
    steps = [(s, t, _when(s.ended_at))
             for s in report.extras.timeline if (t := _when(s.started_at))]
    contained = _when(report.document.contained_at)
    response = [t for _, t, _ in steps] + [e for *_, e in steps if e]
    response += [t for t in (_when(report.document.started_at), contained) if t]
    times = [t for t, _ in marks] + response
    lane = 26 + LABEL_ROWS * 12  # the attacker's baseline, below its rows of labels
    axis = lane + 36 + ROW * len(steps)
    out = [f'<svg width="{WIDTH}" height="{axis + 40}" viewBox="0 0 {WIDTH} {axis + 40}" '
           'role="img" font-family="sans-serif" font-size="10"><title>timeline</title>',
           f'<text x="8" y="{lane}" font-weight="bold">attacker</text>',
           f'<line x1="0" y1="{lane + 8}" x2="{WIDTH}" y2="{lane + 8}" stroke="#ddd"/>',
           f'<text x="8" y="{lane + 24}" font-weight="bold">responder</text>',
           f'<line x1="{GUTTER}" y1="{axis}" x2="{WIDTH - RIGHT}" y2="{axis}" stroke="#555"/>']
    if not times:
        return "".join([*out, f'<text x="{GUTTER}" y="{lane}">no times recorded</text></svg>'])
    scale = _Scale.over(times, response)
    ends = [-1e9] * LABEL_ROWS
    for moment, event in marks:
        x, name = scale.x(moment), str(event.get("eventName") or "?")
        who = ui if isinstance(ui := event.get("userIdentity"), Mapping) else {}
        tip = " | ".join(_text(v) for v in (*(event.get(k) for k in TIP), who.get("accessKeyId")))
        half = HALF * min(len(name), 40)
        spot = min(max(x, half + 2), WIDTH - half - 2)
        row = next((r for r in range(LABEL_ROWS) if ends[r] < spot - half), None)
        label = "" if row is None else (f'<text x="{spot:.1f}" y="{22 + row * 12}" '
                                        f'text-anchor="middle">{_text(name[:40])}</text>')
        if row is not None:
            ends[row] = spot + half + 8
        fill = "#9e9e9e" if refusal(event) else "#c62828" if name in HIGH_RISK else "#ef6c00"
        out.append(f'<g><title>{tip}</title><circle cx="{x:.1f}" cy="{lane - 4}" r="4" '
                   f'fill="{fill}"/>{label}</g>')
    for i, (step, start, end) in enumerate(steps):
        y, x0 = lane + 30 + i * ROW, scale.x(start)
        width = max((scale.x(end) if end else x0) - x0, 3.0)
        tip = " | ".join(_text(v) for v in (step.step, step.status, step.started_at,
                                            step.ended_at, step.error))
        out.append(f'<g><title>{tip}</title><text x="{GUTTER - 6}" y="{y + 11}" '
                   f'text-anchor="end">{_text(step.step)}</text><rect x="{x0:.1f}" '
                   f'y="{y}" width="{width:.1f}" height="{ROW - 4}" '
                   f'fill="{STATUS_FILL.get(step.status, "#757575")}"/></g>')
    if contained:
        x = scale.x(contained)
        out.append(f'<line x1="{x:.1f}" y1="12" x2="{x:.1f}" y2="{axis}" stroke="#1565c0" '
                   f'stroke-dasharray="4 3"/><text x="{x:.1f}" y="10" fill="#1565c0" '
                   f'text-anchor="{"end" if x > WIDTH - 60 else "start"}">contained</text>')
    hidden, notes = len(events) - len(marks), [f"time after {iso(scale.origin)}"]
    notes += ["a dashed axis (≈) is not to scale"] if len(scale.segments()) > 1 else []
    notes += [f"{hidden} events not drawn (no time, or over {MAX_EVENTS})"] if hidden else []
    out.append(f'<text x="{GUTTER}" y="{axis + 34}">{_text("; ".join(notes))}</text>')
    return "".join([*out, *_ticks(scale, axis), "</svg>"])


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "") -> str:
    body = "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in r) + "</tr>" for r in rows)
    heads = "".join(f"<th>{_text(h)}</th>" for h in head)
    return f'<table class="{cls}"><tr>{heads}</tr>{body}</table>' if body else NONE


def _facts(rows: Iterable[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>"
                               for k, v in rows) + "</table>"


def _header(report: ReportDocument) -> str:
    doc, took = report.document, report.extras.time_to_contain_seconds
    session = doc.session or SessionEntry()
    who = (f"session {session.role_name}/{session.session_name}"
           if session.role_name else doc.user_name or session.user_name)
    return (f"<header><h1>Incident {_text(doc.incident_id)}</h1>" + _facts([
        ("Access key", doc.access_key_id), ("User", who),
        ("Account", doc.account_id), ("Status", doc.status),
        ("Playbook", doc.playbook), ("Started", doc.started_at),
        ("Contained", doc.contained_at or "not contained"),
        ("Time to contain", f"{took:.3f} s" if isinstance(took, (int, float)) else None)])
        + (f'<p class="bad">{_text(doc.error)}</p>' if doc.error else "") + "</header>")


def _calls(step: TimelineEntry) -> str:
    """Each AWS API called and how often; retries and failures only where there were some."""
    labels: dict[str, int] = {}
    for c in step.calls:
        notes = [f"{c.attempts} attempts"] if c.attempts != 1 else []
        notes += [] if c.outcome == "ok" else [str(c.outcome)]
        label = str(c.api) + (f" ({', '.join(notes)})" if notes else "")
        labels[label] = labels.get(label, 0) + 1
    return ", ".join(f"{k} x{n}" if n > 1 else k for k, n in labels.items())


def _evidence(report: ReportDocument) -> str:
    """What an investigator checks first, and which file (and digest) holds the rest."""
    kept, found = report.document.evidence, report.extras.evidence_summary
    if kept is None and found is None:
        return '<p class="none">no evidence collected</p>'
    found = found or EvidenceSummaryEntry()
    now = kept or EvidenceEntry(found.events, found.regions, found.path, found.sha256)
    summary = found.summary or EvidenceSummary()
    regions, risky = [str(r) for r in now.regions], summary.high_risk
    more = summary.high_risk_total - len(risky)
    return _facts([
        ("Events", now.events), ("sha256", now.sha256),
        ("Regions searched", f"{len(regions)}: {', '.join(regions)}"),
        ("Regions failed", list(found.regions_failed)), ("File", now.path),
        ("Copy", now.s3_uri), ("Not copied", now.archive_error),
        ("First / last event", f"{summary.first_event} / {summary.last_event}"),
        ("Temporary keys", [t.access_key_id for t in found.temporary_keys]),
        ("Roles assumed", list(found.roles_assumed)), ("Source IPs (events)", [
            f"{ip} ({n})" for ip, n in summary.source_ips.items()]),
    ]) + "<h3>High-risk actions</h3>" + _table(  # a refused call is marked so
        ["action", "time", "region", "source IP", "key"],
        [[marked(e), *(e.get(k) for k in ("eventTime", "region", "sourceIPAddress",
                                          "accessKeyId"))] for e in risky]) + (
        f"<p>and {more} more in the evidence file</p>" if more > 0 else "")


def _shut(report: ReportDocument) -> str:
    """The steps that shut something (by the kind of fact they establish), then what the
    attacker read and let in from outside (first), what it opened and what was shut."""
    steps = [s for s in report.document.steps if s.kind in SHUTTING]
    out = _table(["step", "status", "ended", "what"], [[
        s.name, s.status, s.ended_at, "; ".join(
            f"{k}={v}" for k, v in sorted(s.detail.items())
            if isinstance(v, (str, int, float, bool)))] for s in steps])
    attacker, leads = report.document.attacker, report_leads.leads_of(report.document)
    for title, head, rows, commands in report_leads.tables(leads):  # what cannot wait
        out += f"<h3>{_text(title)}</h3>" + _table(head, rows, "cmd" if commands else "")
    if not attacker:
        return out
    if attacker.cutoff:
        out += (f"<p>Temporary credentials of the user issued before "
                f"{_text(attacker.cutoff)} are denied.</p>")
    facts = attacker_facts(report.document)
    if facts is not None and facts.regions_unread:
        out += ('<p class="bad">Containment may be incomplete: CloudTrail could not be read in '
                f"{_text([f'{r} ({e})' for r, e in facts.regions_unread.items()])}; what the "
                "attacker did there was not seen, so nothing it opened there was shut.</p>")
    parts: tuple[tuple[str, tuple[str, ...], list[list[Any]], str], ...] = (
        ("Attacker keys set Inactive", ("access_key_id", "user_name", "already"),
         [[k.access_key_id, k.user_name, k.already] for k in attacker.keys_disabled], ""),
        ("Quarantined (deny-all policy)", ("type", "name", "keys_disabled"),
         [[p.type, p.name, p.keys_disabled] for p in attacker.principals_quarantined], ""),
        ("Attacker role sessions denied", ("role_name", "sessions"),
         [[r.role_name, r.sessions] for r in attacker.sessions_revoked], ""),
        ("Changed by the attacker, for a human to undo (left untouched)",
         ("event_name", "time", "access_key_id", "meaning", "what", "undo"),
         [[n.event_name, n.time, n.access_key_id, n.meaning, n.what,
           report_leads.command(n.undo, n.manual, n.note)] for n in attacker.needs_human],
         "cmd"),
        ("Refused by AWS (nothing changed, nothing to undo)",
         ("event_name", "time", "access_key_id", "refused"),
         [[r.event_name, r.time, r.access_key_id, r.error_code]
          for r in (facts.refused if facts is not None else ())], ""))
    for title, keys, rows, cls in parts:
        out += f"<h3>{title}</h3>" + _table([k.replace("_", " ") for k in keys], rows, cls)
    return out


def _rollback(raw: Mapping[str, Any] | None) -> str:
    """The containment undone: every reason, and what AWS showed when re-read."""
    if not raw:
        return ""
    rolled = RolledBack.from_detail(raw)
    return ('<section id="rollback"><h2>Rolled back (a false positive)</h2>'
            + _table(["time", "reason"], [[r.at, r.reason] for r in rolled.history])
            + _facts([("Re-read from AWS at", rolled.verified_at),
                      ("Seen", f"key {rolled.seen}"),
                      ("Keys Active again", [f"{k.access_key_id} of {k.user_name}"
                                             for k in rolled.keys_reactivated]),
                      ("Quarantines removed", [f"{q.type} {q.name}"
                                               for q in rolled.quarantines_removed]),
                      ("Sessions restored", [f"{r.role_name}: {', '.join(r.sessions)}"
                                             for r in rolled.sessions_restored]),
                      ("Left alone", list(rolled.left_alone))]) + "</section>")


def render_html(doc: Mapping[str, Any], events: Sequence[Mapping[str, Any]] = ()) -> str:
    """html_of a report document held as JSON (a test's own, hand-made page)."""
    return html_of(ReportDocument.from_json(doc), events)


def html_of(report: ReportDocument, events: Sequence[Mapping[str, Any]] = ()) -> str:
    """A page to attach to the ticket or mail an auditor; events: the cloudtrail.jsonl lines."""
    doc = report.document
    nexts = "".join(f"<li>{_text(a)}</li>" for a in report.extras.next_actions)
    sweep = doc.sweeps.next if doc.sweeps else None
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        # Defence in depth: were escaping ever to fail, the browser still runs nothing.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>Incident {_text(doc.incident_id)} report</title>",
        f"<style>{STYLE}</style></head><body>", _header(report),
        _rollback(report.extras.rollback),
        '<section id="timeline"><h2>Timeline</h2>', _svg(report, events),
        _table(["step", "status", "started", "seconds", "AWS calls", "error"], [
            [t.step, t.status, t.started_at, t.duration_seconds, _calls(t), t.error]
            for t in report.extras.timeline]), "</section>",
        '<section id="evidence"><h2>Evidence</h2>', _evidence(report), "</section>",
        '<section id="shut"><h2>What was shut</h2>', _shut(report), "</section>",
        '<section id="next"><h2>Next actions</h2>',
        f"<ol>{nexts}</ol>" if nexts else NONE,
        f"<p>Next sweep due {_text(sweep.at)}: <code>{_text(sweep.command)}"
        "</code></p>" if sweep is not None else "", "</section></body></html>", ""])


def page(view: IncidentView) -> str:
    """The page for an incident as journaled, with its evidence file's events."""
    typed = report.report_of(view)
    return html_of(typed, _events(typed.document.evidence.path
                                  if typed.document.evidence else None))


def _events(path: Any) -> list[dict[str, Any]]:
    """The evidence file's events; none when it is gone or unreadable (the page says so)."""
    if not path:
        return []
    events: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    events.append(event)
    except OSError:
        return []
    return events
