"""Re-read AWS for what an incident claims (responder.incident.verification).

The claims come from the journal's typed facts, never from the absence of an error:
disable-key's key (Inactive, or deleted when disable-key saw it gone), revoke-sessions'
deny with this incident's cutoff, a session's deny naming exactly that session, every key
and principal contain-attacker and the sweeps shut; after a rollback, what the rollback
says it restored. Each is read at once (one round trip, whatever their number: the
user's keys are listed once per user), and a mismatch is read again a few times with the
retry policy's backoff before it counts, because IAM is eventually consistent: a key set
Inactive may still list as Active for a moment on another endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, stop_after_delay

from responder.attacker import restore
from responder.aws import Api, ApiCall, RetryPolicy
from responder.context import RunContext, iso, parse_iso
from responder.errors import AwsCallFailed, NotVerified
from responder.iam import inline_policy, role_policy
from responder.iam.snapshot import UserKeys
from responder.incident.facts import AttackerContained
from responder.incident.facts_retirement import KeyRetired
from responder.incident.facts_rollback import RolledBack
from responder.incident.shapes import RestoredDefense
from responder.incident.verification import Check, Verification
from responder.incident.view import IncidentView
from responder.journal import Journal
from responder.logging import get_logger
from responder.steps.attacker import QUARANTINE_POLICY
from responder.steps.deny import POLICY_NAME as DENY_POLICY
from responder.steps.deny import cutoff_text, policy_cutoff

log = get_logger("responder.run.verify")

PERMISSIONS = ("iam:ListAccessKeys", "iam:GetUserPolicy", "iam:GetRolePolicy",
               *restore.READ_PERMISSIONS)
"""What verification reads; tests/test_verified.py checks the generated policy holds them."""
ATTEMPTS = 4
"""A mismatch is read this often (with backoff) before it counts: IAM propagates writes
within seconds."""
GONE = "deleted"
USER_GONE = "gone with its user"

Want = Literal["present", "absent"]


class Reads:
    """What one verification read, so a user's keys are listed once however many of
    them are claimed, and a read that failed says why instead of passing."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self._keys = UserKeys(api)

    def key_status(self, user: str, key: str) -> str:
        try:
            keys = self._keys.of(user)
        except AwsCallFailed as exc:
            return f"unreadable ({exc.code})"
        if keys is None:
            return USER_GONE
        return keys.get(key, GONE)

    def defense(self, kind: str, name: str, region: str) -> str:
        """A trail's logging, a detector, a recorder: on, off, gone or unreadable."""
        return restore.state(self._api, kind, name, region)

    def policy(self, kind: inline_policy.Kind, name: str, policy: str) -> object:
        """The inline policy's document, None when absent, USER_GONE when the principal is
        gone, or the text of why it could not be read."""
        try:
            found = self._api.call(ApiCall("iam", f"Get{kind}Policy",
                                           {f"{kind}Name": name, "PolicyName": policy}))
        except AwsCallFailed as exc:
            if exc.code != "NoSuchEntity":
                return f"unreadable ({exc.code})"
            # "The user policy with name ... cannot be found" against "The user with name
            # ... cannot be found": the policy is absent, or its principal is.
            return None if "policy with name" in exc.aws_message.lower() else USER_GONE
        return inline_policy.parsed(found.get("PolicyDocument"))


@dataclass(frozen=True)
class Claim:
    """One thing the incident says is so in AWS, and how to read it."""

    subject: str
    expected: str
    read: Callable[[Reads], str]
    also: frozenset[str] = frozenset()
    """Other observations that bear the claim out (a disabled key found deleted since)."""

    def check(self, reads: Reads) -> Check:
        observed = self.read(reads)
        return Check(self.subject, self.expected, observed,
                     observed == self.expected or observed in self.also)


def key_claim(user: str, key: str, want: str, *, deleted_ok: bool) -> Claim:
    """A key's status. `deleted_ok`: a key the incident disabled and that is gone since
    signs nothing either (the journal proves it existed in this account)."""
    return Claim(f"access key {key} of {user}", want,
                 lambda r: r.key_status(user, key),
                 frozenset({GONE, USER_GONE}) if deleted_ok else frozenset())


def _deny_read(user: str, cutoff: str | None) -> Callable[[Reads], str]:
    def read(reads: Reads) -> str:
        document = reads.policy("User", user, DENY_POLICY)
        if document is None or isinstance(document, str):
            return "absent" if document is None else document
        found, wanted = policy_cutoff(document), parse_iso(cutoff)
        if found is None or wanted is None:
            return "in place without a cutoff" if found is None else "in place"
        # A later cutoff (another incident of the same key, in another journal, wrote the
        # fixed-name policy since) denies every session ours did, and more.
        return "in place" if found >= wanted else (
            f"in place with an earlier cutoff {cutoff_text(found)}, not {cutoff}")
    return read


def policy_claim(kind: inline_policy.Kind, name: str, policy: str, want: Want, *,
                 names: Sequence[str] = (), instance_id: str | None = None,
                 gone_ok: bool = True) -> Claim:
    """An inline policy present or absent; with `names`, whether it denies (or no longer
    denies) exactly those sessions (an instance's session: its away statements)."""
    def read(reads: Reads) -> str:
        document = reads.policy(kind, name, policy)
        if document is None or isinstance(document, str):
            return "absent" if document is None else document
        named = {n for n in names
                 if role_policy.names(document, session=n, instance_id=instance_id)}
        if want == "absent" and names:
            return "present" if named else "absent"
        missing = sorted(set(names) - named)
        return f"present without {', '.join(missing)}" if missing else "present"
    subject = f"{policy} on {kind.lower()} {name}" + (
        f" ({', '.join(names)})" if names else "")
    return Claim(subject, want, read, frozenset({USER_GONE}) if gone_ok else frozenset())


