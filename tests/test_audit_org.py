"""`respond audit --org`: every active account of the organization audited, in parallel,
each through the responder's role; an account that cannot be reached is named with its
error, never skipped; one list ranks the organization's findings by severity."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from conftest import FAST_RETRY, REGION
from moto import mock_aws

from responder.audit import org
from responder.audit.credential_report import Finding, Settings
from responder.aws import Api, ApiCall
from responder.errors import BadInput

TEMPLATE = "arn:aws:iam::{account_id}:role/KeyResponder"
MANAGEMENT = "123456789012"  # moto's default account: the credentials' own
SETTINGS = Settings(max_age_days=200, unused_days=90)
"""120 days after the keys were made: a key never used is medium, a console without MFA
high, and no key is old enough to be high for its age."""


def _later() -> datetime:
    return datetime.now(UTC) + timedelta(days=120)


def _no_sleep(_: float) -> None:
    """Nothing waits for a report: moto's is ready at the second GenerateCredentialReport."""


@dataclass
class Wire:
    """The management account's session, counting calls and refusing some of them the way
    AWS would: botocore takes a before-call handler's answer as AWS's."""

    calls: Counter[str] = field(default_factory=Counter)
    refuse: dict[str, str] = field(default_factory=dict)
    """Operation (or `AssumeRole:ACCOUNT`) -> the error code to answer with."""

    def _params(self, params: Mapping[str, Any], model: Any, context: dict[str, Any],
                **_: Any) -> None:
        self.calls[model.name] += 1
        role = str(params.get("RoleArn", ""))
        account = role.split(":")[4] if role.count(":") >= 5 else ""
        context["refuse"] = self.refuse.get(f"{model.name}:{account}") or \
            self.refuse.get(model.name)

    @staticmethod
    def _call(context: dict[str, Any], params: Mapping[str, Any], model: Any,
              **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        code = context.get("refuse")
        if not code:
            return None
        message = (f"User: arn:aws:iam::{MANAGEMENT}:user/responder is not authorized to "
                   f"perform: {model.service_model.signing_name}:{model.name}")
        error = {"Code": code, "Message": message}
        return AWSResponse("https://aws.test", 400, HTTPHeaders(), None), {
            "Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    def hook(self, session: Any) -> None:
        session.events.register("before-parameter-build", self._params)
        session.events.register("before-call", self._call)


def _in(account_id: str) -> boto3.Session:
    """A setup session acting in `account_id` (moto serves assumed credentials there)."""
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=TEMPLATE.format(account_id=account_id),
        RoleSessionName="setup")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                         aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)


@dataclass(frozen=True)
class Org:
    api: Api
    wire: Wire
    ids: tuple[str, ...]
    """The member accounts created, sorted (the management account is not among them)."""
    closed: str


@pytest.fixture
def organization() -> Iterator[Org]:
    """An organization of four member accounts, the last one created then closed."""
    with mock_aws():
        orgs = boto3.client("organizations", region_name=REGION)
        orgs.create_organization(FeatureSet="ALL")
        made = [orgs.create_account(Email=f"m{n}@example.test", AccountName=f"member{n}")[
            "CreateAccountStatus"]["AccountId"] for n in range(4)]
        orgs.close_account(AccountId=made[3])
        wire = Wire()
        session = boto3.Session(region_name=REGION)
        wire.hook(session)
        yield Org(Api(session, FAST_RETRY), wire, tuple(sorted(made[:3])), made[3])


def test_members_are_the_active_accounts_of_every_page(organization: Org) -> None:
    found = org.members(organization.api, page_size=2)
    assert [m.account_id for m in found] == sorted([MANAGEMENT, *organization.ids])
    assert organization.closed not in {m.account_id for m in found}
    assert {m.name for m in found} == {"master", "member0", "member1", "member2"}
    assert organization.wire.calls["ListAccounts"] == 3  # 5 accounts, 2 a page


