"""Reading a trail's log files from S3 (issue 33): the data events LookupEvents never
returns (S3 object reads, DynamoDB items) reach the proposal from the trail's bucket.

In-process moto holds the bucket; the log files are what CloudTrail delivers, in its
layout and naming (CloudTrail User Guide, "Finding your CloudTrail log files",
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html,
and "CloudTrail log file name format",
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-examples.html):

    [prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/
        ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz

gzip JSON {"Records": [...]}. What botocore sends is seen by event hooks on the session
the product's Api uses (which prefixes were listed, which keys fetched), and a refused
file is refused the same way, never by patching product code.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from conftest import FAST_RETRY, REGION
from moto import mock_aws

from responder.aws import Api
from responder.errors import BadInput, clipped
from responder.hardening.needs import needs
from responder.hardening.trail import READ_PERMISSIONS, TrailRead, parse_location, read_trail
from responder.hardening.usage import Tally

ACCOUNT = "123456789012"  # moto's account
OTHER_ACCOUNT = "210987654321"
TRAIL_BUCKET = "org-trail-logs"
APP_BUCKET, APP_KEY, TABLE = "app-data", "reports/2024/q1.csv", "orders"
EU = "eu-west-1"
START = datetime(2024, 3, 8, 6, 0, tzinfo=UTC)
END = datetime(2024, 3, 10, 18, 0, tzinfo=UTC)
DAY = re.compile(r"/\d{4}/\d{2}/\d{2}/$")
_UNIQUE = itertools.count(1)


@dataclass
class Wire:
    """What botocore sent on the Api's session, and the keys it is to refuse."""

    listed: list[str] = field(default_factory=list)
    """ListObjectsV2 prefixes, in order."""
    fetched: list[str] = field(default_factory=list)
    """GetObject keys, in order."""
    operations: set[str] = field(default_factory=set)
    refuse: set[str] = field(default_factory=set)
    """Keys (or, with "*LIST*", every listing) answered 403 AccessDenied."""

    def _params(self, params: Mapping[str, Any], model: Any, context: dict[str, Any],
                **_: Any) -> None:
        self.operations.add(model.name)
        if model.name == "ListObjectsV2":
            self.listed.append(str(params.get("Prefix", "")))
            context["refuse"] = "*LIST*" in self.refuse
        elif model.name == "GetObject":
            self.fetched.append(str(params["Key"]))
            context["refuse"] = params["Key"] in self.refuse

    @staticmethod
    def _call(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        """A refused request never leaves: botocore takes this answer as S3's."""
        if not context.get("refuse"):
            return None
        error = {"Code": "AccessDenied", "Message": "Access Denied"}
        return AWSResponse("https://s3.amazonaws.com", 403, HTTPHeaders(), None), {
            "Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}

    def session(self) -> boto3.Session:
        session = boto3.Session(region_name=REGION)
        session.events.register("before-parameter-build.s3", self._params)
        # botocore takes a before-call handler's answer as the response (the stubs
        # type every handler as returning None)
        session.events.register("before-call.s3", self._call)  # type: ignore[arg-type]
        return session

    def days(self) -> list[str]:
        """The day folders listed, as "REGION/YYYY/MM/DD"."""
        return ["/".join(p.rstrip("/").split("/")[-4:]) for p in self.listed if DAY.search(p)]


@dataclass(frozen=True)
class World:
    api: Api
    s3: Any
    wire: Wire


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        wire = Wire()
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=TRAIL_BUCKET)
        yield World(Api(wire.session(), FAST_RETRY), s3, wire)


def deliver(world: World, delivered: datetime, records: list[dict[str, Any]], *,
            region: str = REGION, prefix: str = "logs", org: str | None = None,
            account: str = ACCOUNT, body: bytes | None = None) -> str:
    """Put one log file where and as CloudTrail names it; returns its key."""
    stamp = f"{delivered:%Y%m%dT%H%M}Z"
    unique = f"Mu0KsOhtH{next(_UNIQUE):07d}"  # 16 characters, meaningless, as AWS's
    key = "/".join(part for part in (
        prefix, "AWSLogs", org, account, "CloudTrail", region, f"{delivered:%Y/%m/%d}",
        f"{account}_CloudTrail_{region}_{stamp}_{unique}.json.gz") if part)
    data = gzip.compress(json.dumps({"Records": records}).encode()) if body is None else body
    world.s3.put_object(Bucket=TRAIL_BUCKET, Key=key, Body=data)
    return key


def identity(user: str = "alice", account: str = ACCOUNT) -> dict[str, Any]:
    return {"type": "IAMUser", "principalId": "AIDAEXAMPLEALICE00001",
            "arn": f"arn:aws:iam::{account}:user/{user}", "accountId": account,
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": user}


def s3_object_event(at: datetime, event_id: str, *, name: str = "GetObject",
                    who: dict[str, Any] | None = None, key: str = APP_KEY,
                    region: str = REGION) -> dict[str, Any]:
    """An S3 object-level data event as a trail writes it. The shape follows AWS's own
    examples: the data event record of the CloudTrail User Guide ("Understanding
    CloudTrail events", Data events: managementEvent false, eventCategory "Data"), and
    the S3 User Guide's object-level entries ("CloudTrail log file entries for Amazon S3",
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-understanding-s3-entries.html:
    requestParameters bucketName/Host/key, resources AWS::S3::Object then
    AWS::S3::Bucket, additionalEventData with the bytes transferred)."""
    return {
        "eventVersion": "1.09",
        "userIdentity": who or identity(),
        "eventTime": f"{at:%Y-%m-%dT%H:%M:%SZ}",
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "[aws-sdk-java/2.25.11 Linux/5.10 OpenJDK_64-Bit_Server_VM/17]",
        "requestParameters": {"bucketName": APP_BUCKET,
                              "Host": f"{APP_BUCKET}.s3.{region}.amazonaws.com", "key": key},
        "responseElements": None,
        "additionalEventData": {"SignatureVersion": "SigV4",
                                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                                "bytesTransferredIn": 0, "AuthenticationMethod": "AuthHeader",
                                "x-amz-id-2": "q6xhNJYmhgEXAMPLE=", "bytesTransferredOut": 28441},
        "requestID": "07D681123BD12AED",
        "eventID": event_id,
        "readOnly": name.startswith("Get"),
        "resources": [
            {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{APP_BUCKET}/{key}"},
            {"accountId": ACCOUNT, "type": "AWS::S3::Bucket",
             "ARN": f"arn:aws:s3:::{APP_BUCKET}"},
        ],
        "eventType": "AwsApiCall",
        "managementEvent": False,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Data",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": f"{APP_BUCKET}.s3.{region}.amazonaws.com"},
    }


def item_event(at: datetime, event_id: str, *, region: str = EU) -> dict[str, Any]:
    """A DynamoDB GetItem data event (DynamoDB Developer Guide, "Logging DynamoDB
    operations by using AWS CloudTrail": key values hidden, resources the table)."""
    table = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{TABLE}"
    return {
        "eventVersion": "1.09", "userIdentity": identity(),
        "eventTime": f"{at:%Y-%m-%dT%H:%M:%SZ}", "eventSource": "dynamodb.amazonaws.com",
        "eventName": "GetItem", "awsRegion": region, "sourceIPAddress": "192.0.2.10",
        "userAgent": "aws-sdk-java/2.25.11",
        "requestParameters": {"tableName": TABLE,
                              "key": {"id": "HIDDEN_DUE_TO_SECURITY_REASONS"},
                              "consistentRead": False},
        "responseElements": None, "requestID": "4KBNVRGD25RG1KEO9UT4V3FQDJVV4KQNSO5AEMVJF66Q",
        "eventID": event_id, "readOnly": True,
        "resources": [{"accountId": ACCOUNT, "type": "AWS::DynamoDB::Table", "ARN": table}],
        "eventType": "AwsApiCall", "apiVersion": "2012-08-10", "managementEvent": False,
        "recipientAccountId": ACCOUNT, "eventCategory": "Data",
    }


def read(world: World, location: str = f"s3://{TRAIL_BUCKET}/logs", *,
         tally: Tally | None = None, **options: Any) -> tuple[TrailRead, Tally]:
    tally = tally if tally is not None else Tally()
    found = read_trail(world.api, location, "alice", (START, END), tally, account=ACCOUNT,
                       **options)
    return found, tally


def usage(tally: Tally) -> dict[str, tuple[tuple[str, ...], int]]:
    return {u.action: (u.resources, u.count) for u in tally.usages()}


def arns(*records: dict[str, Any]) -> tuple[str, ...]:
    """The ARNs needs.py gives these records (the tally's resources are its union):
    the object ARN pattern is needs.py's to decide, these tests only that it arrives."""
    found = tuple(sorted({arn for record in records for need in needs(record)
                          for arn in need.resources}))
    assert found, "needs.py gave no ARN"
    return found


def test_the_users_data_events_in_the_window_are_tallied_and_nobody_elses(
        world: World) -> None:
    """alice's object reads and item reads inside the window become usage, on the object
    and the table; bob's writes, a role session named alice, another account's alice and
    alice's calls before or after the window never do. An event LookupEvents already
    gave (same eventID) is counted once."""
    t = START + timedelta(hours=2)
    role_session = {"type": "AssumedRole", "principalId": "AROAEXAMPLE:alice",
                    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/alice",
                    "accountId": ACCOUNT}
    by_path = {"type": "IAMUser", "principalId": "AIDAEXAMPLEALICE00001",
               "arn": f"arn:aws:iam::{ACCOUNT}:user/division/alice", "accountId": ACCOUNT}
    deliver(world, t + timedelta(minutes=5), [
        s3_object_event(t - timedelta(hours=3), "early"),  # before START: same day's file
        s3_object_event(t, "alice-get"),
        s3_object_event(t, "bob-put", name="PutObject", who=identity("bob")),
        s3_object_event(t, "role-put", name="PutObject", who=role_session),
        s3_object_event(t, "elsewhere", name="DeleteObject",
                        who=identity(account=OTHER_ACCOUNT)),
    ])
    deliver(world, t + timedelta(days=1), [item_event(t + timedelta(hours=23), "item")],
            region=EU)
    q2 = s3_object_event(END - timedelta(minutes=3), "by-path", key="reports/2024/q2.csv",
                         who=by_path)
    deliver(world, END + timedelta(minutes=5), [
        q2, s3_object_event(END + timedelta(minutes=1), "late", name="PutObject")])
    tally = Tally()
    tally.add(s3_object_event(t, "alice-get"))  # as LookupEvents would have handed it

    found, _ = read(world, tally=tally)

    objects = arns(s3_object_event(t, "alice-get"), q2)
    assert all(arn.startswith(f"arn:aws:s3:::{APP_BUCKET}/") for arn in objects)
    assert usage(tally) == {
        "s3:GetObject": (objects, 2),
        "dynamodb:GetItem": (arns(item_event(t, "item")), 1),
    }
    assert arns(item_event(t, "item")) == (f"arn:aws:dynamodb:{EU}:{ACCOUNT}:table/{TABLE}",)
    assert (found.files, found.records, found.events) == (3, 8, 3)
    assert found.regions == (EU, REGION)
    assert (found.read_from, found.read_to) == ("2024-03-08T06:00:00.000Z",
                                                "2024-03-10T18:00:00.000Z")
    assert found.errors == {}
    assert not found.truncated
    assert found.location == f"s3://{TRAIL_BUCKET}/logs"


def test_an_organization_trail_is_read_under_its_org_folder(world: World) -> None:
    """An organization trail adds o-ORGID/ before the account: the account's folder there
    is found and read, with or without a prefix; another member account's is not."""
    t = START + timedelta(hours=1)
    deliver(world, t + timedelta(minutes=5), [s3_object_event(t, "org-get")],
            prefix="", org="o-exampleorgid")
    deliver(world, t + timedelta(minutes=5),
            [s3_object_event(t, "theirs", who=identity(account=OTHER_ACCOUNT))],
            prefix="", org="o-exampleorgid", account=OTHER_ACCOUNT)

    found, tally = read(world, f"s3://{TRAIL_BUCKET}")

    assert usage(tally) == {"s3:GetObject": (arns(s3_object_event(t, "org-get")), 1)}
    assert (found.files, found.events, found.errors) == (1, 1, {})
    assert not any(OTHER_ACCOUNT in prefix for prefix in world.wire.listed)
    assert world.wire.listed[:2] == ["AWSLogs/o-", f"AWSLogs/{ACCOUNT}/CloudTrail/"]


def test_a_corrupt_file_and_a_refused_file_are_errors_and_the_rest_is_read(
        world: World) -> None:
    """A file that is not gzip, one that is gzip but not CloudTrail's JSON, and one S3
    refuses are each an error for their key; the good file is still read."""
    t = START + timedelta(hours=4)
    good = deliver(world, t, [s3_object_event(t, "good")])
    not_gzip = deliver(world, t + timedelta(minutes=5), [], body=b"{\"Records\": []}")
    not_json = deliver(world, t + timedelta(minutes=10), [],
                       body=gzip.compress(b"<html>truncated"))
    refused = deliver(world, t + timedelta(minutes=15), [s3_object_event(t, "refused")])
    world.wire.refuse.add(refused)

    found, tally = read(world)

    uri = f"s3://{TRAIL_BUCKET}/"
    assert set(found.errors) == {uri + not_gzip, uri + not_json, uri + refused}
    assert found.errors[uri + not_gzip].startswith("bad gzip: ")
    assert found.errors[uri + not_json].startswith("bad JSON: ")
    assert found.errors[uri + refused] == "AccessDenied: Access Denied"
    assert (found.files, found.events) == (1, 1)
    assert usage(tally)["s3:GetObject"][1] == 1
    assert good in world.wire.fetched


@pytest.mark.parametrize("case", ["missing", "refused"])
def test_a_missing_or_refused_bucket_is_one_error_for_the_location(
        world: World, case: str) -> None:
    """No bucket, or a bucket that refuses listing altogether: one error, named by the
    location as given, nothing read and no window claimed."""
    location = "s3://no-such-trail-bucket/logs" if case == "missing" \
        else f"s3://{TRAIL_BUCKET}/logs/"
    if case == "refused":
        world.wire.refuse.add("*LIST*")
        deliver(world, START + timedelta(hours=1), [s3_object_event(START, "x")])

    found, tally = read(world, location)

    code = "NoSuchBucket" if case == "missing" else "AccessDenied"
    assert list(found.errors) == [location]
    assert found.errors[location].startswith(f"{code}: ")
    assert (found.files, found.events, found.read_from, found.read_to) == (0, 0, None, None)
    assert len(world.wire.listed) == 1
    assert tally.usages() == ()


def test_an_empty_location_says_no_logs_were_found(world: World) -> None:
    """A prefix that holds no CloudTrail folder of the account (a typo, another account's
    trail) is an error, never a silent "no data events"."""
    deliver(world, START + timedelta(hours=1), [s3_object_event(START, "x")],
            prefix="other")

    found, _ = read(world)

    assert list(found.errors) == [f"s3://{TRAIL_BUCKET}/logs"]
    assert "no CloudTrail logs of account 123456789012" in found.errors[
        f"s3://{TRAIL_BUCKET}/logs"]
    assert found.read_from is None


def test_only_the_windows_days_are_listed_and_earlier_files_never_fetched(
        world: World) -> None:
    """Day folders outside the window are never listed, in any region; on the first
    day, a file delivered before the window starts is listed but never fetched."""
    inside = START + timedelta(hours=5)
    for region in (REGION, EU):
        for offset in (-3, -1, 0, 1, 2, 3, 5):  # days from START's
            moment = START.replace(hour=12) + timedelta(days=offset)
            deliver(world, moment, [s3_object_event(moment, f"{region}{offset}")],
                    region=region)
    before = deliver(world, START - timedelta(hours=1), [s3_object_event(START, "b")])
    deliver(world, inside, [s3_object_event(inside, "in")])

    found, _ = read(world)

    assert sorted(world.wire.days()) == sorted(
        f"{region}/2024/03/{day:02d}" for region in (REGION, EU) for day in (8, 9, 10))
    assert before not in world.wire.fetched
    assert all(re.search(r"/2024/03/(08|09|10)/", key) for key in world.wire.fetched)
    assert found.files == len(world.wire.fetched) == 7
    assert world.wire.operations == {"ListObjectsV2", "GetObject"}
    assert READ_PERMISSIONS == ("s3:ListBucket", "s3:GetObject")  # what those two need


def test_a_window_ending_near_midnight_reads_the_next_days_first_deliveries(
        world: World) -> None:
    """CloudTrail files a call when it delivers it, minutes later: a call at 23:58 is in
    the next day's folder. That day is listed when the window ends within the delivery
    lag of midnight, and only its files delivered within the lag are fetched."""
    end = datetime(2024, 3, 10, 23, 30, tzinfo=UTC)
    last_call = end - timedelta(minutes=2)
    early = deliver(world, datetime(2024, 3, 11, 0, 5, tzinfo=UTC),
                    [s3_object_event(last_call, "last")])
    later = deliver(world, datetime(2024, 3, 11, 9, 0, tzinfo=UTC),
                    [s3_object_event(end + timedelta(hours=9), "after")])
    tally = Tally()

    found = read_trail(world.api, f"s3://{TRAIL_BUCKET}/logs", "alice", (START, end),
                       tally, account=ACCOUNT)

    assert f"{REGION}/2024/03/11" in world.wire.days()
    assert early in world.wire.fetched
    assert later not in world.wire.fetched
    assert (found.events, found.read_to) == (1, "2024-03-10T23:30:00.000Z")
    assert usage(tally)["s3:GetObject"][1] == 1


def test_regions_given_limit_the_folders_read(world: World) -> None:
    """`regions` narrows the read to those region folders; the others are never listed."""
    t = START + timedelta(hours=3)
    deliver(world, t, [s3_object_event(t, "us")])
    deliver(world, t, [item_event(t, "eu")], region=EU)

    found, tally = read(world, regions=[EU])

    assert found.regions == (EU,)
    assert set(usage(tally)) == {"dynamodb:GetItem"}
    assert not any(f"/{REGION}/" in prefix for prefix in world.wire.listed)


def test_max_files_stops_newest_first_and_says_from_when(world: World) -> None:
    """max_files reads the newest files first, across regions and days, and stops: the
    read is truncated, covered from the minute after the last file read to the end, and
    progress was told each file."""
    times = [START + timedelta(hours=h) for h in (2, 20, 30, 40, 50)]
    for n, moment in enumerate(times):
        deliver(world, moment, [s3_object_event(moment - timedelta(minutes=1), f"e{n}",
                                                region=(REGION, EU)[n % 2])],
                region=(REGION, EU)[n % 2])
    told: list[tuple[int, int]] = []

    found, tally = read(world, max_files=3, progress=lambda *a: told.append(a))

    assert found.truncated
    assert (found.files, found.events) == (3, 3)
    assert found.read_from == f"{times[2] + timedelta(minutes=1):%Y-%m-%dT%H:%M}:00.000Z"
    assert found.read_to == "2024-03-10T18:00:00.000Z"
    assert usage(tally)["s3:GetObject"][1] == 3
    first = min(u.first_seen for u in tally.usages())
    assert first == times[2] - timedelta(minutes=1)
    assert [done for done, _ in told] == [1, 2, 3]
    assert all(done <= total for done, total in told)

    again, _ = read(world, max_files=5)
    assert not again.truncated
    assert again.read_from == "2024-03-08T06:00:00.000Z"


@pytest.mark.parametrize(("text", "expected"), [
    ("s3://trail-logs", ("trail-logs", "")),
    ("s3://trail-logs/", ("trail-logs", "")),
    ("s3://trail-logs/some/prefix/", ("trail-logs", "some/prefix")),
    ("s3://my.trail-logs.2024/cloudtrail", ("my.trail-logs.2024", "cloudtrail")),
])
def test_parse_location_takes_bucket_and_prefix(text: str, expected: tuple[str, str]
                                                ) -> None:
    """s3://BUCKET[/PREFIX], slashes at the prefix's ends dropped."""
    assert parse_location(text) == expected


@pytest.mark.parametrize("text", [
    "trail-logs/prefix",
    "https://trail-logs/prefix",
    "S3://trail-logs",
    "s3://",
    "s3:///prefix",
    "s3://ab",
    "s3://" + "a" * 64,
    "s3://Trail-Logs/prefix",
    "s3://trail_logs",
    "s3://-trail-logs",
    "s3://trail-logs-",
    "s3://trail..logs",
    "s3://192.168.10.12",
    "s3://xn--trail-logs",
    "s3://trail-logs--ol-s3",
    "s3://trail-logs//prefix",
    "s3://trail-logs/pre fix",
    f"s3://trail-logs/prefix/AWSLogs/{ACCOUNT}/CloudTrail",
])
def test_parse_location_refuses_anything_else_naming_it(text: str) -> None:
    """Each malformed location is bad input (exit 2), in one line that quotes it."""
    with pytest.raises(BadInput) as refused:
        parse_location(text)
    message = str(refused.value)
    assert repr(clipped(text)) in message
    assert "\n" not in message


def test_a_window_that_ends_before_it_starts_is_bad_input(world: World) -> None:
    """An inverted window is the caller's mistake, said before anything is listed."""
    with pytest.raises(BadInput, match="after it ends"):
        read_trail(world.api, f"s3://{TRAIL_BUCKET}", "alice", (END, START), Tally(),
                   account=ACCOUNT)
    assert world.wire.listed == []
