"""What every drill's response must show, whatever the attack: the key contained, the
sessions' cutoff after it, the evidence complete, a working replacement, the humans told.
Each check reads AWS (moto) itself, not only what the responder says it did."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from responder.attacker.rules import read_events
from responder.context import iso, parse_iso
from responder.drill.world import REGION, World
from responder.incident.facts import KeyDisabled
from responder.incident.view import IncidentView
from responder.steps.deny import POLICY_NAME, deny_policy


@dataclass(frozen=True)
class Check:
    """One PASS/FAIL line of a drill, with what was seen."""

    name: str
    passed: bool
    detail: str = ""


def key_status(iam: Any, user: str, key: str) -> str:
    """Active, Inactive, or Deleted when the user no longer has it."""
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return next((k["Status"] for k in keys if k["AccessKeyId"] == key), "Deleted")


def common(session: boto3.Session, world: World, view: IncidentView,
           attacker: list[dict[str, Any]]) -> list[Check]:
    """The checks every response passes: a leaked session's (the session denied) or a
    leaked key's (disabled, sessions cut off, replaced)."""
    both = [Check("incident completed", view.status == "completed", view.status),
            _notification(session, world, view), _evidence(view, attacker)]
    if view.session is not None:
        denied = view.session_denied
        return [*both, Check("the leaked session denied", denied is not None,
                             denied.policy_name if denied else "")]
    iam = session.client("iam")
    disabled = view.key_disabled
    leaked = key_status(iam, world.victim, world.leaked_key)
    return [
        *both,
        Check("leaked key disabled (then deleted to make room for the new one)",
              leaked in {"Inactive", "Deleted"} and disabled is not None
              and disabled.status == "Inactive", leaked),
        _cutoff(iam, world, view),
        _replacement(session, view),
    ]


def bystanders(session: boto3.Session, world: World) -> Check:
    iam = session.client("iam")
    untouched = all(k["Status"] == "Active" for user in world.bystanders
                    for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"])
    return Check("other users' keys untouched", untouched)


def _cutoff(iam: Any, world: World, view: IncidentView) -> Check:
    """The deny policy is attached, and its cutoff falls after the key was disabled (plus
    the propagation margin), so a session minted while the disabling spread dies too."""
    name = "deny policy attached, cutoff after the key was disabled"
    revoked = view.sessions_revoked
    disabled = view.step_for(KeyDisabled)
    cutoff = parse_iso(revoked.token_issue_time_before) if revoked else None
    disabled_at = disabled.effective_at if disabled else None
    if cutoff is None or disabled_at is None:
        return Check(name, False, "containment not recorded")
    try:
        document = iam.get_user_policy(UserName=world.victim,
                                       PolicyName=POLICY_NAME)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return Check(name, False, "policy missing")
    if isinstance(document, str):
        document = json.loads(document)
    return Check(name, document == deny_policy(cutoff) and cutoff > disabled_at,
                 f"cutoff {iso(cutoff)}, key disabled {iso(disabled_at)}")


def _replacement(session: boto3.Session, view: IncidentView) -> Check:
    """The new key is Active, its secret is in Secrets Manager, and it works."""
    name = "replacement key stored in Secrets Manager and working"
    replacement = view.replacement
    target = view.target
    if replacement is None or not replacement.secret_ref or target is None:
        return Check(name, False, "no replacement issued")
    stored = json.loads(session.client("secretsmanager").get_secret_value(
        SecretId=replacement.secret_ref)["SecretString"])
    who = boto3.Session(aws_access_key_id=stored["AccessKeyId"],
                        aws_secret_access_key=stored["SecretAccessKey"],
                        region_name=REGION).client("sts").get_caller_identity()
    keys: Mapping[str, str] = {
        k["AccessKeyId"]: k["Status"] for k in session.client("iam").list_access_keys(
            UserName=str(target.user_name))["AccessKeyMetadata"]}
    ok = (stored["AccessKeyId"] == replacement.access_key_id
          and keys.get(str(replacement.access_key_id)) == "Active"
          and who["Account"] == target.account_id)
    return Check(name, ok, str(replacement.access_key_id))


def _notification(session: boto3.Session, world: World, view: IncidentView) -> Check:
    """The on-call inbox subscribed to the topic received this incident's notice."""
    messages = session.client("sqs").receive_message(
        QueueUrl=world.inbox_url, MaxNumberOfMessages=10).get("Messages", [])
    ok = any(view.id in m["Body"] for m in messages)
    return Check("notification delivered to the on-call topic", ok,
                 f"{len(messages)} message(s) in the inbox")


def _evidence(view: IncidentView, attacker: list[dict[str, Any]]) -> Check:
    """Every attacker event, the ones made with its sessions included, is in the
    evidence file."""
    name = "attacker's events (and its sessions') in the evidence"
    evidence = view.evidence
    if evidence is None or not evidence.path:
        return Check(name, False, "no evidence collected")
    found = {event.get("eventID") for event in read_events(Path(evidence.path))}
    missing = [a["action"] for a in attacker if a["event_id"] not in found]
    return Check(name, not missing, f"{len(attacker) - len(missing)}/{len(attacker)} found"
                 + (f"; missing {missing}" if missing else ""))
