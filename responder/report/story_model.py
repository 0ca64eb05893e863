"""The story's parts (responder.report.story builds them): plain data, every value
already words, so that no renderer formats a None, a bool or a mapping itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from responder.redaction import redact
from responder.report.todo import Todo

TIMES = "\N{MULTIPLICATION SIGN}"
TOP = 8
"""Source IPs and user agents named in the evidence section; the file has them all."""
HIGH_RISK_SHOWN = 20
"""High-risk events listed one per line; the rest are counted."""


def words(value: object, empty: str = "not recorded") -> str:
    """A value as text a person reads: never `None`, `True` or a Python repr."""
    if value is None or value == "":
        return empty
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {words(v)}" for k, v in value.items()) or empty
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(words(v) for v in value) or empty
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def counted(name: str, count: int) -> str:
    """`CreateUser`, or `LookupEvents` times 48 (the multiplication sign) for a name
    repeated: the issue's own notation, which reads at a glance."""
    return name if count == 1 else f"{name} {TIMES}{count}"


@dataclass(frozen=True)
class Did:
    """A group of the attacker's calls sharing one meaning (from the catalog)."""

    meaning: str
    events: tuple[tuple[str, int], ...]
    refused: tuple[tuple[str, str], ...] = ()
    """(event name, error code) of calls AWS refused: they changed nothing."""

    @property
    def line(self) -> str:
        done = ", ".join(counted(n, c) for n, c in self.events)
        no = ", ".join(f"{n} ({code})" for n, code in self.refused)
        return f"{self.meaning}: {done}" + (f"; refused by AWS: {no}" if no else "")


@dataclass(frozen=True)
class Risky:
    """One high-risk event as every medium lists it."""

    name: str
    time: str
    region: str
    source_ip: str
    access_key_id: str
    refused: str = ""
    """AWS's error code when it refused the call (it changed nothing)."""

    @property
    def label(self) -> str:
        return self.name + (f" (refused: {self.refused})" if self.refused else "")


@dataclass(frozen=True)
class EvidenceStory:
    """Where the evidence is, what was read, and what an investigator checks first."""

    events: int
    path: str
    sha256: str
    regions_read: tuple[str, ...]
    regions_unread: tuple[tuple[str, str], ...]
    first_event: str
    last_event: str
    source_ips: tuple[tuple[str, int], ...]
    user_agents: tuple[tuple[str, int], ...]
    high_risk: tuple[Risky, ...]
    high_risk_total: int
    temporary_keys: tuple[str, ...] = ()
    roles_assumed: tuple[str, ...] = ()
    copy: str = ""
    not_copied: str = ""

    @property
    def lines(self) -> tuple[str, ...]:
        """The section as plain lines (terminal and SNS lay it out this way)."""
        out = [f"{self.events} CloudTrail events, {self.first_event} to {self.last_event}",
               f"file {self.path} (sha256 {self.sha256})"]
        out += [f"copy in {self.copy}"] if self.copy else []
        out += [f"NOT copied to the evidence bucket: {self.not_copied}"] if self.not_copied \
            else []
        out.append(f"regions read: {len(self.regions_read)}"
                   + (f"; NOT read: {', '.join(r for r, _ in self.regions_unread)}"
                      if self.regions_unread else ""))
        out.append("source IPs: " + (", ".join(counted(ip, n) for ip, n in self.source_ips)
                                     or "none recorded"))
        out.append("user agents: " + (", ".join(counted(ua, n) for ua, n in self.user_agents)
                                      or "none recorded"))
        if self.temporary_keys:
            out.append(f"temporary keys minted: {', '.join(self.temporary_keys)}")
        if self.roles_assumed:
            out.append(f"roles assumed: {', '.join(self.roles_assumed)}")
        out.append(f"high-risk actions: {self.high_risk_total}")
        out += [f"  {r.label} at {r.time} in {r.region} from {r.source_ip} with "
                f"{r.access_key_id}" for r in self.high_risk[:HIGH_RISK_SHOWN]]
        if (more := self.high_risk_total - min(len(self.high_risk), HIGH_RISK_SHOWN)) > 0:
            out.append(f"  and {more} more in the evidence file")
        return tuple(out)


@dataclass(frozen=True)
class StepLine:
    """A step of the timeline, its AWS calls grouped (`cloudtrail:LookupEvents`, times 48)."""

    name: str
    status: str
    started_at: str
    seconds: str
    calls: tuple[str, ...]
    error: str = ""


@dataclass(frozen=True)
class Story:
    """The sections every medium tells, in the order it tells them."""

    incident_id: str
    title: str
    state: str
    """CONTAINED, NOT CONTAINED, PLANNED, REFUSED, CLOSED, ROLLED BACK, ROTATION,
    RETIRED, KEPT, NOT RETIRED."""
    headline: str
    verified: str
    """What AWS showed when the incident's claims were last re-read, and when."""
    alerts: tuple[str, ...]
    """What must be seen with the headline: a region unread, a halt, a failed notice."""
    facts: tuple[tuple[str, str], ...]
    did: tuple[Did, ...]
    shut: tuple[str, ...]
    read: tuple[str, ...]
    granted: tuple[str, ...]
    todo: tuple[Todo, ...]
    evidence: EvidenceStory | None
    timeline: tuple[StepLine, ...]
    hardening: tuple[str, ...]


_T = TypeVar("_T")


def scrubbed(value: _T) -> _T:
    """`value` with every string in it through `redact`: a message leaves the responder
    with no secret in it even if one reached the journal."""
    out: Any = value
    if isinstance(value, str):
        out = str(redact(value))
    elif isinstance(value, tuple):
        out = tuple(scrubbed(v) for v in value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = dataclasses.replace(value, **{f.name: scrubbed(getattr(value, f.name))
                                            for f in dataclasses.fields(value) if f.init})
    return out  # type: ignore[no-any-return]


__all__ = ["HIGH_RISK_SHOWN", "TIMES", "TOP", "Did", "EvidenceStory", "Risky", "StepLine",
           "Story", "counted", "scrubbed", "words"]
