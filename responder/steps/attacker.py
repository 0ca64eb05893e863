"""contain-attacker: shut what the attacker opened with the key and its sessions.

Disabling the key and denying the user's older sessions leaves three doors open: role
sessions the key assumed (the user's policy does not bind a role session), access keys
it created on any user, and users and roles it created. This step reads the incident's
evidence (the key's CloudTrail events and those of every temporary key it minted; only
successful ones), then:

- each key the attacker created goes Inactive;
- each user or role it created gets the inline deny-all `responder-quarantine` (and the
  user's keys go Inactive);
- each role it assumed gets `responder-revoke-attacker-sessions`, a deny naming exactly
  the attacker's sessions (aws:userid is ROLEID:session), merged with the sessions the
  policy already names, so the role's real workload keeps working;
- a trail it stopped logs again, a GuardDuty detector it disabled is enabled, a Config
  recorder it stopped records (attacker.restore: each read first, read again after);
- each secret, parameter and key it read is named with the command that rotates it, and
  each principal outside the account it let in is named;
- everything else that grants or widens access is listed for a human with the command
  that undoes it (the catalog, responder.catalog);
- a call AWS refused (CloudTrail wrote an errorCode) changed nothing: it is neither acted
  on nor given an undo, only listed as refused;
- the regions collect-evidence could not read are recorded (`regions_unread`): what the
  attacker did there was not seen, so containment may be incomplete there.

Nothing is deleted, and nothing the attacker's keys did not create or use is touched.
Every change is observed first (key already Inactive, policy already there), the
policy names are fixed and session lists are set unions, so a resume after a crash
anywhere reaches the same end state and a second resume changes nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from responder.attacker import restore
from responder.attacker.rules import Findings, analyse, read_events
from responder.aws import Api, ApiCall, assuming, caller_access_key
from responder.errors import AwsCallFailed, StepFailed
from responder.iam import inline_policy, role_policy
from responder.iam.snapshot import UserKeys
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import AttackerContained
from responder.incident.shapes import (
    CoveredSession,
    CredentialRead,
    DisabledKey,
    HumanAction,
    OutsideGrant,
    QuarantinedPrincipal,
    RefusedCall,
    RestoredDefense,
    RevokedSession,
)
from responder.logging import get_logger

log = get_logger("responder.attacker")

QUARANTINE_POLICY = "responder-quarantine"
REVOKE_POLICY = role_policy.REVOKE_POLICY
ACTS_ON = "acts on what the evidence shows: "


def quarantine_policy() -> dict[str, Any]:
    """Deny everything, unconditionally: a principal the attacker created."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "ResponderQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}]}


