"""The one inline policy a role gets to deny exactly the sessions an attacker holds.

`responder-revoke-attacker-sessions` is shared by contain-attacker (role sessions the
attacker assumed) and revoke-session (a leaked role session): every writer merges into
it, never replaces it, so neither drops what the other denied.

- One statement (`ResponderRevokeAttackerSessions`) denies everything to a set of
  sessions, named as aws:userid names them: `ROLEID:session-name`.
- An EC2 instance's session gets statements of its own that deny it only away from the
  instance (docs/decisions.md #28 gives the evaluation rules they rely on). Its session
  name is the instance id, and the instance keeps receiving fresh credentials under that
  same name, so an unconditional deny would take the instance's role away for good.

Pure functions: the steps observe and put; the documents are decided here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REVOKE_POLICY = "responder-revoke-attacker-sessions"
REVOKE_SID = "ResponderRevokeAttackerSessions"
AWAY_SID = "ResponderAwayFrom"
"""Prefix of the statements that deny an instance's session away from that instance."""


@dataclass(frozen=True)
class InstanceNetwork:
    """Where an instance's own requests come from."""

    instance_id: str
    vpc_id: str
    private_ip: str
    egress_ips: tuple[str, ...] = ()
    """Public addresses its requests to public endpoints leave from: its own public IPs
    and those of the NAT gateways its subnet routes through."""


def _document(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _statements(document: Any) -> list[Mapping[str, Any]]:
    document = _document(document)
    found = document.get("Statement", []) if isinstance(document, Mapping) else []
    found = found if isinstance(found, list) else [found]
    return [s for s in found if isinstance(s, Mapping)]


def sessions_in(document: Any) -> set[str]:
    """The sessions the policy's session statement already names."""
    found: set[str] = set()
    for statement in _statements(document):
        if statement.get("Sid") != REVOKE_SID:
            continue
        condition = statement.get("Condition")
        equals = condition.get("StringEquals") if isinstance(condition, Mapping) else None
        ids = equals.get("aws:userid", []) if isinstance(equals, Mapping) else []
        found.update([ids] if isinstance(ids, str) else [str(i) for i in ids])
    return found


def _session_statement(sessions: Iterable[str]) -> dict[str, Any]:
    return {"Sid": REVOKE_SID, "Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"StringEquals": {"aws:userid": sorted(set(sessions))}}}


def revoke_policy(sessions: Iterable[str]) -> dict[str, Any]:
    """Deny everything to exactly these role sessions (aws:userid is ROLEID:session)."""
    return {"Version": "2012-10-17", "Statement": [_session_statement(sessions)]}


def _sid_part(instance_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", instance_id)


def away_statements(session: str, network: InstanceNetwork) -> list[dict[str, Any]]:
    """Deny `session` (ROLEID:i-...) wherever a request does not come from the instance.

    Three statements, any of which denies: through a VPC endpoint of another VPC;
    through an endpoint of its VPC but from another private address; over a public
    endpoint from an address that is not one of the instance's egress addresses (with
    none known, every use over a public endpoint). The aws:ec2InstanceSource* keys
    describe where the credential was issued, not where it is used, so they only tie
    each statement to that instance's copy (IfExists: an absent key must not let the
    stolen copy through); the aws:SourceVpc / aws:VpcSourceIp / aws:SourceIp keys of
    the request's network path decide. Requests an AWS service makes on the instance's
    behalf carry none of the instance's addresses and are left alone.
    """
    sid = AWAY_SID + _sid_part(network.instance_id)

    def deny(suffix: str, issued: Mapping[str, str], path: Mapping[str, Any]) -> dict[str, Any]:
        return {"Sid": sid + suffix, "Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {"StringEquals": {"aws:userid": session},
                              "StringEqualsIfExists": dict(issued), **path,
                              "BoolIfExists": {"aws:ViaAWSService": "false"}}}

    in_vpc = {"aws:ec2InstanceSourceVPC": network.vpc_id}
    internet: dict[str, Any] = {"Null": {"aws:SourceVpc": "true"}}
    if network.egress_ips:
        internet["NotIpAddress"] = {"aws:SourceIp": [f"{ip}/32" for ip in network.egress_ips]}
    return [
        deny("OtherVpc", in_vpc, {"StringNotEquals": {"aws:SourceVpc": network.vpc_id},
                                  "Null": {"aws:SourceVpc": "false"}}),
        deny("OtherAddress", {"aws:ec2InstanceSourcePrivateIPv4": network.private_ip},
             {"NotIpAddress": {"aws:VpcSourceIp": f"{network.private_ip}/32"},
              "Null": {"aws:VpcSourceIp": "false"}}),
        deny("Internet", in_vpc, internet),
    ]


def merged(current: Any, *, sessions: Iterable[str] = (),
           away: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The policy with `sessions` added to the session statement and the `away`
    statements put in place of any of the same Sid; every other statement kept as is."""
    wanted = sessions_in(current) | set(sessions)
    replacing = {str(s.get("Sid")) for s in away}
    kept = [dict(s) for s in _statements(current)
            if s.get("Sid") != REVOKE_SID and str(s.get("Sid")) not in replacing]
    statements = ([_session_statement(wanted)] if wanted else []) + kept + [dict(s) for s in away]
    return {"Version": "2012-10-17", "Statement": statements}


def without(current: Any, sessions: Iterable[str]) -> dict[str, Any] | None:
    """The policy with `sessions` taken out of the session statement, every other
    statement kept; None when nothing would be left (the policy is then deleted)."""
    wanted = sessions_in(current) - set(sessions)
    kept = [dict(s) for s in _statements(current) if s.get("Sid") != REVOKE_SID]
    statements = ([_session_statement(wanted)] if wanted else []) + kept
    return {"Version": "2012-10-17", "Statement": statements} if statements else None


def names(document: Any, *, session: str, instance_id: str | None = None) -> bool:
    """Whether the policy already denies `session` (for an instance: its away statements)."""
    if instance_id is None:
        return session in sessions_in(document)
    prefix = AWAY_SID + _sid_part(instance_id)
    return any(str(s.get("Sid", "")).startswith(prefix) for s in _statements(document))
