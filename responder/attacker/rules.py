"""contain-attacker's reading of the evidence: which CloudTrail events open a door, what
the step shuts by itself, and, for everything else that grants or widens access, what a
human must undo and the exact `aws` command that undoes it.

Pure functions over CloudTrail records (no AWS calls), so the rules are tested on their
own and the step module only observes and acts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from responder.iam.role_policy import REVOKE_POLICY, revoke_policy
from responder.incident.shapes import refusal

ASSUME_EVENTS = frozenset({"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"})
CUTOFF_EVENTS = frozenset({"GetSessionToken", "GetFederationToken"})
LOGIN_EVENTS = frozenset({"CreateLoginProfile", "UpdateLoginProfile"})
ACTED_ON = frozenset({"CreateAccessKey", "CreateUser", "CreateRole", *ASSUME_EVENTS,
                      *CUTOFF_EVENTS, *LOGIN_EVENTS})
"""Events shut or noted by contain-attacker itself (RULES lists the rest it lists)."""


@dataclass
class Findings:
    """What the attacker's successful events call for, in the order they were seen."""

    keys: dict[str, str] = field(default_factory=dict)
    """access key id -> its user: keys the attacker created."""
    users: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """role name -> {"role_arn", "sessions": {ROLEID:session or "?:session"}}"""
    foreign: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """account id -> the same as `sessions`, for roles in another account, each with the
    needs-human items ("human") to list when that account cannot be reached."""
    covered_by_cutoff: list[dict[str, Any]] = field(default_factory=list)
    needs_human: list[dict[str, Any]] = field(default_factory=list)
    events_considered: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    """Calls of the kinds acted on that AWS refused (an errorCode): nothing to undo."""


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """The evidence file's records, one per line, streamed."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                record = json.loads(line)
                if isinstance(record, dict):
                    yield record


def _params(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = event.get(name)
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _caller(event: Mapping[str, Any]) -> str:
    return str(_params(event, "userIdentity").get("accessKeyId") or "?")


def role_name(arn: str) -> str:
    """The role's name: the last segment of arn:aws:iam::ACCOUNT:role/path/name."""
    return arn.rsplit("/", 1)[-1]


def account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def service_linked(arn: str) -> bool:
    return "/aws-service-role/" in arn or role_name(arn).startswith("AWSServiceRoleFor")


def analyse(events: Iterable[Mapping[str, Any]], *, leaked_key: str, victim: str | None,
            account_id: str, own_keys: frozenset[str]) -> Findings:
    """Sort the attacker's successful events into what the step acts on, what the cutoff
    already covers and what is listed for a human. A call AWS refused (CloudTrail wrote
    an errorCode) changed nothing: never acted on, never given an undo, only listed as
    refused. Events signed with `own_keys` (the responder's key, its replacement key)
    are never the attacker's."""
    relevant: list[Mapping[str, Any]] = []
    refused: list[dict[str, Any]] = []
    minted: dict[str, tuple[str, str]] = {}  # temporary key -> (minting key, event name)
    considered = 0
    for event in events:
        caller = _caller(event)
        if caller in own_keys:
            continue
        name = str(event.get("eventName", ""))
        code = refusal(event)
        if code is not None:
            if name in RULES or name in ACTED_ON:
                refused.append({"event_id": event.get("eventID"), "event_name": name,
                                "time": event.get("eventTime"), "access_key_id": caller,
                                "error_code": code})
            continue
        considered += 1
        if name in CUTOFF_EVENTS or name in ASSUME_EVENTS:
            temp = _text(_params(_params(event, "responseElements"), "credentials")
                         .get("accessKeyId"))
            if temp is not None:
                minted[temp] = (caller, name)
        if name in RULES or name in ACTED_ON:
            relevant.append(event)

    def owner(key: str, depth: int = 0) -> str | None:
        """The IAM user a key signs as: the leaked key's, and that of every session
        GetSessionToken minted from it; a role or federated session has none."""
        if key == leaked_key:
            return victim
        parent = minted.get(key)
        if parent is None or parent[1] != "GetSessionToken" or depth > 20:
            return None
        return owner(parent[0], depth + 1)

    found = Findings(events_considered=considered, refused=sorted(
        refused, key=lambda r: (str(r["time"] or ""), str(r["event_id"] or ""))))
    for event in sorted(relevant, key=lambda e: (str(e.get("eventTime", "")),
                                                 str(e.get("eventID", "")))):
        _one(found, event, owner=owner, account_id=account_id, own_keys=own_keys)
    return found


