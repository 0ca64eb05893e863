"""disable-key: UpdateAccessKey Status=Inactive for exactly this key, nothing else."""

from __future__ import annotations

from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import KeyDisabled
from responder.steps.identify import same_account


@register("disable_access_key")
class DisableAccessKey(Action):
    permissions = ("iam:UpdateAccessKey", "iam:ListAccessKeys", "sts:GetCallerIdentity")
    kind = "containment"
    result = KeyDisabled

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        user = inp.require_user(self.name)
        return (
            ApiCall(
                "iam",
                "UpdateAccessKey",
                {
                    "UserName": user,
                    "AccessKeyId": inp.incident.access_key_id,
                    "Status": "Inactive",
                },
                mutating=True,
            ),
        )

    def observe(self, inp: StepInput, api: Api) -> StepResult | None:
        # Only on a revisit: on a first run UpdateAccessKey is itself idempotent and an
        # extra ListAccessKeys would delay containment (DESIGN §3: ≤ 2 calls before it).
        if not inp.revisit:
            return None
        user = inp.require_user(self.name)
        keys = api.call(ApiCall("iam", "ListAccessKeys", {"UserName": user}))
        mine = [k for k in keys.get("AccessKeyMetadata", [])
                if k["AccessKeyId"] == inp.incident.access_key_id]
        if not mine:
            same_account(inp, api)  # not found here is "deleted" only in the key's account
            return StepResult("done", KeyDisabled("Deleted", already=True))
        if mine[0]["Status"] == "Inactive":
            return StepResult("done", KeyDisabled("Inactive", already=True),
                              effective_at=inp.acted_at("UpdateAccessKey"))
        return None

    def _gone(self, inp: StepInput, api: Api) -> bool:
        """Whether the key really no longer exists (NoSuchEntity alone could also be a
        wrong user name): the user's keys are listed to be sure."""
        user = inp.require_user(self.name)
        try:
            keys = api.call(ApiCall("iam", "ListAccessKeys", {"UserName": user}))
        except AwsCallFailed as exc:
            return exc.code == "NoSuchEntity"  # the user is gone, and its keys with it
        return all(k["AccessKeyId"] != inp.incident.access_key_id
                   for k in keys.get("AccessKeyMetadata", []))

    def run(self, inp: StepInput, api: Api) -> StepResult:
        (update,) = self.plan(inp)
        # When the key was disabled: when the request left (AWS applies it within the
        # round trip; revoke-sessions' margin counts from this same moment).
        sent_at = inp.pair_at or inp.ctx.clock()
        try:
            api.call(update)
        except AwsCallFailed as exc:
            if exc.code != "NoSuchEntity":
                raise
            # NoSuchEntity is also what a key of another account answers: "deleted" only
            # once the key is known to belong here, and proven absent.
            same_account(inp, api)
            if not self._gone(inp, api):
                raise
            # The key (or its user) was deleted meanwhile: it can sign nothing any more,
            # which is what this step is for. Recorded, and the incident goes on.
            return StepResult("done", KeyDisabled("Deleted", already=True),
                              effective_at=inp.ctx.clock())
        return StepResult("done", KeyDisabled("Inactive", already=False), effective_at=sent_at)
