"""revoke-sessions: an inline deny on sessions issued before the incident started.

Disabling a key leaves every STS session minted with it alive for up to 36 hours. The
policy denies everything to tokens issued before the incident's start; requests signed
with a long-term key carry no aws:TokenIssueTime, so the user's other key keeps working.
The name is fixed so a retry or a later incident overwrites rather than adds a policy.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from responder import iam_snapshot
from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed
from responder.steps.base import Action, StepInput, StepResult, register
from responder.steps.results import SessionsRevoked

POLICY_NAME = "responder-revoke-older-sessions"


def cutoff_text(moment: datetime) -> str:
    """aws:TokenIssueTime's form: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deny_policy(started_at: datetime) -> dict[str, Any]:
    """The policy document; the condition time is the incident's start, to the second."""
    cutoff = cutoff_text(started_at)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ResponderRevokeOlderSessions",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
            }
        ],
    }


@register("attach_deny_policy")
class AttachDenyPolicy(Action):
    permissions = ("iam:PutUserPolicy", "iam:GetUserPolicy", *iam_snapshot.SNAPSHOT_PERMISSIONS)
    kind = "containment"
    result = SessionsRevoked

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        target = inp.require_target(self.name)
        return (
            ApiCall(
                "iam",
                "PutUserPolicy",
                {
                    "UserName": target.user_name,
                    "PolicyName": POLICY_NAME,
                    "PolicyDocument": json.dumps(deny_policy(inp.incident.started_at)),
                },
                mutating=True,
            ),
        )

    def observe(self, inp: StepInput, api: Api) -> StepResult | None:
        if not inp.revisit:
            return None
        target = inp.require_target(self.name)
        try:
            current = api.call(
                ApiCall("iam", "GetUserPolicy",
                        {"UserName": target.user_name, "PolicyName": POLICY_NAME})
            )
        except AwsCallFailed as exc:
            if exc.code == "NoSuchEntity":
                return None
            raise
        document = current.get("PolicyDocument")
        if isinstance(document, str):
            document = json.loads(document)
        if document != deny_policy(inp.incident.started_at):
            return None
        return self._result(inp, api, already=True, at=inp.acted_at("PutUserPolicy"))

    def run(self, inp: StepInput, api: Api) -> StepResult:
        (put,) = self.plan(inp)
        try:
            api.call(put)
        except AwsCallFailed as exc:
            if exc.code != "NoSuchEntity":
                raise
            # The user was deleted meanwhile: none of its sessions has a permission left.
            return StepResult("done", SessionsRevoked(
                POLICY_NAME, cutoff_text(inp.incident.started_at), user_deleted=True),
                effective_at=inp.ctx.clock())
        return self._result(inp, api, already=False, at=inp.ctx.clock())

    def _result(self, inp: StepInput, api: Api, *, already: bool,
                at: datetime | None) -> StepResult:
        target = inp.require_target(self.name)
        return StepResult(
            "done",
            SessionsRevoked(POLICY_NAME, cutoff_text(inp.incident.started_at), already,
                            iam_snapshot.take(api, target.user_name)),
            effective_at=at,
        )
