"""`respond harden --apply --yes`: put the proposal in place next to what the user has,
and say what a human runs to finish the switch.

Only additions: a customer managed policy `responder-proposed-<user>` attached to the
user, and the MFA policy inline where it was proposed. Nothing the user already holds is
detached or deleted (the proposal is drawn from history, and history can miss the job
that runs once a quarter); the commands that would do so are printed instead. Every
change is observed first, so running it again changes nothing: the same document is no
new policy version, an attached policy is not attached twice.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed
from responder.hardening.policy import MFA_POLICY_NAME, parse_document
from responder.hardening.reads import Held, managed_document
from responder.incident.shapes import AppliedPolicy

APPLY_PERMISSIONS = (
    "iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:ListPolicyVersions",
    "iam:DeletePolicyVersion", "iam:AttachUserPolicy", "iam:PutUserPolicy",
)
MAX_POLICY_VERSIONS = 5
"""IAM keeps at most five versions of a managed policy."""


def proposed_name(user: str) -> str:
    return f"responder-proposed-{user}"


def proposed_arn(user: str, account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:policy/{proposed_name(user)}"


def _same(a: Any, b: Any) -> bool:
    return json.dumps(parse_document(a), sort_keys=True) == json.dumps(parse_document(b),
                                                                       sort_keys=True)


def _compact(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def _managed(api: Api, arn: str, name: str, user: str, document: Mapping[str, Any]
             ) -> tuple[str, str]:
    """(what was done, default version) for the proposal's managed policy."""
    try:
        version, current = managed_document(api, arn)
    except AwsCallFailed as exc:
        if exc.code != "NoSuchEntity":
            raise
        made = api.call(ApiCall("iam", "CreatePolicy", {
            "PolicyName": name, "PolicyDocument": _compact(document),
            "Description": f"Least privilege for {user}, drawn from CloudTrail by "
                           "aws-key-responder"}, mutating=True))
        return "created", str(made["Policy"]["DefaultVersionId"])
    if _same(current, document):
        return "unchanged", version
    versions = api.call(ApiCall("iam", "ListPolicyVersions", {"PolicyArn": arn}))["Versions"]
    if len(versions) >= MAX_POLICY_VERSIONS:
        oldest = min((v for v in versions if not v["IsDefaultVersion"]),
                     key=lambda v: v["CreateDate"])
        api.call(ApiCall("iam", "DeletePolicyVersion", {
            "PolicyArn": arn, "VersionId": oldest["VersionId"]}, mutating=True))
    made = api.call(ApiCall("iam", "CreatePolicyVersion", {
        "PolicyArn": arn, "PolicyDocument": _compact(document), "SetAsDefault": True},
        mutating=True))
    return "updated", str(made["PolicyVersion"]["VersionId"])


def apply(api: Api, user: str, account: str, document: Mapping[str, Any], *,
          mfa_document: Mapping[str, Any] | None, partition: str = "aws") -> AppliedPolicy:
    name, arn = proposed_name(user), proposed_arn(user, account, partition)
    done, version = _managed(api, arn, name, user, document)
    attached = api.call(ApiCall("iam", "ListAttachedUserPolicies", {"UserName": user}))
    already = any(p["PolicyArn"] == arn for p in attached.get("AttachedPolicies", []))
    if not already:
        api.call(ApiCall("iam", "AttachUserPolicy", {"UserName": user, "PolicyArn": arn},
                         mutating=True))
    mfa = "not proposed"
    if mfa_document is not None:
        try:
            current = api.call(ApiCall("iam", "GetUserPolicy", {
                "UserName": user, "PolicyName": MFA_POLICY_NAME}))["PolicyDocument"]
        except AwsCallFailed as exc:
            if exc.code != "NoSuchEntity":
                raise
            current = None
        mfa = "unchanged" if current is not None and _same(current, mfa_document) else "put"
        if mfa == "put":
            api.call(ApiCall("iam", "PutUserPolicy", {
                "UserName": user, "PolicyName": MFA_POLICY_NAME,
                "PolicyDocument": _compact(mfa_document)}, mutating=True))
    return AppliedPolicy(arn, done, version, not already, mfa)


def finish_commands(user: str, held: Sequence[Held]) -> tuple[str, ...]:
    """What a human runs, once the applications work under the proposal, to take away
    what the user holds besides it (never run by this tool)."""
    commands: list[str] = []
    for h in held:
        if h.group is not None:
            words = ["remove-user-from-group", "--user-name", user, "--group-name", h.group]
        elif h.arn is not None:
            words = ["detach-user-policy", "--user-name", user, "--policy-arn", h.arn]
        else:
            words = ["delete-user-policy", "--user-name", user, "--policy-name",
                     h.grant.policy]
        line = shlex.join(["aws", "iam", *words])  # pastes as printed, whatever the names
        if line not in commands:
            commands.append(line)
    return tuple(commands)
