"""A proposal as offered: drawn from the tallied history, held to IAM's catalog, proved
against that history, and said with what the history cannot show.

policy.propose writes the smallest valid document for the usages; this module is what
makes it something to trust: an action IAM does not have is taken out before the
document is written (prove.known_actions), every used action on every resource it was
used on is evaluated against what remains (prove.prove), each `"Resource": "*"` says
why, and the limits of the history are said in words, each with what to do about it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from responder.context import iso
from responder.hardening import iam_data
from responder.hardening.policy import Proposal, policy_chars, propose
from responder.hardening.prove import known_actions, prove
from responder.hardening.usage import Tally, Usage
from responder.incident.facts_hardening import Proved

DATA_EVENTS = ("data events (S3 object reads and writes, DynamoDB item reads and writes, "
               "Lambda invocations) are not in CloudTrail's event history, so the proposal "
               "grants none")


WITHHELD: Mapping[str, str] = {
    "iam:PassRole": "not proposed on every role: it would let the user hand any role, an "
                    "administrator's too, to a service. The calls named no role (an instance "
                    "profile or a launch template): add the role's ARN by hand",
}
"""Actions never proposed on `*`, whatever the history says: the map asks for
iam:PassRole on `*` where the request names an instance profile, not its role."""


@dataclass(frozen=True)
class Drawn:
    """The proposal and what is said with it (Hardened's proof, any_resource and
    cannot_show)."""

    proposal: Proposal
    usages: tuple[Usage, ...]
    proof: Proved
    any_resource: Mapping[str, str]
    cannot_show: tuple[str, ...]


def draw(tally: Tally, user: str, *, start: datetime, days: int,
         data_events: str | None) -> Drawn:
    """`data_events`: what reading a trail's data events gave, in words, or None when no
    trail was read."""
    usages = tally.usages()
    withheld = [u for u in usages if not u.resources and u.action in WITHHELD]
    kept = tuple(u for u in usages if u not in withheld)
    proposal = propose(kept)
    document, removed = known_actions(proposal.document)
    if removed:
        proposal = replace(proposal, document=document, chars=policy_chars(document))
    proof = prove(document, kept, tally.unknown, removed)
    listed = (*(f"{u.action} on *: {WITHHELD[u.action]}" for u in withheld),
              *(f"{u.call}: {u.why}" for u in proof.unproven))
    return Drawn(
        proposal, kept, Proved(proof.checked + len(withheld), proof.allowed, listed,
                               proof.unproven_more),
        {u.action: u.why_any or "any resource" for u in usages if not u.resources},
        cannot_show(tally, usages, user, start=start, days=days, data_events=data_events))


def cannot_show(tally: Tally, usages: tuple[Usage, ...], user: str, *, start: datetime,
                days: int, data_events: str | None) -> tuple[str, ...]:
    """What the history read cannot show, each line with what to do about it."""
    lines = [data_events or (
        f"{DATA_EVENTS}: if {user}'s applications use them, read a trail that logs them: "
        + shlex.join(["respond", "harden", user, "--data-events", "s3://BUCKET/PREFIX"]))]
    lines.append(f"calls made only before {iso(start)} ({days} days back) are not in the "
                 "history: a job that runs less often than that is missing from the "
                 "proposal")
    if tally.console:
        lines.append(f"{tally.console} of the calls came from console sessions: the console "
                     "also makes calls CloudTrail does not record, so a console user may "
                     "need more than the history shows")
    guessed = [u.action for u in usages if u.guessed]
    if guessed:
        lines.append(f"{len(guessed)} actions are not in iam-dataset's map and were taken "
                     f"as the call's own name, which IAM has: {', '.join(guessed[:10])}"
                     + (" ..." if len(guessed) > 10 else ""))
    return tuple(lines)


def source_line() -> str:
    """Where the actions and ARN formats came from, in brief, for the proposal's reader
    (the whole attribution: iam_data.sources(), data/NOTICE.md)."""
    found: Mapping[str, Any] = iam_data.sources()
    brief = [str(found[k]).split(" (")[0] for k in ("map", "catalog") if k in found]
    return "; ".join(brief) + " (responder/hardening/data/NOTICE.md)"