class _Listing:
    """ListAccounts answering `accounts` in one page (what an Api.call returns)."""

    def __init__(self, accounts: list[dict[str, Any]]) -> None:
        self.accounts = accounts

    def call(self, call: ApiCall, **_: Any) -> dict[str, Any]:
        assert call.operation == "ListAccounts"
        return {"Accounts": self.accounts}

    def pages(self, call: ApiCall, **_: Any) -> Iterator[dict[str, Any]]:
        yield self.call(call)


def test_members_go_by_state_when_there_is_one_else_by_status() -> None:
    listing = _Listing([
        {"Id": "111111111111", "Name": "old-style", "Status": "ACTIVE"},
        {"Id": "222222222222", "Name": "new-style", "State": "ACTIVE"},
        {"Id": "333333333333", "Name": "both", "Status": "ACTIVE", "State": "ACTIVE"},
        {"Id": "444444444444", "Name": "closed", "Status": "SUSPENDED", "State": "CLOSED"},
        {"Id": "555555555555", "Name": "activating", "Status": "ACTIVE",
         "State": "PENDING_ACTIVATION"},
        {"Id": "666666666666", "Name": "closing", "State": "PENDING_CLOSURE"},
        {"Id": "000000000001", "Name": "suspended", "Status": "SUSPENDED"},
    ])
    found = org.members(cast(Api, listing))
    assert [m.name for m in found] == ["old-style", "new-style", "both"]


@pytest.mark.parametrize(("code", "said"), [
    ("AccessDeniedException", f"only the management account {MANAGEMENT} or a delegated "
                              "administrator"),
    ("AWSOrganizationsNotInUseException", "in no organization"),
    ("TooManyRequestsException", "ListAccounts failed"),
])
def test_a_refused_listing_says_where_to_run_from(organization: Org, code: str,
                                                  said: str) -> None:
    organization.wire.refuse["ListAccounts"] = code
    with pytest.raises(BadInput, match="audit --org") as refused:
        org.members(organization.api)
    assert said in str(refused.value)
    assert "\n" not in str(refused.value)


def _populate(organization: Org) -> tuple[str, str, str]:
    """`low` (the lowest id) has a key never used (medium); `high` a console without MFA
    (high) and a key never used (medium); `refused` has a user too, never to be seen."""
    low, high, refused = organization.ids
    for account, user in ((low, "lowkey"), (high, "highkey"), (refused, "unseen")):
        iam = _in(account).client("iam")
        iam.create_user(UserName=user)
        iam.create_access_key(UserName=user)
    console = _in(high).client("iam")
    console.create_user(UserName="clicker")
    console.create_login_profile(UserName="clicker", Password="Clicker-console-1")
    return low, high, refused


def test_each_account_is_audited_in_itself_and_an_unreachable_one_is_named(
        organization: Org, tmp_path: Path) -> None:
    low, high, refused = _populate(organization)
    organization.wire.refuse[f"AssumeRole:{refused}"] = "AccessDenied"
    listed = org.members(organization.api)
    seen: list[tuple[int, int, str]] = []
    results = org.audit_org(
        listed, org.through_role(organization.api, TEMPLATE, home=MANAGEMENT), _later(),
        SETTINGS, progress=lambda done, total, last: seen.append(
            (done, total, last.account_id)),
        seen_dir=tmp_path / "seen", sleep=_no_sleep)

    assert [r.account_id for r in results] == [m.account_id for m in listed]
    by = {r.account_id: r for r in results}
    assert {f.user for f in by[low].findings} == {"lowkey"}
    assert {f.user for f in by[high].findings} == {"highkey", "clicker"}
    assert by[MANAGEMENT].findings == ()
    assert by[MANAGEMENT].error is None
    # The key ids in the fixes are the ones ListAccessKeys gives in that account.
    lowkey = _in(low).client("iam").list_access_keys(UserName="lowkey")["AccessKeyMetadata"]
    key_id = lowkey[0]["AccessKeyId"]
    assert by[low].findings[0].access_key_id == key_id
    assert key_id in by[low].findings[0].fix

    failed = by[refused]
    assert failed.findings == ()
    assert failed.error is not None
    assert failed.error.startswith("cannot assume the responder's role there (AccessDenied:")
    assert "trust the account running the audit" in failed.error
    assert "\n" not in failed.error
    # The management account is audited with its own credentials, no AssumeRole.
    assert organization.wire.calls["AssumeRole"] == 3

    assert sorted(done for done, _, _ in seen) == [1, 2, 3, 4]
    assert {total for _, total, _ in seen} == {4}
    assert sorted(a for _, _, a in seen) == sorted(by)
    assert sorted(p.name for p in (tmp_path / "seen").iterdir()) == sorted(
        f"{a}.json" for a in (MANAGEMENT, low, high))

    assert [(a, f.severity, f.user) for a, f in org.ranked(results)] == [
        (high, "high", "clicker"), (low, "medium", "lowkey"), (high, "medium", "highkey")]


