"""A fake CloudTrail `LookupEvents` for drills and tests, because moto does not implement it.

The evidence step asks CloudTrail, region by region, what a leaked key did. moto answers
`LookupEvents` with NotImplementedError, so without this module that step could only be
tested by patching product code, which would prove nothing about the real boto3 path.
Instead the fake replaces moto's own `CloudTrailResponse.lookup_events` handler: requests
still go through real boto3 clients, botocore serialization, moto's dispatch and botocore's
JSON 1.1 parser, whether the client runs in-process under `mock_aws()` or in a subprocess
talking to a `ThreadedMotoServer` hosted by the test process.

The fake also injects the failures the product must survive (throttling, a region that is
down) from a seeded RNG, so fault-injection runs are repeatable.

Scale: product tests store ~100k events, so events are compact tuples (the full CloudTrail
record is rebuilt on the way out), each region is sorted once after it changes, and an
attribute index is built once per (region, attribute); each call is then a binary search
plus one page. NextToken is a keyset cursor (the sort key of the next event), so paging
stays consistent when events are recorded between pages, as happens during a drill.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import collections
import functools
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

__all__ = ["CloudTrailFake", "FakeError"]

MAX_PAGE = 50  # LookupEvents' documented MaxResults ceiling
_TOKEN_VERSION = "v1"  # noqa: S105 - a format tag, not a secret
_MISSING = object()

# Event name -> service, for a default eventSource. Small on purpose: enough for what an
# attacker with a leaked key typically does first; anything else is "unknown".
_SERVICE_OF: dict[str, str] = {
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
_READ_PREFIXES = ("Get", "List", "Describe", "Lookup", "Head", "Search", "Scan", "Query")
_SUPPORTED_ATTRIBUTES = frozenset({
    "AccessKeyId", "EventName", "Username", "EventId", "EventSource", "ReadOnly",
    "ResourceType", "ResourceName",
})


class FakeError(Exception):
    """A CloudTrail error answer; the moto handler turns it into `{"__type": code}` + status.

    Raised by `CloudTrailFake.lookup` so the pure-Python path and the HTTP path fail the
    same way, with the codes boto3 callers would see from the real service.
    """

    def __init__(self, code: str, status: int, message: str = "") -> None:
        super().__init__(f"{code} ({status}): {message}" if message else f"{code} ({status})")
        self.code = code
        self.status = status
        self.message = message or code


class _Event(NamedTuple):
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


def _sort_key(event: _Event) -> tuple[int, str]:
    """Newest first; the event id breaks ties so pages are deterministic."""
    return (-event.time, event.event_id)


def _neg_time(event: _Event) -> int:
    return -event.time


@dataclass
class _RegionLog:
    """A region's events, plus the sorted order and attribute indexes derived from them."""

    events: list[_Event] = field(default_factory=list)
    is_sorted: bool = True
    indexes: dict[str, dict[str, list[_Event]]] = field(default_factory=dict)


_ATTRIBUTE_OF: dict[str, Callable[[_Event], str]] = {
    "AccessKeyId": lambda e: e.access_key_id,
    "EventName": lambda e: e.event_name,
    "Username": lambda e: e.user_name,
    "EventId": lambda e: e.event_id,
    "EventSource": lambda e: e.event_source,
    "ReadOnly": lambda e: "true" if e.read_only else "false",
}