def _human(event: Mapping[str, Any], what: str, undo: str) -> dict[str, Any]:
    return {"event_id": event.get("eventID"), "event_name": event.get("eventName"),
            "time": event.get("eventTime"), "access_key_id": _caller(event),
            "what": what, "undo": undo}


def _one(found: Findings, event: Mapping[str, Any], *, owner: Callable[[str], str | None],
         account_id: str, own_keys: frozenset[str]) -> None:
    name = str(event.get("eventName", ""))
    request = _params(event, "requestParameters")
    response = _params(event, "responseElements")
    caller = _caller(event)
    if name == "CreateAccessKey":
        created = _params(response, "accessKey")
        key = _text(created.get("accessKeyId"))
        user = _text(request.get("userName")) or _text(created.get("userName")) or owner(caller)
        if key is None or key in own_keys:
            return
        if user is None:
            found.needs_human.append(_human(
                event, f"created access key {key} for a user CloudTrail does not name",
                f"aws iam update-access-key --user-name <its user> --access-key-id {key} "
                "--status Inactive"))
            return
        found.keys.setdefault(key, user)
    elif name == "CreateUser":
        user = _text(request.get("userName"))
        if user is not None and user not in found.users:
            found.users.append(user)
    elif name == "CreateRole":
        role = _text(request.get("roleName"))
        if role is not None and role not in found.roles:
            found.roles.append(role)
    elif name in ASSUME_EVENTS:
        _assumed(found, event, account_id)
    elif name in CUTOFF_EVENTS:
        found.covered_by_cutoff.append({"event_id": event.get("eventID"), "event_name": name,
                                        "access_key_id": caller})
    elif name in LOGIN_EVENTS:
        user = _text(request.get("userName")) or owner(caller) or "<its user>"
        if user not in found.users:  # a user the attacker created is quarantined whole
            found.needs_human.append(_human(
                event, f"set a console password on existing user {user}",
                f"aws iam delete-login-profile --user-name {user}"))
    else:
        what, undo = RULES[name](event, request, response)
        found.needs_human.append(_human(event, what, undo))


def _assumed(found: Findings, event: Mapping[str, Any], account_id: str) -> None:
    request = _params(event, "requestParameters")
    assumed = _params(_params(event, "responseElements"), "assumedRoleUser")
    arn = _text(request.get("roleArn"))
    if arn is None:
        return
    session = _text(assumed.get("assumedRoleId")) or \
        f"?:{request.get('roleSessionName') or ''}"
    name = role_name(arn)
    policy = json.dumps(revoke_policy([session]), separators=(",", ":"))
    other = account_of(arn)
    if other is not None and other != account_id and not service_linked(arn):
        entry = found.foreign.setdefault(other, {}).setdefault(
            name, {"role_arn": arn, "sessions": set(), "human": []})
        entry["sessions"].add(session)
        entry["human"].append(_human(
            event, f"assumed role {arn} in another account (session {session})",
            f"aws iam put-role-policy --role-name {name} --policy-name "
            f"{REVOKE_POLICY} --policy-document '{policy}' "
            f"(with credentials of account {other})"))
        return
    if service_linked(arn):
        found.needs_human.append(_human(
            event, f"assumed service-linked role {arn} (session {session}); its policies "
            "cannot be changed", f"aws iam delete-service-linked-role --role-name {name} "
            "(if the service no longer needs it), or wait for the session to expire"))
        return
    entry = found.sessions.setdefault(name, {"role_arn": arn, "sessions": set()})
    entry["sessions"].add(session)


# -- what a human must undo ----------------------------------------------------------------

Rule = Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], tuple[str, str]]


def _p(request: Mapping[str, Any], *names: str) -> str:
    """The first request parameter present, else a placeholder naming it."""
    for name in names:
        value = request.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            return str(value)
    return f"<{names[0]}>"


def _region(event: Mapping[str, Any]) -> str:
    return str(event.get("awsRegion") or "us-east-1")


