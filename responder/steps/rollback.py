"""rollback: undo a false positive's containment, newest first, then say what AWS shows.

What contain-attacker and every sweep shut is undone first (the keys they set Inactive,
their quarantine policies, the role sessions they denied), each once however many runs
listed it; then the user's session deny; then the key is made Active again. Each undo
observes first, so a rollback cut short is simply run again. Afterwards every claim is
re-read from AWS: the keys' status from ListAccessKeys, each policy's absence from
GetUserPolicy / GetRolePolicy answering NoSuchEntity, so the report never says more than
AWS showed. Every reason given is kept, oldest first. Nothing deleted comes back (a
deleted key stays deleted), and only this tool's own policies are removed: AWS's
quarantine policy (AWSCompromisedKeyQuarantine*) belongs to AWS Support and is never
touched. Only a leaked long-term key's incident is rolled back here; a session's deny is
removed by hand (the report names the policy).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from responder.attacker import restore
from responder.aws import Api, ApiCall
from responder.context import iso
from responder.errors import AwsCallFailed, BadInput, StepFailed
from responder.iam import inline_policy, role_policy
from responder.iam.snapshot import AWS_QUARANTINE_PREFIXES, UserKeys, access_keys
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import AttackerContained, KeyReplaced
from responder.incident.facts_rollback import RolledBack
from responder.incident.shapes import (
    ReactivatedKey,
    RemovedQuarantine,
    RestoredDefense,
    RestoredSessions,
    RollbackReason,
)
from responder.steps.attacker import QUARANTINE_POLICY
from responder.steps.deny import POLICY_NAME as DENY_POLICY
from responder.steps.deny import cutoff_text, policy_cutoff

if TYPE_CHECKING:
    from responder.incident.view import IncidentView

UNDO_PERMISSIONS = ("iam:ListAccessKeys", "iam:UpdateAccessKey", "iam:GetUserPolicy",
                    "iam:DeleteUserPolicy", "iam:DeleteRolePolicy", "iam:GetRolePolicy",
                    "iam:PutRolePolicy")
Kind = Literal["User", "Role"]


@dataclass(frozen=True)
class Shut:
    """What the incident shut and a rollback undoes, each item once: contain-attacker's
    and every sweep's (SweepFound.attacker), then the leaked key's own containment."""

    quarantines: tuple[tuple[str, str], ...]
    """(user or role, name) given responder-quarantine."""
    keys: tuple[tuple[str, str], ...]
    """(user, key) a run set Inactive (never one it found Inactive already)."""
    sessions: tuple[tuple[str, tuple[str, ...]], ...]
    """(role, its attacker sessions) named in the role's session deny."""
    key: str
    """The leaked key."""
    user: str | None
    """The leaked key's user."""
    deny_cutoff: str | None
    """The session deny's cutoff, when revoke-sessions attached one."""
    deny: bool
    key_deleted: bool
    """The leaked key was deleted (replace-key with two keys): it stays deleted."""
    aws_quarantine: tuple[str, ...]
    defenses: tuple[RestoredDefense, ...] = ()
    """Logging and detection contain-attacker turned back on: a rollback leaves them on
    (a defense is never turned off by the tool) and prints the command that would."""

    @property
    def defenses_left_on(self) -> list[str]:
        return [f"{restore.DEFENSES[d.kind].noun} {d.name} in {d.region} stays on (the "
                "responder turned it back on; if it was off on purpose: "
                f"{restore.DEFENSES[d.kind].off_command(d.name, d.region)})"
                for d in self.defenses]


def _attackers(view: IncidentView) -> list[AttackerContained]:
    found = [s.facts for s in view.all_steps
             if s.status == "done" and isinstance(s.facts, AttackerContained)]
    return found + [f.attacker for f in view.sweeps_found if f.attacker is not None]


