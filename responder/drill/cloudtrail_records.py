"""What the CloudTrail fake hands out: one compact stored event, and the records real
CloudTrail would build from it (the `LookupEvents` summary and the `CloudTrailEvent` JSON).

Kept apart from the query side (paging, filters, tokens) because the evidence step reads
these shapes field by field: `userIdentity` differs for long-term and temporary keys, and
ids must repeat from run to run so drills and tests compare evidence files byte for byte.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from responder.catalog.registry import SOURCE_OF

# Event name -> service, for a default eventSource: every event of the attacker-change
# catalog (as AWS writes its source), and the reads an attacker typically makes first;
# anything else is "unknown".
SERVICE_OF: dict[str, str] = {
    **{name: source.split(".", 1)[0] for name, source in SOURCE_OF.items()},
    **dict.fromkeys((
        "GetUser", "ListUsers", "CreateUser", "DeleteUser", "CreateAccessKey",
        "ListAccessKeys", "UpdateAccessKey", "DeleteAccessKey", "CreateLoginProfile",
        "UpdateLoginProfile", "AttachUserPolicy", "PutUserPolicy", "ListAttachedUserPolicies",
        "ListUserPolicies", "GetUserPolicy", "DeleteUserPolicy", "ListRoles", "CreateRole",
        "AttachRolePolicy", "ListPolicies", "GetAccountAuthorizationDetails",
        "AddUserToGroup", "ListGroups", "ListGroupsForUser",
    ), "iam"),
    **dict.fromkeys((
        "GetCallerIdentity", "AssumeRole", "GetSessionToken", "GetFederationToken",
        "GetAccessKeyInfo",
    ), "sts"),
    **dict.fromkeys((
        "DescribeInstances", "RunInstances", "TerminateInstances", "StopInstances",
        "DescribeRegions", "DescribeImages", "DescribeSecurityGroups", "CreateSecurityGroup",
        "AuthorizeSecurityGroupIngress", "CreateKeyPair", "ImportKeyPair", "DescribeKeyPairs",
        "DescribeVpcs", "DescribeSubnets",
    ), "ec2"),
    **dict.fromkeys((
        "ListBuckets", "CreateBucket", "DeleteBucket", "GetObject", "PutObject",
        "DeleteObject", "ListObjects", "ListObjectsV2", "GetBucketAcl", "PutBucketAcl",
        "GetBucketPolicy", "PutBucketPolicy", "PutBucketPublicAccessBlock",
    ), "s3"),
    **dict.fromkeys((
        "LookupEvents", "DescribeTrails", "GetTrailStatus", "StopLogging", "StartLogging",
        "DeleteTrail", "UpdateTrail", "PutEventSelectors", "CreateTrail",
    ), "cloudtrail"),
    **dict.fromkeys((
        "ListSecrets", "GetSecretValue", "DescribeSecret", "CreateSecret", "PutSecretValue",
    ), "secretsmanager"),
    **dict.fromkeys(("ListKeys", "Decrypt", "Encrypt", "CreateKey"), "kms"),
    **dict.fromkeys(("ListFunctions", "GetFunction", "CreateFunction", "Invoke"), "lambda"),
    **dict.fromkeys(("GetParameter", "GetParameters", "GetParametersByPath",
                     "DescribeParameters"), "ssm"),
}
READ_PREFIXES = ("Get", "List", "Describe", "Lookup", "Head", "Search", "Scan", "Query")


class Event(NamedTuple):
    """One stored event, kept small: ~100k of these may live in a test process."""

    time: int  # epoch seconds; CloudTrail records whole seconds
    event_id: str
    event_name: str
    access_key_id: str
    event_source: str
    user_name: str
    source_ip: str
    user_agent: str
    request_parameters: dict[str, Any] | None
    response_elements: dict[str, Any] | None
    read_only: bool
    identity: dict[str, Any] | None = None
    """The userIdentity to hand out as is; None derives it from the key and user name."""


def stable_uuid(*parts: str) -> str:
    """A uuid4-shaped id derived from `parts`, so runs (and tie-break order) repeat."""
    h = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


@functools.lru_cache(maxsize=1024)
def _stable_suffix(text: str, length: int = 17) -> str:
    """The part of an IAM unique id (AIDA.../AROA...) after the prefix, derived from `text`."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(alphabet[b % 32] for b in digest[:length])


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def summary(account_id: str, region: str, event: Event) -> dict[str, Any]:
    """The `Events[]` entry of a LookupEvents answer (EventTime as a datetime)."""
    return {
        "EventId": event.event_id,
        "EventName": event.event_name,
        "ReadOnly": "true" if event.read_only else "false",
        "AccessKeyId": event.access_key_id,
        "EventTime": datetime.fromtimestamp(event.time, UTC),
        "EventSource": event.event_source,
        "Username": event.user_name,
        "Resources": [],
        "CloudTrailEvent": json.dumps(full_record(account_id, region, event)),
    }


