"""The audit's "use an IAM role instead" check: long-term keys doing a role's job.

An access key whose calls all come from inside AWS (a service calling on its behalf, a
VPC's private address, or the public address of one of the account's own instances or
Elastic IPs) runs on AWS compute, where a role (an instance profile, a Lambda or task
role) would hand it credentials that expire within hours and live in no file, image or
environment variable to leak. A long-term key there is a secret kept for nothing.

The credential report says when and in which region each key was last used, not from
where: that is only in CloudTrail. One LookupEvents page (the newest PAGE events) per key,
in its last-used region, is enough to tell: a key used from outside AWS almost always
shows it within its newest 50 calls, and one more page per key would double the cost of
an audit whose account may have thousands of keys. LookupEvents allows 2 requests per
second per region and a throttled request counts too, so each region's reads go through
its own token bucket (as the hardening history's do), regions in parallel, and at most
`limit` keys are read: whatever is left unread is said (Checked.gap), never skipped in
silence. The EC2 reads that tell the account's own public addresses from the internet's
are made only in regions where some address needs them, once per region.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from responder.aws import Api, ApiCall
from responder.aws.parallel import map_abandoning
from responder.aws.ratelimit import TokenBucket, empty_bucket
from responder.context import parse_iso
from responder.errors import AwsCallFailed, clipped

PERMISSIONS: tuple[str, ...] = ("cloudtrail:LookupEvents", "ec2:DescribeInstances",
                                "ec2:DescribeAddresses")
PAGE = 50
"""One LookupEvents page per key (MaxResults, CloudTrail's ceiling)."""
RATE = 2.0
"""LookupEvents requests per second per region: CloudTrail's quota."""
LIMIT = 100
"""Keys read per account by default: 50 s of LookupEvents quota in a single region."""
LOOKBACK_DAYS = 90
"""LookupEvents keeps 90 days: a key last used before that has no events to read."""
MAX_WORKERS = 32
"""One thread per region read; there are fewer regions than this."""
SHOWN = 5
"""Sources and uses a finding names before "and N more": a sentence, not a dump."""
ROOT = "<root_account>"
SLOTS = ("access_key_1", "access_key_2")
MESSAGE = 160
"""How much of one AWS error an unread entry keeps (a gap line may list several)."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PRIVATE = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",  # RFC 1918: VPC subnets
    "100.64.0.0/10",  # RFC 6598 shared space: VPCs may use it too
    "fc00::/7",  # IPv6 unique local
))
"""What a VPC's private address can be. Not ipaddress's is_private, which also holds the
documentation ranges (203.0.113.0/24...) and loopback: no call from a VPC comes from
those, and a caller elsewhere showing one must not pass for inside AWS."""
INSTANCE, ELASTIC = "instance address", "Elastic IP"


@dataclass(frozen=True)
class KeyUse:
    """One key the check reads: where and when the credential report says it was last
    used (the region is where its events are, the time whether CloudTrail still has them)."""

    user: str
    slot: str
    """access_key_1 / access_key_2 (the credential report's slot)."""
    access_key_id: str
    region: str
    """The credential report's <slot>_last_used_region."""
    last_used: datetime


@dataclass(frozen=True)
class Inside:
    """What one key's page showed: where its calls came from and what they did, so the
    finding says what a role for it would need."""

    key: KeyUse
    events: int
    """Events read (at most PAGE)."""
    sources: tuple[str, ...]
    """Distinct sourceIPAddress values, sorted."""
    used_for: tuple[tuple[str, int], ...]
    """("s3:PutObject", 12), ...: most used first (the service from eventSource)."""
    inside: bool
    """Every source is inside AWS, and there was at least one event."""
    owned: tuple[tuple[str, str], ...] = ()
    """The sources that are the account's own addresses, with what each is (instance
    address, Elastic IP): said in the finding, since a public address alone looks like
    the internet."""

    def problem(self) -> str:
        """The finding's sentence (meant for a key found inside): where from, what for."""
        what = dict(self.owned)
        named = [f"{what[s]} {s}" if s in what else s for s in self.sources[:SHOWN]]
        if len(self.sources) > SHOWN:
            named.append(f"and {len(self.sources) - SHOWN} more")
        uses = [f"{name} \N{MULTIPLICATION SIGN}{count}" for name, count in self.used_for[:SHOWN]]
        if len(self.used_for) > SHOWN:
            uses.append(f"and {len(self.used_for) - SHOWN} more")
        span = f" in the last {self.events} events" if self.events >= PAGE else ""
        return (f"used only from inside AWS{span} ({'; '.join(named)}) for "
                f"{', '.join(uses)}: use an IAM role instead")


@dataclass(frozen=True)
class Checked:
    """The check for one account: the keys found, and how much of it could be read (a
    check that read 100 keys of 340 must not pass for one that read them all)."""

    inside: tuple[Inside, ...]
    """Only the keys found used from inside AWS only."""
    read: int
    """Keys whose page was read."""
    candidates: int
    """Keys recently used (before the `limit` cut)."""
    unread: tuple[tuple[str, str], ...]
    """(access key id, or "ec2 <region>", one-line error): a page that failed, or a
    region whose own addresses could not be read (they counted as outside there)."""

    def gap(self) -> str | None:
        """None when every candidate was read; else one line saying what was not."""
        failed = sum(1 for what, _ in self.unread if not what.startswith("ec2 "))
        cut = self.candidates - self.read - failed
        if cut <= 0 and not self.unread:
            return None
        said = f"role check: {self.read} of {self.candidates} recently used keys read"
        if cut > 0:
            said += " (--role-check-keys to read more)"
        if self.unread:
            by_error: dict[str, list[str]] = {}
            for what, error in self.unread:
                by_error.setdefault(error, []).append(what)
            said += f"; {len(self.unread)} unreadable: " + "; ".join(
                f"{', '.join(names[:3])}{f' and {len(names) - 3} more' if len(names) > 3 else ''}"
                f" ({error})" for error, names in by_error.items())
        return said


def recent(rows: Sequence[Mapping[str, str]], now: datetime, *, days: int = LOOKBACK_DAYS
           ) -> list[tuple[str, str, str, datetime]]:
    """(user, slot, region, last used) of every active key slot of the credential report
    last used within `days` (CloudTrail's LookupEvents keeps 90 days); the region is ""
    when the report says `not_supported` (GetAccessKeyLastUsed names it; N/A: never
    used). Most recently used first, so a `limit` keeps the keys most likely still
    running somewhere, and only their users need their key ids listed. The root user is
    skipped: its keys are already a critical finding of their own, whatever they are
    used from."""
    found: list[tuple[str, str, str, datetime]] = []
    since = now - timedelta(days=days)
    for row in rows:
        user = row.get("user", "")
        if user == ROOT:
            continue
        for slot in SLOTS:
            region = row.get(f"{slot}_last_used_region") or ""
            used = _when(row.get(f"{slot}_last_used_date"))
            if (row.get(f"{slot}_active", "").lower() != "true"
                    or region in {"", "N/A"} or used is None or used < since):
                continue
            found.append((user, slot, "" if region == "not_supported" else region, used))
    return sorted(found, key=lambda k: (-k[3].timestamp(), k[0], k[1]))


def candidates(rows: Sequence[Mapping[str, str]], key_ids: Mapping[tuple[str, str], str],
               now: datetime, *, days: int = LOOKBACK_DAYS) -> list[KeyUse]:
    """recent() as KeyUse, for the slots whose id is in key_ids[(user, slot)]."""
    return [KeyUse(user, slot, key_ids[(user, slot)], region, used)
            for user, slot, region, used in recent(rows, now, days=days)
            if (user, slot) in key_ids and region]


def _when(text: str | None) -> datetime | None:
    """A report date, or None for N/A and anything unreadable (the key is then skipped:
    without a date there is no telling whether CloudTrail still holds its events)."""
    try:
        when = parse_iso(text) if text and text[:1].isdigit() else None
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


class _Abandoned(BaseException):
    """Raised in a worker whose check was abandoned (SIGINT/SIGTERM): not an Exception,
    so nothing on the way mistakes it for a failed lookup."""


@dataclass(frozen=True)
class _RegionRead:
    found: tuple[Inside, ...]
    unread: tuple[tuple[str, str], ...]


def check(api: Api, keys: Sequence[KeyUse], now: datetime, *, limit: int = LIMIT,
          monotonic: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Checked:
    """Read one LookupEvents page for each of the first `limit` keys in its last-used
    region, each region behind its own RATE bucket (retries pay too) and the regions in
    parallel; classify every source; return the keys used from inside AWS only.

    The window is the whole 90 days LookupEvents keeps, up to `now`: the page holds the
    newest events anyway, and for a key used once a week a day's window would show one
    event where the page could show fifty."""
    chosen = list(keys[:max(0, limit)])
    start = now - timedelta(days=LOOKBACK_DAYS)
    regions: dict[str, list[KeyUse]] = {}
    for key in chosen:
        regions.setdefault(key.region, []).append(key)
    for region in regions:  # clients are created here, before the threads
        api.client("cloudtrail", region)
    buckets = {region: empty_bucket(RATE, monotonic=monotonic, sleep=sleep)
               for region in regions}
    stop = threading.Event()

    def one(region: str) -> _RegionRead:
        return _region(api, region, regions[region], window=(start, now),
                       bucket=buckets[region], stop=stop)

    reads = map_abandoning(one, list(regions), workers=MAX_WORKERS, abandon=stop.set)
    order = {key.access_key_id: n for n, key in enumerate(chosen)}
    found = sorted((i for r in reads for i in r.found), key=lambda i: order[i.key.access_key_id])
    unread = [u for r in reads for u in r.unread]
    keys_unread = sorted((u for u in unread if u[0] in order), key=lambda u: order[u[0]])
    return Checked(inside=tuple(i for i in found if i.inside), read=len(found),
                   candidates=len(keys),
                   unread=(*keys_unread, *sorted(u for u in unread if u[0] not in order)))


def _region(api: Api, region: str, keys: Sequence[KeyUse], *,
            window: tuple[datetime, datetime], bucket: TokenBucket,
            stop: threading.Event) -> _RegionRead:
    """One region's keys, one page each in turn, then its own addresses if needed."""
    pages: list[tuple[KeyUse, list[tuple[str, str]]]] = []
    unread: list[tuple[str, str]] = []
    for key in keys:
        if stop.is_set():
            raise _Abandoned
        try:
            page = api.call(_lookup(key.access_key_id, *window), region=region,
                            before_attempt=bucket.acquire)
        except AwsCallFailed as exc:
            unread.append((key.access_key_id, _said(exc)))
            continue
        pages.append((key, [_event(e) for e in page.get("Events", []) if isinstance(e, dict)]))
    owned: dict[IpAddress, str] = {}
    if any(_needs_owner(source) for _, events in pages for source, _ in events):
        owned, failures = _owned(api, region)
        if failures:
            unread.append((f"ec2 {region}", "; ".join(failures)))
    return _RegionRead(tuple(_classified(key, events, owned) for key, events in pages),
                       tuple(unread))


def _lookup(key_id: str, start: datetime, end: datetime) -> ApiCall:
    """The newest PAGE events of one key, journaled by counts only."""
    return ApiCall("cloudtrail", "LookupEvents", {
        "LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": key_id}],
        "StartTime": start, "EndTime": end, "MaxResults": PAGE}, counts_only=True)


def _said(exc: AwsCallFailed) -> str:
    return clipped(f"{exc.code}: {exc.aws_message}", MESSAGE)


def _event(entry: Mapping[str, Any]) -> tuple[str, str]:
    """(sourceIPAddress, "service:EventName") of one LookupEvents entry, from the record
    as CloudTrail wrote it; a record that cannot be read has source "" (outside)."""
    record: Mapping[str, Any] = {}
    raw = entry.get("CloudTrailEvent")
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        record = parsed if isinstance(parsed, dict) else {}
    source = record.get("sourceIPAddress")
    origin = record.get("eventSource") or entry.get("EventSource") or ""
    name = record.get("eventName") or entry.get("EventName") or "unknown"
    service = str(origin).split(".", 1)[0] or "unknown"
    return (source if isinstance(source, str) else "", f"{service}:{name}")


def _address(text: str) -> IpAddress | None:
    """The address, IPv4-mapped IPv6 as its IPv4; None when it is not one (outside)."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_service(source: str) -> bool:
    """An AWS service calling on the key's behalf, as CloudTrail names it."""
    return source == "AWS Internal" or (
        source.endswith(".amazonaws.com") and len(source) > len(".amazonaws.com")
        and " " not in source)


def _is_private(address: IpAddress) -> bool:
    return any(address.version == net.version and address in net for net in PRIVATE)


def _needs_owner(source: str) -> bool:
    """A public address: inside AWS only if it is one of the account's own."""
    address = _address(source)
    return not _is_service(source) and address is not None and not _is_private(address)


def _inside_as(source: str, owned: Mapping[IpAddress, str]) -> str | None:
    """What makes `source` inside AWS ("service", "private", or what the account's own
    address is), or None: outside (a malformed address included)."""
    if _is_service(source):
        return "service"
    address = _address(source)
    if address is None:
        return None
    return "private" if _is_private(address) else owned.get(address)


def _classified(key: KeyUse, events: Sequence[tuple[str, str]],
                owned: Mapping[IpAddress, str]) -> Inside:
    sources = sorted({source for source, _ in events})
    kinds = {source: _inside_as(source, owned) for source in sources}
    used = Counter(use for _, use in events)
    return Inside(
        key=key, events=len(events), sources=tuple(sources),
        used_for=tuple(sorted(used.items(), key=lambda u: (-u[1], u[0]))),
        inside=bool(events) and all(kind is not None for kind in kinds.values()),
        owned=tuple((s, k) for s, k in kinds.items() if k in {INSTANCE, ELASTIC}))


def _owned(api: Api, region: str) -> tuple[dict[IpAddress, str], list[str]]:
    """The region's public addresses the account holds: every instance's (its own and
    each network interface's, IPv6 included) and every Elastic IP (a NAT gateway's too).
    Each read that fails is said; what the other gave is still used."""
    owned: dict[IpAddress, str] = {}
    failures: list[str] = []

    def add(text: Any, what: str) -> None:
        address = _address(text) if isinstance(text, str) else None
        if address is not None:
            owned[address] = what

    try:
        for page in api.pages(ApiCall("ec2", "DescribeInstances", {"MaxResults": 1000},
                                      counts_only=True), region=region):
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    add(instance.get("PublicIpAddress"), INSTANCE)
                    for nic in instance.get("NetworkInterfaces", []):
                        add((nic.get("Association") or {}).get("PublicIp"), INSTANCE)
                        for v6 in nic.get("Ipv6Addresses", []):
                            add(v6.get("Ipv6Address"), INSTANCE)
    except AwsCallFailed as exc:
        failures.append(_said(exc))
    try:  # after the instances: an instance's Elastic IP is named as one
        addresses = api.call(ApiCall("ec2", "DescribeAddresses", counts_only=True),
                             region=region)
        for address in addresses.get("Addresses", []):
            add(address.get("PublicIp"), ELASTIC)
    except AwsCallFailed as exc:
        failures.append(_said(exc))
    return owned, failures
