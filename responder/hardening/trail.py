"""The user's data events, read from the log files a trail delivers to S3.

LookupEvents returns management events only: S3 object reads and writes, DynamoDB item
calls and Lambda Invoke are data events, and a trail that logs them writes them to its
bucket and nowhere else. A proposal drawn from LookupEvents alone would deny the very
object and item access the user's applications live on, so `respond harden` reads the
trail's files too when told where they are, into the same Tally (which counts each
eventID once, so an event both sources hold is usage once).

Where the files are (CloudTrail User Guide, "Finding your CloudTrail log files" and
"CloudTrail log file name format"):

    [prefix/]AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/
        ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz

the o-ORGID folder only for an organization trail; YYYY/MM/DD and the name's timestamp
are when the file was *delivered* (UTC), and a file holds records from before then only.
So only the window's days are listed, a file delivered before the window starts is never
fetched, and the day after the window is listed only when the window ends within
DELIVERY_LAG of midnight (its first files still hold the window's last minutes).

Days are read newest first and, inside a day, every region's files newest first, so a
read stopped by `max_files` has covered an unbroken stretch up to the window's end:
`read_from` says from when. One file's bytes are held at a time; what a day's listing
keeps is its keys.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError

from responder.aws import Api, ApiCall
from responder.context import iso
from responder.errors import AwsCallFailed, BadInput, clipped
from responder.hardening.usage import Tally, event_time

READ_PERMISSIONS = ("s3:ListBucket", "s3:GetObject")
"""What reading a trail's bucket takes (a bucket encrypted with SSE-KMS takes the key's
kms:Decrypt as well: S3 refuses GetObject without it)."""
DELIVERY_LAG = timedelta(hours=1)
"""How long after a call its record may still arrive: CloudTrail delivers in about 5
minutes on average, without a guarantee; an hour is a wide margin that costs one listing."""
MAX_ERRORS = 50
"""Errors kept by key; past that only counted, so a bucket refusing every file does not
make the result as long as the listing."""
SCHEME = "s3://"

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_DELIVERED = re.compile(r"_CloudTrail_[a-z0-9-]+_(\d{8}T\d{4})Z_[^/]*\.json\.gz$")
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class TrailRead:
    """What reading a trail's files gave: how much, over which stretch, and what failed,
    so the proposal can say whether the user's data events are in it."""

    location: str
    """"s3://bucket/prefix" as given."""
    files: int = 0
    """Log files read (fetched and parsed)."""
    events: int = 0
    """The user's records inside the window, handed to the tally."""
    records: int = 0
    """Every record in the files read, anyone's."""
    read_from: str | None = None
    """ISO-8601 UTC: from when the window is covered in every region read (its start, or
    where a read stopped by max_files got back to); None when nothing could be read."""
    read_to: str | None = None
    regions: tuple[str, ...] = ()
    """Regions whose folders were read."""
    errors: Mapping[str, str] = field(default_factory=dict)
    """s3:// key or prefix (or the location itself) -> why it could not be read."""
    truncated: bool = False
    """max_files stopped the read with files left: the window is known from read_from."""


def parse_location(text: str) -> tuple[str, str]:
    """("bucket", "some/prefix") from "s3://bucket/some/prefix/": the trail's bucket and
    its S3 key prefix, without slashes at either end. Anything else is bad input, said
    in one line naming it: a mistyped bucket would otherwise read as "no data events"."""
    said = repr(clipped(text))
    if not text.startswith(SCHEME):
        raise BadInput(f"trail location {said}: expected s3://BUCKET[/PREFIX]")
    bucket, _, prefix = text[len(SCHEME):].partition("/")
    if not bucket:
        raise BadInput(f"trail location {said}: no bucket name after s3://")
    why = _bad_bucket(bucket)
    if why:
        raise BadInput(f"trail location {said}: bucket name {clipped(bucket)!r} {why}")
    if "//" in f"/{prefix}" or any(c.isspace() or not c.isprintable() for c in prefix):
        raise BadInput(f"trail location {said}: the prefix has an empty folder or a "
                       "blank or control character")
    if "AWSLogs" in prefix.split("/"):
        raise BadInput(f"trail location {said}: give the trail's bucket and prefix only; "
                       "the AWSLogs/... folders are found from the account")
    return bucket, prefix.strip("/")


def _bad_bucket(name: str) -> str | None:
    """Why `name` is not a general purpose bucket's name (S3 User Guide, "General
    purpose bucket naming rules"), or None."""
    if not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters long"
    if not _BUCKET.fullmatch(name):
        return ("may hold only lowercase letters, digits, dots and hyphens, and must "
                "begin and end with a letter or digit")
    if ".." in name:
        return "must not hold two adjacent dots"
    if _IP_ADDRESS.fullmatch(name):
        return "must not be an IP address"
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "uses a prefix or suffix S3 reserves"
    return None


