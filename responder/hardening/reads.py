"""What a hardening proposal is built from, read from AWS: the user's console and MFA
state, and every policy that grants the user something (its CloudTrail history is
history.py's).

Per-user list and get calls rather than GetAccountAuthorizationDetails: that one call
returns every user, role and policy of the account, megabytes on a big account, to learn
about one user. Read only; nothing here changes AWS.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed
from responder.hardening.history import History
from responder.hardening.policy import Grant

READ_PERMISSIONS = (
    "iam:GetLoginProfile", "iam:ListMFADevices", "iam:ListUserPolicies", "iam:GetUserPolicy",
    "iam:ListAttachedUserPolicies", "iam:GetPolicy", "iam:GetPolicyVersion",
    "iam:ListGroupsForUser", "iam:ListGroupPolicies", "iam:GetGroupPolicy",
    "iam:ListAttachedGroupPolicies", "cloudtrail:LookupEvents",
)
__all__ = ["READ_PERMISSIONS", "Held", "History", "MfaState", "default_version", "grants",
           "managed_document", "mfa_state"]
OURS = "responder-"
"""Policies this tool writes (the session deny, the proposal, the MFA policy): not the
user's grants to judge."""


@dataclass(frozen=True)
class MfaState:
    console: bool
    """The user has a console password (a login profile)."""
    mfa_device: bool


def mfa_state(api: Api, user: str) -> MfaState:
    try:
        api.call(ApiCall("iam", "GetLoginProfile", {"UserName": user}))
        console = True
    except AwsCallFailed as exc:
        if exc.code != "NoSuchEntity":
            raise
        console = False
    devices = api.call(ApiCall("iam", "ListMFADevices", {"UserName": user}))
    return MfaState(console, bool(devices.get("MFADevices")))


def _pages(api: Api, operation: str, params: dict[str, Any], key: str) -> Iterator[Any]:
    marker: str | None = None
    while True:
        page = api.call(ApiCall("iam", operation, {**params, **({"Marker": marker}
                                                                 if marker else {})}))
        yield from page.get(key, [])
        if not page.get("IsTruncated"):
            return
        marker = page.get("Marker")


def default_version(api: Api, arn: str) -> Mapping[str, Any]:
    """A managed policy's default version as IAM returns it (VersionId, Document,
    CreateDate); AwsCallFailed NoSuchEntity when the policy does not exist."""
    policy = api.call(ApiCall("iam", "GetPolicy", {"PolicyArn": arn}))["Policy"]
    version: Mapping[str, Any] = api.call(ApiCall("iam", "GetPolicyVersion", {
        "PolicyArn": arn, "VersionId": policy["DefaultVersionId"]}))["PolicyVersion"]
    return version


def managed_document(api: Api, arn: str) -> tuple[str, Any]:
    """A managed policy's default version: (version id, document)."""
    version = default_version(api, arn)
    return str(version["VersionId"]), version["Document"]


@dataclass(frozen=True)
class Held:
    """A grant and how the user holds it, for the commands that would take it away."""

    grant: Grant
    arn: str | None = None
    """A managed policy's ARN."""
    group: str | None = None


def grants(api: Api, user: str) -> tuple[Held, ...]:
    """Every policy granting `user` something: inline, attached, and through groups."""
    found: list[Held] = []
    for name in _pages(api, "ListUserPolicies", {"UserName": user}, "PolicyNames"):
        if not str(name).startswith(OURS):
            got = api.call(ApiCall("iam", "GetUserPolicy", {"UserName": user,
                                                            "PolicyName": name}))
            found.append(Held(Grant(name, "inline", got["PolicyDocument"])))
    for attached in _pages(api, "ListAttachedUserPolicies", {"UserName": user},
                           "AttachedPolicies"):
        arn, name = attached["PolicyArn"], attached["PolicyName"]
        if not str(name).startswith(OURS):
            found.append(Held(Grant(name, "attached", managed_document(api, arn)[1]), arn))
    for group in _pages(api, "ListGroupsForUser", {"UserName": user}, "Groups"):
        gname = group["GroupName"]
        for policy in _pages(api, "ListGroupPolicies", {"GroupName": gname}, "PolicyNames"):
            got = api.call(ApiCall("iam", "GetGroupPolicy", {"GroupName": gname,
                                                             "PolicyName": policy}))
            found.append(Held(Grant(policy, f"group:{gname}", got["PolicyDocument"]),
                              group=gname))
        for attached in _pages(api, "ListAttachedGroupPolicies", {"GroupName": gname},
                               "AttachedPolicies"):
            arn = attached["PolicyArn"]
            found.append(Held(Grant(attached["PolicyName"], f"group:{gname} attached",
                                    managed_document(api, arn)[1]), arn, gname))
    return tuple(found)
