"""revoke-session: end exactly the leaked session, and nothing else of its principal.

The usual answer to a leaked role session, "revoke all active sessions" (a deny on
aws:TokenIssueTime for the whole role), takes down every workload of the role for hours.
Instead:

- a role's session: the role's `responder-revoke-attacker-sessions` policy (shared with
  contain-attacker, merged, never replaced) denies that one session, aws:userid
  ROLEID:session;
- an EC2 instance's session (its name is the instance id): the instance receives fresh
  credentials under that same name every hour, so an unconditional deny would take its
  role away for good. The session is denied only where a request does not come from the
  instance: its VPC, private address and egress addresses, from the finding when it
  names them, else from EC2 (role_policy.away_statements; docs/decisions.md #28);
- a user's session (GetSessionToken, GetFederationToken): the user's
  `responder-revoke-older-sessions` deny on aws:TokenIssueTime, as revoke-sessions writes
  it, cut off when this response started (a later cutoff already there is kept). The
  user's long-term keys are left alone: the session leaked, not the key.

The current policy is read before it is written, so a re-run or a resume after a crash
finds the session already denied and writes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed, StepFailed
from responder.iam import inline_policy, role_policy
from responder.iam.role_policy import InstanceNetwork
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import SessionDenied, SessionFound
from responder.incident.shapes import AwayFromInstance
from responder.logging import get_logger
from responder.steps.deny import (
    POLICY_NAME,
    cutoff_text,
    deny_policy,
    policy_cutoff,
    round_up,
    sent_cutoff,
)
from responder.steps.evidence import HOME_REGION

log = get_logger("responder.revoke_session")

_UNKNOWN = "<from the finding, else ec2:DescribeInstances>"


@register("revoke_session")
class RevokeSession(Action):
    permissions = ("iam:GetRolePolicy", "iam:PutRolePolicy", "iam:GetUserPolicy",
                   "iam:PutUserPolicy", "ec2:DescribeInstances", "ec2:DescribeRouteTables",
                   "ec2:DescribeNatGateways")
    kind = "containment"
    result = SessionDenied

    @staticmethod
    def _session(inp: StepInput, step: str) -> SessionFound:
        found = inp.require_target(step).session
        if found is None:
            raise StepFailed(step, "the key is not a temporary key's session: use the "
                             "compromised-key playbook's steps for a long-term key")
        return found

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        target = inp.target
        found = target.session if target is not None else None
        if found is None:  # not identified yet: every way this step may go
            return (*self._plan_role(inp, SessionFound(principal_type="AssumedRole",
                                                       instance_id="<instance id>")),
                    *self._plan_user(inp, SessionFound(principal_type="IAMUser")))
        if found.principal_type == "AssumedRole":
            return self._plan_role(inp, found)
        return self._plan_user(inp, found)

    def _plan_user(self, inp: StepInput, found: SessionFound) -> tuple[ApiCall, ...]:
        user = found.user_name or "<user>"
        return (
            ApiCall("iam", "GetUserPolicy", {"UserName": user, "PolicyName": POLICY_NAME},
                    note="a user's session"),
            ApiCall("iam", "PutUserPolicy", {
                "UserName": user, "PolicyName": POLICY_NAME,
                "PolicyDocument": inline_policy.compact(deny_policy(self._cutoff(inp, None)))},
                mutating=True, note="the user's sessions issued before this response "
                "started are denied (a later cutoff already there is kept); the user's "
                "access keys are not touched"),
        )

    def _plan_role(self, inp: StepInput, found: SessionFound) -> tuple[ApiCall, ...]:
        role = found.role_name or "<role>"
        session = found.aws_userid or "<ROLEID:session>"
        calls: list[ApiCall] = []
        away: list[dict[str, Any]] = []
        if found.instance_id is not None:
            hint = inp.ctx.options.session
            calls += [
                ApiCall("ec2", "DescribeInstances", {"InstanceIds": [found.instance_id]},
                        note="an EC2 instance's session: its VPC, private and public "
                        "addresses, in its region"),
                ApiCall("ec2", "DescribeRouteTables", {"Filters": [
                    {"Name": "association.subnet-id", "Values": ["<its subnet>"]}]}),
                ApiCall("ec2", "DescribeNatGateways", {"NatGatewayIds": ["<its route's>"]},
                        note="only when its subnet routes through NAT gateways"),
            ]
            away = role_policy.away_statements(session, InstanceNetwork(
                found.instance_id, (hint.vpc_id if hint else None) or _UNKNOWN,
                (hint.private_ip if hint else None) or _UNKNOWN,
                tuple(hint.public_ips) if hint else ()))
        document = role_policy.merged(None, sessions=() if away else (session,), away=away)
        return (*calls,
                ApiCall("iam", "GetRolePolicy", {"RoleName": role,
                                                 "PolicyName": role_policy.REVOKE_POLICY}),
                ApiCall("iam", "PutRolePolicy", {
                    "RoleName": role, "PolicyName": role_policy.REVOKE_POLICY,
                    "PolicyDocument": inline_policy.compact(document)}, mutating=True,
                    note="merged with the sessions the policy already denies; the role's "
                    "other sessions keep working" + (", and the instance itself too"
                                                       if away else "")))

    def run(self, inp: StepInput, api: Api) -> StepResult:
        found = self._session(inp, self.name)
        if found.principal_type == "AssumedRole":
            return self._role(inp, api, found)
        return self._user(inp, api, found)

    # -- a user's session --------------------------------------------------------------

    @staticmethod
    def _cutoff(inp: StepInput, current: datetime | None) -> datetime:
        ours = sent_cutoff(inp) or round_up(inp.incident.started_at)
        return max(ours, current) if current is not None else ours

    def _user(self, inp: StepInput, api: Api, found: SessionFound) -> StepResult:
        user = found.user_name
        if user is None:
            raise StepFailed(self.name, f"CloudTrail names no IAM user for {found.label}")
        current = inline_policy.get(api, "User", user, POLICY_NAME)
        current_cutoff = policy_cutoff(current) if current is not None else None
        cutoff = self._cutoff(inp, current_cutoff)
        facts = SessionDenied(on="user", name=user, policy_name=POLICY_NAME,
                              token_issue_time_before=cutoff_text(cutoff))
        if current is not None and inline_policy.parsed(current) == deny_policy(cutoff):
            return StepResult("done", _already(facts), effective_at=inp.acted_at("PutUserPolicy"))
        if not inline_policy.put(api, "User", user, POLICY_NAME, deny_policy(cutoff)):
            return _deleted(inp, "user", user)
        return StepResult("done", facts, effective_at=inp.ctx.clock())

    # -- a role's session --------------------------------------------------------------

    def _role(self, inp: StepInput, api: Api, found: SessionFound) -> StepResult:
        role, session = found.role_name, found.aws_userid
        if role is None or session is None:
            raise StepFailed(self.name, f"CloudTrail does not name the role and session of "
                             f"{inp.incident.access_key_id}; revoke it by hand")
        network = self._network(inp, api, found) if found.instance_id else None
        away = role_policy.away_statements(session, network) if network is not None else []
        current = inline_policy.get(api, "Role", role, role_policy.REVOKE_POLICY)
        document = role_policy.merged(current, sessions=() if away else (session,), away=away)
        facts = SessionDenied(
            on="role", name=role, policy_name=role_policy.REVOKE_POLICY, session=session,
            away_from_instance=AwayFromInstance(
                network.instance_id, network.vpc_id, network.private_ip, network.egress_ips,
                tuple(s["Sid"] for s in away)) if network is not None else None)
        if current is not None and inline_policy.parsed(current) == document:
            return StepResult("done", _already(facts), effective_at=inp.acted_at("PutRolePolicy"))
        if not inline_policy.put(api, "Role", role, role_policy.REVOKE_POLICY, document):
            return _deleted(inp, "role", role)
        return StepResult("done", facts, effective_at=inp.ctx.clock())

    def _network(self, inp: StepInput, api: Api, found: SessionFound) -> InstanceNetwork | None:
        """The instance's VPC and addresses: the finding's, completed from EC2. None when
        neither knows them (the instance is gone): the session is then denied everywhere."""
        hint = inp.ctx.options.session
        vpc = hint.vpc_id if hint else None
        address = hint.private_ip if hint else None
        public = list(hint.public_ips) if hint else []
        instance = found.instance_id or ""
        regions = [hint.region if hint else None, found.event.get("region"), HOME_REGION,
                   *found.regions_searched]
        described, region = self._describe(api, instance, [r for r in dict.fromkeys(regions)
                                                           if isinstance(r, str) and r])
        if described is not None:
            vpc = vpc or described.get("VpcId")
            address = address or described.get("PrivateIpAddress")
            public += [str(described["PublicIpAddress"])] if described.get("PublicIpAddress") \
                else []
            public += [str(n["Association"]["PublicIp"])
                       for n in described.get("NetworkInterfaces", [])
                       if isinstance(n.get("Association"), Mapping)
                       and n["Association"].get("PublicIp")]
        if not vpc or not address:
            log.warning("revoke_session.instance_unknown", instance_id=instance)
            return None
        if described is not None and region is not None:
            public += self._nat_addresses(api, region, str(vpc), described.get("SubnetId"))
        return InstanceNetwork(instance, str(vpc), str(address), tuple(dict.fromkeys(public)))

    @staticmethod
    def _describe(api: Api, instance: str, regions: list[str]
                  ) -> tuple[Mapping[str, Any] | None, str | None]:
        for region in regions:
            try:
                found = api.call(ApiCall("ec2", "DescribeInstances",
                                         {"InstanceIds": [instance]}), region=region)
            except AwsCallFailed as exc:
                if exc.code.startswith("InvalidInstanceID"):
                    continue  # not in this region
                log.warning("revoke_session.describe_failed", region=region, error=str(exc))
                return None, None
            for reservation in found.get("Reservations", []):
                for described in reservation.get("Instances", []):
                    return described, region
        return None, None

    @staticmethod
    def _nat_addresses(api: Api, region: str, vpc: str, subnet: Any) -> list[str]:
        """Public addresses of the NAT gateways the instance's subnet routes through."""
        try:
            tables = api.call(ApiCall("ec2", "DescribeRouteTables", {"Filters": [
                {"Name": "association.subnet-id", "Values": [str(subnet)]}]}), region=region)
            if not tables.get("RouteTables"):  # no table of its own: the VPC's main one
                tables = api.call(ApiCall("ec2", "DescribeRouteTables", {"Filters": [
                    {"Name": "vpc-id", "Values": [vpc]},
                    {"Name": "association.main", "Values": ["true"]}]}), region=region)
            gateways = sorted({str(r["NatGatewayId"]) for t in tables.get("RouteTables", [])
                               for r in t.get("Routes", []) if r.get("NatGatewayId")})
            if not gateways:
                return []
            nats = api.call(ApiCall("ec2", "DescribeNatGateways", {"NatGatewayIds": gateways}),
                            region=region)
        except AwsCallFailed as exc:
            log.warning("revoke_session.nat_unknown", region=region, error=str(exc))
            return []
        return [str(a["PublicIp"]) for n in nats.get("NatGateways", [])
                for a in n.get("NatGatewayAddresses", []) if a.get("PublicIp")]


def _deleted(inp: StepInput, on: str, name: str) -> StepResult:
    """The principal is gone: none of its sessions has a permission left."""
    return StepResult("done", SessionDenied(on=on, name=name, principal_deleted=True),
                      effective_at=inp.ctx.clock())


def _already(facts: SessionDenied) -> SessionDenied:
    return dataclasses.replace(facts, already=True)
