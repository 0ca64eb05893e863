"""When the commands that take the user's other grants away may be offered: only once the
proposal has been in place through a grace period, with no call by the user denied and
none the proposal would deny, mirroring the rotation's grace period.

`--apply` only adds (hardening/apply.py): the proposal is attached next to what the user
already holds, so while the old grants stay nothing breaks, and nothing shows whether the
proposal alone would be enough either. The history since it was put in place shows that:
every call the user made since is evaluated against the proposal as it is in IAM
(prove.py), and any call IAM refused the user since (CloudTrail errorCode AccessDenied)
is a sign something was already taken away. A detach offered earlier would be a bet on
a history that can miss the job that runs once a month.

"In place since" is when the proposal's current version was made (IAM keeps no attach
time): `--apply` attaches it in the same run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from responder.aws import Api, ApiCall
from responder.context import iso
from responder.errors import AwsCallFailed
from responder.hardening.apply import proposed_arn
from responder.hardening.policy import parse_document
from responder.hardening.prove import prove
from responder.hardening.reads import default_version
from responder.hardening.usage import Usage
from responder.incident.facts_hardening import GracePeriod

GRACE_DAYS = 14
"""The default: two weeks of the applications' ordinary work under the proposal."""


@dataclass(frozen=True)
class InPlace:
    """The proposal as IAM holds it for the user."""

    arn: str
    since: datetime
    document: Mapping[str, Any]
    attached: bool


def in_place(api: Api, user: str, account: str, partition: str = "aws") -> InPlace | None:
    """The user's `responder-proposed-USER` policy, its current version and whether it is
    attached; None when it does not exist (never applied)."""
    arn = proposed_arn(user, account, partition)
    try:
        version = default_version(api, arn)
    except AwsCallFailed as exc:
        if exc.code != "NoSuchEntity":
            raise
        return None
    attached = api.call(ApiCall("iam", "ListAttachedUserPolicies", {"UserName": user}))
    return InPlace(arn, version["CreateDate"], parse_document(version["Document"]),
                   any(p["PolicyArn"] == arn for p in attached.get("AttachedPolicies", [])))


def judge(user: str, found: InPlace | None, now: datetime, grace_days: int, *,
          denied: Mapping[str, tuple[int, datetime]], since_usages: Sequence[Usage]
          ) -> GracePeriod:
    """Whether the finishing commands may be offered now, and the one line that says
    why or why not. `denied`: the user's refused calls since the proposal was put in
    place; `since_usages`: what the user did since, to evaluate against it."""
    if found is None or not found.attached:
        what = "not applied" if found is None else "not attached to the user"
        return GracePeriod(grace_days=grace_days, reason=(
            f"the proposal is {what}: `respond harden {user} --apply --yes` puts it next to "
            f"what {user} holds; taking the rest away is offered {grace_days} days later if "
            "nothing is denied meanwhile"))
    days = (now - found.since).total_seconds() / 86400
    ends = iso(found.since + timedelta(days=grace_days))
    proof = prove(found.document, since_usages)
    would_deny = tuple(u.call for u in proof.unproven)
    refused = tuple(f"{name}: {count} times, last {iso(last)}"
                    for name, (count, last) in sorted(denied.items()))
    base = GracePeriod(in_place_since=iso(found.since), days_in_place=round(days, 1),
                       grace_days=grace_days, ends_at=ends, denied=refused,
                       would_deny=would_deny, checked=proof.checked)
    if refused or would_deny:
        return replace(base, ready=False, reason=(
            f"{len(refused)} kinds of call denied to {user} and {len(would_deny)} the "
            f"proposal would deny since {iso(found.since)}: run `respond harden {user} "
            "--apply --yes` again to add them, and the grace period starts again"))
    if days < grace_days:
        return replace(base, ready=False, reason=(
            f"in place since {iso(found.since)} ({days:.1f} of {grace_days} days), nothing "
            f"denied so far: taking the rest away is offered from {ends}"))
    return replace(base, ready=True, reason=(
        f"in place since {iso(found.since)} ({days:.1f} days), {proof.checked} calls of "
        f"{user}'s since allowed by it and none denied: what {user} holds besides it can go"))
