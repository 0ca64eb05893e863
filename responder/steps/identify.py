"""identify: who owns the key and in which account, in two read-only calls.

GetAccessKeyLastUsed names the owner without listing users (constant time whatever the
account's size); GetAccessKeyInfo names the owning account. The two are sent at once
(one round trip before UpdateAccessKey). Only when the key is not found do we spend a
third call, to say whether it lives in another account.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn

from responder.aws import Api, ApiCall
from responder.errors import AwsCallFailed, BadInput, OtherAccount
from responder.guardrails import check_not_root
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import OwnerFound


@register("identify")
class Identify(Action):
    permissions = ("iam:GetAccessKeyLastUsed", "sts:GetAccessKeyInfo", "sts:GetCallerIdentity")
    kind = "identification"
    result = OwnerFound
    identifies = "long-term"

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        key = inp.incident.access_key_id
        return (
            ApiCall("iam", "GetAccessKeyLastUsed", {"AccessKeyId": key}),
            ApiCall("sts", "GetAccessKeyInfo", {"AccessKeyId": key}),
        )

    def run(self, inp: StepInput, api: Api) -> StepResult:
        last_used_call, info_call = self.plan(inp)
        key = inp.incident.access_key_id
        api.client("iam")
        # The two reads are independent: one round trip before UpdateAccessKey, not two;
        # and the STS client is built while the IAM call is on the wire.
        with ThreadPoolExecutor(max_workers=1) as pool:
            info = pool.submit(api.call, info_call)
            try:
                found = api.call(last_used_call)
            except AwsCallFailed as exc:
                if exc.code != "NoSuchEntity":
                    raise
                self._explain_not_found(key, api, str(info.result()["Account"]))
            account = str(info.result()["Account"])
        check_not_root(key, found.get("UserName"))
        last_used: dict[str, Any] = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in found.get("AccessKeyLastUsed", {}).items()
        }
        return StepResult("done", OwnerFound(found["UserName"], account, last_used))

    @staticmethod
    def _explain_not_found(key: str, api: Api, owner: str) -> NoReturn:
        here = str(api.call(ApiCall("sts", "GetCallerIdentity"))["Account"])
        if owner != here:
            raise OtherAccount(
                f"{key} belongs to account {owner}, but these credentials are in account "
                f"{here}; pass --role-arn arn:aws:iam::{owner}:role/<responder role> (or set "
                "RESPONDER_ROLE_ARN_TEMPLATE) to act there",
                owner,
            )
        raise BadInput(f"access key {key} was not found in account {here} (deleted already?)")
