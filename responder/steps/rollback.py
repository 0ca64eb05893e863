"""rollback: undo a false positive's containment, newest first.

What contain-attacker did is undone first (the keys it set Inactive, its quarantine
policies, the role sessions it denied), then the user's session deny, then the key is
made Active again. Each undo observes first, so a rollback cut short is simply run again.
Nothing deleted comes back (a deleted key stays deleted), and only this tool's own
policies are removed: AWS's quarantine policy (AWSCompromisedKeyQuarantine*) belongs to
AWS Support and is never touched. Only a leaked long-term key's incident is rolled back
here; a session's deny is removed by hand (the report names the policy).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed, BadInput
from responder.iam import role_policy
from responder.iam.snapshot import access_keys
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import RolledBack
from responder.incident.shapes import ReactivatedKey, RemovedQuarantine, RestoredSessions
from responder.steps.attacker import QUARANTINE_POLICY
from responder.steps.deny import POLICY_NAME as DENY_POLICY
from responder.steps.deny import cutoff_text, policy_cutoff

if TYPE_CHECKING:
    from responder.incident.view import IncidentView

UNDO_PERMISSIONS = ("iam:ListAccessKeys", "iam:UpdateAccessKey", "iam:GetUserPolicy",
                    "iam:DeleteUserPolicy", "iam:DeleteRolePolicy", "iam:GetRolePolicy",
                    "iam:PutRolePolicy")


def undo_plan(view: IncidentView) -> list[str]:
    """What a rollback of `view` would undo, one line each (the --yes-less answer)."""
    if view.session is not None:
        raise BadInput(f"incident {view.id} contained a session: roll back its deny by hand "
                       "(the report names the policy); rollback undoes a key's containment")
    lines: list[str] = []
    attacker = view.attacker
    if attacker is not None:
        lines += [f"make key {k.access_key_id} of {k.user_name} Active again"
                  for k in attacker.keys_disabled if not k.already]
        for p in attacker.principals_quarantined:
            lines.append(f"delete {QUARANTINE_POLICY} from {p.type} {p.name}")
            lines += [f"make key {k} of {p.name} Active again" for k in p.keys_disabled]
        lines += [f"take {', '.join(r.sessions)} out of role "
                  f"{r.role_name}'s {role_policy.REVOKE_POLICY}"
                  for r in attacker.sessions_revoked]
    target = view.target
    if view.sessions_revoked is not None and target is not None:
        lines.append(f"delete {DENY_POLICY} from user {target.user_name}")
    disabled = view.key_disabled
    if disabled is not None and target is not None:
        lines.append(f"make the key {view.record.access_key_id} of {target.user_name} Active "
                     "again" if disabled.status == "Inactive" else
                     f"leave the key {view.record.access_key_id} deleted (never undone)")
    return lines


class _Undo:
    """One rollback's calls: each observes before it changes anything."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def reactivate(self, user: str, key: str) -> str:
        try:
            status = access_keys(self.api, user).get(key, "Deleted")
        except AwsCallFailed as exc:
            if exc.code == "NoSuchEntity":
                return "Deleted"
            raise
        if status == "Inactive":
            self.api.call(ApiCall("iam", "UpdateAccessKey", {
                "UserName": user, "AccessKeyId": key, "Status": "Active"}, mutating=True))
            return "Active"
        return status

    def delete_policy(self, kind: str, name: str, policy: str,
                      ours: Any = None) -> bool:
        """Delete our inline policy `policy` of a User or Role (when `ours` is given,
        only while its document is still what this incident put there)."""
        key = f"{kind}Name"
        try:
            current = self.api.call(ApiCall("iam", f"Get{kind}Policy", {
                key: name, "PolicyName": policy}))
        except AwsCallFailed as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise
        if ours is not None and not ours(current.get("PolicyDocument")):
            return False
        self.api.call(ApiCall("iam", f"Delete{kind}Policy", {key: name, "PolicyName": policy},
                              mutating=True))
        return True

    def restore_sessions(self, role: str, sessions: list[str]) -> bool:
        try:
            current = self.api.call(ApiCall("iam", "GetRolePolicy", {
                "RoleName": role, "PolicyName": role_policy.REVOKE_POLICY}))
        except AwsCallFailed as exc:
            if exc.code == "NoSuchEntity":
                return False
            raise
        document = current.get("PolicyDocument")
        if not set(sessions) & role_policy.sessions_in(document):
            return False
        rest = role_policy.without(document, sessions)
        if rest is None:
            self.api.call(ApiCall("iam", "DeleteRolePolicy", {
                "RoleName": role, "PolicyName": role_policy.REVOKE_POLICY}, mutating=True))
        else:
            self.api.call(ApiCall("iam", "PutRolePolicy", {
                "RoleName": role, "PolicyName": role_policy.REVOKE_POLICY,
                "PolicyDocument": json.dumps(rest)}, mutating=True))
        return True


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
        return ()

    def run(self, inp: StepInput, api: Api) -> StepResult:
        view, target = inp.view, inp.require_target(self.name)
        if view is None or target.user_name is None:
            raise BadInput("rollback undoes a leaked key's containment: this incident has none")
        undo_plan(view)  # refuses a session's incident
        undo = _Undo(api)
        reactivated: list[ReactivatedKey] = []
        quarantines: list[RemovedQuarantine] = []
        restored: list[RestoredSessions] = []
        left: list[str] = []
        attacker = view.attacker
        if attacker is not None:
            keys = [(k.user_name, k.access_key_id)
                    for k in attacker.keys_disabled if not k.already]
            for p in attacker.principals_quarantined:
                kind, name = ("User" if p.type == "user" else "Role"), p.name
                if undo.delete_policy(kind, name, QUARANTINE_POLICY):
                    quarantines.append(RemovedQuarantine(p.type, name))
                keys += [(name, k) for k in p.keys_disabled]
            for user, key in keys:
                status = undo.reactivate(user, key)
                if status == "Active":
                    reactivated.append(ReactivatedKey(user, key))
                elif status == "Deleted":
                    left.append(f"key {key} of {user} was deleted: left deleted")
            for r in attacker.sessions_revoked:
                sessions = list(r.sessions)
                if undo.restore_sessions(r.role_name, sessions):
                    restored.append(RestoredSessions(r.role_name, r.sessions))
        revoked = view.sessions_revoked
        cutoff = revoked.token_issue_time_before if revoked else None
        deny_removed = undo.delete_policy(
            "User", target.user_name, DENY_POLICY,
            ours=lambda doc: cutoff is None or (
                (found := policy_cutoff(doc)) is not None and cutoff_text(found) == cutoff))
        status = undo.reactivate(target.user_name, inp.incident.access_key_id)
        if status == "Deleted":
            left.append(f"the key {inp.incident.access_key_id} was deleted: left deleted")
        return StepResult("done", RolledBack(
            str(inp.settings.get("reason", "")), status, deny_removed, tuple(reactivated),
            tuple(quarantines), tuple(restored), tuple(left)), effective_at=inp.ctx.clock())
