"""The audit's "use an IAM role instead" check: a key is flagged only when every source
of its recent calls is inside AWS (a service, a private address, the account's own
instance or Elastic IP in that region), one LookupEvents page per key, paced per region.

Real boto3 against moto (EC2 for the account's addresses) and the CloudTrail fake for
LookupEvents, with events recorded as AWS writes them. Refusals come from the fake (a
subclass, as tests/cloudtrail_faults.py does) or a botocore hook, never from patching
product code. Nothing sleeps: the rate limiters wait on a VirtualClock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from conftest import FAST_RETRY, REGION
from moto import mock_aws

from responder.audit.inside_aws import PAGE, Checked, Inside, KeyUse, candidates, check
from responder.aws import Api
from responder.aws.ratelimit import VirtualClock
from responder.drill.cloudtrail import CloudTrailFake, FakeError

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
EU = "eu-west-1"
TIMES = "\N{MULTIPLICATION SIGN}"  # the finding's counts: s3:GetObject, 3 times
OUTSIDE = "203.0.113.9"  # documentation range: ipaddress calls it private, AWS does not


@dataclass
class Trail(CloudTrailFake):
    """The fake, counting each request (region, key, virtual time) and able to refuse
    some keys, throttle a key once, or hold each region's first request until every
    region has one in flight (proof they are read at once)."""

    clock: VirtualClock = field(default_factory=VirtualClock)
    denied: set[str] = field(default_factory=set)
    throttle_once: set[str] = field(default_factory=set)
    meet: threading.Barrier | None = None
    requests: list[tuple[str, str, float]] = field(default_factory=list, init=False)
    met: list[bool] = field(default_factory=list, init=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False)

    def lookup(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        key = request["LookupAttributes"][0]["AttributeValue"]
        with self._guard:
            first = all(r != region for r, _, _ in self.requests)
            self.requests.append((region, key, self.clock.monotonic()))
            throttled = key in self.throttle_once
            self.throttle_once.discard(key)
        if self.meet is not None and first:
            try:
                self.meet.wait()
                self.met.append(True)
            except threading.BrokenBarrierError:
                self.met.append(False)
        if key in self.denied:
            raise FakeError("AccessDeniedException", 400,
                            "not authorized to perform: cloudtrail:LookupEvents")
        if throttled:
            raise FakeError("ThrottlingException", 400, "Rate exceeded")
        return super().lookup(region, request)


@dataclass(frozen=True)
class World:
    trail: Trail
    session: boto3.Session
    api: Api
    ec2_reads: list[tuple[str, str]]
    """(operation, region) of every EC2 call the check made."""

    def record(self, key: str, source: str, name: str = "GetObject", *,
               service: str = "s3", region: str = REGION, count: int = 1) -> None:
        for n in range(count):
            self.trail.record(region, name, key, event_time=NOW - timedelta(minutes=n + 1),
                              event_source=f"{service}.amazonaws.com", source_ip=source,
                              user_agent="aws-sdk-java/2.25.0")

    def check(self, keys: list[KeyUse], **kwargs: Any) -> Checked:
        clock = self.trail.clock
        self.ec2_reads.clear()  # the test's own setup (RunInstances...) is not the check's
        return check(self.api, keys, NOW, monotonic=clock.monotonic, sleep=clock.sleep,
                     **kwargs)


@pytest.fixture
def world() -> Iterator[World]:
    trail = Trail()
    with mock_aws(), trail.installed():
        session = boto3.Session(region_name=REGION)
        reads: list[tuple[str, str]] = []
        session.events.register("before-call.ec2", lambda model, context, **_: reads.append(
            (model.name, context["client_region"])))
        yield World(trail, session, Api(session, FAST_RETRY), reads)


def _key(n: int, region: str = REGION, *, hours: int = 1) -> KeyUse:
    return KeyUse(f"user{n}", "access_key_1", f"AKIAINSIDETEST{n:06d}", region,
                  NOW - timedelta(hours=hours))


def _instances(session: boto3.Session, region: str, count: int) -> tuple[Any, list[Any]]:
    ec2 = session.client("ec2", region_name=region)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count)["Instances"]
    return ec2, made


def _by_id(checked: Checked) -> dict[str, Inside]:
    return {i.key.access_key_id: i for i in checked.inside}


def test_private_and_service_sources_are_inside_and_the_finding_says_what_for(
        world: World) -> None:
    lam, cgnat = _key(1), _key(2)
    world.record(lam.access_key_id, "10.0.1.5", count=2)
    world.record(lam.access_key_id, "lambda.amazonaws.com")
    world.record(lam.access_key_id, "10.0.1.5", "SendMessage", service="sqs")
    world.record(cgnat.access_key_id, "100.64.3.4", "PutObject")
    world.record(cgnat.access_key_id, "AWS Internal", "PutObject")
    checked = world.check([lam, cgnat])
    found = _by_id(checked)
    assert set(found) == {lam.access_key_id, cgnat.access_key_id}
    one = found[lam.access_key_id]
    assert one.inside
    assert one.events == 4
    assert one.sources == ("10.0.1.5", "lambda.amazonaws.com")
    assert one.used_for == (("s3:GetObject", 3), ("sqs:SendMessage", 1))
    assert one.problem() == (
        "used only from inside AWS (10.0.1.5; lambda.amazonaws.com) for "
        f"s3:GetObject {TIMES}3, sqs:SendMessage {TIMES}1: use an IAM role instead")
    assert found[cgnat.access_key_id].sources == ("100.64.3.4", "AWS Internal")
    assert (checked.read, checked.candidates, checked.unread) == (2, 2, ())
    assert checked.gap() is None
    assert world.ec2_reads == []  # nothing public to classify: EC2 is never asked


def test_the_accounts_own_instance_and_elastic_ip_are_inside_in_their_region_only(
        world: World) -> None:
    ec2, (plain, other) = _instances(world.session, EU, 2)
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=other["InstanceId"])
    instance_ip, elastic_ip = plain["PublicIpAddress"], eip["PublicIp"]
    on_instance, on_eip, elsewhere, stranger = (_key(1, EU), _key(2, EU), _key(3), _key(4, EU))
    world.record(on_instance.access_key_id, instance_ip, region=EU, count=3)
    world.record(on_instance.access_key_id, "10.0.0.8", region=EU)
    world.record(on_eip.access_key_id, elastic_ip, "SendMessage", service="sqs", region=EU)
    world.record(elsewhere.access_key_id, instance_ip)  # the EU instance's, in us-east-1
    world.record(stranger.access_key_id, "198.51.100.20", region=EU)
    checked = world.check([on_instance, on_eip, elsewhere, stranger])
    found = _by_id(checked)
    assert set(found) == {on_instance.access_key_id, on_eip.access_key_id}
    assert f"instance address {instance_ip}" in found[on_instance.access_key_id].problem()
    assert f"s3:GetObject {TIMES}4" in found[on_instance.access_key_id].problem()
    assert found[on_eip.access_key_id].owned == ((elastic_ip, "Elastic IP"),)
    assert checked.read == 4
    assert checked.gap() is None
    # Once per region that had a public address to classify, however many keys there.
    assert sorted(world.ec2_reads) == sorted([
        ("DescribeInstances", EU), ("DescribeAddresses", EU),
        ("DescribeInstances", REGION), ("DescribeAddresses", REGION)])


def test_one_internet_address_among_private_ones_is_outside(world: World) -> None:
    key = _key(1)
    world.record(key.access_key_id, "10.0.1.5", count=5)
    world.record(key.access_key_id, OUTSIDE)
    checked = world.check([key])
    assert checked.inside == ()
    assert checked.read == 1


def test_a_key_without_events_is_not_inside(world: World) -> None:
    checked = world.check([_key(1)])
    assert (checked.inside, checked.read, checked.unread) == ((), 1, ())
    assert checked.gap() is None


def test_a_malformed_source_is_outside_and_asks_ec2_nothing(world: World) -> None:
    key, mapped = _key(1), _key(2)
    world.record(key.access_key_id, "10.0.0.7")
    world.record(key.access_key_id, "10.0.0.300")
    world.record(mapped.access_key_id, "::ffff:10.1.2.3")  # IPv4-mapped private
    checked = world.check([key, mapped])
    assert set(_by_id(checked)) == {mapped.access_key_id}
    assert world.ec2_reads == []


def test_a_refused_page_is_unread_the_others_are_read_and_the_gap_says_so(
        world: World) -> None:
    keys = [_key(1), _key(2), _key(3)]
    for key in keys:
        world.record(key.access_key_id, "10.0.0.1")
    world.trail.denied.add(keys[1].access_key_id)
    checked = world.check(keys)
    assert set(_by_id(checked)) == {keys[0].access_key_id, keys[2].access_key_id}
    assert checked.unread == ((keys[1].access_key_id,
                               "AccessDeniedException: not authorized to perform: "
                               "cloudtrail:LookupEvents"),)
    assert (checked.read, checked.candidates) == (2, 3)
    gap = checked.gap()
    assert gap is not None
    assert "2 of 3" in gap
    assert "1 unreadable" in gap
    assert keys[1].access_key_id in gap
    assert "--role-check-keys" not in gap  # nothing was cut by the limit


def test_unreadable_instances_count_as_outside_and_are_said(world: World) -> None:
    """DescribeInstances refused: the instance's address cannot be told from the
    internet's, so that key is not flagged; the Elastic IP still is."""
    ec2, (plain, other) = _instances(world.session, EU, 2)
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=other["InstanceId"])
    refusal = {"Error": {"Code": "UnauthorizedOperation",
                         "Message": "You are not authorized to perform this operation."},
               "ResponseMetadata": {"HTTPStatusCode": 403}}

    def refuse(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://ec2", 403, HTTPHeaders(), None), refusal

    # A before-call handler's answer replaces the request (the stubs expect None).
    world.session.events.register("before-call.ec2.DescribeInstances",
                                  refuse)  # type: ignore[arg-type]
    on_instance, on_eip = _key(1, EU), _key(2, EU)
    world.record(on_instance.access_key_id, plain["PublicIpAddress"], region=EU)
    world.record(on_eip.access_key_id, eip["PublicIp"], region=EU)
    checked = world.check([on_instance, on_eip])
    assert set(_by_id(checked)) == {on_eip.access_key_id}
    assert checked.read == 2
    assert checked.unread == ((f"ec2 {EU}", "UnauthorizedOperation: You are not authorized "
                               "to perform this operation."),)
    gap = checked.gap()
    assert gap is not None
    assert f"2 of 2 recently used keys read; 1 unreadable: ec2 {EU}" in gap


def test_limit_reads_the_first_keys_and_says_how_many_were_left(world: World) -> None:
    keys = [_key(1), _key(2), _key(3)]
    for key in keys:
        world.record(key.access_key_id, "10.0.0.1")
    checked = world.check(keys, limit=2)
    assert (checked.read, checked.candidates) == (2, 3)
    assert [k for _, k, _ in world.trail.requests] == [k.access_key_id for k in keys[:2]]
    gap = checked.gap()
    assert gap is not None
    assert "2 of 3" in gap
    assert "--role-check-keys" in gap


def test_one_region_is_paced_at_two_requests_a_second(world: World) -> None:
    keys = [_key(n) for n in range(6)]
    start = world.trail.clock.monotonic()
    checked = world.check(keys)
    assert checked.read == 6
    times = [t for _, _, t in world.trail.requests]
    assert len(times) == 6
    assert times[-1] - start >= 2.5
    assert all(later - earlier >= 0.5 - 1e-6 for earlier, later in pairwise(times))


def test_a_retry_pays_for_its_token_too(world: World) -> None:
    key = _key(1)
    world.record(key.access_key_id, "10.0.0.1")
    world.trail.throttle_once.add(key.access_key_id)
    start = world.trail.clock.monotonic()
    checked = world.check([key])
    assert len(checked.inside) == 1
    times = [t for _, _, t in world.trail.requests]
    assert len(times) == 2
    assert times[1] - times[0] >= 0.5 - 1e-6
    assert times[0] - start >= 0.5 - 1e-6  # the bucket starts empty: no burst


def test_regions_are_read_at_once(world: World) -> None:
    """Each region's first request waits until the other region's is in flight too: a
    check reading the regions one after the other would break the barrier."""
    world.trail.meet = threading.Barrier(2, timeout=5)
    keys = [_key(1), _key(2, EU), _key(3), _key(4, EU)]
    for key in keys:
        world.record(key.access_key_id, "10.0.0.1", region=key.region)
    checked = world.check(keys)
    assert world.trail.met == [True, True]
    assert checked.read == 4
    assert [i.key for i in checked.inside] == keys  # in the order given, not of arrival
    by_region: dict[str, list[str]] = {}
    for region, key_id, _ in world.trail.requests:
        by_region.setdefault(region, []).append(key_id)
    assert by_region == {REGION: [keys[0].access_key_id, keys[2].access_key_id],
                         EU: [keys[1].access_key_id, keys[3].access_key_id]}


def test_a_full_page_says_last_n_events_and_long_lists_are_cut(world: World) -> None:
    key = _key(1)
    for n in range(7):
        world.record(key.access_key_id, f"10.0.0.{n + 1}", count=8)
    checked = world.check([key])
    (one,) = checked.inside
    assert one.events == PAGE
    assert len(one.sources) == 7
    problem = one.problem()
    assert problem.startswith(f"used only from inside AWS in the last {PAGE} events (")
    assert "and 2 more" in problem
    assert f"s3:GetObject {TIMES}50" in problem


def _row(user: str, **slots: tuple[str, str, str]) -> dict[str, str]:
    """slots: access_key_N=(active, last used date, last used region)."""
    row = {"user": user}
    for slot in ("access_key_1", "access_key_2"):
        active, used, region = slots.get(slot, ("false", "N/A", "N/A"))
        row.update({f"{slot}_active": active, f"{slot}_last_used_date": used,
                    f"{slot}_last_used_region": region,
                    f"{slot}_last_rotated": "2026-01-01T00:00:00+00:00",
                    f"{slot}_last_used_service": "s3"})
    return row


def test_candidates_are_recently_used_active_keys_with_a_region_and_id() -> None:
    def ago(days: float) -> str:
        return (NOW - timedelta(days=days)).isoformat()

    rows = [
        _row("<root_account>", access_key_1=("true", ago(1), REGION)),
        _row("old", access_key_1=("true", ago(3), REGION), access_key_2=("true", ago(2), EU)),
        _row("newest", access_key_1=("true", ago(0.5), "ap-southeast-2")),
        _row("inactive", access_key_1=("false", ago(1), REGION)),
        _row("noregion", access_key_1=("true", ago(1), "N/A")),
        _row("never", access_key_1=("true", "N/A", "N/A")),
        _row("stale", access_key_1=("true", ago(91), REGION)),
        _row("unknown", access_key_1=("true", ago(1), REGION)),
    ]
    ids = {(row["user"], slot): f"AKIA{row['user'].upper()}{slot[-1]}"
           for row in rows for slot in ("access_key_1", "access_key_2")
           if row["user"] != "unknown"}
    found = candidates(rows, ids, NOW)
    assert [(k.user, k.slot, k.region) for k in found] == [
        ("newest", "access_key_1", "ap-southeast-2"),
        ("old", "access_key_2", EU),
        ("old", "access_key_1", REGION)]
    assert found[0].access_key_id == "AKIANEWEST1"
    assert found[0].last_used == NOW - timedelta(days=0.5)
    assert [k.user for k in candidates(rows, ids, NOW, days=1)] == ["newest"]
