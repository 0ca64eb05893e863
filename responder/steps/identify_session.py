"""identify-session: whose session a leaked temporary (ASIA) key is.

IAM knows nothing of temporary keys (GetAccessKeyLastUsed answers only for long-term
ones); CloudTrail does: every event a key signs names its principal in `userIdentity`.
So: GetAccessKeyInfo names the key's account (another account goes through the same
cross-account rule as a long-term key); then LookupEvents by AccessKeyId, one page per
region, us-east-1 first (IAM and STS events land there), then each other enabled
region, stopping at the first event. CloudTrail delivers events minutes late, so when it
has none yet, what the finding or `--principal` names stands in (checked against IAM);
with neither, the key is refused, saying what was searched.

Read-only, like identify: it runs before the incident is opened, and for --dry-run.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from responder.aws import Api, ApiCall
from responder.context import SessionHint
from responder.errors import AwsCallFailed, BadInput, OtherAccount, Refused
from responder.guardrails import ROLE_SESSION_ARN, USER_ARN
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import SessionFound
from responder.logging import get_logger
from responder.steps.evidence import HOME_REGION, enabled_regions

log = get_logger("responder.identify_session")

DEFAULT_LOOKBACK_DAYS = 2
"""Temporary credentials live 36 hours at most (GetSessionToken, GetFederationToken)."""
PER_REGION = 5
MINTING_PAGES = 4
"""Pages of a region's minting events (50 each) read around the session's creation: a
busy account mints many sessions a minute, and the one we want may not be first."""
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
MINTED_WITH = {"IAMUser": "GetSessionToken", "AssumedRole": "AssumeRole",
               "FederatedUser": "GetFederationToken"}
def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def from_identity(identity: Mapping[str, Any], account: str) -> SessionFound:
    """The principal a CloudTrail userIdentity names; Refused for one no policy binds."""
    kind = str(identity.get("type") or "")
    context = _mapping(identity.get("sessionContext"))
    issuer = _mapping(context.get("sessionIssuer"))
    issued_at = _text(_mapping(context.get("attributes")).get("creationDate"))
    arn = _text(identity.get("arn"))
    if kind == "AssumedRole":
        role_id, _, session = str(identity.get("principalId") or "").partition(":")
        session = session or (arn or "").rsplit("/", 1)[-1]
        role_arn = _text(issuer.get("arn"))
        # Some records carry no sessionContext (data events, some services): the session's
        # own ARN (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION) still names the role.
        named = ROLE_SESSION_ARN.match(arn or "")
        role_name = (_text(issuer.get("userName")) or (role_arn or "").rsplit("/", 1)[-1]
                     or (named["role"] if named else ""))
        if not role_name:
            raise Refused(f"the key signs as an assumed role whose CloudTrail identity names "
                          f"no role ({arn or 'no ARN'}): pass --principal "
                          f"arn:aws:sts::{account}:assumed-role/ROLE/SESSION to say which")
        if role_arn is None and named is not None:
            role_arn = f"arn:{(arn or '').split(':')[1]}:iam::{named['account']}:role/{role_name}"
        return SessionFound(
            principal_type=kind, account_id=account, principal_arn=arn,
            role_name=role_name,
            role_arn=role_arn, role_id=_text(issuer.get("principalId")) or role_id or None,
            session_name=session or None,
            instance_id=session if INSTANCE_ID.match(session) else None, issued_at=issued_at)
    if kind == "IAMUser":
        return SessionFound(principal_type=kind, account_id=account, principal_arn=arn,
                            user_name=_text(identity.get("userName")), issued_at=issued_at)
    if kind == "FederatedUser":
        return SessionFound(principal_type=kind, account_id=account, principal_arn=arn,
                            user_name=_text(issuer.get("userName")),
                            session_name=(arn or "").rsplit("/", 1)[-1] or None,
                            issued_at=issued_at)
    if kind == "Root":
        raise Refused("the key is a session of the account's root user: root credentials "
                      "cannot be contained through IAM policies. Sign in as root, rotate "
                      "the root password and MFA, delete any root access keys, and review "
                      "CloudTrail for what the session did")
    raise Refused(f"the key signs as a {kind or 'principal of unknown type'} ({arn}), which "
                  "no IAM policy of this account binds: investigate it in the console")


@register("identify_session")
class IdentifySession(Action):
    permissions = ("sts:GetAccessKeyInfo", "sts:GetCallerIdentity", "cloudtrail:LookupEvents",
                   "ec2:DescribeRegions", "iam:GetRole", "iam:GetUser")
    kind = "identification"
    result = SessionFound
    identifies = "temporary"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"lookback_days": {"type": "integer", "minimum": 1, "maximum": 90}},
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        key = inp.incident.access_key_id
        return (
            ApiCall("sts", "GetAccessKeyInfo", {"AccessKeyId": key}),
            ApiCall("sts", "GetCallerIdentity"),
            self._lookup(key, *self._window(inp),
                         note=f"in {HOME_REGION} first, then each other enabled region until "
                         "one has an event"),
            ApiCall("ec2", "DescribeRegions", {"AllRegions": False},
                    note=f"only when {HOME_REGION} has no event for the key"),
        )

    def run(self, inp: StepInput, api: Api) -> StepResult:
        key = inp.incident.access_key_id
        account = str(api.call(ApiCall("sts", "GetAccessKeyInfo", {"AccessKeyId": key}))
                      ["Account"])
        me = api.call(ApiCall("sts", "GetCallerIdentity"))
        here = str(me["Account"])
        if account != here:
            raise OtherAccount(
                f"{key} is a session of account {account}, but these credentials are in "
                f"account {here}; pass --role-arn arn:aws:iam::{account}:role/<responder role>"
                " (or set RESPONDER_ROLE_ARN_TEMPLATE) to act there", account)
        days = int(inp.settings.get("lookback_days", DEFAULT_LOOKBACK_DAYS))
        window = self._window(inp)
        searched: list[str] = []
        failures: dict[str, AwsCallFailed] = {}
        record, region = self._first_event(api, key, window, searched, failures)
        if record is not None:
            found = from_identity(_mapping(record.get("userIdentity")), account)
            found = dataclasses.replace(
                found, regions_searched=tuple(searched), lookback_days=days,
                event={"event_id": record.get("eventID"), "event_name": record.get("eventName"),
                       "region": region, "time": record.get("eventTime")})
            found = self._minted(api, key, found, region)
        else:
            hint = inp.ctx.options.session
            if (hint is None or hint.principal_arn is None) and len(failures) == len(searched):
                raise next(iter(failures.values()))  # CloudTrail unreadable: say why
            found = dataclasses.replace(
                self._from_hint(inp, api, account, _not_found(key, account, searched, days,
                                                              failures)),
                found_by="principal" if inp.ctx.source == "cli" else "finding",
                regions_searched=tuple(searched), lookback_days=days)
        _refuse_untouchable(key, found, str(me.get("Arn") or ""))
        return StepResult("done", found)

    # -- CloudTrail ------------------------------------------------------------------

    @staticmethod
    def _window(inp: StepInput) -> tuple[datetime, datetime]:
        end = inp.incident.started_at
        days = int(inp.settings.get("lookback_days", DEFAULT_LOOKBACK_DAYS))
        return end - timedelta(days=days), end + timedelta(minutes=5)

    @staticmethod
    def _lookup(key: str, start: datetime, end: datetime, *, attribute: str = "AccessKeyId",
                note: str = "", size: int = PER_REGION, token: str | None = None) -> ApiCall:
        params: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": attribute, "AttributeValue": key}],
            "StartTime": start, "EndTime": end, "MaxResults": size}
        if token:
            params["NextToken"] = token
        return ApiCall("cloudtrail", "LookupEvents", params, note=note, counts_only=size > 5)

    def _first_event(self, api: Api, key: str, window: tuple[datetime, datetime],
                     searched: list[str], failures: dict[str, AwsCallFailed],
                     ) -> tuple[Mapping[str, Any] | None, str | None]:
        """The first event of the key, us-east-1 first: one page per region at most."""
        regions = [HOME_REGION]
        while regions:
            region = regions.pop(0)
            searched.append(region)
            try:
                page = api.call(self._lookup(key, *window), region=region)
            except AwsCallFailed as exc:
                failures[region] = exc
                page = {}
            for event in page.get("Events", []):
                record = _record(event)
                if record.get("userIdentity"):
                    return record, region
            if searched == [HOME_REGION]:
                listed, _ = enabled_regions(api)
                regions = [r for r in listed if r != HOME_REGION]
        return None, None

    def _minted(self, api: Api, key: str, found: SessionFound, region: str | None
                ) -> SessionFound:
        """Who minted the session, from its minting event when CloudTrail has it: worth
        two reads, because a user's GetSessionToken session means the user's long-term
        key is in the attacker's hands too, or was."""
        event_name = MINTED_WITH.get(found.principal_type)
        issued = _parse(found.issued_at)
        if event_name is None or issued is None or found.instance_id is not None:
            return found
        window = (issued - timedelta(minutes=10), issued + timedelta(minutes=10))
        for where in dict.fromkeys((HOME_REGION, region or HOME_REGION)):
            token: str | None = None
            for _ in range(MINTING_PAGES):
                try:
                    page = api.call(self._lookup(event_name, *window, attribute="EventName",
                                                 size=50, token=token), region=where)
                except AwsCallFailed as exc:
                    log.warning("identify_session.minting_event_unreadable", region=where,
                                error=str(exc))
                    break
                minter = _minter(page, key)
                if minter is not None:
                    return dataclasses.replace(found, minted_by=_text(minter.get("accessKeyId")),
                                               minted_by_arn=_text(minter.get("arn")))
                token = page.get("NextToken")
                if not token:
                    break
        return found

    # -- no event yet: the finding's or --principal's word -------------------------------

    def _from_hint(self, inp: StepInput, api: Api, account: str, refusal: Refused
                   ) -> SessionFound:
        """The session as the finding or --principal names it; `refusal` without either."""
        hint = inp.ctx.options.session or SessionHint()
        arn = hint.principal_arn
        if arn is None:
            raise refusal
        if (user := USER_ARN.match(arn)) is not None:
            _same_account(arn, user["account"], account)
            try:
                api.call(ApiCall("iam", "GetUser", {"UserName": user["user"]}))
            except AwsCallFailed as exc:
                if exc.code != "NoSuchEntity":
                    raise
                raise BadInput(f"user {user['user']} (of {arn}) does not exist in account "
                               f"{account}: check the name; a deleted user's sessions have "
                               "no permission left") from exc
            return SessionFound(principal_type="IAMUser", account_id=account, principal_arn=arn,
                                user_name=user["user"])
        role = ROLE_SESSION_ARN.match(arn)
        if role is None:
            raise BadInput(f"the session's principal {arn!r} is neither a role session nor "
                           "an IAM user ARN")
        _same_account(arn, role["account"], account)
        try:
            found = api.call(ApiCall("iam", "GetRole", {"RoleName": role["role"]}))["Role"]
        except AwsCallFailed as exc:
            if exc.code != "NoSuchEntity":
                raise
            raise BadInput(f"role {role['role']} (of {arn}) does not exist in account "
                           f"{account}: its sessions have no permission left") from exc
        session = role["session"]
        return SessionFound(
            principal_type="AssumedRole", account_id=account, principal_arn=arn,
            role_name=role["role"], role_arn=str(found["Arn"]), role_id=str(found["RoleId"]),
            session_name=session,
            instance_id=hint.instance_id or (session if INSTANCE_ID.match(session) else None))


