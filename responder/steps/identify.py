"""identify: who owns the key and in which account, in two read-only calls.

GetAccessKeyLastUsed names the owner without listing users (constant time whatever the
account's size); GetAccessKeyInfo names the owning account. The two are sent at once
(one round trip before UpdateAccessKey). The account these credentials act in is
compared here when it is known without a call (a role, the Lambda's own account,
credentials that carry it): a key of another account is refused before anything is
changed (DESIGN §5). When it is not known, asking would make UpdateAccessKey the fourth
call, so containment goes one step at a time instead: UpdateAccessKey cannot touch
another account's key (it answers NoSuchEntity there), and that answer, never read as
"already deleted" without proof, is where the account is asked (`same_account`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from responder.aws import Api, ApiCall
from responder.context import RunContext
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
        here = known_account(inp.ctx, api.session)
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
                owner = str(info.result()["Account"])
                here = here or caller_account(api)
                if owner != here:
                    raise other_account(key, owner, here) from exc
                raise BadInput(f"access key {key} was not found in account {here} "
                               "(deleted already?)") from exc
            account = str(info.result()["Account"])
        if here is not None and account != here:
            raise other_account(key, account, here)
        check_not_root(key, found.get("UserName"))
        last_used: dict[str, Any] = {
            k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in found.get("AccessKeyLastUsed", {}).items()
        }
        return StepResult("done", OwnerFound(found["UserName"], account, last_used))


def other_account(key: str, owner: str, here: str) -> OtherAccount:
    return OtherAccount(
        f"{key} belongs to account {owner}, but these credentials are in account {here}: "
        "nothing was changed; pass --role-arn arn:aws:iam::"
        f"{owner}:role/<responder role> (or set RESPONDER_ROLE_ARN_TEMPLATE) to act there",
        owner,
    )


def known_account(ctx: RunContext, session: Any) -> str | None:
    """The account these credentials act in, when known without asking AWS: the role the
    run acts through, the Lambda function's account, or credentials that carry their
    account (SSO, AWS_ACCOUNT_ID, `aws_account_id` in the profile)."""
    if ctx.home_account:
        return ctx.home_account
    if ctx.options.role_arn:
        return ctx.options.role_arn.split(":")[4] or None
    creds = session.get_credentials()
    account = getattr(creds, "account_id", None) if creds is not None else None
    return str(account) if account else None


def caller_account(api: Api) -> str:
    """The account these credentials act in, asked of AWS (one read)."""
    return str(api.call(ApiCall("sts", "GetCallerIdentity"))["Account"])


def same_account(inp: StepInput, api: Api) -> None:
    """Refuse (exit 3) when the key identify placed in another account is not in the one
    these credentials act in: asked only when it is not known for free, and only by a
    step that found nothing (NoSuchEntity) or before a write that identify could not
    vouch for."""
    owner = inp.target.account_id if inp.target is not None else None
    if not owner:
        return
    here = known_account(inp.ctx, api.session) or caller_account(api)
    if owner != here:
        raise other_account(inp.incident.access_key_id, owner, here)
