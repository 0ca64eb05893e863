"""A fake CloudTrail `LookupEvents` for drills and tests, because moto does not implement it.

The evidence step asks CloudTrail, region by region, what a leaked key did. moto answers
`LookupEvents` with NotImplementedError, so without this module that step could only be
tested by patching product code, which would prove nothing about the real boto3 path.
Instead the fake replaces moto's own `CloudTrailResponse.lookup_events` handler: requests
still go through real boto3 clients, botocore serialization, moto's dispatch and botocore's
JSON 1.1 parser, whether the client runs in-process under `mock_aws()` or in a subprocess
talking to a `ThreadedMotoServer` hosted by the test process.

Failures (throttling, a region that is down) are not injected here: the drill needs none,
and the tests that do add them in a subclass of their own (tests/cloudtrail_faults.py)
by overriding `lookup`, the one door every request comes through.

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
import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from responder.drill.cloudtrail_records import (
    READ_PREFIXES,
    SERVICE_OF,
    Event,
    full_record,
    stable_uuid,
    summary,
)
from responder.findings.lookup import number

__all__ = ["CloudTrailFake", "FakeError"]

MAX_PAGE = 50  # LookupEvents' documented MaxResults ceiling
_TOKEN_VERSION = "v1"  # noqa: S105 - a format tag, not a secret
_MISSING = object()

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


def _sort_key(event: Event) -> tuple[int, str]:
    """Newest first; the event id breaks ties so pages are deterministic."""
    return (-event.time, event.event_id)


def _neg_time(event: Event) -> int:
    return -event.time


@dataclass
class _RegionLog:
    """A region's events, plus the sorted order and attribute indexes derived from them."""

    events: list[Event] = field(default_factory=list)
    is_sorted: bool = True
    indexes: dict[str, dict[str, list[Event]]] = field(default_factory=dict)


_ATTRIBUTE_OF: dict[str, Callable[[Event], str]] = {
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
    seconds = number(value)  # numbers and numeric text; never a bool
    if seconds is not None:
        return seconds
    if isinstance(value, str):
        try:
            return _epoch(datetime.fromisoformat(value.replace("Z", "+00:00")), name)
        except ValueError:
            pass
    raise FakeError("InvalidTimeRangeException", 400, f"{name} is not a timestamp: {value!r}")


@dataclass
class CloudTrailFake:
    """CloudTrail `LookupEvents` over events the drill (or a test) records.

    Use `record` to lay down what the attacker did and `installed()` to make moto answer
    `LookupEvents` from it.
    """

    account_id: str = "123456789012"
    page_size: int = MAX_PAGE
    _regions: dict[str, _RegionLog] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _sequence: int = field(default=0, init=False, repr=False, compare=False)
    _lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE}, got {self.page_size}")

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
        identity: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store one event; return its full CloudTrail record (what `CloudTrailEvent` holds).

        Times are truncated to whole seconds, as CloudTrail records them; naive datetimes
        are taken as UTC. Without `event_id` a deterministic uuid is derived. `identity`
        is the userIdentity to record (cloudtrail_records.role_session_identity, ...);
        without it one is derived from the key and `user_name`.
        """
        if read_only is None:
            read_only = event_name.startswith(READ_PREFIXES)
        if event_source is None:
            event_source = f"{SERVICE_OF.get(event_name, 'unknown')}.amazonaws.com"
        with self._lock:
            self._sequence += 1
            if event_id is None:
                event_id = stable_uuid(self.account_id, "event", str(self._sequence))
            event = Event(
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
                identity=identity,
            )
            log = self._regions.setdefault(region, _RegionLog())
            if log.events and _sort_key(event) < _sort_key(log.events[-1]):
                log.is_sorted = False
            log.events.append(event)
            log.indexes.clear()
        return full_record(self.account_id, region, event)

    def clear(self) -> None:
        """Drop all events: the fake is as if newly built."""
        with self._lock:
            self._regions.clear()
            self._sequence = 0

    # -- LookupEvents --------------------------------------------------------------

    def lookup(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Answer a LookupEvents `request` (boto3 parameter names) as `region` would.

        Raises FakeError for the validation errors CloudTrail returns. The moto handler
        comes through here for every request, so a subclass that overrides this method
        sees (and may fail) each one.
        """
        with self._lock:
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
        result: dict[str, Any] = {"Events": [summary(self.account_id, region, e) for e in page]}
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

    def _matching(self, region: str, attribute: tuple[str, str] | None) -> list[Event]:
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
    def _encode_token(cls, digest: str, next_event: Event) -> str:
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