def shut_by(view: IncidentView) -> Shut:
    """What a rollback of `view` undoes (refused for a session's incident)."""
    if view.session is not None:
        raise BadInput(f"incident {view.id} contained a session: roll back its deny by hand "
                       "(the report names the policy); rollback undoes a key's containment")
    quarantines: dict[tuple[str, str], None] = {}
    keys: dict[tuple[str, str], None] = {}
    sessions: dict[str, dict[str, None]] = {}
    defenses: dict[tuple[str, str, str], RestoredDefense] = {}
    for attacker in _attackers(view):
        defenses.update({(d.kind, d.name, d.region): d for d in attacker.restored
                         if not d.already})
        for p in attacker.principals_quarantined:
            quarantines[(p.type, p.name)] = None
        for k in attacker.keys_disabled:
            if not k.already:
                keys[(k.user_name, k.access_key_id)] = None
        for p in attacker.principals_quarantined:
            keys.update(dict.fromkeys((p.name, k) for k in p.keys_disabled))
        for r in attacker.sessions_revoked:
            sessions.setdefault(r.role_name, {}).update(dict.fromkeys(r.sessions))
    target, revoked, disabled = view.target, view.sessions_revoked, view.key_disabled
    replaced = view.done(KeyReplaced)
    return Shut(
        quarantines=tuple(quarantines), keys=tuple(keys), key=view.access_key_id,
        sessions=tuple((role, tuple(named)) for role, named in sessions.items()),
        user=target.user_name if target is not None else None,
        deny_cutoff=revoked.token_issue_time_before if revoked is not None else None,
        deny=revoked is not None and not revoked.user_deleted,
        key_deleted=(disabled is not None and disabled.status == "Deleted")
        or (replaced is not None and replaced.deleted_compromised),
        aws_quarantine=view.aws_quarantine, defenses=tuple(defenses.values()))


def undo_plan(view: IncidentView) -> list[str]:
    """What a rollback of `view` would do, one line per item, in the order it acts (the
    answer without --yes)."""
    shut = shut_by(view)
    key = shut.key
    lines = [f"delete {QUARANTINE_POLICY} from {kind} {name}" for kind, name in shut.quarantines]
    lines += [f"make key {k} of {user} Active again" for user, k in shut.keys]
    lines += [f"take {', '.join(named)} out of role {role}'s {role_policy.REVOKE_POLICY}"
              for role, named in shut.sessions]
    if shut.user is None:
        return lines
    if shut.deny:
        lines.append(f"delete {DENY_POLICY} from user {shut.user} (only while it names this "
                     f"incident's cutoff {shut.deny_cutoff})")
    lines.append(f"leave the key {key} of {shut.user} deleted (never undone)" if shut.key_deleted
                 else f"make the key {key} of {shut.user} Active again")
    lines += [f"leave {p} attached to user {shut.user} (AWS's own quarantine: never detached)"
              for p in shut.aws_quarantine]
    lines += [f"leave {line}" for line in shut.defenses_left_on]
    lines.append("then re-read each of these from AWS and report what it shows")
    return lines