def _epoch(value: Any, name: str) -> float:
    """StartTime/EndTime as epoch seconds: boto3 sends numbers, Python callers datetimes."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.timestamp()
    if isinstance(value, bool):
        raise FakeError("InvalidTimeRangeException", 400, f"{name} is not a timestamp")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return _epoch(datetime.fromisoformat(value.replace("Z", "+00:00")), name)
        except ValueError:
            pass
    raise FakeError("InvalidTimeRangeException", 400, f"{name} is not a timestamp: {value!r}")


def _stable_uuid(*parts: str) -> str:
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


@dataclass
class CloudTrailFake:
    """CloudTrail `LookupEvents` over events the test records, with injectable faults.

    Use `record` to lay down what the attacker did, `installed()` to make moto answer
    `LookupEvents` from it, and `calls` to assert how hard the product hit the API
    (including calls that were throttled or failed).
    """

    account_id: str = "123456789012"
    page_size: int = MAX_PAGE
    throttle_rate: float = 0.0
    failing_regions: frozenset[str] = frozenset()
    seed: int = 0
    calls: collections.Counter[str] = field(
        default_factory=collections.Counter, init=False, compare=False)
    _regions: dict[str, _RegionLog] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _rng: random.Random = field(init=False, repr=False, compare=False)
    _sequence: int = field(default=0, init=False, repr=False, compare=False)
    _lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE}, got {self.page_size}")
        if not 0.0 <= self.throttle_rate <= 1.0:
            raise ValueError(f"throttle_rate must be within 0..1, got {self.throttle_rate}")
        self.failing_regions = frozenset(self.failing_regions)
        self._rng = random.Random(self.seed)  # noqa: S311 - fault injection, not crypto

    # -- recording -----------------------------------------------------------------

    def record(
        self,
        region: str,
        event_name: str,
        access_key_id: str,
        *,
        event_time: datetime,
        event_source: str | None = None,
        user_name: str = "alice",
        source_ip: str = "203.0.113.7",
        user_agent: str = "aws-cli/2.15.0",
        request_parameters: dict[str, Any] | None = None,
        response_elements: dict[str, Any] | None = None,
        read_only: bool | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """Store one event; return its full CloudTrail record (what `CloudTrailEvent` holds).

        Times are truncated to whole seconds, as CloudTrail records them; naive datetimes
        are taken as UTC. Without `event_id` a deterministic uuid is derived.
        """
        if read_only is None:
            read_only = event_name.startswith(_READ_PREFIXES)
        if event_source is None:
            event_source = f"{_SERVICE_OF.get(event_name, 'unknown')}.amazonaws.com"
        with self._lock:
            self._sequence += 1
            if event_id is None:
                event_id = _stable_uuid(self.account_id, "event", str(self._sequence))
            event = _Event(
                time=int(_epoch(event_time, "event_time") // 1),
                event_id=event_id,
                event_name=event_name,
                access_key_id=access_key_id,
                event_source=event_source,
                user_name=user_name,
                source_ip=source_ip,
                user_agent=user_agent,
                request_parameters=request_parameters,
                response_elements=response_elements,
                read_only=read_only,
            )
            log = self._regions.setdefault(region, _RegionLog())
            if log.events and _sort_key(event) < _sort_key(log.events[-1]):
                log.is_sorted = False
            log.events.append(event)
            log.indexes.clear()
        return self._cloudtrail_record(region, event)

    def clear(self) -> None:
        """Drop all events and counters, and reseed: the fake is as if newly built."""
        with self._lock:
            self._regions.clear()
            self.calls.clear()
            self._sequence = 0
            self._rng = random.Random(self.seed)  # noqa: S311 - fault injection, not crypto

    # -- LookupEvents --------------------------------------------------------------

    def lookup(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Answer a LookupEvents `request` (boto3 parameter names) as `region` would.

        Raises FakeError for failing regions (503), throttled calls (400) and the
        validation errors CloudTrail returns. Every call is counted in `calls[region]`.
        """
        with self._lock:
            self.calls[region] += 1
            if region in self.failing_regions:
                raise FakeError("ServiceUnavailableException", 503,
                                f"CloudTrail is unavailable in {region}")
            if self.throttle_rate and self._rng.random() < self.throttle_rate:
                raise FakeError("ThrottlingException", 400, "Rate exceeded")
            return self._lookup(region, request)

    def _lookup(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        attribute = self._attribute(request.get("LookupAttributes"))
        start = request.get("StartTime")
        end = request.get("EndTime")
        start_s = _epoch(start, "StartTime") if start is not None else float("-inf")
        end_s = _epoch(end, "EndTime") if end is not None else float("inf")
        if start_s > end_s:
            raise FakeError("InvalidTimeRangeException", 400, "StartTime is after EndTime")
        limit = self._max_results(request.get("MaxResults"))

        digest = hashlib.sha256(
            json.dumps([region, attribute, start_s, end_s]).encode()).hexdigest()[:16]
        events = self._matching(region, attribute)
        lo = bisect.bisect_left(events, -end_s, key=_neg_time)
        hi = bisect.bisect_right(events, -start_s, key=_neg_time)
        token = request.get("NextToken")
        if token is not None:
            cursor = self._decode_token(token, digest)
            lo = max(lo, bisect.bisect_left(events, cursor, key=_sort_key))
        page = events[lo:min(hi, lo + limit)]
        result: dict[str, Any] = {"Events": [self._summary(region, e) for e in page]}
        if lo + limit < hi:
            result["NextToken"] = self._encode_token(digest, events[lo + limit])
        return result

    @staticmethod
    def _attribute(raw: Any) -> tuple[str, str] | None:
        if not raw:
            return None
        if not isinstance(raw, list | tuple) or len(raw) != 1 or not isinstance(raw[0], Mapping):
            raise FakeError("InvalidLookupAttributesException", 400,
                            "LookupAttributes must hold exactly one attribute")
        key = raw[0].get("AttributeKey")
        value = raw[0].get("AttributeValue")
        if key not in _SUPPORTED_ATTRIBUTES or not isinstance(value, str) or not value:
            raise FakeError("InvalidLookupAttributesException", 400,
                            f"unsupported lookup attribute {key!r}={value!r}")
        return (key, value.lower() if key == "ReadOnly" else value)

    def _max_results(self, raw: Any) -> int:
        if raw is None:
            return self.page_size
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_PAGE:
            raise FakeError("InvalidMaxResultsException", 400,
                            f"MaxResults must be 1..{MAX_PAGE}, got {raw!r}")
        return min(raw, self.page_size)

    def _matching(self, region: str, attribute: tuple[str, str] | None) -> list[_Event]:
        """Events of `region` matching `attribute`, sorted; sorting/indexing is done once."""
        log = self._regions.get(region)
        if log is None:
            return []
        if not log.is_sorted:
            log.events.sort(key=_sort_key)
            log.is_sorted = True
        if attribute is None:
            return log.events
        key, value = attribute
        getter = _ATTRIBUTE_OF.get(key)
        if getter is None:  # ResourceType/ResourceName: our events carry no resources
            return []
        index = log.indexes.get(key)
        if index is None:
            index = {}
            for event in log.events:
                index.setdefault(getter(event), []).append(event)
            log.indexes[key] = index
        return index.get(value, [])

    @staticmethod
    def _token_check(digest: str, seconds: str, event_id: str) -> str:
        """A checksum so an edited token is rejected, as CloudTrail rejects forged ones."""
        return hashlib.sha256(f"{digest}|{seconds}|{event_id}".encode()).hexdigest()[:12]

    @classmethod
    def _encode_token(cls, digest: str, next_event: _Event) -> str:
        seconds, event_id = str(next_event.time), next_event.event_id
        check = cls._token_check(digest, seconds, event_id)
        raw = f"{_TOKEN_VERSION}|{digest}|{seconds}|{check}|{event_id}"
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @classmethod
    def _decode_token(cls, token: Any, digest: str) -> tuple[int, str]:
        invalid = FakeError("InvalidNextTokenException", 400, "invalid NextToken")
        if not isinstance(token, str):
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(token.encode()).decode()
        except (binascii.Error, UnicodeError, ValueError):
            raise invalid from None
        parts = raw.split("|", 4)
        if (len(parts) != 5 or parts[0] != _TOKEN_VERSION or parts[1] != digest
                or parts[3] != cls._token_check(parts[1], parts[2], parts[4])):
            raise invalid
        try:
            return (-int(parts[2]), parts[4])
        except ValueError:
            raise invalid from None

    # -- shaping -------------------------------------------------------------------

    def _summary(self, region: str, event: _Event) -> dict[str, Any]:
        return {
            "EventId": event.event_id,
            "EventName": event.event_name,
            "ReadOnly": "true" if event.read_only else "false",
            "AccessKeyId": event.access_key_id,
            "EventTime": datetime.fromtimestamp(event.time, UTC),
            "EventSource": event.event_source,
            "Username": event.user_name,
            "Resources": [],
            "CloudTrailEvent": json.dumps(self._cloudtrail_record(region, event)),
        }

    def _cloudtrail_record(self, region: str, event: _Event) -> dict[str, Any]:
        return {
            "eventVersion": "1.09",
            "userIdentity": self._identity(event),
            "eventTime": _iso(event.time),
            "eventSource": event.event_source,
            "eventName": event.event_name,
            "awsRegion": region,
            "sourceIPAddress": event.source_ip,
            "userAgent": event.user_agent,
            "requestParameters": event.request_parameters,
            "responseElements": event.response_elements,
            "requestID": _stable_uuid(self.account_id, "request", event.event_id),
            "eventID": event.event_id,
            "readOnly": event.read_only,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self.account_id,
            "eventCategory": "Management",
        }

    def _identity(self, event: _Event) -> dict[str, Any]:
        """IAMUser for long-term (AKIA) keys; AssumedRole, shaped as AWS does, for ASIA keys.

        As in real CloudTrail, an AssumedRole identity has no top-level userName: the role
        name is in sessionContext.sessionIssuer.userName, and `user_name` is the session.
        """
        account, name = self.account_id, event.user_name
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

    # -- moto wiring ---------------------------------------------------------------

    @contextmanager
    def installed(self) -> Iterator[CloudTrailFake]:
        """Make moto answer LookupEvents from this fake, then put moto back as it was.

        moto looks the handler up on the class at every request (inspect.getmembers, plain
        functions only), so one class attribute serves both `mock_aws()` and a
        ThreadedMotoServer running in this process.
        """
        from moto.cloudtrail.responses import CloudTrailResponse  # noqa: PLC0415 - drill/test extra

        previous = vars(CloudTrailResponse).get("lookup_events", _MISSING)
        setattr(CloudTrailResponse, "lookup_events", self._moto_handler())  # noqa: B010
        try:
            yield self
        finally:
            if previous is _MISSING:
                delattr(CloudTrailResponse, "lookup_events")
            else:
                setattr(CloudTrailResponse, "lookup_events", previous)  # noqa: B010

    def _moto_handler(self) -> Callable[[Any], str | tuple[str, dict[str, int]]]:
        fake = self

        def lookup_events(response: Any) -> str | tuple[str, dict[str, int]]:
            request = {
                name: value
                for name in ("LookupAttributes", "StartTime", "EndTime", "MaxResults",
                             "NextToken", "EventCategory")
                if (value := response._get_param(name)) is not None
            }
            try:
                result = fake.lookup(response.region, request)
            except FakeError as err:
                body = {"__type": err.code, "message": err.message}
                return json.dumps(body), {"status": err.status}
            for event in result["Events"]:
                event["EventTime"] = event["EventTime"].timestamp()
            return json.dumps(result)

        return lookup_events
