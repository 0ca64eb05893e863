"""The IAM picture of the key's owner, taken right after containment for the record.

Never taken before the key is disabled: nothing may delay containment.
"""

from __future__ import annotations

import threading
from typing import Any

from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed
from responder.incident.shapes import IamSnapshot

SNAPSHOT_PERMISSIONS = (
    "iam:ListAccessKeys",
    "iam:ListUserPolicies",
    "iam:ListAttachedUserPolicies",
    "iam:ListGroupsForUser",
    "iam:ListMFADevices",
)
# AWS attaches one of these when it finds a key exposed; we record it and never detach it.
AWS_QUARANTINE_PREFIXES = ("AWSCompromisedKeyQuarantine", "AWSExposedCredentialPolicy")


def access_keys(api: Api, user_name: str) -> dict[str, str]:
    """The user's access keys and their status (Active, Inactive), by key id. A key not
    in it is gone; NoSuchEntity (the user is gone) is the caller's to read."""
    found = api.call(ApiCall("iam", "ListAccessKeys", {"UserName": user_name}))
    return {k["AccessKeyId"]: k["Status"] for k in found.get("AccessKeyMetadata", [])}


class UserKeys:
    """Each user's access keys and their status, listed once per user however many of
    them a step asks about (thread-safe: verification reads in parallel); None for a user
    that no longer exists."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self._keys: dict[str, dict[str, str] | None] = {}
        self._lock = threading.Lock()

    def of(self, user: str) -> dict[str, str] | None:
        with self._lock:
            if user not in self._keys:
                try:
                    self._keys[user] = access_keys(self._api, user)
                except AwsCallFailed as exc:
                    if exc.code != "NoSuchEntity":
                        raise
                    self._keys[user] = None
            return self._keys[user]


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def take(api: Api, user_name: str) -> IamSnapshot:
    """Keys, policies, groups and MFA of the user; a failed read is noted, not raised."""
    reads = {
        "access_keys": ("ListAccessKeys", "AccessKeyMetadata"),
        "inline_policies": ("ListUserPolicies", "PolicyNames"),
        "attached_policies": ("ListAttachedUserPolicies", "AttachedPolicies"),
        "groups": ("ListGroupsForUser", "Groups"),
        "mfa_devices": ("ListMFADevices", "MFADevices"),
    }
    lists: dict[str, tuple[Any, ...]] = {}
    errors: dict[str, str] = {}
    for field, (operation, key) in reads.items():
        try:
            page = api.call(ApiCall("iam", operation, {"UserName": user_name}))
        except AwsCallFailed as exc:
            errors[field] = f"{exc.code}: {exc.aws_message}"
            continue
        lists[field] = tuple(
            {k: _iso(v) for k, v in item.items()} if isinstance(item, dict) else item
            for item in page.get(key, [])
        )
    attached = lists.get("attached_policies")
    return IamSnapshot(
        user_name=user_name,
        access_keys=lists.get("access_keys"),
        inline_policies=lists.get("inline_policies"),
        attached_policies=attached,
        groups=tuple(g.get("GroupName") for g in lists.get("groups", ())),
        mfa_devices=lists.get("mfa_devices"),
        has_mfa=bool(lists.get("mfa_devices")),
        aws_quarantine=tuple(
            p.get("PolicyName") for p in attached or ()
            if str(p.get("PolicyName", "")).startswith(AWS_QUARANTINE_PREFIXES)),
        errors=errors or None,
    )