@dataclass
class _Reading:
    """The read in progress: what it looks for, its counts and errors, where it got."""

    location: str
    bucket: str
    user: str
    account: str
    start: datetime
    end: datetime
    tally: Tally
    files: int = 0
    events: int = 0
    records: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    dropped: int = 0
    reached: datetime | None = None
    """Delivery minute of the last file read (files are read newest first)."""

    def fail(self, key: str, why: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors[f"{SCHEME}{self.bucket}/{key}"] = why
        else:
            self.dropped += 1


def read_trail(api: Api, location: str, user: str, window: tuple[datetime, datetime],
               tally: Tally, *, account: str, regions: Sequence[str] | None = None,
               max_files: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> TrailRead:
    """Hand `tally` every record of `user`'s (an IAM user of `account`) inside `window`
    that the trail at `location` delivered, region folders limited to `regions` when
    given, at most `max_files` files. `progress` is told (files read, files found so far).

    A missing or refused bucket is one error for the location; a day, region or file
    that cannot be read is an error for its key, and the rest is read."""
    bucket, prefix = parse_location(location)
    start, end = (_utc(moment) for moment in window)
    start = start.replace(microsecond=0)  # CloudTrail keeps whole seconds
    if start > end:
        raise BadInput(f"trail window starts {iso(start)}, after it ends {iso(end)}")
    reading = _Reading(location, bucket, user, account, start, end, tally)
    base = f"{prefix}/AWSLogs/" if prefix else "AWSLogs/"
    try:
        folders = _region_folders(api, bucket, base, account, regions)
    except AwsCallFailed as exc:
        return TrailRead(location, errors={location: f"{exc.code}: {exc.aws_message}"})
    if not folders:
        return TrailRead(location, errors={location: (
            f"no CloudTrail logs of account {account} under {SCHEME}{bucket}/{base} "
            f"(neither {account}/CloudTrail/REGION/ nor o-ORGID/{account}/CloudTrail/REGION/"
            + (f" for {', '.join(regions)})" if regions is not None else ")"))})
    truncated = False
    listed = 0
    for day in reversed(_days(start, end)):
        files = _listed(api, reading, folders, day)
        listed += len(files)
        for delivered, key in files:
            if max_files is not None and reading.files >= max_files:
                truncated = True
                break
            _read_file(api, reading, key)
            reading.reached = delivered
            if progress is not None:
                progress(reading.files, listed)
        if truncated:
            break
    return _result(reading, folders, truncated=truncated)


def _result(reading: _Reading, folders: list[tuple[str, str]], *, truncated: bool
            ) -> TrailRead:
    """The read as a value; what it covered is the window, or from the minute after the
    last file read when max_files stopped it (every later file was read before)."""
    start, end = reading.start, reading.end
    covered: tuple[datetime, datetime] | None = (start, end)
    if truncated:
        covered = None if reading.reached is None \
            else (max(start, min(end, reading.reached + _MINUTE)), end)
    errors = dict(reading.errors)
    if reading.dropped:
        errors[f"{reading.location} (more)"] = f"{reading.dropped} more keys could not be read"
    return TrailRead(
        reading.location, reading.files, reading.events, reading.records,
        read_from=iso(covered[0]) if covered else None,
        read_to=iso(covered[1]) if covered else None,
        regions=tuple(sorted({region for _, region in folders})),
        errors=errors, truncated=truncated)


def _region_folders(api: Api, bucket: str, base: str, account: str,
                    wanted: Sequence[str] | None) -> list[tuple[str, str]]:
    """(root, region) of every region folder of the account, those of `wanted` only when
    given: under its own trail's `.../CloudTrail/` and under each organization trail's
    that delivers here (a trail made an organization trail later has both)."""
    roots = [f"{base}{account}/CloudTrail/"]
    roots += [f"{org}{account}/CloudTrail/" for org in _folders(api, bucket, f"{base}o-")]
    found = []
    for root in roots:
        for folder in _folders(api, bucket, root):
            region = folder[len(root):].rstrip("/")
            if _REGION.fullmatch(region) and (wanted is None or region in wanted):
                found.append((root, region))
    return found


def _folders(api: Api, bucket: str, prefix: str) -> list[str]:
    """The "folders" (common prefixes) directly under `prefix`."""
    return [common["Prefix"] for page in _pages(api, bucket, prefix, delimiter="/")
            for common in page.get("CommonPrefixes", []) if "Prefix" in common]


def _pages(api: Api, bucket: str, prefix: str, *, delimiter: str | None = None
           ) -> Iterator[dict[str, Any]]:
    """ListObjectsV2 page by page (1,000 keys each): never the whole listing at once."""
    token: str | None = None
    while True:
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if delimiter is not None:
            params["Delimiter"] = delimiter
        if token is not None:
            params["ContinuationToken"] = token
        page = api.call(ApiCall("s3", "ListObjectsV2", params, counts_only=True))
        yield page
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return


def _days(start: datetime, end: datetime) -> list[date]:
    """The delivery days that can hold the window's records, oldest first."""
    last = (end + DELIVERY_LAG).date()
    return [start.date() + timedelta(days=n) for n in range((last - start.date()).days + 1)]


def _listed(api: Api, reading: _Reading, folders: list[tuple[str, str]], day: date
            ) -> list[tuple[datetime, str]]:
    """Every region's files of `day` that can hold records of the window, newest first,
    each with its delivery minute (a name out of format: the day's end, read first)."""
    found: list[tuple[datetime, str]] = []
    latest = datetime.combine(day, datetime.max.time(), UTC).replace(second=0, microsecond=0)
    for root, region in folders:
        prefix = f"{root}{region}/{day:%Y/%m/%d}/"
        try:
            for page in _pages(api, reading.bucket, prefix):
                for item in page.get("Contents", []):
                    key = str(item.get("Key", ""))
                    if not key.endswith(".json.gz"):
                        continue
                    delivered = _delivered(key) or latest
                    if reading.start < delivered + _MINUTE \
                            and delivered <= reading.end + DELIVERY_LAG:
                        found.append((delivered, key))
        except AwsCallFailed as exc:
            reading.fail(prefix, f"{exc.code}: {exc.aws_message}")
    found.sort(reverse=True)
    return found


def _delivered(key: str) -> datetime | None:
    """The delivery minute in a log file's name (ACCOUNT_CloudTrail_REGION_
    YYYYMMDDTHHmmZ_UNIQUE.json.gz); a file holds only records from before its next minute."""
    match = _DELIVERED.search(key)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


def _read_file(api: Api, reading: _Reading, key: str) -> None:
    """Fetch, gunzip and parse one file and hand the user's records in the window to
    `tally`; a file that cannot be had or parsed is an error for its key."""
    records = _records(api, reading, key)
    if records is None:
        return
    reading.files += 1
    untimed = 0
    for record in records:
        if not isinstance(record, Mapping):
            continue
        reading.records += 1
        if not _is_users(record, reading.user, reading.account):
            continue
        try:
            moment = event_time(record)
        except ValueError:
            untimed += 1
            continue
        if reading.start <= moment <= reading.end:
            reading.tally.add(record)
            reading.events += 1
    if untimed:
        reading.fail(key, f"{untimed} of the user's records have no eventTime")


def _records(api: Api, reading: _Reading, key: str) -> list[Any] | None:
    """The file's Records list; None (and an error for the key) when it cannot be had.
    The body is read whole: StreamingBody is outside the retry policy, so a connection
    dropped mid-body is this file's error, not a retry."""
    try:
        found = api.call(ApiCall("s3", "GetObject", {"Bucket": reading.bucket, "Key": key},
                                 counts_only=True))
    except AwsCallFailed as exc:
        reading.fail(key, f"{exc.code}: {exc.aws_message}")
        return None
    body = found["Body"]
    try:
        data = body.read()
    except (BotoCoreError, OSError) as exc:
        reading.fail(key, f"read failed: {type(exc).__name__}: {exc}")
        return None
    finally:
        body.close()
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        reading.fail(key, f"bad gzip: {exc}")
        return None
    del data
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        reading.fail(key, f"bad JSON: {exc}")
        return None
    records = parsed.get("Records") if isinstance(parsed, dict) else None
    if not isinstance(records, list):
        reading.fail(key, 'bad JSON: no "Records" list')
        return None
    return records


def _is_users(record: Mapping[str, Any], user: str, account: str) -> bool:
    """A call the IAM user `user` of `account` made as itself: by userName, or by its
    ARN (arn:PARTITION:iam::ACCOUNT:user/[PATH/]NAME) when the record has no userName.
    A role the user assumed acts under the role's policies: not the user's usage."""
    identity = record.get("userIdentity")
    if not isinstance(identity, Mapping):
        return False
    arn = identity.get("arn")
    if isinstance(arn, str):
        parts = arn.split(":", 5)
        if len(parts) == 6 and parts[2] == "iam" and parts[4] == account \
                and parts[5].startswith("user/") and parts[5].rsplit("/", 1)[1] == user:
            return True
    return identity.get("type") == "IAMUser" and identity.get("userName") == user \
        and identity.get("accountId", account) == account


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