def test_a_refused_credential_report_is_that_accounts_error(organization: Org) -> None:
    low, high, refused = _populate(organization)
    reach = org.through_role(organization.api, TEMPLATE)

    def api_for(account_id: str) -> Api:
        api = reach(account_id)
        if account_id == high:
            Wire(refuse={"GetCredentialReport": "AccessDenied"}).hook(api.session)
        return api

    members = [org.Member(a, a) for a in (low, high, refused)]
    results = org.audit_org(members, api_for, _later(), SETTINGS, sleep=_no_sleep)
    errors = {r.account_id: r.error for r in results}
    assert errors[low] is None
    assert errors[refused] is None
    said = errors[high]
    assert said is not None
    assert said.startswith("audit: GetCredentialReport was denied (")
    assert "need iam:GetCredentialReport" in said


def test_two_accounts_are_audited_at_the_same_time(organization: Org) -> None:
    """Each of two accounts waits, inside its worker, for the other to have started: a
    run that did one after the other would break the barrier (its timeout only stops a
    broken run from hanging)."""
    both = threading.Barrier(2, timeout=30)
    reach = org.through_role(organization.api, TEMPLATE)

    def api_for(account_id: str) -> Api:
        both.wait()
        return reach(account_id)

    members = [org.Member(a, a) for a in organization.ids[:2]]
    results = org.audit_org(members, api_for, _later(), SETTINGS, workers=2,
                            sleep=_no_sleep)
    assert [r.error for r in results] == [None, None]


def test_a_programming_error_is_not_an_accounts_error(organization: Org) -> None:
    def api_for(account_id: str) -> Api:
        raise TypeError(f"a bug, not AWS ({account_id})")

    with pytest.raises(TypeError, match="a bug"):
        org.audit_org([org.Member(organization.ids[0], "x")], api_for, _later(), SETTINGS,
                      sleep=_no_sleep)


def test_a_template_without_the_account_is_bad_input(organization: Org) -> None:
    with pytest.raises(BadInput, match="account_id"):
        org.through_role(organization.api, "arn:aws:iam::111111111111:role/KeyResponder")


def _finding(severity: str, user: str) -> Finding:
    return Finding(severity, user, "access_key_1", ("a problem",), "a fix")


def test_ranked_is_by_severity_then_account_then_user() -> None:
    results = [
        org.AccountAudit("222222222222", "b", (_finding("medium", "amy"),
                                                _finding("critical", "<root_account>")),
                         None, 0.1),
        org.AccountAudit("111111111111", "a", (_finding("high", "zed"),
                                                _finding("medium", "bob")), None, 0.1),
        org.AccountAudit("333333333333", "c", (), "cannot assume the role", 0.1),
        org.AccountAudit("000000000000", "d", (_finding("high", "ann"),), None, 0.1),
    ]
    assert [(a, f.severity, f.user) for a, f in org.ranked(results)] == [
        ("222222222222", "critical", "<root_account>"),
        ("000000000000", "high", "ann"),
        ("111111111111", "high", "zed"),
        ("111111111111", "medium", "bob"),
        ("222222222222", "medium", "amy"),
    ]