@register("contain_attacker")
class ContainAttacker(Action):
    permissions = (
        "iam:ListAccessKeys", "iam:UpdateAccessKey", "iam:GetUserPolicy",
        "iam:PutUserPolicy", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:GetRole",
        *restore.PERMISSIONS,
    )
    kind = "attacker"
    result = AttackerContained
    needs = ("evidence",)  # on resume, a failed collection runs again before this step

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        user = "<user the evidence names>"
        role = "<role the evidence names>"
        quarantine = inline_policy.compact(quarantine_policy())
        return (
            ApiCall("iam", "ListAccessKeys", {"UserName": user},
                    note=ACTS_ON + "each user the attacker created a key on or created"),
            ApiCall("iam", "UpdateAccessKey", {"UserName": user, "AccessKeyId":
                    "<key the attacker created>", "Status": "Inactive"}, mutating=True,
                    note=ACTS_ON + "each key the attacker created, and each key of a user "
                    "it created"),
            ApiCall("iam", "GetUserPolicy", {"UserName": user,
                                             "PolicyName": QUARANTINE_POLICY}),
            ApiCall("iam", "PutUserPolicy", {"UserName": user, "PolicyName": QUARANTINE_POLICY,
                                             "PolicyDocument": quarantine},
                    mutating=True, note=ACTS_ON + "each user the attacker created"),
            ApiCall("iam", "GetRolePolicy", {"RoleName": role,
                                             "PolicyName": QUARANTINE_POLICY}),
            ApiCall("iam", "PutRolePolicy", {"RoleName": role, "PolicyName": QUARANTINE_POLICY,
                                             "PolicyDocument": quarantine},
                    mutating=True, note=ACTS_ON + "each role the attacker created"),
            ApiCall("iam", "GetRole", {"RoleName": role},
                    note="only when an AssumeRole event does not name the session's role id"),
            ApiCall("iam", "PutRolePolicy", {
                "RoleName": role, "PolicyName": REVOKE_POLICY,
                "PolicyDocument": inline_policy.compact(
                    role_policy.revoke_policy(["<ROLEID:attacker session>"]))},
                    mutating=True, note=ACTS_ON + "each role the attacker assumed, merged "
                    "with the sessions the policy already names (GetRolePolicy first)"),
            *(dataclasses.replace(call, note=ACTS_ON + f"each {d.noun} the attacker turned "
                                  "off, in its region (read before and after)")
              for d in restore.DEFENSES.values()
              for call in (d.read(f"<{d.noun}>"), d.turn_on(f"<{d.noun}>"))),
        )

    def run(self, inp: StepInput, api: Api) -> StepResult:
        target = inp.require_target(self.name)
        path = self._evidence(inp)
        own = {caller_access_key(api.session)}
        if inp.view is not None and inp.view.replacement is not None:
            own.add(inp.view.replacement.access_key_id)
        protected = frozenset(k for k in own if k)
        found = analyse(read_events(path), leaked_key=inp.incident.access_key_id,
                        victim=target.user_name, account_id=target.account_id,
                        own_keys=protected)
        facts = _Containing(api, protected).apply(found)
        revoked, human = self._elsewhere(inp, api, protected, found)
        restored, unrestored = _restore(api, found)
        return StepResult("done", dataclasses.replace(
            facts, sessions_revoked=facts.sessions_revoked + revoked,
            needs_human=tuple(sorted(facts.needs_human + human + unrestored,  # as they happened
                                     key=lambda h: (str(h.time), str(h.event_id)))),
            regions_unread=_unread(inp), restored=restored))

    @staticmethod
    def _elsewhere(inp: StepInput, api: Api, protected: frozenset[str], found: Findings,
                   ) -> tuple[tuple[RevokedSession, ...], tuple[HumanAction, ...]]:
        """Roles the attacker assumed in other accounts: reached through the configured
        cross-account role (RESPONDER_ROLE_ARN_TEMPLATE), else listed for a human."""
        revoked: list[RevokedSession] = []
        human: list[HumanAction] = []
        for account, roles in sorted(found.foreign.items()):
            there = None
            if inp.ctx.role_arn_template:
                role_arn = inp.ctx.role_arn_template.format(account_id=account)
                try:
                    there = _Containing(api.with_session(
                        assuming(inp.ctx.session_factory, role_arn)()), protected)
                except (ClientError, BotoCoreError) as exc:
                    log.warning("contain_attacker.account_unreachable", account=account,
                                role_arn=role_arn, error=str(exc))
            for name, entry in sorted(roles.items()):
                done = there.revoke_sessions(name, entry) if there is not None else None
                if done is not None:
                    revoked.append(done)
                else:
                    human += [HumanAction.from_detail(h) for h in entry["human"]]
        return tuple(revoked), tuple(human)

    def _evidence(self, inp: StepInput) -> Path:
        evidence = inp.view.evidence if inp.view is not None else None
        if evidence is None or not evidence.path:
            raise StepFailed(self.name, "evidence collection has not finished, so what the "
                             "attacker created is unknown; `respond resume "
                             f"{inp.incident.id}` collects it again, then contains it")
        path = Path(evidence.path)
        if not path.is_file():
            raise StepFailed(self.name, f"the evidence file {path} is missing; `respond "
                             f"resume {inp.incident.id}` cannot rebuild it: collect it again "
                             "with a new incident for this key")
        return path


