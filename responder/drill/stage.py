"""One drill's stage: the fake account, the attacker's hands and the responder, as every
scenario receives them (scenarios.py and instance.py both play on it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from responder import playbook
from responder.context import RunContext
from responder.drill.checks import Check
from responder.drill.cloudtrail import CloudTrailFake
from responder.drill.world import Attacker, World
from responder.errors import ResponderError
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.run import service


@dataclass
class Stage:
    """One drill's account, attacker and responder, handed to its scenario."""

    world: World
    trail: CloudTrailFake
    sessions: Callable[[], boto3.Session]
    ctx: RunContext
    journal: SqliteJournal
    hands: Attacker

    @property
    def iam(self) -> Any:
        return self.sessions().client("iam")

    def respond(self, ctx: RunContext | None = None) -> str:
        """`respond compromised` on the leaked key; the incident's id, however it ended."""
        try:
            return service.respond(ctx or self.ctx, self.journal,
                                   playbook.load("compromised-key"), self.world.leaked_key).id
        except ResponderError as exc:
            if exc.incident_id is None:
                raise
            return exc.incident_id

    def view(self, incident_id: str) -> IncidentView:
        return IncidentView.load(self.journal, incident_id, calls=True)


Played = tuple[str, list[Check]]
"""The incident a scenario opened, and its own checks."""