_NAME_FLAG = {"user": "user-name", "role": "role-name", "group": "group-name"}
"""The aws CLI flag naming the principal of each kind."""


def _detach(kind: str) -> Rule:
    flag = _NAME_FLAG[kind]

    def rule(_: Mapping[str, Any], req: Mapping[str, Any], __: Mapping[str, Any]
             ) -> tuple[str, str]:
        who, arn = _p(req, f"{kind}Name"), _p(req, "policyArn")
        return (f"attached managed policy {arn} to {kind} {who}",
                f"aws iam detach-{kind}-policy --{flag} {who} --policy-arn {arn}")
    return rule


def _inline(kind: str) -> Rule:
    flag = _NAME_FLAG[kind]

    def rule(_: Mapping[str, Any], req: Mapping[str, Any], __: Mapping[str, Any]
             ) -> tuple[str, str]:
        who, policy = _p(req, f"{kind}Name"), _p(req, "policyName")
        return (f"put inline policy {policy} on {kind} {who}",
                f"aws iam delete-{kind}-policy --{flag} {who} --policy-name {policy} "
                "(if it replaced an earlier policy of that name, put that one back instead)")
    return rule


def _policy_version(_: Mapping[str, Any], req: Mapping[str, Any], resp: Mapping[str, Any]
                    ) -> tuple[str, str]:
    arn = _p(req, "policyArn")
    version = _p(_params(resp, "policyVersion"), "versionId")
    undo = f"aws iam delete-policy-version --policy-arn {arn} --version-id {version}"
    if req.get("setAsDefault") in {True, "true"}:
        undo = (f"aws iam set-default-policy-version --policy-arn {arn} --version-id "
                f"<the previous default version> && {undo}")
    return f"created version {version} of policy {arn}", undo


def _fixed(what: str, undo: str) -> Rule:
    """A rule whose texts name request parameters as {name} (placeholders when absent)."""
    names = [n.split("}")[0] for n in (what + undo).split("{")[1:]]

    def rule(event: Mapping[str, Any], req: Mapping[str, Any], resp: Mapping[str, Any]
             ) -> tuple[str, str]:
        values = {n: _p(req, n) for n in names if n != "region"}
        values["region"] = _region(event)
        if "instances" in names:
            items = _params(resp, "instancesSet").get("items", [])
            ids = [str(i.get("instanceId")) for i in items if isinstance(i, Mapping)]
            values["instances"] = " ".join(ids) or "<instance ids>"
        if "rules" in names:
            items = _params(resp, "securityGroupRuleSet").get("items", [])
            ids = [str(i.get("securityGroupRuleId")) for i in items if isinstance(i, Mapping)]
            values["rules"] = " ".join(ids) or "<security group rule ids>"
        return what.format(**values), undo.format(**values)
    return rule


