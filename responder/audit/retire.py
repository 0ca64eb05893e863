"""`respond audit --deactivate-unused DAYS`: the audit's unused keys set Inactive, one
incident of playbooks/retire-unused-key.yaml per key.

One incident per key, because the journal's guard and AWS's own state then keep each key
exactly-once across runners and crashes, `status`/`report` show each, and `respond
rollback ID --yes` undoes one key without touching the others. The audit only proposes:
the step asks AWS again before acting (the credential report may be four hours old).
A key whose earlier retirement was rolled back is not retired again: someone said it is
needed, and the plan says so instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from responder import playbook
from responder.audit.credential_report import Finding
from responder.context import RunContext, parse_iso
from responder.errors import ResponderError
from responder.incident.action import REGISTRY
from responder.incident.view import IncidentView
from responder.journal import IncidentRecord, Journal
from responder.report.incident_document import document_of
from responder.report.story import story_of
from responder.run.service import is_retirement, open_routine

PLAYBOOK = "retire-unused-key"


@dataclass(frozen=True)
class Candidate:
    """A key the audit found unused for more than DAYS days."""

    account_id: str
    user: str
    access_key_id: str
    idle_days: int
    last_used: str | None
    """None: never used (idle since it was made)."""
    held_back: str | None = None
    """Why it is not retired although unused (an earlier retirement rolled back)."""

    def line(self) -> str:
        used = f"last used {self.last_used}" if self.last_used else "never used"
        said = f"{self.access_key_id} of {self.user} in {self.account_id}: unused for " \
               f"{self.idle_days} days ({used})"
        return f"{said}; left Active: {self.held_back}" if self.held_back else said


@dataclass(frozen=True)
class Outcome:
    """One key's retirement as its incident ended (or why none could be opened)."""

    candidate: Candidate
    record: IncidentRecord | None
    error: str | None = None
    state: str | None = None
    """The incident's state as its report tells it: RETIRED, KEPT, NOT RETIRED, ...;
    None when no incident was opened."""
    headline: str | None = None

    @property
    def retired_or_kept(self) -> bool:
        return self.state in {"RETIRED", "KEPT"}


def candidates(found: Sequence[tuple[str, Finding]], days: int, now: datetime
               ) -> list[Candidate]:
    """The key findings idle for more than `days` (by the report's last use, or its
    last rotation when never used). One whose key id could not be listed is held back,
    and says so: nothing can be retired by a slot name."""
    out: list[Candidate] = []
    for account, f in found:
        details = f.details
        since = details.get("last_used") or details.get("last_rotated")
        when = parse_iso(str(since)) if since else None
        if not f.credential.startswith("access_key_") or when is None \
                or (now - when).days <= days:
            continue
        out.append(Candidate(
            account, f.user, f.access_key_id or f"<{f.credential} of {f.user}>",
            (now - when).days, details.get("last_used"),
            None if f.access_key_id else "its key id could not be listed (ListAccessKeys "
            "refused?): retire it by hand"))
    return out


def held_back(journal: Journal, wanted: Sequence[Candidate]) -> list[Candidate]:
    """Each candidate, marked when an earlier retirement of its key was rolled back."""
    out = []
    for c in wanted:
        if c.held_back:
            out.append(c)
            continue
        rolled = [IncidentView.load(journal, r.id).rolled_back
                  for r in journal.history_for_key(c.access_key_id) if is_retirement(r)]
        back = next((r for r in reversed(rolled) if r is not None), None)
        out.append(c if back is None else dataclasses.replace(
            c, held_back=f"its retirement was rolled back ({back.reason or back.why}); "
                         "retire it by hand once nothing needs it"))
    return out


def playbook_for(days: int) -> playbook.Playbook:
    """The shipped playbook with the retirement step's threshold set to `days` (journaled
    with the incident, so a resume keeps it)."""
    shipped = playbook.load(PLAYBOOK)
    steps = tuple(dataclasses.replace(s, settings={**s.settings, "unused_days": days})
                  if REGISTRY.kind_of(s.action) == "retirement" else s for s in shipped.steps)
    return dataclasses.replace(shipped, steps=steps)


def retire(ctx: RunContext, journal: Journal, access_key_id: str, days: int) -> IncidentRecord:
    """Open the key's retirement and run it to the end (or join the one cut short)."""
    return open_routine(
        ctx, journal, playbook_for(days), access_key_id, what="retirement",
        joins=is_retirement,
        busy=lambda existing: (
            f"{existing.access_key_id} has an open incident {existing.id} ({existing.status}): "
            "not retired while it is open"))


def retire_all(ctx: RunContext, journal: Journal, wanted: Sequence[Candidate], days: int,
               progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Each candidate not held back, one after another (IAM's write quota is per account,
    and a handful of keys is the usual case); a refusal or a failure is that key's
    outcome, never the end of the others. A key in another account is reached as every
    incident reaches one: through RESPONDER_ROLE_ARN_TEMPLATE's role there."""
    done: list[Outcome] = []
    for c in wanted:
        if c.held_back:
            continue
        try:
            outcome = Outcome(c, retire(ctx, journal, c.access_key_id, days))
        except ResponderError as exc:  # halted or refused: its incident, if one opened
            opened = [r for r in journal.history_for_key(c.access_key_id)
                      if is_retirement(r)]
            outcome = Outcome(c, opened[-1] if opened else None, str(exc))
        if outcome.record is not None:  # what its report says, from the journal
            told = story_of(document_of(IncidentView.load(journal, outcome.record.id)))
            outcome = dataclasses.replace(outcome, state=told.state, headline=told.headline)
        done.append(outcome)
        if progress is not None:
            progress(outcome)
    return done
