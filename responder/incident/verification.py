"""What an incident observed in AWS about what it claims, and when.

Every word the tool prints about AWS ("contained", "disabled", "removed") must come
from reading AWS after acting, not from the absence of an error: an UpdateAccessKey that
answers NoSuchEntity for a key in another account once read as "already deleted". So
after containment, after contain-attacker, at the end of a run, after a sweep and after
a rollback, the incident re-reads each thing it claims and keeps the observation here
(the journal's incident record holds the latest one). The status follows what was
observed: a mismatch halts the incident and names it.
"""

from __future__ import annotations

from dataclasses import dataclass

from responder.incident.detail import Detail

AFTER_CONTAINMENT = "after containment"
AFTER_ATTACKER = "after contain-attacker"
AT_END = "at the end of the run"
AFTER_ROLLBACK = "after rollback"


def after_sweep(step: str) -> str:
    return f"after {step}"


@dataclass(frozen=True)
class Check(Detail):
    """One claim and what AWS showed for it."""

    subject: str = ""
    """What was read, as a human names it: "access key AKIA... of alice"."""
    expected: str = ""
    observed: str = ""
    ok: bool = False


@dataclass(frozen=True)
class Verification(Detail):
    """One re-read of everything the incident claims at `moment`."""

    moment: str = ""
    """after containment, after contain-attacker, at the end of the run, after sweep-N,
    after rollback."""
    at: str | None = None
    """When AWS was read (ISO), the last attempt's moment when a mismatch was re-read."""
    ok: bool = False
    checks: tuple[Check, ...] = ()

    @property
    def mismatches(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def said(self) -> tuple[str, ...]:
        """Each mismatch in one phrase: what was expected and what AWS showed."""
        return tuple(f"{c.subject} is {c.observed}, expected {c.expected}"
                     for c in self.mismatches)

    def headline(self) -> str:
        """One line for the top of the human output."""
        if not self.checks:
            return f"nothing to verify {self.moment}"
        if self.ok:
            return (f"verified {self.moment} at {self.at}: "
                    + "; ".join(f"{c.subject} {c.observed}" for c in self.checks))
        return f"NOT verified {self.moment} at {self.at}: " + "; ".join(self.said())
