"""What a responder wants to see first: what was called, from where, and what was risky.

Fed one record at a time; holds counters whose size depends on how varied the attacker
was, not on how many events there were.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from responder.catalog.registry import EVENT_NAMES, entry_for
from responder.incident.shapes import EvidenceSummary, refusal

HIGH_RISK_BESIDES = frozenset({"ConsoleLogin"})
"""High-risk events the attacker-change catalog does not hold (they change nothing to
undo); everything the catalog knows is high-risk too (responder.catalog.registry)."""
HIGH_RISK = HIGH_RISK_BESIDES | EVENT_NAMES
"""By name alone, for a reader that has only names (the report's timeline)."""
MAX_HIGH_RISK = 500
TOP = 50


class Summary:
    """Streaming counters over CloudTrail records."""

    def __init__(self) -> None:
        self.events = 0
        self.by_name: Counter[str] = Counter()
        self.source_ips: Counter[str] = Counter()
        self.user_agents: Counter[str] = Counter()
        self.regions: Counter[str] = Counter()
        self.by_key: Counter[str] = Counter()
        self.first: str | None = None
        self.last: str | None = None
        self.high_risk: list[dict[str, Any]] = []
        self.high_risk_total = 0

    def add(self, record: dict[str, Any]) -> None:
        self.events += 1
        name = str(record.get("eventName", "?"))
        self.by_name[name] += 1
        self.source_ips[str(record.get("sourceIPAddress", "?"))] += 1
        self.user_agents[str(record.get("userAgent", "?"))] += 1
        self.regions[str(record.get("awsRegion", record.get("lookupRegion", "?")))] += 1
        self.by_key[str(record.get("userIdentity", {}).get("accessKeyId", "?"))] += 1
        when = record.get("eventTime")
        if isinstance(when, str):
            self.first = when if self.first is None or when < self.first else self.first
            self.last = when if self.last is None or when > self.last else self.last
        if name in HIGH_RISK_BESIDES or entry_for(record) is not None:
            self.high_risk_total += 1
            if len(self.high_risk) < MAX_HIGH_RISK:
                self.high_risk.append({
                    "eventName": name,
                    "eventTime": when,
                    "region": record.get("awsRegion"),
                    "sourceIPAddress": record.get("sourceIPAddress"),
                    "accessKeyId": record.get("userIdentity", {}).get("accessKeyId"),
                    "errorCode": record.get("errorCode"),
                    # AWS refused it (CloudTrail writes errorCode at the record's top
                    # level): it changed nothing, and every reader marks it so.
                    "refused": refusal(record) is not None,
                })

    def shape(self) -> EvidenceSummary:
        """The counters as the facts keep them (the top of each, high-risk by time)."""
        return EvidenceSummary(
            events=self.events,
            by_event_name=dict(self.by_name.most_common()),
            source_ips=dict(self.source_ips.most_common(TOP)),
            distinct_source_ips=len(self.source_ips),
            user_agents=dict(self.user_agents.most_common(TOP)),
            regions=dict(sorted(self.regions.items())),
            by_access_key=dict(sorted(self.by_key.items())),
            first_event=self.first,
            last_event=self.last,
            high_risk=tuple(sorted(self.high_risk, key=lambda e: str(e["eventTime"]))),
            high_risk_total=self.high_risk_total,
        )
