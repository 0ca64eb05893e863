"""What every reader of an incident says first: the credentials the attacker read (rotate
each), the principals outside the account it let in, and the defenses it turned off that
were turned back on.

Gathered from contain-attacker's facts and each sweep's (typed: the document's attacker
and sweep entries, or the facts themselves), each told once, and worded here once, so the
terminal headline, the notice, report.md and report.html say the same thing. Each reader
lays them out its own way and escapes or redacts as its medium needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from responder.incident.shapes import CredentialRead, OutsideGrant, RestoredDefense
from responder.report.model import IncidentDocument
from responder.report.todo import MANUAL, Todo

EVERYONE = "*"
AGAIN = {"trail": "logs", "detector": "detects", "recorder": "records"}
"""What each kind of defense does again once it is back on."""


class Carrier(Protocol):
    """contain-attacker's facts, a sweep's, or the document's entries of either."""

    @property
    def credentials_read(self) -> tuple[CredentialRead, ...]: ...

    @property
    def granted_to(self) -> tuple[OutsideGrant, ...]: ...

    @property
    def restored(self) -> tuple[RestoredDefense, ...]: ...


@dataclass(frozen=True)
class Leads:
    """What to say first, each item once, in the order the steps found them."""

    credentials_read: tuple[CredentialRead, ...] = ()
    granted_to: tuple[OutsideGrant, ...] = ()
    restored: tuple[RestoredDefense, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.credentials_read or self.granted_to or self.restored)

    @property
    def principals(self) -> tuple[str, ...]:
        """The outside principals, each once, in words (`everyone (*)`)."""
        return _once(principal(g.principal) for g in self.granted_to)

    @property
    def resources(self) -> tuple[str, ...]:
        """What they were let in to, each once."""
        return _once(g.resource or "?" for g in self.granted_to)


def _once(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def gathered(carriers: Iterable[Carrier | None]) -> Leads:
    """Every carrier's items, the first telling of each kept (a sweep names again what
    contain-attacker read or restored before it)."""
    creds: dict[tuple[str, str, str | None], CredentialRead] = {}
    grants: dict[tuple[str, str, str], OutsideGrant] = {}
    restored: dict[tuple[str, str, str], RestoredDefense] = {}
    for found in carriers:
        if found is None:
            continue
        for c in found.credentials_read:
            creds.setdefault((c.kind, c.name, c.region), c)
        for g in found.granted_to:
            grants.setdefault((g.principal, g.resource, g.what), g)
        for r in found.restored:
            restored.setdefault((r.kind, r.name, r.region), r)
    return Leads(tuple(creds.values()), tuple(grants.values()), tuple(restored.values()))


def leads_of(doc: IncidentDocument) -> Leads:
    """The incident's: contain-attacker's, then each finished sweep's."""
    sweeps = doc.sweeps.done if doc.sweeps is not None else ()
    return gathered([doc.attacker, *(s for s in sweeps if s.status == "done")])


# --------------------------------------------------------------------------- words


def principal(who: str) -> str:
    """An outside principal in words: `*` is everyone."""
    return "everyone (*)" if who == EVERYONE else who or "?"


def credential(c: CredentialRead) -> str:
    """`secret prod/db (us-east-1)`."""
    return f"{c.kind or 'credential'} {c.name or '?'}" + (f" ({c.region})" if c.region else "")


def grant(g: OutsideGrant) -> str:
    """`everyone (*) on snap-1: snapshot snap-1 shared with all accounts`."""
    return f"{principal(g.principal)} on {g.resource or '?'}" + (f": {g.what}" if g.what else "")


def defense(r: RestoredDefense) -> str:
    """`trail main logs again in us-east-1`."""
    again = f"{AGAIN.get(r.kind, 'is on')} again"
    return f"{r.kind or 'defense'} {r.name or '?'} {again} in {r.region or '?'}" + (
        " (already back on when read: nothing changed)" if r.already else "")


def when(event_name: str | None, time: str | None) -> str:
    """`GetSecretValue at 2026-03-01T11:10:00Z`, or what of it is known."""
    return " at ".join(x for x in (event_name, time) if x) or "event not recorded"


def headline(leads: Leads) -> list[str]:
    """The terminal summary's lines, right under its evidence gap: what to rotate (the
    commands are in what a human must do), who outside the account got in, what logs
    again."""
    lines: list[str] = []
    creds = leads.credentials_read
    if creds:
        lines.append(f"  CREDENTIALS READ: {len(creds)} — rotate: "
                     + ", ".join(c.name or "?" for c in creds))
        lines += [f"    {credential(c)}" for c in creds]
    if leads.granted_to:
        lines.append(f"  ACCESS GRANTED OUTSIDE THE ACCOUNT: {', '.join(leads.principals)} "
                     f"({', '.join(leads.resources)})")
    if leads.restored:
        lines.append(f"  RESTORED: {'; '.join(defense(r) for r in leads.restored)}")
    return lines


def actions(leads: Leads) -> list[Todo]:
    """The notice's first next actions: rotate each credential, shut each outside grant;
    then what logs again."""
    out = [Todo(f"Rotate {credential(c)}: the attacker read it ({when(c.event_name, c.time)}"
                + (f" with {c.access_key_id}" if c.access_key_id else "") + ")",
                (c.rotate,) if c.rotate else (), manual=c.manual and bool(c.rotate),
                note=c.note or ("" if c.rotate else "no command known: rotate it by hand"))
           for c in leads.credentials_read]
    out += [Todo(f"Access granted outside the account: {grant(g)} "
                 f"({when(g.event_name, g.time)}): remove that access first (its undo is "
                 "listed below)") for g in leads.granted_to]
    out += [Todo(f"Turned back on: {defense(r)}; the attacker had turned it off, so review "
                 "what it did not record while off") for r in leads.restored]
    return out


Table = tuple[str, tuple[str, ...], list[list[str]], bool]
"""A title, the column heads, the rows, and whether the last column holds commands:
markup left to the reader."""


def command(text: str, manual: bool, note: str = "") -> str:
    """A command as a table shows it, marked when it must be edited first, its note
    after it (never inside it: the command pastes as printed)."""
    return text + (f" ({MANUAL})" if manual and text else "") + after(text, note)


def after(text: str, note: str) -> str:
    """A note following a command (or standing alone where there is none)."""
    return (f" — {note}" if text else note) if note else ""


def tables(leads: Leads) -> list[Table]:
    """The attacker part's opening tables (those with rows), commands in the last
    column: what to rotate, who outside got in, what was turned back on."""
    out: list[Table] = []
    if leads.credentials_read:
        out.append(("Credentials the attacker read — rotate each",
                    ("name", "kind", "region", "read", "rotate with"),
                    [[c.name, c.kind, c.region or "", when(c.event_name, c.time),
                      command(c.rotate, c.manual, c.note) or "by hand: no command known"]
                     for c in leads.credentials_read], True))
    if leads.granted_to:
        out.append(("Access granted outside the account",
                    ("principal", "resource", "what", "event"),
                    [[principal(g.principal), g.resource, g.what, when(g.event_name, g.time)]
                     for g in leads.granted_to], False))
    if leads.restored:
        out.append(("Defenses turned back on", ("kind", "name", "region", "now"),
                    [[r.kind, r.name, r.region, defense(r)] for r in leads.restored], False))
    return out
