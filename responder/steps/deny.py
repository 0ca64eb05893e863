"""revoke-sessions: an inline deny on the sessions the key could have minted.

Disabling a key leaves every STS session minted with it alive for up to 36 hours, and
the disabling itself takes a while to reach every IAM endpoint: a session minted in that
window would outlive the response. So the policy denies everything to tokens issued
before the moment the key was disabled plus a propagation margin (the playbook's
`propagation_margin_seconds`, default 300), rounded up to the second. Requests signed
with a long-term key carry no aws:TokenIssueTime, so the user's other key keeps working;
the user's own sessions from before the cutoff must be minted again after it.

The cutoff is decided once: the disabling moment is journaled by disable-key, and once
the policy was sent its document is in this step's journaled call, which resume and
observe read back instead of recomputing. The name is fixed so a retry or a later
incident overwrites rather than adds a policy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from responder.aws import Api, ApiCall
from responder.context import parse_iso
from responder.errors import AwsCallFailed
from responder.iam import snapshot as iam_snapshot
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import KeyDisabled, SessionsRevoked
from responder.steps.identify import same_account

POLICY_NAME = "responder-revoke-older-sessions"
DEFAULT_MARGIN_SECONDS = 300


def cutoff_text(moment: datetime) -> str:
    """aws:TokenIssueTime's form: UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deny_policy(cutoff: datetime) -> dict[str, Any]:
    """The policy document: deny everything to tokens issued before `cutoff`."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ResponderRevokeOlderSessions",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff_text(cutoff)}},
            }
        ],
    }


def policy_cutoff(document: Any) -> datetime | None:
    """The cutoff a deny policy document (text or parsed) names, if it is ours."""
    try:
        parsed = json.loads(document) if isinstance(document, str) else document
        text = parsed["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return parse_iso(text) if isinstance(text, str) else None


def sent_cutoff(inp: StepInput) -> datetime | None:
    """The cutoff of the policy this step already sent, as its journaled call holds it:
    decided once, never recomputed on a resume."""
    for call in reversed(inp.history):
        if call.operation == "PutUserPolicy" and call.outcome in {"ok", "sending"}:
            sent = policy_cutoff(call.params.get("PolicyDocument"))
            if sent is not None:
                return sent
    return None


def round_up(moment: datetime) -> datetime:
    """To the next whole second: aws:TokenIssueTime is compared to the second."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def cutoff_for(inp: StepInput) -> datetime:
    """The journaled cutoff if this step already sent its policy, else the moment the
    key was disabled plus the margin: the moment the pair began when sent at once with
    disable-key, else as disable-key journaled it (before any incident: the start)."""
    sent = sent_cutoff(inp)
    if sent is not None:
        return sent
    disabled_at = inp.pair_at or inp.incident.started_at
    if inp.pair_at is None and inp.view is not None and (
            step := inp.view.step_for(KeyDisabled)) is not None:
        disabled_at = step.effective_at or step.ended_at or inp.ctx.clock()
    margin = int(inp.settings.get("propagation_margin_seconds", DEFAULT_MARGIN_SECONDS))
    return round_up(disabled_at + timedelta(seconds=margin))


@register("attach_deny_policy")
class AttachDenyPolicy(Action):
    permissions = ("iam:PutUserPolicy", "iam:GetUserPolicy", "sts:GetCallerIdentity",
                   *iam_snapshot.SNAPSHOT_PERMISSIONS)
    kind = "containment"
    alongside = True
    result = SessionsRevoked
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "propagation_margin_seconds": {"type": "integer", "minimum": 0, "maximum": 3600},
        },
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        user = inp.require_user(self.name)
        margin = int(inp.settings.get("propagation_margin_seconds", DEFAULT_MARGIN_SECONDS))
        return (
            ApiCall(
                "iam",
                "PutUserPolicy",
                {
                    "UserName": user,
                    "PolicyName": POLICY_NAME,
                    "PolicyDocument": json.dumps(deny_policy(cutoff_for(inp))),
                },
                mutating=True,
                note=f"the cutoff is when the key is disabled plus {margin} s",
            ),
        )

    def observe(self, inp: StepInput, api: Api) -> StepResult | None:
        if not inp.revisit:
            return None
        user = inp.require_user(self.name)
        try:
            current = api.call(
                ApiCall("iam", "GetUserPolicy",
                        {"UserName": user, "PolicyName": POLICY_NAME})
            )
        except AwsCallFailed as exc:
            if exc.code == "NoSuchEntity":
                return None
            raise
        document = current.get("PolicyDocument")
        if isinstance(document, str):
            document = json.loads(document)
        cutoff = cutoff_for(inp)
        if document != deny_policy(cutoff):
            return None
        return self._result(inp, api, cutoff, already=True, at=inp.acted_at("PutUserPolicy"))

    def run(self, inp: StepInput, api: Api) -> StepResult:
        (put,) = self.plan(inp)
        cutoff = policy_cutoff(put.params["PolicyDocument"]) or cutoff_for(inp)
        try:
            api.call(put)
        except AwsCallFailed as exc:
            if exc.code != "NoSuchEntity":
                raise
            same_account(inp, api)  # another account's user is not "deleted"
            # The user was deleted meanwhile: none of its sessions has a permission left.
            return StepResult("done", SessionsRevoked(
                POLICY_NAME, cutoff_text(cutoff), user_deleted=True),
                effective_at=inp.ctx.clock())
        return self._result(inp, api, cutoff, already=False, at=inp.ctx.clock())

    def _result(self, inp: StepInput, api: Api, cutoff: datetime, *, already: bool,
                at: datetime | None) -> StepResult:
        user = inp.require_user(self.name)
        return StepResult(
            "done",
            SessionsRevoked(POLICY_NAME, cutoff_text(cutoff), already,
                            iam_snapshot.take(api, user)),
            effective_at=at,
        )
