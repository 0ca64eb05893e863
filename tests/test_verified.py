"""Issue 28: "contained" only when AWS shows it, and a key of another account refused
before anything changes.

The other account is real: moto keeps one IAM per account, and a role assumed into
222222222222 creates its user and key there, as the reporter's moto server did. Its
GetAccessKeyLastUsed finds any account's key (real IAM is scoped to the caller's), which
is exactly what made the tool say "contained" for a key it never reached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from conftest import Account, Faults, iam_state

from responder import playbook
from responder.context import Options, RunContext
from responder.errors import NotVerified, Refused
from responder.incident.verification import AT_END, Verification
from responder.journal.sqlite import SqliteJournal
from responder.run import service
from responder.run.verify import PERMISSIONS
from responder.steps.deny import POLICY_NAME

CtxFactory = Callable[..., RunContext]
OTHER = "222222222222"
HERE = "123456789012"


@pytest.fixture
def make_ctx(make_ctx: CtxFactory) -> CtxFactory:
    return lambda **kw: make_ctx(**{"options": Options(replace=False), **kw})


def _other_account(user: str = "carol") -> tuple[Any, str]:
    """IAM of account 222222222222 (through a role moto maps there) and a key of `user`."""
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{OTHER}:role/admin", RoleSessionName="setup")["Credentials"]
    iam = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"],
                        region_name="us-east-1").client("iam")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    return iam, key


def _respond(ctx: RunContext, journal: SqliteJournal, key: str) -> Any:
    return service.respond(ctx, journal, playbook.load("compromised-key"), key)


@pytest.mark.parametrize("user", ["carol", "alice"])
def test_a_key_of_another_account_without_a_role_is_refused_and_left_as_it_was(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults, user: str
) -> None:
    """Case 1: exit 3, the key still Active in its account, no deny anywhere, and no
    write in this account, even to a user of the same name here (alice)."""
    other_iam, key = _other_account(user)
    before = iam_state(account.iam)
    with pytest.raises(Refused, match=f"belongs to account {OTHER}") as refusal:
        _respond(make_ctx(session_factory=faults.session_factory()), journal, key)
    assert refusal.value.exit_code == 3
    assert "nothing was changed" in str(refusal.value)
    (status,) = [k["Status"] for k in
                 other_iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]
    assert status == "Active"
    assert other_iam.list_user_policies(UserName=user)["PolicyNames"] == []
    assert iam_state(account.iam) == before
    assert "PutUserPolicy" not in faults.calls
    assert all(r.status == "refused" and r.contained_at is None for r in journal.recent())


def test_a_known_account_refuses_before_any_incident_or_write(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """When the account these credentials act in is known without a call (a role, the
    Lambda's own account), identify refuses: no incident, no write, two calls."""
    _, key = _other_account()
    ctx = make_ctx(session_factory=faults.session_factory(), home_account=HERE)
    with pytest.raises(Refused, match=f"belongs to account {OTHER}"):
        _respond(ctx, journal, key)
    assert journal.recent() == []
    assert sorted(faults.calls) == ["GetAccessKeyInfo", "GetAccessKeyLastUsed"]


def test_the_dry_run_says_the_run_would_be_refused(
    account: Account, make_ctx: CtxFactory, faults: Faults
) -> None:
    _, key = _other_account()
    before = iam_state(account.iam)
    with pytest.raises(Refused, match=r"would be refused.*belongs to account 222222222222"):
        service.plan(make_ctx(session_factory=faults.session_factory()),
                     playbook.load("compromised-key"), key)
    assert iam_state(account.iam) == before
    assert not any(op.startswith(("Update", "Put", "Create", "Delete"))
                   for op in faults.calls)


def test_a_completed_run_says_what_it_observed_and_when(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    record = _respond(make_ctx(), journal, account.leaked_key)
    assert record.status == "completed"
    seen = Verification.from_detail(journal.get(record.id).verification or {})
    assert seen.ok
    assert seen.moment == AT_END
    assert seen.at is not None
    observed = {c.subject: c.observed for c in seen.checks}
    assert observed[f"access key {account.leaked_key} of alice"] == "Inactive"
    assert observed[f"{POLICY_NAME} on user alice"] == "in place"


def test_a_key_aws_still_shows_active_is_not_called_contained(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """UpdateAccessKey answered, but ListAccessKeys still shows the key Active: the
    incident halts naming it, contained_at stays null; once AWS shows it, resume
    verifies and completes."""
    leaked = account.leaked_key

    def still_active(parsed: dict[str, Any]) -> None:
        for k in parsed.get("AccessKeyMetadata", []):
            if k["AccessKeyId"] == leaked:
                k["Status"] = "Active"

    ctx = make_ctx(session_factory=faults.session_factory())
    faults.rewrite("ListAccessKeys", still_active)
    with pytest.raises(NotVerified) as halted:
        _respond(ctx, journal, leaked)
    assert halted.value.exit_code == 1
    assert f"access key {leaked} of alice is Active, expected Inactive" in str(halted.value)
    (incident,) = journal.recent()
    assert incident.status == "halted"
    assert incident.contained_at is None
    assert (incident.verification or {}).get("ok") is False

    faults.clear()
    resumed = service.resume(ctx, journal, incident.id)
    assert resumed.status == "completed"
    assert resumed.contained_at is not None
    assert (resumed.verification or {}).get("ok") is True


def test_a_key_re_enabled_before_the_end_halts_the_run(
    account: Account, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """Someone sets the key Active again while the run collects evidence: the end of the
    run re-reads it and does not say completed."""
    def re_enable(_: dict[str, Any]) -> None:
        account.iam.update_access_key(UserName="alice", AccessKeyId=account.leaked_key,
                                      Status="Active")

    faults.rewrite("LookupEvents", re_enable)
    with pytest.raises(NotVerified, match="is Active, expected Inactive"):
        _respond(make_ctx(session_factory=faults.session_factory()), journal,
                 account.leaked_key)
    (incident,) = journal.recent()
    assert incident.status == "halted"


def test_verification_reads_are_in_the_generated_policy() -> None:
    from responder import iam_policy

    allowed = {a for s in iam_policy.document()["Statement"]
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert set(PERMISSIONS) <= allowed