def full_record(account_id: str, region: str, event: Event) -> dict[str, Any]:
    """The full CloudTrail record, as `CloudTrailEvent` holds it (and trail files do)."""
    return {
        "eventVersion": "1.09",
        "userIdentity": event.identity or _identity(account_id, event),
        "eventTime": _iso(event.time),
        "eventSource": event.event_source,
        "eventName": event.event_name,
        "awsRegion": region,
        "sourceIPAddress": event.source_ip,
        "userAgent": event.user_agent,
        "requestParameters": event.request_parameters,
        "responseElements": event.response_elements,
        "requestID": stable_uuid(account_id, "request", event.event_id),
        "eventID": event.event_id,
        "readOnly": event.read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }


def _identity(account: str, event: Event) -> dict[str, Any]:
    """IAMUser for long-term (AKIA) keys; AssumedRole, shaped as AWS does, for ASIA keys.

    As in real CloudTrail, an AssumedRole identity has no top-level userName: the role
    name is in sessionContext.sessionIssuer.userName, and `user_name` is the session.
    """
    name = event.user_name
    if not event.access_key_id.startswith("ASIA"):
        return {
            "type": "IAMUser",
            "principalId": "AIDA" + _stable_suffix(f"user|{name}"),
            "arn": f"arn:aws:iam::{account}:user/{name}",
            "accountId": account,
            "accessKeyId": event.access_key_id,
            "userName": name,
        }
    role = f"{name}-role"
    role_id = "AROA" + _stable_suffix(f"role|{role}")
    return {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{name}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{name}",
        "accountId": account,
        "accessKeyId": event.access_key_id,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_id,
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"mfaAuthenticated": "false"},
        },
    }


def _session_context(issued_at: str | None, issuer: dict[str, Any] | None = None,
                     **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"attributes": {"mfaAuthenticated": "false",
                                              **({"creationDate": issued_at} if issued_at
                                                 else {})}}
    if issuer is not None:
        context["sessionIssuer"] = issuer
    return {**context, **extra}


def role_session_identity(account: str, role_arn: str, role_id: str, session: str,
                          access_key_id: str, *, issued_at: str | None = None
                          ) -> dict[str, Any]:
    """userIdentity of a role session, as CloudTrail writes it. A session named like an
    instance id is an EC2 instance profile's (CloudTrail adds ec2RoleDelivery then)."""
    role = role_arn.rsplit("/", 1)[-1]
    ec2 = {"ec2RoleDelivery": "2.0"} if session.startswith("i-") else {}
    return {
        "type": "AssumedRole",
        "principalId": f"{role_id}:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": access_key_id,
        "sessionContext": _session_context(issued_at, {
            "type": "Role", "principalId": role_id, "arn": role_arn, "accountId": account,
            "userName": role}, **ec2),
    }


def user_session_identity(account: str, user: str, access_key_id: str, *,
                          issued_at: str | None = None) -> dict[str, Any]:
    """userIdentity of an IAM user's GetSessionToken session: IAMUser with an ASIA key."""
    return {
        "type": "IAMUser",
        "principalId": "AIDA" + _stable_suffix(f"user|{user}"),
        "arn": f"arn:aws:iam::{account}:user/{user}",
        "accountId": account,
        "accessKeyId": access_key_id,
        "userName": user,
        "sessionContext": _session_context(issued_at),
    }


def federated_identity(account: str, user: str, name: str, access_key_id: str, *,
                       issued_at: str | None = None) -> dict[str, Any]:
    """userIdentity of a GetFederationToken session that `user` minted as `name`."""
    return {
        "type": "FederatedUser",
        "principalId": f"{account}:{name}",
        "arn": f"arn:aws:sts::{account}:federated-user/{name}",
        "accountId": account,
        "accessKeyId": access_key_id,
        "sessionContext": _session_context(issued_at, {
            "type": "IAMUser", "principalId": "AIDA" + _stable_suffix(f"user|{user}"),
            "arn": f"arn:aws:iam::{account}:user/{user}", "accountId": account,
            "userName": user}),
    }