RULES: dict[str, Rule] = {
    "AttachUserPolicy": _detach("user"),
    "AttachRolePolicy": _detach("role"),
    "AttachGroupPolicy": _detach("group"),
    "PutUserPolicy": _inline("user"),
    "PutRolePolicy": _inline("role"),
    "PutGroupPolicy": _inline("group"),
    "CreatePolicyVersion": _policy_version,
    "SetDefaultPolicyVersion": _fixed(
        "made version {versionId} the default of policy {policyArn}",
        "aws iam set-default-policy-version --policy-arn {policyArn} --version-id "
        "<the previous default version>"),
    "AddUserToGroup": _fixed(
        "added user {userName} to group {groupName}",
        "aws iam remove-user-from-group --group-name {groupName} --user-name {userName}"),
    "UpdateAssumeRolePolicy": _fixed(
        "changed who may assume role {roleName}",
        "aws iam update-assume-role-policy --role-name {roleName} --policy-document "
        "file://<the trust policy before this event>"),
    "UpdateAccessKey": _fixed(
        "set access key {accessKeyId} of {userName} to {status}",
        "aws iam update-access-key --user-name {userName} --access-key-id {accessKeyId} "
        "--status Inactive"),
    "PutBucketPolicy": _fixed(
        "set the bucket policy of {bucketName}",
        "aws s3api delete-bucket-policy --bucket {bucketName} (or put back the previous "
        "policy)"),
    "PutBucketAcl": _fixed(
        "changed the ACL of bucket {bucketName}",
        "aws s3api put-bucket-acl --bucket {bucketName} --acl private"),
    "DeleteBucketPolicy": _fixed(
        "deleted the bucket policy of {bucketName}",
        "aws s3api put-bucket-policy --bucket {bucketName} --policy file://<the policy "
        "before this event>"),
    "PutBucketPublicAccessBlock": _fixed(
        "changed the public access block of bucket {bucketName}",
        "aws s3api put-public-access-block --bucket {bucketName} "
        "--public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,"
        "BlockPublicPolicy=true,RestrictPublicBuckets=true"),
    "RunInstances": _fixed(
        "started instances {instances} in {region}",
        "aws ec2 stop-instances --region {region} --instance-ids {instances} (terminate them "
        "once their volumes are kept as evidence)"),
    "CreateKeyPair": _fixed(
        "created EC2 key pair {keyName} in {region}",
        "aws ec2 delete-key-pair --region {region} --key-name {keyName}"),
    "ImportKeyPair": _fixed(
        "imported EC2 key pair {keyName} in {region}",
        "aws ec2 delete-key-pair --region {region} --key-name {keyName}"),
    "AuthorizeSecurityGroupIngress": _fixed(
        "opened ingress on security group {groupId} in {region}",
        "aws ec2 revoke-security-group-ingress --region {region} --group-id {groupId} "
        "--security-group-rule-ids {rules}"),
    "CreateFunction20150331": _fixed(
        "created Lambda function {functionName} in {region}",
        "aws lambda delete-function --region {region} --function-name {functionName}"),
    "UpdateFunctionCode20150331v2": _fixed(
        "replaced the code of Lambda function {functionName} in {region}",
        "aws lambda update-function-code --region {region} --function-name {functionName} "
        "--s3-bucket <bucket of the previous code> --s3-key <its key>"),
    "StopLogging": _fixed(
        "stopped CloudTrail trail {name} in {region}",
        "aws cloudtrail start-logging --region {region} --name {name}"),
    "DeleteTrail": _fixed(
        "deleted CloudTrail trail {name} in {region}",
        "aws cloudtrail create-trail --region {region} --name {name} --s3-bucket-name "
        "<its bucket> && aws cloudtrail start-logging --region {region} --name {name}"),
    "UpdateTrail": _fixed(
        "changed CloudTrail trail {name} in {region}",
        "aws cloudtrail update-trail --region {region} --name {name} <its previous settings>"),
    "PutEventSelectors": _fixed(
        "changed what CloudTrail trail {trailName} records in {region}",
        "aws cloudtrail put-event-selectors --region {region} --trail-name {trailName} "
        "--event-selectors file://<the selectors before this event>"),
    "DeleteFlowLogs": _fixed(
        "deleted VPC flow logs in {region}",
        "aws ec2 create-flow-logs --region {region} <the deleted flow logs' settings>"),
    "DisableSecurityHub": _fixed(
        "disabled Security Hub in {region}",
        "aws securityhub enable-security-hub --region {region}"),
    "DeleteDetector": _fixed(
        "deleted GuardDuty detector {detectorId} in {region}",
        "aws guardduty create-detector --region {region} --enable"),
    "UpdateDetector": _fixed(
        "changed GuardDuty detector {detectorId} in {region}",
        "aws guardduty update-detector --region {region} --detector-id {detectorId} --enable"),
    "DeactivateMFADevice": _fixed(
        "deactivated MFA device {serialNumber} of {userName}",
        "aws iam enable-mfa-device --user-name {userName} --serial-number {serialNumber} "
        "--authentication-code1 <code> --authentication-code2 <next code>"),
    "DeleteVirtualMFADevice": _fixed(
        "deleted virtual MFA device {serialNumber}",
        "aws iam create-virtual-mfa-device --virtual-mfa-device-name <name> --outfile "
        "<qr.png> --bootstrap-method QRCodePNG, then enable-mfa-device for its user"),
    "LeaveOrganization": _fixed(
        "took the account out of its AWS Organization",
        "aws organizations accept-handshake --handshake-id <an invitation from the "
        "organization's management account>"),
}
