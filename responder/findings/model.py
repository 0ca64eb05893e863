"""What the parsers hand the runner, what they refuse with, and what they pass between them.

Kept apart from the parsers so the runner and the journal (`responder.run.trigger`) can name a
`Trigger` without importing how findings are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

from responder.context import SessionHint
from responder.errors import BadInput, Refused, ResponderError

Source = Literal["guardduty", "health", "securityhub"]
RefusalReason = Literal[
    "sample", "archived", "root", "no-access-key", "temporary-key", "not-configured",
    "notify-only", "ignored", "none-actionable",
]
"""`not-configured`: no rule decides the type (or it is below the rule's min_severity);
`notify-only` / `ignored`: a rule decided to start nothing for it."""


@dataclass(frozen=True)
class Trigger:
    """One access key a finding asks us to respond to, and the playbook to run."""

    finding_id: str
    """Source-qualified and stable across re-deliveries: the journal's dedupe key."""
    source: Source
    finding_type: str
    """GuardDuty type, Health eventTypeCode, or the ASFF Types entry that matched."""
    severity: float | None
    """0-10 (Security Hub: Normalized / 10); None for AWS Health."""
    access_key_id: str
    user_name: str | None
    account_id: str | None
    region: str | None
    playbook: str
    sample: bool
    session: SessionHint | None = None
    """For a temporary (ASIA) key: what the finding says about its session, so the
    playbook can act before CloudTrail delivers the key's first event. None for AKIA keys
    and for sources that do not describe the session (Security Hub, Health)."""
    first_seen: str | None = field(default=None, compare=False)
    """Candidate.first_seen (not part of what the trigger is: two deliveries of one
    finding are the same trigger)."""


class FindingRefused(Refused):
    """A finding that must not start a playbook (exit 3); says what to do instead."""

    def __init__(
        self,
        message: str,
        *,
        reason: RefusalReason,
        finding_id: str | None = None,
        access_key_id: str | None = None,
        problems: Sequence[ResponderError] = (),
    ) -> None:
        super().__init__(message)
        self.reason: RefusalReason = reason
        self.finding_id = finding_id
        self.access_key_id = access_key_id
        self.problems = tuple(problems)
        """For `none-actionable`: the refusal or error of each finding in the document."""


@dataclass(frozen=True)
class Rejected:
    """One finding of a document that starts nothing, and why; the others still may.

    `error` is a FindingRefused (exit 3) for a finding the guardrails or the mapping
    decline, or a BadInput (exit 2) for one that cannot be read (no id, a malformed key,
    an element of a list that is not a finding at all). The finding id and key are
    given where the finding names them, so the output can say which finding it was.
    """

    error: BadInput | Refused
    finding_id: str | None = None
    access_key_id: str | None = None

    @property
    def exit_code(self) -> int:
        return self.error.exit_code


Parsed: TypeAlias = Trigger | Rejected
"""What parsing makes of one finding: the key to respond to, or why there is none."""


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """What a finding says about one key, before the guardrails and the mapping.

    Each source reads its own shape into this, so the guardrails and the mapping are
    applied once, the same way, whatever the source. The key and principal fields default
    to None because Health and Security Hub fill them in only once they find a key.
    """

    finding_id: str
    source: Source
    label: str
    """How messages name the finding, e.g. `GuardDuty finding 5ab…`."""
    finding_type: str
    types: tuple[tuple[str, str], ...]
    """(string to match, type to report) pairs for the mapping."""
    severity: float | None
    account_id: str | None
    region: str | None
    access_key_id: str | None = None
    user_name: str | None = None
    user_type: str | None = None
    principal_id: str | None = None
    sample: bool = False
    product: str = "GuardDuty"
    closed: str | None = None
    """Why the finding is no longer open (archived, suppressed), if it is not."""
    resources: tuple[str, ...] = ()
    """What the finding names instead of a key, for the no-key message."""
    session: SessionHint | None = None
    """What the finding says about a temporary key's session; handed on to the Trigger."""
    first_seen: str | None = field(default=None, compare=False)
    """When the finding's activity was first seen (ISO 8601, as the finding says it):
    harden counts the user's usage only before it. Not part of what the candidate is."""

    def for_key(self, key: str) -> Candidate:
        """This candidate for one of several keys a finding names.

        Each key gets its own finding id, so the journal dedupes them separately and
        re-delivery of the finding still maps every key to the same incident.
        """
        return replace(self, finding_id=f"{self.finding_id}#{key}", access_key_id=key)
