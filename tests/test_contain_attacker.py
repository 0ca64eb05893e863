"""contain-attacker against moto and the CloudTrail fake: what the attacker created or
opened with the key and its sessions is shut, exactly that, and nothing is deleted."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from conftest import FAST_RETRY, REGION, Account, Faults, iam_state, make_account
from moto import mock_aws

from responder.attacker.rules import analyse
from responder.aws import Api
from responder.context import RunContext
from responder.drill.cloudtrail import CloudTrailFake
from responder.incident.action import StepInput
from responder.incident.facts import AttackerContained, Incident
from responder.incident.shapes import QuarantinedPrincipal, RevokedSession
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.playbook import Playbook
from responder.run import service
from responder.steps.attacker import QUARANTINE_POLICY, REVOKE_POLICY, ContainAttacker

CtxFactory = Callable[..., RunContext]
ACCOUNT_ID = "123456789012"
ASIA = "ASIAATTACKERSESSION1"
DENY_ALL = {"Version": "2012-10-17", "Statement": [{
    "Sid": "ResponderQuarantine", "Effect": "Deny", "Action": "*", "Resource": "*"}]}


@dataclass
class ErrorTrail(CloudTrailFake):
    """The CloudTrail fake, with an errorCode set on chosen events (a refused call)."""

    errors: dict[str, str] = field(default_factory=dict)

    def lookup(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        result = super().lookup(region, request)
        for event in result["Events"]:
            if event["EventId"] in self.errors:
                record = json.loads(event["CloudTrailEvent"])
                record["errorCode"] = self.errors[event["EventId"]]
                record["responseElements"] = None
                event["CloudTrailEvent"] = json.dumps(record)
        return result


@dataclass
class World:
    account: Account
    trail: ErrorTrail
    at: datetime

    @property
    def iam(self) -> Any:
        return self.account.iam

    def record(self, name: str, key: str, *, error: str | None = None,
               **extra: Any) -> dict[str, Any]:
        self.at += timedelta(seconds=1)
        event = self.trail.record(REGION, name, key, event_time=self.at, **extra)
        if error:
            self.trail.errors[event["eventID"]] = error
        return event

    def session_token(self, key: str) -> str:
        self.record("GetSessionToken", key, response_elements={
            "credentials": {"accessKeyId": ASIA, "expiration": "x"}})
        return ASIA

    def created_key(self, actor: str, user: str, *, named: bool = True,
                    error: str | None = None) -> str:
        """A key really created on `user`, recorded as the attacker's CreateAccessKey."""
        key = str(self.iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"])
        self.record("CreateAccessKey", actor, error=error,
                    request_parameters={"userName": user} if named else None,
                    response_elements={"accessKey": {"accessKeyId": key, "userName": user,
                                                     "status": "Active"}})
        return key

    def assumed(self, actor: str, role: str, session: str) -> str:
        """AssumeRole really made (moto names the session's role id), recorded."""
        arn = self.iam.get_role(RoleName=role)["Role"]["Arn"]
        made = self.account.session.client("sts", region_name=REGION).assume_role(
            RoleArn=arn, RoleSessionName=session)
        self.record("AssumeRole", actor, request_parameters={
            "roleArn": arn, "roleSessionName": session}, response_elements={
            "assumedRoleUser": {"assumedRoleId": made["AssumedRoleUser"]["AssumedRoleId"],
                                "arn": made["AssumedRoleUser"]["Arn"]},
            "credentials": {"accessKeyId": "ASIAROLESESSION00001"}})
        return str(made["AssumedRoleUser"]["AssumedRoleId"])


def _role(iam: Any, name: str) -> None:
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
        "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))


@pytest.fixture
def world() -> Iterator[World]:
    """alice (leaked + other key), bob (one key), carol (one key), roles deploy and batch."""
    trail = ErrorTrail()
    with mock_aws(), trail.installed():
        account = make_account(boto3.Session(region_name=REGION))
        account.iam.create_user(UserName="carol")
        account.iam.create_access_key(UserName="carol")
        for role in ("deploy", "batch"):
            _role(account.iam, role)
        yield World(account, trail, datetime.now(UTC) - timedelta(minutes=10))


def _playbook() -> Playbook:
    return Playbook.from_dict({"name": "attacker-test", "version": 1, "steps": [
        {"name": "identify", "action": "identify"},
        {"name": "disable-key", "action": "disable_access_key"},
        {"name": "revoke-sessions", "action": "attach_deny_policy"},
        {"name": "collect-evidence", "action": "collect_cloudtrail", "on_failure": "continue",
         "with": {"regions": [REGION]}},
        {"name": "contain-attacker", "action": "contain_attacker"},
    ]}, "test")


def _contain(ctx: RunContext, journal: SqliteJournal, key: str
             ) -> tuple[str, AttackerContained]:
    record = service.respond(ctx, journal, _playbook(), key)
    assert record.status == "completed", record.error
    facts = IncidentView.load(journal, record.id).done(AttackerContained)
    assert facts is not None
    return record.id, facts


def _keys(iam: Any, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"]
            for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def _inline(iam: Any, kind: str, name: str, policy: str) -> dict[str, Any]:
    if kind == "user":
        found = iam.get_user_policy(UserName=name, PolicyName=policy)["PolicyDocument"]
    else:
        found = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    return dict(json.loads(found) if isinstance(found, str) else found)


def test_created_keys_go_inactive_and_nothing_else(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A second key on the victim (no userName: the caller's own user) and a key on
    another user both go Inactive; every other key keeps its status, nothing is deleted."""
    bob = world.account.bob_key  # the leaked key: bob has room for a second one
    on_victim = world.created_key(bob, "bob", named=False)
    on_carol = world.created_key(bob, "carol")
    before = iam_state(world.iam)
    _, facts = _contain(make_ctx(), journal, bob)
    assert {(k.user_name, k.access_key_id, k.already) for k in facts.keys_disabled} \
        == {("bob", on_victim, False), ("carol", on_carol, False)}
    after = iam_state(world.iam)
    assert set(after) == set(before)  # no user created or deleted
    for user, state in before.items():
        assert {k for k, _ in after[user]["keys"]} == {k for k, _ in state["keys"]}, user
    changed = {(user, key) for user in after for key, status in after[user]["keys"]
               if (key, status) not in before[user]["keys"]}
    assert changed == {("bob", bob), ("bob", on_victim), ("carol", on_carol)}
    assert all(status == "Inactive" for user in after for key, status in after[user]["keys"]
               if (user, key) in changed)
    assert after["carol"]["inline"] == []
    assert after["alice"]["inline"] == []
    assert facts.principals_quarantined == ()
    assert facts.sessions_revoked == ()


def test_user_created_through_a_session_is_quarantined(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """CreateUser, its key and its password through a GetSessionToken session: the user
    gets the unconditional deny-all, its key goes Inactive, the password is covered by the
    quarantine, the session by the cutoff; bystanders are unchanged."""
    leaked = world.account.leaked_key
    temp = world.session_token(leaked)
    world.iam.create_user(UserName="backdoor")
    world.record("CreateUser", temp, request_parameters={"userName": "backdoor"})
    key = world.created_key(temp, "backdoor")
    world.iam.create_login_profile(UserName="backdoor", Password="Pa55word!Pa55word!")
    world.record("CreateLoginProfile", temp, request_parameters={"userName": "backdoor"})
    before = iam_state(world.iam)
    _, facts = _contain(make_ctx(), journal, leaked)
    assert _inline(world.iam, "user", "backdoor", QUARANTINE_POLICY) == DENY_ALL
    assert _keys(world.iam, "backdoor") == {key: "Inactive"}
    assert facts.principals_quarantined == (
        QuarantinedPrincipal(type="user", name="backdoor", keys_disabled=(key,)),)
    assert facts.needs_human == ()  # the login profile is the quarantined user's
    assert [(c.event_name, c.access_key_id) for c in facts.covered_by_cutoff] == [
        ("GetSessionToken", leaked)]
    after = iam_state(world.iam)
    for user in ("bob", "carol"):
        assert after[user] == before[user], user
    assert after["backdoor"]["inline"] == [QUARANTINE_POLICY]
    assert world.iam.get_login_profile(UserName="backdoor")  # nothing deleted
    assert facts.events_considered == 4


def test_assumed_role_gets_a_deny_naming_exactly_that_session(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """AssumeRole: the role's inline deny names the attacker's session (aws:userid), merged
    with the sessions an earlier incident named; no blanket deny, other roles untouched."""
    leaked = world.account.leaked_key
    session = world.assumed(leaked, "deploy", "attacker-session")
    earlier = "AROAEARLIERINCIDENT1:old-session"
    world.iam.put_role_policy(RoleName="deploy", PolicyName=REVOKE_POLICY,
                              PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "ResponderRevokeAttackerSessions", "Effect": "Deny", "Action": "*",
            "Resource": "*", "Condition": {"StringEquals": {"aws:userid": [earlier]}}}]}))
    _, facts = _contain(make_ctx(), journal, leaked)
    document = _inline(world.iam, "role", "deploy", REVOKE_POLICY)
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"StringEquals": {"aws:userid": sorted([earlier, session])}}
    assert session.endswith(":attacker-session")
    assert world.iam.list_role_policies(RoleName="deploy")["PolicyNames"] == [REVOKE_POLICY]
    assert world.iam.list_role_policies(RoleName="batch")["PolicyNames"] == []
    arn = world.iam.get_role(RoleName="deploy")["Role"]["Arn"]
    assert facts.sessions_revoked == (
        RevokedSession(role_name="deploy", role_arn=arn, sessions=(session,)),)
    assert facts.principals_quarantined == ()


def test_cross_account_and_service_linked_roles_are_listed_not_touched(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A role in another account, and a service-linked role, are listed for a human."""
    leaked = world.account.leaked_key
    for arn in ("arn:aws:iam::210987654321:role/partner",
                f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/"
                "elasticbeanstalk.amazonaws.com/AWSServiceRoleForElasticBeanstalk"):
        world.record("AssumeRole", leaked, request_parameters={
            "roleArn": arn, "roleSessionName": "x"}, response_elements={
            "assumedRoleUser": {"assumedRoleId": "AROAOTHER0000000001:x"}})
    _, facts = _contain(make_ctx(), journal, leaked)
    assert facts.sessions_revoked == ()
    what = [h.what for h in facts.needs_human]
    assert len(what) == 2
    assert "another account" in what[0]
    assert "service-linked" in what[1]
    assert "put-role-policy --role-name partner" in facts.needs_human[0].undo
    for item in facts.needs_human:  # the command pastes as printed; the prose is beside it
        assert shlex.join(shlex.split(item.undo)) == item.undo
        assert item.note


def test_refused_calls_change_nothing(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A CreateAccessKey (and a CreateUser) that CloudTrail records with an errorCode made
    nothing: no key is disabled, no user quarantined, and they are not counted."""
    bob = world.account.bob_key
    key = world.created_key(bob, "carol", error="AccessDenied")
    world.record("CreateUser", bob, request_parameters={"userName": "carol"},
                 error="EntityAlreadyExists")
    _, facts = _contain(make_ctx(), journal, bob)
    assert _keys(world.iam, "carol")[key] == "Active"
    assert world.iam.list_user_policies(UserName="carol")["PolicyNames"] == []
    assert facts.keys_disabled == ()
    assert facts.principals_quarantined == ()
    assert facts.events_considered == 0


def test_other_changes_are_listed_with_the_command_that_undoes_them(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """Policies attached, group membership, a password on an existing user: listed with
    the event, time, key and exact undo command; the principals are not touched."""
    leaked = world.account.leaked_key
    arn = world.iam.create_policy(PolicyName="admin", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))["Policy"]["Arn"]
    world.iam.attach_user_policy(UserName="bob", PolicyArn=arn)
    event = world.record("AttachUserPolicy", leaked,
                         request_parameters={"userName": "bob", "policyArn": arn})
    world.record("AddUserToGroup", leaked,
                 request_parameters={"userName": "bob", "groupName": "admins"})
    world.record("UpdateLoginProfile", leaked, request_parameters={"userName": "carol"})
    world.record("ListUsers", leaked)
    before = iam_state(world.iam)
    _, facts = _contain(make_ctx(), journal, leaked)
    first = facts.needs_human[0]
    assert first.to_detail() == {
        "event_id": event["eventID"], "event_name": "AttachUserPolicy",
        "time": event["eventTime"], "access_key_id": leaked,
        "what": f"attached managed policy {arn} to user bob",
        "undo": f"aws iam detach-user-policy --user-name bob --policy-arn {arn}",
        "meaning": "widens a policy", "resource": "bob", "region": REGION, "outside": [],
        "manual": False, "entry": "iam.AttachUserPolicy", "note": ""}
    assert [h.undo for h in facts.needs_human[1:]] == [
        "aws iam remove-user-from-group --group-name admins --user-name bob",
        "aws iam delete-login-profile --user-name carol"]
    assert iam_state(world.iam)["bob"] == before["bob"]
    assert facts.events_considered == 4


def test_repeating_the_step_changes_nothing(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """Run again on the same evidence: everything is observed in place (already), no
    mutating call is made and no statement is duplicated."""
    leaked = world.account.leaked_key
    temp = world.session_token(leaked)
    world.iam.create_user(UserName="backdoor")
    world.record("CreateUser", temp, request_parameters={"userName": "backdoor"})
    world.created_key(temp, "backdoor")
    world.created_key(leaked, "carol")
    session = world.assumed(leaked, "deploy", "s1")
    incident_id, _ = _contain(make_ctx(), journal, leaked)
    view = IncidentView.load(journal, incident_id)
    inp = StepInput(make_ctx(), Incident(incident_id, leaked, "attacker-test",
                                         view.started_at, resumed=True),
                    view.target, {}, view=view)
    again = ContainAttacker().run(inp, Api(faults.session_factory()(), FAST_RETRY))
    facts = again.facts
    assert isinstance(facts, AttackerContained)
    assert all(k.already for k in facts.keys_disabled)
    mutating = {"UpdateAccessKey", "PutUserPolicy", "PutRolePolicy"}
    assert not mutating & set(faults.calls), faults.calls
    document = _inline(world.iam, "role", "deploy", REVOKE_POLICY)
    assert document["Statement"][0]["Condition"]["StringEquals"]["aws:userid"] == [session]


def test_the_responders_own_keys_are_never_the_attackers() -> None:
    """Events signed with the responder's key or its replacement are not considered, and
    a key they created is never disabled."""
    def event(name: str, key: str, created: str) -> dict[str, Any]:
        return {"eventSource": "iam.amazonaws.com", "eventName": name, "eventID": created,
                "userIdentity": {"accessKeyId": key},
                "requestParameters": {"userName": "alice"},
                "responseElements": {"accessKey": {"accessKeyId": created}}}

    found = analyse([event("CreateAccessKey", "AKIARESPONDER", "AKIANEW1"),
                     event("CreateAccessKey", "AKIALEAKED", "AKIAREPLACEMENT"),
                     event("CreateAccessKey", "AKIALEAKED", "AKIANEW2")],
                    leaked_key="AKIALEAKED", victim="alice", account_id=ACCOUNT_ID,
                    own_keys=frozenset({"AKIARESPONDER", "AKIAREPLACEMENT"}))
    assert found.keys == {"AKIANEW2": "alice"}
    assert found.events_considered == 2


def test_role_in_another_account_is_reached_through_the_cross_account_role(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """With RESPONDER_ROLE_ARN_TEMPLATE configured, a role the attacker assumed in another
    account gets the deny naming its session there, through that account's responder
    role; nothing is listed for a human and the home account's roles are untouched."""
    other = "222222222222"
    sts = world.account.session.client("sts", region_name=REGION)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{other}:role/KeyResponder",
                            RoleSessionName="setup")["Credentials"]
    there = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                          aws_secret_access_key=creds["SecretAccessKey"],
                          aws_session_token=creds["SessionToken"], region_name=REGION)
    iam_there = there.client("iam")
    _role(iam_there, "deploy")
    arn = iam_there.get_role(RoleName="deploy")["Role"]["Arn"]
    assert arn.startswith(f"arn:aws:iam::{other}:")
    session = f"{iam_there.get_role(RoleName='deploy')['Role']['RoleId']}:attacker"
    world.record("AssumeRole", world.account.leaked_key, request_parameters={
        "roleArn": arn, "roleSessionName": "attacker"}, response_elements={
        "assumedRoleUser": {"assumedRoleId": session}})
    ctx = make_ctx(role_arn_template="arn:aws:iam::{account_id}:role/KeyResponder")
    _, facts = _contain(ctx, journal, world.account.leaked_key)
    statement = _inline(iam_there, "role", "deploy", REVOKE_POLICY)["Statement"][0]
    assert statement["Condition"] == {"StringEquals": {"aws:userid": [session]}}
    assert facts.sessions_revoked == (
        RevokedSession(role_name="deploy", role_arn=arn, sessions=(session,)),)
    assert facts.needs_human == ()
    assert world.iam.list_role_policies(RoleName="deploy")["PolicyNames"] == []


def test_unreachable_other_account_is_listed_for_a_human(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory, faults: Faults
) -> None:
    """The cross-account role cannot be assumed (AccessDenied): the role in the other
    account is listed for a human with its command, and the incident still completes."""
    arn = "arn:aws:iam::222222222222:role/deploy"
    world.record("AssumeRole", world.account.leaked_key, request_parameters={
        "roleArn": arn, "roleSessionName": "attacker"}, response_elements={
        "assumedRoleUser": {"assumedRoleId": "AROAOTHERACCOUNT0001:attacker"}})
    faults.fail("AssumeRole", "AccessDenied", status=403)
    ctx = make_ctx(session_factory=faults.session_factory(),
                   role_arn_template="arn:aws:iam::{account_id}:role/KeyResponder")
    _, facts = _contain(ctx, journal, world.account.leaked_key)
    assert facts.sessions_revoked == ()
    (item,) = facts.needs_human
    assert "another account" in item.what
    assert "put-role-policy --role-name deploy" in item.undo
    assert faults.count("AssumeRole") == 1


def test_a_quarantined_users_key_already_inactive_is_not_claimed(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """A user the attacker created has one key it left Inactive and one Active: only the
    Active one is listed as set Inactive by the step; the other is recorded as found
    Inactive, so a rollback never makes it Active."""
    from responder.steps.rollback import undo_plan

    leaked = world.account.leaked_key
    world.iam.create_user(UserName="backdoor")
    world.record("CreateUser", leaked, request_parameters={"userName": "backdoor"})
    idle = str(world.iam.create_access_key(UserName="backdoor")["AccessKey"]["AccessKeyId"])
    world.iam.update_access_key(UserName="backdoor", AccessKeyId=idle, Status="Inactive")
    live = str(world.iam.create_access_key(UserName="backdoor")["AccessKey"]["AccessKeyId"])
    incident_id, facts = _contain(make_ctx(), journal, leaked)
    (principal,) = facts.principals_quarantined
    assert (principal.keys_disabled, principal.keys_found_inactive) == ((live,), (idle,))
    assert _keys(world.iam, "backdoor") == {idle: "Inactive", live: "Inactive"}
    plan = undo_plan(IncidentView.load(journal, incident_id))
    assert f"make key {live} of backdoor Active again" in plan
    assert not any(idle in line for line in plan)