class _Undo:
    """One rollback's calls: each observes before it changes anything."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def reactivate(self, user: str, key: str) -> None:
        try:
            status = access_keys(self.api, user).get(key, "Deleted")
        except AwsCallFailed as exc:
            if exc.code == "NoSuchEntity":
                return
            raise
        if status == "Inactive":
            self.api.call(ApiCall("iam", "UpdateAccessKey", {
                "UserName": user, "AccessKeyId": key, "Status": "Active"}, mutating=True))

    def delete_policy(self, kind: Kind, name: str, policy: str,
                      ours: Callable[[Any], bool] | None = None) -> bool:
        """Delete our inline policy `policy` of a User or Role; False when it is there but
        not ours (`ours` says whether its document is still what this incident put)."""
        if policy.startswith(AWS_QUARANTINE_PREFIXES):  # AWS Support's, never ours
            return False
        current = inline_policy.get(self.api, kind, name, policy)
        if current is None:
            return True
        if ours is not None and not ours(current):
            return False
        self.api.call(ApiCall("iam", f"Delete{kind}Policy", {f"{kind}Name": name,
                                                            "PolicyName": policy},
                              mutating=True))
        return True

    def restore_sessions(self, role: str, sessions: tuple[str, ...]) -> None:
        document = inline_policy.get(self.api, "Role", role, role_policy.REVOKE_POLICY)
        if document is None or not set(sessions) & role_policy.sessions_in(document):
            return
        rest = role_policy.without(document, sessions)
        if rest is None:
            self.api.call(ApiCall("iam", "DeleteRolePolicy", {
                "RoleName": role, "PolicyName": role_policy.REVOKE_POLICY}, mutating=True))
        else:
            self.api.call(ApiCall("iam", "PutRolePolicy", {
                "RoleName": role, "PolicyName": role_policy.REVOKE_POLICY,
                "PolicyDocument": json.dumps(rest)}, mutating=True))


class _Seen:
    """AWS re-read after the rollback acted: what the facts may claim."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._keys = UserKeys(api)

    def key(self, user: str, key: str) -> str:
        """Active, Inactive, or Deleted (the key, or its user, is gone)."""
        return (self._keys.of(user) or {}).get(key, "Deleted")

    def gone(self, kind: Kind, name: str, policy: str) -> bool:
        """GetUserPolicy / GetRolePolicy answers NoSuchEntity."""
        return inline_policy.get(self.api, kind, name, policy) is None

    def still_denied(self, role: str, sessions: tuple[str, ...]) -> set[str]:
        document = inline_policy.get(self.api, "Role", role, role_policy.REVOKE_POLICY)
        return set(sessions) & role_policy.sessions_in(document)


def earlier_reasons(view: IncidentView) -> tuple[RollbackReason, ...]:
    """The reasons of the rollbacks before this one: the latest rollback step's journaled
    facts (done, failed or cut short: each keeps the history it was given)."""
    for step in reversed(view.of_kind("rollback")):
        history = RolledBack.from_detail(step.detail).history
        if history:
            return history
    return ()


def _kind(kind: str) -> Kind:
    return "User" if kind == "user" else "Role"