def _attacker_claims(found: AttackerContained) -> list[Claim]:
    claims = [key_claim(k.user_name, k.access_key_id, "Inactive", deleted_ok=True)
              for k in found.keys_disabled]
    for p in found.principals_quarantined:
        kind: inline_policy.Kind = "Role" if p.type == "role" else "User"
        claims.append(policy_claim(kind, p.name, QUARANTINE_POLICY, "present"))
        claims += [key_claim(p.name, k, "Inactive", deleted_ok=True) for k in p.keys_disabled]
    claims += [policy_claim("Role", s.role_name, role_policy.REVOKE_POLICY, "present",
                            names=s.sessions) for s in found.sessions_revoked]
    claims += [defense_claim(d) for d in found.restored]
    return claims


def defense_claim(defense: RestoredDefense) -> Claim:
    """A trail, detector or recorder contain-attacker turned on: still on."""
    return Claim(f"{restore.DEFENSES[defense.kind].noun} {defense.name} in {defense.region}",
                 "on", lambda r: r.defense(defense.kind, defense.name, defense.region))


def _rollback_claims(view: IncidentView, rolled: RolledBack) -> list[Claim]:
    target = view.target
    user = target.user_name if target is not None else None
    claims: list[Claim] = []
    if user and rolled.key_status == "Active":
        claims.append(key_claim(user, view.access_key_id, "Active", deleted_ok=False))
    if user and rolled.deny_removed:
        claims.append(policy_claim("User", user, DENY_POLICY, "absent"))
    claims += [key_claim(k.user_name, k.access_key_id, "Active", deleted_ok=False)
               for k in rolled.keys_reactivated]
    claims += [policy_claim("Role" if q.type == "role" else "User", q.name, QUARANTINE_POLICY,
                            "absent") for q in rolled.quarantines_removed]
    claims += [policy_claim("Role", s.role_name, role_policy.REVOKE_POLICY, "absent",
                            names=s.sessions) for s in rolled.sessions_restored]
    return claims


def claims_of(view: IncidentView) -> list[Claim]:
    """Everything the incident now claims in AWS, from its journaled facts."""
    if view.rolled_back is not None:
        return _rollback_claims(view, view.rolled_back)
    claims: list[Claim] = []
    target = view.target
    user = target.user_name if target is not None else None
    disabled = view.key_disabled
    if user and disabled is not None:
        claims.append(key_claim(user, view.access_key_id,
                                GONE if disabled.status == "Deleted" else "Inactive",
                                deleted_ok=True))
    revoked = view.sessions_revoked
    if user and revoked is not None:
        claims.append(Claim(f"{DENY_POLICY} on user {user}", "in place",
                            _deny_read(user, revoked.token_issue_time_before),
                            frozenset({USER_GONE})))
    denied = view.session_denied
    if denied is not None and denied.policy_name and denied.name:
        if denied.on == "user":
            claims.append(Claim(f"{denied.policy_name} on user {denied.name}", "in place",
                                _deny_read(denied.name, denied.token_issue_time_before),
                                frozenset({USER_GONE})))
        else:
            away = denied.away_from_instance
            claims.append(policy_claim(
                "Role", denied.name, denied.policy_name, "present",
                names=(denied.session,) if denied.session else (),
                instance_id=away.instance_id if away is not None and away.instance_id
                else None))
    retired = view.done(KeyRetired)
    if user and retired is not None and retired.retired:
        claims.append(key_claim(user, view.access_key_id, "Inactive", deleted_ok=True))
    for found in (view.attacker, *(s.attacker for s in view.sweeps_found)):
        if found is not None:
            claims += _attacker_claims(found)
    return _once(claims)


def _once(claims: list[Claim]) -> list[Claim]:
    seen: dict[tuple[str, str], Claim] = {}
    for claim in claims:
        seen.setdefault((claim.subject, claim.expected), claim)
    return list(seen.values())


def verify(api: Api, view: IncidentView, moment: str, clock: Callable[[], datetime],
           retry: RetryPolicy) -> Verification:
    """Read every claim of `view` (in parallel), again while some do not hold, and say
    what was observed and when."""
    claims = claims_of(view)
    if not claims:
        return Verification(moment, iso(clock()), True, ())

    def read_all() -> tuple[Check, ...]:
        reads = Reads(api)
        with ThreadPoolExecutor(max_workers=min(8, len(claims))) as pool:
            return tuple(pool.map(lambda c: c.check(reads), claims))

    again = Retrying(retry=retry_if_result(lambda checks: not all(c.ok for c in checks)),
                     wait=retry.retrying(lambda _: False).wait,
                     stop=stop_after_attempt(min(ATTEMPTS, retry.max_attempts))
                     | stop_after_delay(retry.deadline_seconds))
    try:
        checks = again(read_all)
    except RetryError as gave_up:
        checks = gave_up.last_attempt.result()
    return Verification(moment, iso(clock()), all(c.ok for c in checks), checks)


def observed(ctx: RunContext, journal: Journal, incident_id: str, moment: str, api: Api, *,
             halt: bool = True) -> Verification:
    """verify() the incident as journaled now, and journal what was observed (the
    incident's `verification`); with `halt`, a mismatch raises NotVerified naming it."""
    found = verify(api, IncidentView.load(journal, incident_id), moment, ctx.clock, ctx.retry)
    journal.update_incident(incident_id, ctx.clock(), verification=found.to_detail())
    log.info("incident.verified", moment=moment, ok=found.ok, checks=len(found.checks),
             mismatches=list(found.said()))
    if halt and not found.ok:
        raise NotVerified(moment, found.said())
    return found
