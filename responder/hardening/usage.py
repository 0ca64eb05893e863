"""What a user really did, read from CloudTrail records (the parsed `CloudTrailEvent` JSON).

A least-privilege proposal is only as good as the mapping from an event to the IAM action
and resources it was authorised as: an action name IAM does not know, or a resource ARN a
little narrower than what IAM checks, would make the proposed policy deny the user's own
work the day it is attached. So the mapping is conservative: when in doubt about the
resource, say "any" (an empty tuple) rather than guess an ARN.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

AWS_DOMAIN = ".amazonaws.com"

PREFIX_OF: Mapping[str, str] = {
    # CloudWatch's API host is "monitoring", its IAM prefix is "cloudwatch".
    "monitoring": "cloudwatch",
    # SES's classic API host is "email", its IAM prefix is "ses".
    "email": "ses",
    # Hosts that look unusual but are their own IAM prefix, listed so nobody "fixes" them.
    "elasticfilesystem": "elasticfilesystem",
    "elasticmapreduce": "elasticmapreduce",
    "execute-api": "execute-api",
    "tagging": "tagging",
    "sso": "sso",
}
"""eventSource host (the text before ".amazonaws.com") -> IAM service prefix, only where
they differ or look as if they might; any host not listed is its own prefix."""

NOT_IAM_SOURCES: frozenset[str] = frozenset({"signin", "console"})
"""Hosts whose events (ConsoleLogin, CheckMfa, ...) are sign-in steps, not IAM actions: no
policy grants them, so they must not appear in a proposed policy."""

RENAMED: Mapping[str, str] = {
    # S3's CloudTrail event names are REST operations; IAM authorises some under another name.
    "s3:ListBuckets": "s3:ListAllMyBuckets",
    "s3:ListObjects": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "s3:ListParts": "s3:ListMultipartUploadParts",
    "s3:HeadObject": "s3:GetObject",
    "s3:CopyObject": "s3:PutObject",
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:UploadPartCopy": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
    "s3:DeleteObjects": "s3:DeleteObject",
    "s3:GetBucketLifecycle": "s3:GetLifecycleConfiguration",
    "s3:PutBucketLifecycle": "s3:PutLifecycleConfiguration",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetBucketReplication": "s3:GetReplicationConfiguration",
    "s3:PutBucketReplication": "s3:PutReplicationConfiguration",
    # Lambda's data event is "Invoke"; the permission is lambda:InvokeFunction.
    "lambda:Invoke": "lambda:InvokeFunction",
}
"""prefix:eventName -> the IAM action that authorised it, where the two differ. Without it
a proposed policy would name actions IAM does not have (s3:ListObjectsV2) and deny the
calls it meant to keep working."""

DENIED_CODES: frozenset[str] = frozenset(
    {"AccessDenied", "UnauthorizedOperation", "Client.UnauthorizedOperation"}
)
"""A call refused by IAM was never granted, so it is not usage (an attacker's probing
would otherwise widen the proposal). Any other error (NoSuchKey, ...) means the call got
past authorisation, which is what a policy must keep allowing."""

AWS_SOURCE_IPS: frozenset[str] = frozenset({"AWS Internal"})

_LAMBDA_VERSION = re.compile(r"\d{8}(v\d+)?$")
_S3_OBJECT_ACTIONS: frozenset[str] = frozenset(
    {"RestoreObject", "AbortMultipartUpload", "ListMultipartUploadParts"}
)
_IAM_NAMED: Mapping[str, str] = {
    "roleName": "role",
    "userName": "user",
    "groupName": "group",
    "instanceProfileName": "instance-profile",
}


@dataclass(frozen=True)
class Usage:
    """One action as the user exercised it: enough to write a statement and to tell a
    reviewer how often and when, so a one-off call can be questioned before it is kept."""

    action: str
    resources: tuple[str, ...]
    """Sorted ARNs; empty means any resource ("*")."""
    count: int
    first_seen: datetime
    last_seen: datetime


def iam_action(record: Mapping[str, Any]) -> str | None:
    """The IAM action `record` was authorised as, or None when it grants nothing to keep
    (missing fields, a sign-in step, a refused call, a non-AWS source)."""
    source = record.get("eventSource")
    name = record.get("eventName")
    if not isinstance(source, str) or not isinstance(name, str) or not source or not name:
        return None
    if record.get("errorCode") in DENIED_CODES or not source.endswith(AWS_DOMAIN):
        return None
    host = source.removesuffix(AWS_DOMAIN)
    if host in NOT_IAM_SOURCES:
        return None
    prefix = PREFIX_OF.get(host, host)
    if prefix == "lambda":
        # Lambda logs the API version it was called through (ListFunctions20150331).
        name = _LAMBDA_VERSION.sub("", name) or name
    action = f"{prefix}:{name}"
    return RENAMED.get(action, action)


def resources(record: Mapping[str, Any]) -> tuple[str, ...]:
    """The ARNs the event acted on, to narrow its statement; () means "*".

    Only shapes known to match what IAM checks are narrowed: a wrong ARN would deny the
    user's own call, while "*" merely keeps today's breadth for that one action.
    """
    action = iam_action(record)
    if action is None:
        return ()
    prefix, name = action.split(":", 1)
    params = record.get("requestParameters")
    params = params if isinstance(params, Mapping) else {}
    partition = _partition(record)
    if prefix == "s3":
        return _s3(partition, name, params)
    if prefix == "dynamodb":
        found = _dynamodb(partition, record, params)
        if found is not None:
            return found
    elif prefix == "sts" and name == "AssumeRole":
        role = params.get("roleArn")
        return (role,) if isinstance(role, str) and role else ()
    elif prefix == "iam":
        found = _iam(partition, record, params)
        if found is not None:
            return found
    return _listed(record)


def _s3(partition: str, name: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """Object actions get the bucket too: IAM checks the object ARN, but listing both is
    harmless and keeps bucket-level look-alikes (GetBucketObjectLock...) working."""
    bucket = params.get("bucketName")
    if not isinstance(bucket, str) or not bucket or name == "ListAllMyBuckets":
        return ()
    arn = f"arn:{partition}:s3:::{bucket}"
    object_level = (
        name.startswith(("GetObject", "PutObject", "DeleteObject"))
        or name in _S3_OBJECT_ACTIONS
        or "Object" in name
    )
    return (arn, f"{arn}/*") if object_level else (arn,)


def _dynamodb(
    partition: str, record: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[str, ...] | None:
    """The table (or, for a Query/Scan on an index, the index: IAM checks that ARN, not
    the table's). None lets the caller fall back to the record's resource list."""
    table = params.get("tableName")
    if not isinstance(table, str) or not table:
        return None
    if table.startswith("arn:"):
        arn = table
    else:
        region = record.get("awsRegion")
        account = _account(record)
        if not isinstance(region, str) or not region or account is None:
            return ()
        arn = f"arn:{partition}:dynamodb:{region}:{account}:table/{table}"
    index = params.get("indexName")
    return (f"{arn}/index/{index}",) if isinstance(index, str) and index else (arn,)


def _iam(
    partition: str, record: Mapping[str, Any], params: Mapping[str, Any]
) -> tuple[str, ...] | None:
    """Narrow only when the request names exactly one IAM entity: with two (a user and a
    group for AddUserToGroup, a role and a profile for AddRoleToInstanceProfile) which one
    IAM checks depends on the action, and guessing wrong would deny it.

    The ARN has no path (requestParameters do not carry it): a role or user created
    under a path will not match, which the reviewer sees as a denied call, not a leak.
    """
    named = [
        (kind, value)
        for key, kind in _IAM_NAMED.items()
        if isinstance(value := params.get(key), str) and value
    ]
    if len(named) != 1:
        return None if not named else ()
    account = _account(record)
    if account is None:
        return ()
    kind, value = named[0]
    return (f"arn:{partition}:iam::{account}:{kind}/{value}",)


def _listed(record: Mapping[str, Any]) -> tuple[str, ...]:
    listed = record.get("resources")
    if not isinstance(listed, list):
        return ()
    return tuple(
        arn
        for item in listed
        if isinstance(item, Mapping) and isinstance(arn := item.get("ARN"), str) and arn
    )


def _account(record: Mapping[str, Any]) -> str | None:
    """The account that owns the resource: the recipient, else the caller's own."""
    account = record.get("recipientAccountId")
    if isinstance(account, str) and account:
        return account
    identity = record.get("userIdentity")
    if isinstance(identity, Mapping):
        account = identity.get("accountId")
        if isinstance(account, str) and account:
            return account
    return None


def _partition(record: Mapping[str, Any]) -> str:
    """aws, aws-cn or aws-us-gov, from the caller's ARN: an ARN in the wrong partition
    matches nothing."""
    identity = record.get("userIdentity")
    arn = identity.get("arn") if isinstance(identity, Mapping) else None
    if isinstance(arn, str) and arn.startswith("arn:"):
        parts = arn.split(":")
        if len(parts) > 2 and parts[1]:
            return parts[1]
    return "aws"


def event_time(record: Mapping[str, Any]) -> datetime:
    """eventTime as an aware UTC datetime. A record without one is refused rather than
    skipped: dropping it would silently drop usage from the proposal."""
    try:
        moment = datetime.fromisoformat(record["eventTime"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"CloudTrail record without an eventTime: {record.get('eventID')}"
                         ) from error
    return _as_utc(moment)


def _as_utc(moment: datetime) -> datetime:
    """CloudTrail times are UTC; a naive datetime from a caller is taken to be UTC too,
    so comparing it with event times cannot raise."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class Tally:
    """Usage and source addresses gathered one record at a time, each eventID once.

    The history of a busy user is 100,000 events or more: holding every record to
    summarise it afterwards cost hundreds of MB, and the same events come twice inside an
    incident (the leaked key's, from the evidence file and from the lookup by user
    name). Memory grows with the distinct actions, resources, addresses and event ids,
    never with whole records. Records at or after `before` are the attacker's time: they
    count as events and for source addresses, never as usage. Thread-safe: the regions
    are read in parallel.
    """

    def __init__(self, before: datetime | None = None) -> None:
        self._before = _as_utc(before) if before is not None else None
        self._seen: set[str] = set()
        self._usage: dict[str, tuple[set[str] | None, int, datetime, datetime]] = {}
        self._first_ip: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self.events = 0
        """Distinct records added."""

    def add(self, record: Mapping[str, Any], *, once: bool = True) -> bool:
        """Count `record` unless `once` and its eventID was added already; True when
        counted. Plain records handed in whole (tests) pass once=False."""
        event_id = record.get("eventID")
        action = iam_action(record)
        address = record.get("sourceIPAddress")
        located = isinstance(address, str) and bool(address) \
            and address not in AWS_SOURCE_IPS and not address.endswith(AWS_DOMAIN)
        moment = event_time(record) if action is not None or located else None
        arns = resources(record) if action is not None else ()
        with self._lock:
            if once and isinstance(event_id, str) and event_id:
                if event_id in self._seen:
                    return False
                self._seen.add(event_id)
            self.events += 1
            if moment is None:
                return True
            if located:
                known = self._first_ip.get(str(address))
                if known is None or moment < known:
                    self._first_ip[str(address)] = moment
            if action is None or (self._before is not None and moment >= self._before):
                return True
            if action not in self._usage:
                self._usage[action] = (set(arns) if arns else None, 1, moment, moment)
                return True
            union, count, first, last = self._usage[action]
            if union is not None:
                union = union | set(arns) if arns else None
            self._usage[action] = (union, count + 1, min(first, moment), max(last, moment))
        return True

    def usages(self) -> tuple[Usage, ...]:
        """One Usage per action, sorted by action.

        Resources are unioned over the action's events, but a single event with no
        narrowable resource makes the action "any": narrowing it would deny that very call.
        """
        with self._lock:
            return tuple(
                Usage(action=action, resources=tuple(sorted(union)) if union else (),
                      count=count, first_seen=first, last_seen=last)
                for action, (union, count, first, last) in sorted(self._usage.items()))

    def new_source_ips(self, since: datetime) -> tuple[str, ...]:
        """Addresses first seen at or after `since` (see `new_source_ips`)."""
        cutoff = _as_utc(since)
        with self._lock:
            return tuple(sorted(a for a, moment in self._first_ip.items() if moment >= cutoff))


def summarize(records: Iterable[Mapping[str, Any]]) -> tuple[Usage, ...]:
    """One Usage per action, sorted by action (Tally.usages, over every record given).

    Resources are unioned over the action's events, but a single event with no narrowable
    resource makes the action "any": narrowing it would deny that very call.
    """
    tally = Tally()
    for record in records:
        tally.add(record, once=False)
    return tally.usages()


def new_source_ips(records: Iterable[Mapping[str, Any]], *, since: datetime) -> tuple[str, ...]:
    """Addresses first seen at or after `since`: the user's usual addresses show up before
    the compromise, so a new one afterwards hints at where the attacker came from.

    AWS service hosts (calls a service made on the user's behalf) are left out: they are
    not anyone's location.
    """
    tally = Tally()
    for record in records:
        tally.add(record, once=False)
    return tally.new_source_ips(since)