def _restore(api: Api, found: Findings
             ) -> tuple[tuple[RestoredDefense, ...], tuple[HumanAction, ...]]:
    """Each defense the attacker turned off, once (its latest event), turned on again;
    what could not be is listed for a human, with why."""
    latest: dict[tuple[str, str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
    for defense, human in found.restore:
        latest[(defense["kind"], defense["name"], defense["region"])] = (defense, human)
    restored: list[RestoredDefense] = []
    listed: list[HumanAction] = []
    for (kind, name, region), (defense, human) in latest.items():
        outcome = restore.restore(api, kind, name, region, defense.get("event_id"))
        if outcome.restored is not None:
            restored.append(outcome.restored)
        else:
            log.warning("contain_attacker.not_restored", kind=kind, name=name, region=region,
                        why=outcome.why_not)
            listed.append(HumanAction.from_detail(
                {**human, "what": f"{human['what']}; not turned on: {outcome.why_not}"}))
    return tuple(restored), tuple(listed)


def _unread(inp: StepInput) -> dict[str, str]:
    """Region: why CloudTrail could not be read there (the view's one account of the
    evidence gap). The attacker's work there was not seen, so not shut."""
    return dict(inp.view.regions_unread) if inp.view is not None else {}


class _Containing:
    """The changes, each observed before it is made."""

    def __init__(self, api: Api, protected: frozenset[str]) -> None:
        self.api = api
        self.protected = protected
        self._keys = UserKeys(api)
        self._set_inactive: set[tuple[str, str]] = set()
        """(user, key) this run set Inactive: what a rollback may make Active again."""

    def apply(self, found: Findings) -> AttackerContained:
        keys = [self._disable(user, key) for key, user in found.keys.items()
                if key not in self.protected]
        principals = [self._quarantine_user(u) for u in found.users]
        principals += [self._quarantine_role(r) for r in found.roles]
        sessions = [self.revoke_sessions(role, entry) for role, entry in found.sessions.items()]
        return AttackerContained(
            keys_disabled=tuple(k for k in keys if k is not None),
            principals_quarantined=tuple(p for p in principals if p is not None),
            sessions_revoked=tuple(s for s in sessions if s is not None),
            # attacker.rules writes these as mappings (it is below the facts' readers)
            covered_by_cutoff=tuple(CoveredSession.from_detail(c)
                                    for c in found.covered_by_cutoff),
            needs_human=tuple(HumanAction.from_detail(h) for h in found.needs_human),
            events_considered=found.events_considered,
            refused=tuple(RefusedCall.from_detail(r) for r in found.refused),
            credentials_read=tuple(CredentialRead.from_detail(c) for c in found.credentials),
            granted_to=tuple(OutsideGrant.from_detail(g) for g in found.granted),
        )

    def _disable(self, user: str, key: str) -> DisabledKey | None:
        keys = self._keys.of(user)
        if keys is None or key not in keys:
            return None  # gone: it signs nothing any more
        already = keys[key] == "Inactive"
        if not already:
            self.api.call(ApiCall("iam", "UpdateAccessKey", {
                "UserName": user, "AccessKeyId": key, "Status": "Inactive"}, mutating=True))
            keys[key] = "Inactive"
            self._set_inactive.add((user, key))
        return DisabledKey(user, key, already)

    def _quarantine_user(self, user: str) -> QuarantinedPrincipal | None:
        if not self._put("User", user, QUARANTINE_POLICY, quarantine_policy()):
            return None
        keys = [k for k in sorted(self._keys.of(user) or {}) if k not in self.protected
                and self._disable(user, k) is not None]
        found = tuple(k for k in keys if (user, k) not in self._set_inactive)
        return QuarantinedPrincipal("user", user, tuple(k for k in keys if k not in found),
                                    found or None)

    def _quarantine_role(self, role: str) -> QuarantinedPrincipal | None:
        if not self._put("Role", role, QUARANTINE_POLICY, quarantine_policy()):
            return None
        return QuarantinedPrincipal("role", role)

    def revoke_sessions(self, role: str, entry: dict[str, Any]) -> RevokedSession | None:
        wanted = set(entry["sessions"])
        unresolved = {s for s in wanted if s.startswith("?:")}
        if unresolved:
            role_id = self._role_id(role)
            if role_id is None:
                return None
            wanted = (wanted - unresolved) | {role_id + s[1:] for s in unresolved}
        current = self._get("Role", role, REVOKE_POLICY)
        document = role_policy.merged(current, sessions=wanted)
        if not self._put("Role", role, REVOKE_POLICY, document, current=current):
            return None
        return RevokedSession(role, entry["role_arn"], tuple(sorted(wanted)))

    def _role_id(self, role: str) -> str | None:
        try:
            found = self.api.call(ApiCall("iam", "GetRole", {"RoleName": role}))
        except AwsCallFailed as exc:
            if exc.code == "NoSuchEntity":
                return None
            raise
        return str(found["Role"]["RoleId"])

    def _get(self, kind: inline_policy.Kind, name: str, policy: str) -> Any:
        return inline_policy.get(self.api, kind, name, policy)

    _UNSET: Any = object()

    def _put(self, kind: inline_policy.Kind, name: str, policy: str,
             document: dict[str, Any], current: Any = _UNSET) -> bool:
        """Put the inline policy unless it is already exactly `document`; False when the
        principal no longer exists."""
        if current is self._UNSET:
            current = self._get(kind, name, policy)
        if current == document:
            return True
        return inline_policy.put(self.api, kind, name, policy, document)