def _not_found(key: str, account: str, searched: list[str], days: int,
               failures: Mapping[str, AwsCallFailed]) -> Refused:
    unread = f" (unreadable: {', '.join(sorted(failures))})" if failures else ""
    return Refused(
        f"{key} is a temporary key CloudTrail has no event for: LookupEvents by AccessKeyId "
        f"found nothing in {len(searched)} regions ({', '.join(searched)}){unread} over the "
        f"last {days} days, so its session is unknown and nothing was changed. CloudTrail "
        "delivers events minutes late (often 5 to 15): try again in a few minutes, or name "
        f"the session with --principal arn:aws:sts::{account}:assumed-role/ROLE/SESSION (a "
        f"user's session: arn:aws:iam::{account}:user/NAME); a key of another account needs "
        "--role-arn")


def _same_account(arn: str, named: str, account: str) -> None:
    if named != account:
        raise BadInput(f"{arn} is in account {named}, but the key belongs to account {account}")


def _refuse_untouchable(key: str, found: SessionFound, own_arn: str) -> None:
    """The responder's own role or user, and service-linked roles, are never touched."""
    if found.role_arn and "/aws-service-role/" in found.role_arn:
        raise Refused(f"{key} is a session of service-linked role {found.role_arn}, whose "
                      "policies AWS owns and no one may change: its sessions end when they "
                      "expire; find how the credentials left the service")
    mine = ROLE_SESSION_ARN.match(own_arn)
    if mine is not None and found.role_name == mine["role"]:
        raise Refused(f"{key} is a session of role {found.role_name}, the role this responder "
                      "itself runs as: denying its sessions could stop this response halfway. "
                      "Run `respond` with other credentials and try again")
    user = USER_ARN.match(own_arn)
    if user is not None and found.user_name == user["user"]:
        raise Refused(f"{key} is a session of user {found.user_name}, the user this responder "
                      "itself runs as. Run `respond` with other credentials and try again")


def _minter(page: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """The userIdentity of the event on `page` whose response handed out `key`."""
    for event in page.get("Events", []):
        record = _record(event)
        credentials = _mapping(_mapping(record.get("responseElements")).get("credentials"))
        if credentials.get("accessKeyId") == key:
            return _mapping(record.get("userIdentity"))
    return None


def _record(event: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        record = json.loads(str(event.get("CloudTrailEvent") or "{}"))
    except ValueError:
        return {}
    return record if isinstance(record, Mapping) else {}


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


