"""The CloudTrail LookupEvents fake, exercised through real boto3 clients and moto's dispatch.

The evidence step's tests trust this fake to behave like CloudTrail (paging, filters,
regions) and its test subclass to fail as CloudTrail does (throttling, a region down);
these tests pin that down so a product failure can't be the fake's fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cloudtrail_faults import FaultyCloudTrail
from moto import mock_aws

from responder.drill.cloudtrail import CloudTrailFake, FakeError

LEAKED = "AKIALEAKEDKEY0000001"
OTHER = "AKIAOTHERKEY00000002"
SESSION_KEY = "ASIATEMPKEY000000003"
BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def by_key(key: str) -> list[dict[str, str]]:
    return [{"AttributeKey": "AccessKeyId", "AttributeValue": key}]


def pages(client: Any, **request: Any) -> list[list[dict[str, Any]]]:
    """Every page of a LookupEvents query, following NextToken as the product does."""
    out: list[list[dict[str, Any]]] = []
    while True:
        response = client.lookup_events(**request)
        out.append(response["Events"])
        if "NextToken" not in response:
            return out
        request["NextToken"] = response["NextToken"]


def populate(fake: CloudTrailFake, region: str = "eu-west-1") -> list[dict[str, Any]]:
    """230 events for LEAKED (times tie in pairs) and 20 for OTHER; returns LEAKED's records."""
    names = ("GetCallerIdentity", "ListUsers", "CreateAccessKey", "RunInstances", "ListBuckets")
    leaked = [
        fake.record(region, names[i % len(names)], LEAKED,
                    event_time=BASE + timedelta(seconds=i // 2))
        for i in range(230)
    ]
    for i in range(20):
        fake.record(region, "ListBuckets", OTHER, event_time=BASE + timedelta(seconds=i))
    return leaked


@pytest.fixture
def fake() -> Iterator[FaultyCloudTrail]:
    """A fake installed into moto's in-process mock (no faults; it counts calls)."""
    cloudtrail_fake = FaultyCloudTrail()
    with mock_aws(), cloudtrail_fake.installed():
        yield cloudtrail_fake


def test_pages_through_all_events_of_a_key_newest_first(fake: FaultyCloudTrail) -> None:
    """230 events come back once each, in pages of 50 capped by CloudTrail, newest first."""
    leaked = populate(fake)
    client = boto3.client("cloudtrail", region_name="eu-west-1")

    got = pages(client, LookupAttributes=by_key(LEAKED))

    assert [len(p) for p in got] == [50, 50, 50, 50, 30]
    events = [e for p in got for e in p]
    ids = [e["EventId"] for e in events]
    assert sorted(ids) == sorted(r["eventID"] for r in leaked)
    assert len(set(ids)) == 230
    assert {e["AccessKeyId"] for e in events} == {LEAKED}
    keys = [(-e["EventTime"].timestamp(), e["EventId"]) for e in events]
    assert keys == sorted(keys)  # newest first, ties broken by EventId
    assert events[0]["EventTime"] == BASE + timedelta(seconds=114)
    assert fake.calls["eu-west-1"] == 5


def test_max_results_is_honoured_and_capped(fake: FaultyCloudTrail) -> None:
    """MaxResults picks the page size; values above 50 are rejected as CloudTrail does."""
    populate(fake)
    client = boto3.client("cloudtrail", region_name="eu-west-1")

    got = pages(client, LookupAttributes=by_key(OTHER), MaxResults=7)

    assert [len(p) for p in got] == [7, 7, 6]
    with pytest.raises(ClientError) as caught:
        client.lookup_events(MaxResults=51)
    assert caught.value.response["Error"]["Code"] == "InvalidMaxResultsException"


def test_time_window_is_inclusive_and_excludes_outside(fake: FaultyCloudTrail) -> None:
    """StartTime/EndTime keep events on the bounds and drop everything outside them."""
    for i in range(10):
        fake.record("us-east-1", "ListUsers", LEAKED, event_time=BASE + timedelta(minutes=i))
    client = boto3.client("cloudtrail", region_name="us-east-1")

    got = pages(client, LookupAttributes=by_key(LEAKED),
                StartTime=BASE + timedelta(minutes=3), EndTime=BASE + timedelta(minutes=6))

    times = [e["EventTime"] for p in got for e in p]
    assert times == [BASE + timedelta(minutes=m) for m in (6, 5, 4, 3)]


def test_regions_are_isolated(fake: FaultyCloudTrail) -> None:
    """Events recorded in eu-west-1 are not visible from us-east-1, and vice versa."""
    fake.record("eu-west-1", "ListBuckets", LEAKED, event_time=BASE)
    fake.record("us-east-1", "GetCallerIdentity", LEAKED, event_time=BASE)

    east = boto3.client("cloudtrail", region_name="us-east-1").lookup_events(
        LookupAttributes=by_key(LEAKED))["Events"]
    west = boto3.client("cloudtrail", region_name="eu-west-1").lookup_events(
        LookupAttributes=by_key(LEAKED))["Events"]
    empty = boto3.client("cloudtrail", region_name="ap-south-1").lookup_events(
        LookupAttributes=by_key(LEAKED))

    assert [e["EventName"] for e in east] == ["GetCallerIdentity"]
    assert [e["EventName"] for e in west] == ["ListBuckets"]
    assert empty["Events"] == []
    assert "NextToken" not in empty
    assert fake.calls == {"us-east-1": 1, "eu-west-1": 1, "ap-south-1": 1}


def test_other_lookup_attributes_filter(fake: FaultyCloudTrail) -> None:
    """EventName, Username, EventSource, ReadOnly and EventId filters select the right events."""
    fake.record("us-east-1", "CreateAccessKey", LEAKED, event_time=BASE, user_name="bob")
    listed = fake.record("us-east-1", "ListBuckets", LEAKED, event_time=BASE)
    client = boto3.client("cloudtrail", region_name="us-east-1")

    def names(key: str, value: str) -> list[str]:
        attrs = [{"AttributeKey": key, "AttributeValue": value}]
        return [e["EventName"] for e in client.lookup_events(LookupAttributes=attrs)["Events"]]

    assert names("EventName", "ListBuckets") == ["ListBuckets"]
    assert names("Username", "bob") == ["CreateAccessKey"]
    assert names("EventSource", "iam.amazonaws.com") == ["CreateAccessKey"]
    assert names("ReadOnly", "true") == ["ListBuckets"]
    assert names("ReadOnly", "false") == ["CreateAccessKey"]
    assert names("EventId", listed["eventID"]) == ["ListBuckets"]


def test_next_token_survives_new_events_and_rejects_garbage(fake: FaultyCloudTrail) -> None:
    """Events recorded mid-paging don't shift pages; a forged token is InvalidNextToken."""
    populate(fake)
    client = boto3.client("cloudtrail", region_name="eu-west-1")
    first = client.lookup_events(LookupAttributes=by_key(LEAKED))
    seen = [e["EventId"] for e in first["Events"]]
    fake.record("eu-west-1", "ListUsers", LEAKED, event_time=BASE + timedelta(days=1))

    rest = pages(client, LookupAttributes=by_key(LEAKED), NextToken=first["NextToken"])

    seen += [e["EventId"] for p in rest for e in p]
    assert len(seen) == len(set(seen)) == 230
    for token in ("not-a-token", first["NextToken"][:-4] + "AAAA"):
        with pytest.raises(ClientError) as caught:
            client.lookup_events(LookupAttributes=by_key(LEAKED), NextToken=token)
        assert caught.value.response["Error"]["Code"] == "InvalidNextTokenException"
    with pytest.raises(ClientError) as caught:  # token from a different query
        client.lookup_events(LookupAttributes=by_key(OTHER), NextToken=first["NextToken"])
    assert caught.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_throttling_is_seeded_and_retrying_gets_the_same_page() -> None:
    """At throttle_rate 0.3 some calls raise ThrottlingException; a retry gets the same page."""
    throttled = FaultyCloudTrail(throttle_rate=0.3, seed=7)
    expected = [r["eventID"] for r in sorted(
        populate(throttled), key=lambda r: (-datetime.fromisoformat(r["eventTime"]).timestamp(),
                                            r["eventID"]))]
    attempts = throttles = 0
    errors: list[tuple[str, int]] = []

    with mock_aws(), throttled.installed():
        client = boto3.client("cloudtrail", region_name="eu-west-1", config=NO_RETRY)

        def until_ok(request: dict[str, Any]) -> dict[str, Any]:
            nonlocal attempts, throttles
            for _ in range(100):
                attempts += 1
                try:
                    return dict(client.lookup_events(**request))
                except ClientError as exc:
                    errors.append((exc.response["Error"]["Code"],
                                   exc.response["ResponseMetadata"]["HTTPStatusCode"]))
                    throttles += 1
            raise AssertionError("never got past throttling")

        request: dict[str, Any] = {"LookupAttributes": by_key(LEAKED)}
        got: list[str] = []
        while True:
            page = until_ok(request)
            again = until_ok(request)
            assert again["Events"] == page["Events"]
            assert again.get("NextToken") == page.get("NextToken")
            got += [e["EventId"] for e in page["Events"]]
            if "NextToken" not in page:
                break
            request["NextToken"] = page["NextToken"]

    assert got == expected
    assert throttles > 0
    assert set(errors) == {("ThrottlingException", 400)}
    assert throttled.calls["eu-west-1"] == attempts


def test_same_seed_throttles_the_same_calls() -> None:
    """The throttle pattern depends only on the seed, so fault-injection runs repeat."""
    def pattern(seed: int) -> list[str]:
        fake = FaultyCloudTrail(throttle_rate=0.5, seed=seed)
        out = []
        for _ in range(40):
            try:
                fake.lookup("us-east-1", {})
                out.append("ok")
            except FakeError as exc:
                out.append(f"{exc.code}/{exc.status}")
        return out

    assert pattern(3) == pattern(3)
    assert pattern(3) != pattern(4)
    assert set(pattern(3)) == {"ok", "ThrottlingException/400"}


def test_failing_region_answers_503() -> None:
    """A region listed in failing_regions always answers HTTP 503 ServiceUnavailable."""
    fake = FaultyCloudTrail(failing_regions=frozenset({"ap-southeast-2"}))
    fake.record("ap-southeast-2", "ListUsers", LEAKED, event_time=BASE)

    with mock_aws(), fake.installed():
        client = boto3.client("cloudtrail", region_name="ap-southeast-2", config=NO_RETRY)
        for _ in range(3):
            with pytest.raises(ClientError) as caught:
                client.lookup_events(LookupAttributes=by_key(LEAKED))
            assert caught.value.response["Error"]["Code"] == "ServiceUnavailableException"
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        healthy = boto3.client("cloudtrail", region_name="eu-west-1", config=NO_RETRY)
        assert healthy.lookup_events()["Events"] == []

    assert fake.calls == {"ap-southeast-2": 3, "eu-west-1": 1}


def test_moto_server_gives_the_same_answers_as_in_process(moto_server: str) -> None:
    """A ThreadedMotoServer in this process answers LookupEvents exactly like mock_aws."""
    fake = FaultyCloudTrail()
    populate(fake)
    fake.record("eu-west-1", "AssumeRole", SESSION_KEY, event_time=BASE)
    request = {"LookupAttributes": by_key(LEAKED), "StartTime": BASE + timedelta(seconds=10),
               "EndTime": BASE + timedelta(seconds=100), "MaxResults": 40}

    with fake.installed():
        server = boto3.client("cloudtrail", endpoint_url=moto_server, region_name="eu-west-1")
        over_http = pages(server, **request)
        server_session = server.lookup_events(LookupAttributes=by_key(SESSION_KEY))
    with mock_aws(), fake.installed():
        local = boto3.client("cloudtrail", region_name="eu-west-1")
        in_process = pages(local, **request)

    assert over_http == in_process
    # seconds 10..100 inclusive, two events each: 182
    assert [len(p) for p in over_http] == [40, 40, 40, 40, 22]
    assert [e["EventName"] for e in server_session["Events"]] == ["AssumeRole"]
    assert fake.calls["eu-west-1"] == 5 + 1 + 5


def test_cloudtrail_event_json_describes_the_caller(fake: FaultyCloudTrail) -> None:
    """CloudTrailEvent is the full record: key, region, IAMUser for AKIA, AssumedRole for ASIA."""
    fake.record("eu-central-1", "ListBuckets", LEAKED, event_time=BASE)
    fake.record("eu-central-1", "GetCallerIdentity", SESSION_KEY, event_time=BASE,
                user_name="deployer")
    client = boto3.client("cloudtrail", region_name="eu-central-1")

    def record(key: str) -> dict[str, Any]:
        (event,) = client.lookup_events(LookupAttributes=by_key(key))["Events"]
        parsed: dict[str, Any] = json.loads(event["CloudTrailEvent"])
        assert parsed["eventID"] == event["EventId"]
        assert parsed["eventTime"] == "2024-05-01T12:00:00Z"
        return parsed

    user = record(LEAKED)
    assert user["userIdentity"]["accessKeyId"] == LEAKED
    assert user["userIdentity"]["type"] == "IAMUser"
    assert user["userIdentity"]["userName"] == "alice"
    assert user["awsRegion"] == "eu-central-1"
    assert user["eventSource"] == "s3.amazonaws.com"
    assert user["readOnly"] is True
    assert user["recipientAccountId"] == "123456789012"

    role = record(SESSION_KEY)
    assert role["userIdentity"]["accessKeyId"] == SESSION_KEY
    assert role["userIdentity"]["type"] == "AssumedRole"
    assert role["userIdentity"]["arn"].startswith("arn:aws:sts::123456789012:assumed-role/")
    assert role["awsRegion"] == "eu-central-1"
    assert role["eventSource"] == "sts.amazonaws.com"


def test_pure_lookup_accepts_datetimes_and_clear_resets() -> None:
    """lookup() works without moto (datetime bounds, EventTime datetimes); clear() empties it."""
    fake = FaultyCloudTrail(page_size=2)
    for i in range(3):
        fake.record("us-east-1", "ListUsers", LEAKED, event_time=BASE + timedelta(seconds=i))

    first = fake.lookup("us-east-1", {"LookupAttributes": by_key(LEAKED), "StartTime": BASE,
                                      "EndTime": BASE + timedelta(hours=1)})

    assert [e["EventTime"] for e in first["Events"]] == [BASE + timedelta(seconds=2),
                                                        BASE + timedelta(seconds=1)]
    assert first["Events"][0]["ReadOnly"] == "true"
    assert "NextToken" in first
    with pytest.raises(FakeError) as caught:
        fake.lookup("us-east-1", {"NextToken": "bogus"})
    assert (caught.value.code, caught.value.status) == ("InvalidNextTokenException", 400)
    fake.clear()
    assert fake.lookup("us-east-1", {}) == {"Events": []}
    assert fake.calls == {"us-east-1": 1}


def test_installed_restores_moto() -> None:
    """After installed() exits, LookupEvents is moto's again and no longer sees our events."""
    fake = FaultyCloudTrail()
    fake.record("us-east-1", "ListUsers", LEAKED, event_time=BASE)
    with mock_aws():
        client = boto3.client("cloudtrail", region_name="us-east-1", config=NO_RETRY)
        with fake.installed():
            assert len(client.lookup_events()["Events"]) == 1

        with pytest.raises((NotImplementedError, ClientError)):
            client.lookup_events()

    assert fake.calls["us-east-1"] == 1
