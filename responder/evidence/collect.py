"""Fetch every LookupEvents page for one access key in one region, straight to disk.

Each region gets its own token bucket (the quota is per region) and its own part file,
so regions run in parallel without sharing anything but the journal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from responder.aws import Api, ApiCall
from responder.aws.ratelimit import TokenBucket
from responder.errors import AwsCallFailed

# Calls whose response hands out temporary credentials: the pivot to ASIA keys.
MINTING_EVENTS = frozenset({
    "GetSessionToken", "AssumeRole", "GetFederationToken", "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
})
PAGE_SIZE = 50


@dataclass(frozen=True)
class RegionResult:
    access_key_id: str
    region: str
    part: Path
    events: int
    pages: int
    error: str | None
    temporary_keys: frozenset[str]
    roles: frozenset[str]


def lookup_call(value: str, start: datetime, end: datetime, *, token: str | None = None,
                attribute: str = "AccessKeyId") -> ApiCall:
    """One page of LookupEvents for `attribute` = `value` (an access key's events, or with
    attribute="Username" a user's), journaled by counts only."""
    params: dict[str, Any] = {
        "LookupAttributes": [{"AttributeKey": attribute, "AttributeValue": value}],
        "StartTime": start,
        "EndTime": end,
        "MaxResults": PAGE_SIZE,
    }
    if token:
        params["NextToken"] = token
    return ApiCall("cloudtrail", "LookupEvents", params, counts_only=True)


def _pivots(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(temporary key minted, role assumed) by this event, if any."""
    if record.get("eventName") not in MINTING_EVENTS:
        return None, None
    creds = (record.get("responseElements") or {}).get("credentials") or {}
    key = creds.get("accessKeyId")
    role = (record.get("requestParameters") or {}).get("roleArn")
    temp = key if isinstance(key, str) and key.startswith("ASIA") else None
    return temp, role if isinstance(role, str) else None


def fetch_region(
    api: Api,
    region: str,
    access_key_id: str,
    *,
    window: tuple[datetime, datetime],
    bucket: TokenBucket,
    part: Path,
    parent: str | None = None,
    on_page: Callable[[int], None] | None = None,
) -> RegionResult:
    """All pages, newest first as CloudTrail returns them, one record per line."""
    events = pages = 0
    temporary: set[str] = set()
    roles: set[str] = set()
    token: str | None = None
    error: str | None = None
    with part.open("w", encoding="utf-8") as out:
        while True:
            try:
                page = api.call(lookup_call(access_key_id, *window, token=token), region=region,
                                before_attempt=bucket.acquire)
            except AwsCallFailed as exc:
                error = f"{exc.code}: {exc.aws_message}"
                break
            pages += 1
            for event in page.get("Events", []):
                record = json.loads(event["CloudTrailEvent"])
                record["lookupRegion"] = region
                if parent is not None:
                    record["pivotFrom"] = parent
                temp, role = _pivots(record)
                if temp:
                    temporary.add(temp)
                if role:
                    roles.add(role)
                out.write(json.dumps(record, sort_keys=True) + "\n")
                events += 1
            if on_page is not None:
                on_page(len(page.get("Events", [])))
            token = page.get("NextToken")
            if not token:
                break
    return RegionResult(access_key_id, region, part, events, pages, error,
                        frozenset(temporary), frozenset(roles))