@register("rollback_containment")
class RollbackContainment(Action):
    permissions = UNDO_PERMISSIONS
    kind = "rollback"
    result = RolledBack
    critical = False
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object", "additionalProperties": False,
        "properties": {"reason": {"type": "string", "minLength": 1}}}

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        """The changes undo_plan describes, as calls (each observed first when run)."""
        if inp.view is None:
            return ()
        shut = shut_by(inp.view)
        calls = [ApiCall("iam", f"Delete{_kind(kind)}Policy", {
            f"{_kind(kind)}Name": name, "PolicyName": QUARANTINE_POLICY}, mutating=True)
            for kind, name in shut.quarantines]
        calls += [ApiCall("iam", "UpdateAccessKey", {"UserName": user, "AccessKeyId": key,
                                                     "Status": "Active"}, mutating=True)
                  for user, key in shut.keys]
        calls += [ApiCall("iam", "PutRolePolicy", {
            "RoleName": role, "PolicyName": role_policy.REVOKE_POLICY}, mutating=True,
            note=f"without {', '.join(named)} (DeleteRolePolicy when no session is left)")
            for role, named in shut.sessions]
        if shut.user is not None and shut.deny:
            calls.append(ApiCall("iam", "DeleteUserPolicy", {
                "UserName": shut.user, "PolicyName": DENY_POLICY}, mutating=True,
                note=f"only while it names the cutoff {shut.deny_cutoff}"))
        if shut.user is not None and not shut.key_deleted:
            calls.append(ApiCall("iam", "UpdateAccessKey", {
                "UserName": shut.user, "AccessKeyId": shut.key, "Status": "Active"},
                mutating=True))
        return tuple(calls)

    def run(self, inp: StepInput, api: Api) -> StepResult:
        view, target = inp.view, inp.require_target(self.name)
        if view is None or target.user_name is None:
            raise BadInput("rollback undoes a leaked key's containment: this incident has none")
        shut = shut_by(view)  # refuses a session's incident
        reason = str(inp.settings.get("reason", ""))
        reasons = (*earlier_reasons(view), RollbackReason(iso(inp.ctx.clock()), reason))
        try:
            ours = self._undo(api, shut, target.user_name)
            facts = _seen(_Seen(api), shut, target.user_name, ours=ours)
        except AwsCallFailed as exc:  # journaled with the reasons only: none is lost, and
            # nothing is claimed that was not re-read
            raise StepFailed(self.name, exc.explain(f"`respond rollback {inp.incident.id} "
                                                    "--yes`"),
                             {"reason": reason, "reasons": [r.to_detail() for r in reasons]},
                             ) from exc
        return StepResult("done", dataclasses.replace(
            facts, reason=reason, reasons=reasons, verified_at=iso(inp.ctx.clock())),
            effective_at=inp.ctx.clock())

    @staticmethod
    def _undo(api: Api, shut: Shut, user: str) -> bool:
        """Undo, newest first; True when the session deny found (if any) was this
        incident's (deleted, or already gone)."""
        undo = _Undo(api)
        for kind, name in shut.quarantines:
            undo.delete_policy(_kind(kind), name, QUARANTINE_POLICY)
        for owner, attacker_key in shut.keys:
            undo.reactivate(owner, attacker_key)
        for role, sessions in shut.sessions:
            undo.restore_sessions(role, sessions)
        cutoff = shut.deny_cutoff
        ours = shut.deny and undo.delete_policy(
            "User", user, DENY_POLICY, ours=lambda doc: cutoff is None or (
                (found := policy_cutoff(doc)) is not None and cutoff_text(found) == cutoff))
        if not shut.key_deleted:
            undo.reactivate(user, shut.key)
        return ours


def _seen(seen: _Seen, shut: Shut, user: str, *, ours: bool) -> RolledBack:
    """The facts, each as AWS answered when re-read."""
    left: list[str] = []
    removed = []
    for kind, name in shut.quarantines:
        if seen.gone(_kind(kind), name, QUARANTINE_POLICY):
            removed.append(RemovedQuarantine(kind, name))
        else:
            left.append(f"{QUARANTINE_POLICY} is still on {kind} {name} when re-read")
    reactivated = []
    for owner, k in shut.keys:
        status = seen.key(owner, k)
        if status == "Active":
            reactivated.append(ReactivatedKey(owner, k))
        else:
            left.append(f"key {k} of {owner} was deleted: left deleted" if status ==
                        "Deleted" else f"key {k} of {owner} is {status} when re-read")
    restored = []
    for role, sessions in shut.sessions:
        still = seen.still_denied(role, sessions)
        if still:
            left.append(f"role {role}'s {role_policy.REVOKE_POLICY} still names "
                        f"{', '.join(sorted(still))} when re-read")
        else:
            restored.append(RestoredSessions(role, sessions))
    gone = seen.gone("User", user, DENY_POLICY)
    if not gone:
        left.append(f"{DENY_POLICY} is still on user {user} when re-read" if ours else
                    f"{DENY_POLICY} on user {user} is not this incident's (its cutoff is "
                    f"not {shut.deny_cutoff}): left in place")
    status = seen.key(user, shut.key)
    if status == "Deleted":
        left.append(f"the key {shut.key} was deleted: left deleted")
    elif status != "Active":
        left.append(f"the key {shut.key} is {status} when re-read")
    left += [f"{p}, AWS's own quarantine on user {user}, was not touched: only the AWS "
             "support case may detach it" for p in shut.aws_quarantine]
    left += shut.defenses_left_on
    return RolledBack(key_status=status, deny_removed=gone, keys_reactivated=tuple(reactivated),
                      quarantines_removed=tuple(removed), sessions_restored=tuple(restored),
                      left_alone=tuple(left))
