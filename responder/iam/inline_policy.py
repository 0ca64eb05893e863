"""Reading and writing one inline policy of a user or role, the way every step that
denies something does: a missing policy reads as None, a missing principal makes the
write report False (nothing left to deny), anything else is the caller's failure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed

Kind = Literal["User", "Role"]


def compact(document: Mapping[str, Any]) -> str:
    """The document as sent: compact JSON (IAM counts its characters against a quota)."""
    return json.dumps(document, separators=(",", ":"))


def parsed(value: Any) -> Any:
    """A policy document as IAM returns it (boto3 decodes it; the journal may hold text)."""
    return json.loads(value) if isinstance(value, str) else value


def get(api: Api, kind: Kind, name: str, policy: str) -> Any:
    """The inline policy's document; None when there is none (or no such principal: the
    put that follows says which)."""
    try:
        found = api.call(ApiCall("iam", f"Get{kind}Policy",
                                 {f"{kind}Name": name, "PolicyName": policy}))
    except AwsCallFailed as exc:
        if exc.code != "NoSuchEntity":
            raise
        return None
    return parsed(found.get("PolicyDocument"))


def put(api: Api, kind: Kind, name: str, policy: str, document: Mapping[str, Any]) -> bool:
    """Write the inline policy; False when the principal no longer exists."""
    try:
        api.call(ApiCall("iam", f"Put{kind}Policy", {
            f"{kind}Name": name, "PolicyName": policy, "PolicyDocument": compact(document)},
            mutating=True))
    except AwsCallFailed as exc:
        if exc.code == "NoSuchEntity":
            return False
        raise
    return True
