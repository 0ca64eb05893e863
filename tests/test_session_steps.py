"""identify-session and revoke-session in-process (moto and the CloudTrail fake), and the
pure policy documents of role_policy: what the black-box tests in test_cli_session.py
do not reach (regions, principal types, refusals, hints, NAT egress, merges, a role
deleted midway, the dry run)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from conftest import FAST_RETRY, REGION, Account, make_account
from moto import mock_aws
from session_world import ACCOUNT_ID, launch_instance, leak_role_session, make_role

from responder import playbook
from responder.aws import Api
from responder.context import Options, RunContext, SessionHint
from responder.drill.cloudtrail import CloudTrailFake, FakeError
from responder.drill.cloudtrail_records import (
    federated_identity,
    role_session_identity,
    user_session_identity,
)
from responder.errors import EXIT_REFUSED, BadInput, Refused
from responder.iam import role_policy as rp
from responder.incident.action import REGISTRY, StepInput
from responder.incident.facts import SessionDenied, SessionFound
from responder.journal import StepRecord
from responder.journal.sqlite import SqliteJournal
from responder.run import service
from responder.steps.deny import POLICY_NAME, cutoff_text, deny_policy

CtxFactory = Callable[..., RunContext]
PLAYBOOK = playbook.load("compromised-session")
KEY = "ASIASESSIONSTEPS0001"
ROLE_A = "AROAROLEAAAAAAAAAAAA"
INSTANCE_A = "i-0aaaaaaaaaaaaaaaa"
INSTANCE_B = "i-0bbbbbbbbbbbbbbbb"
NET_A = rp.InstanceNetwork(INSTANCE_A, "vpc-aaaa", "10.0.0.5", ("198.51.100.1",))
NET_B = rp.InstanceNetwork(INSTANCE_B, "vpc-bbbb", "10.1.0.9", ("198.51.100.2",))
SESSION_A = f"{ROLE_A}:{INSTANCE_A}"
SESSION_B = f"{ROLE_A}:{INSTANCE_B}"
UNRELATED = {"Sid": "SomeoneElses", "Effect": "Deny", "Action": "s3:DeleteBucket",
             "Resource": "*"}


# -- the world: moto, and a CloudTrail fake that can be denied -------------------------


@dataclass
class Trail(CloudTrailFake):
    """The CloudTrail fake, noting each lookup (region, attribute), and failing every one
    with AccessDeniedException while `denied` is set."""

    denied: bool = False
    lookups: list[tuple[str, str]] = field(default_factory=list)

    def lookup(self, region: str, request: Mapping[str, Any]) -> dict[str, Any]:
        attributes = request.get("LookupAttributes") or [{}]
        self.lookups.append((region, str(attributes[0].get("AttributeKey"))))
        if self.denied:
            raise FakeError("AccessDeniedException", 400, "not authorized to LookupEvents")
        return super().lookup(region, request)

    def by_key(self) -> list[str]:
        """The regions searched by AccessKeyId, in order."""
        return [region for region, attribute in self.lookups if attribute == "AccessKeyId"]


@dataclass(frozen=True)
class World:
    account: Account
    trail: Trail

    @property
    def iam(self) -> Any:
        return self.account.iam

    def leak(self, identity: dict[str, Any], *, region: str = REGION, key: str = KEY,
             minutes_ago: int = 4) -> None:
        """The key's one event (ListBuckets), signed as `identity`."""
        self.trail.record(region, "ListBuckets", key,
                          event_time=datetime.now(UTC) - timedelta(minutes=minutes_ago),
                          identity=identity)


@pytest.fixture
def world() -> Iterator[World]:
    trail = Trail()
    with mock_aws(), trail.installed():
        yield World(make_account(boto3.Session(region_name=REGION)), trail)


def _found(ctx: RunContext, key: str = KEY) -> SessionFound:
    facts = service.identify(ctx, PLAYBOOK, key).result.facts
    assert isinstance(facts, SessionFound)
    return facts


def _role_identity(role: Mapping[str, Any], session: str, key: str = KEY,
                   issued_at: str | None = None) -> dict[str, Any]:
    return role_session_identity(ACCOUNT_ID, str(role["Arn"]), str(role["RoleId"]), session,
                                 key, issued_at=issued_at)


def _role_policy(world: World, role: str) -> dict[str, Any]:
    found = world.iam.get_role_policy(RoleName=role, PolicyName=rp.REVOKE_POLICY)
    document = found["PolicyDocument"]
    return dict(json.loads(document) if isinstance(document, str) else document)


def _by_sid(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(s["Sid"]): s for s in document["Statement"]}


def _steps(journal: SqliteJournal, incident_id: str) -> dict[str, StepRecord]:
    return {s.name: s for s in journal.steps(incident_id)}


def _respond(world: World, ctx: RunContext, journal: SqliteJournal,
             key: str = KEY) -> dict[str, StepRecord]:
    record = service.respond(ctx, journal, PLAYBOOK, key)
    assert record.status == "completed", record.error
    steps = _steps(journal, record.id)
    assert steps["revoke-session"].status == "done"
    return steps


# -- role_policy: pure documents ---------------------------------------------------------


def test_merge_keeps_unrelated_and_other_instances_statements() -> None:
    current = {"Version": "2012-10-17", "Statement": [
        UNRELATED, *rp.away_statements(SESSION_B, NET_B), rp.revoke_policy(["AROAX:old"])[
            "Statement"][0]]}
    merged = rp.merged(json.dumps(current), sessions=("AROAX:new",),
                       away=rp.away_statements(SESSION_A, NET_A))
    sids = [s["Sid"] for s in merged["Statement"]]
    assert sids[0] == rp.REVOKE_SID
    assert rp.sessions_in(merged) == {"AROAX:old", "AROAX:new"}
    assert UNRELATED in merged["Statement"]
    for statement in rp.away_statements(SESSION_B, NET_B):
        assert statement in merged["Statement"]
    for statement in rp.away_statements(SESSION_A, NET_A):
        assert statement in merged["Statement"]
    assert len(sids) == len(set(sids)) == 1 + 1 + 3 + 3


def test_merging_the_same_session_twice_changes_nothing() -> None:
    once = rp.merged({"Version": "2012-10-17", "Statement": [UNRELATED]},
                     sessions=("AROAX:s1",), away=rp.away_statements(SESSION_A, NET_A))
    twice = rp.merged(once, sessions=("AROAX:s1",), away=rp.away_statements(SESSION_A, NET_A))
    assert twice == once
    assert rp.merged(json.dumps(once), sessions=("AROAX:s1",)) == once
    (session_statement,) = [s for s in once["Statement"] if s["Sid"] == rp.REVOKE_SID]
    assert session_statement["Condition"] == {"StringEquals": {"aws:userid": ["AROAX:s1"]}}


def test_away_statements_are_replaced_when_written_again() -> None:
    first = rp.merged(None, away=rp.away_statements(SESSION_A, NET_A))
    moved = rp.InstanceNetwork(INSTANCE_A, "vpc-aaaa", "10.0.0.5", ("203.0.113.9",
                                                                      "203.0.113.10"))
    again = rp.merged(first, away=rp.away_statements(SESSION_A, moved))
    assert len(again["Statement"]) == 3
    internet = _by_sid(again)[rp.AWAY_SID + "i0aaaaaaaaaaaaaaaa" + "Internet"]
    assert internet["Condition"]["NotIpAddress"] == {
        "aws:SourceIp": ["203.0.113.9/32", "203.0.113.10/32"]}
    assert "198.51.100.1/32" not in json.dumps(again)


def test_internet_statement_without_egress_denies_every_public_use() -> None:
    statements = rp.away_statements(SESSION_A, rp.InstanceNetwork(INSTANCE_A, "vpc-aaaa",
                                                                   "10.0.0.5"))
    internet = next(s for s in statements if s["Sid"].endswith("Internet"))
    assert "NotIpAddress" not in internet["Condition"]
    assert internet["Condition"]["Null"] == {"aws:SourceVpc": "true"}


def test_every_away_statement_is_tied_to_the_session_and_the_instances_copy() -> None:
    statements = rp.away_statements(SESSION_A, NET_A)
    assert [s["Sid"] for s in statements] == [
        f"{rp.AWAY_SID}i0aaaaaaaaaaaaaaaa{part}" for part in ("OtherVpc", "OtherAddress",
                                                              "Internet")]
    for statement in statements:
        condition = statement["Condition"]
        assert statement["Effect"] == "Deny"
        assert condition["StringEquals"] == {"aws:userid": SESSION_A}
        issued = condition["StringEqualsIfExists"]
        assert issued
        assert all(k.startswith("aws:ec2InstanceSource") for k in issued)
        assert condition["BoolIfExists"] == {"aws:ViaAWSService": "false"}
    other_vpc, other_address, internet = (s["Condition"] for s in statements)
    assert other_vpc["StringNotEquals"] == {"aws:SourceVpc": "vpc-aaaa"}
    assert other_vpc["StringEqualsIfExists"] == {"aws:ec2InstanceSourceVPC": "vpc-aaaa"}
    assert other_address["NotIpAddress"] == {"aws:VpcSourceIp": "10.0.0.5/32"}
    assert other_address["StringEqualsIfExists"] == {
        "aws:ec2InstanceSourcePrivateIPv4": "10.0.0.5"}
    assert internet["NotIpAddress"] == {"aws:SourceIp": ["198.51.100.1/32"]}


def test_names_sessions_and_instances() -> None:
    document = rp.merged(None, sessions=("AROAX:s1",), away=rp.away_statements(SESSION_A,
                                                                              NET_A))
    assert rp.names(document, session="AROAX:s1")
    assert not rp.names(document, session="AROAX:s2")
    assert rp.names(json.dumps(document), session="AROAX:s1")
    assert rp.names(document, session=SESSION_A, instance_id=INSTANCE_A)
    assert not rp.names(document, session=SESSION_B, instance_id=INSTANCE_B)
    assert not rp.names(rp.revoke_policy([SESSION_A]), session=SESSION_A,
                        instance_id=INSTANCE_A)
    assert not rp.names(None, session="AROAX:s1")


# -- identify-session --------------------------------------------------------------------


def test_event_in_another_region_is_found_and_the_search_stops_there(
    world: World, make_ctx: CtxFactory
) -> None:
    role = make_role(world.account, "app")
    world.leak(_role_identity(role, "worker"), region="eu-west-1")
    found = _found(make_ctx())
    assert found.principal_type == "AssumedRole"
    assert (found.role_name, found.session_name) == ("app", "worker")
    assert found.role_id == role["RoleId"]
    assert found.event["region"] == "eu-west-1"
    assert found.regions_searched[0] == "us-east-1"
    assert found.regions_searched[-1] == "eu-west-1"
    assert "eu-west-2" not in found.regions_searched
    assert "us-west-2" not in found.regions_searched
    assert world.trail.by_key() == list(found.regions_searched)


def test_federated_user_is_its_issuing_user(world: World, make_ctx: CtxFactory) -> None:
    world.leak(federated_identity(ACCOUNT_ID, "alice", "contractor", KEY))
    found = _found(make_ctx())
    assert found.principal_type == "FederatedUser"
    assert found.user_name == "alice"
    assert found.session_name == "contractor"
    assert found.role_name is None


@pytest.mark.parametrize(("identity", "says"), [
    ({"type": "Root", "principalId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:root",
      "accountId": ACCOUNT_ID, "accessKeyId": KEY}, "root user"),
    ({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, "AWSService"),
])
def test_root_and_service_identities_are_refused(
    world: World, make_ctx: CtxFactory, identity: dict[str, Any], says: str
) -> None:
    world.leak(identity)
    with pytest.raises(Refused, match=says) as refused:
        service.identify(make_ctx(), PLAYBOOK, KEY)
    assert refused.value.exit_code == EXIT_REFUSED


def test_service_linked_role_session_is_refused(world: World, make_ctx: CtxFactory) -> None:
    arn = (f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/elasticbeanstalk.amazonaws.com/"
           "AWSServiceRoleForElasticBeanstalk")
    world.leak(role_session_identity(ACCOUNT_ID, arn, "AROASERVICELINKED001", "s1", KEY))
    with pytest.raises(Refused, match="service-linked") as refused:
        service.identify(make_ctx(), PLAYBOOK, KEY)
    assert refused.value.exit_code == EXIT_REFUSED


def test_the_responders_own_role_is_refused(world: World, make_ctx: CtxFactory) -> None:
    own = make_role(world.account, "responder")
    other = make_role(world.account, "app")
    creds = world.account.session.client("sts", region_name=REGION).assume_role(
        RoleArn=own["Arn"], RoleSessionName="responder-run")["Credentials"]

    def as_responder() -> boto3.Session:
        return boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                             aws_secret_access_key=creds["SecretAccessKey"],
                             aws_session_token=creds["SessionToken"], region_name=REGION)

    ctx = make_ctx(session_factory=as_responder)
    world.leak(_role_identity(own, "ci-run-1"))
    with pytest.raises(Refused, match="runs as") as refused:
        service.identify(ctx, PLAYBOOK, KEY)
    assert refused.value.exit_code == EXIT_REFUSED
    other_key = "ASIASESSIONSTEPS0002"
    world.leak(_role_identity(other, "ci-run-1", other_key), key=other_key)
    assert _found(ctx, other_key).role_name == "app"  # another role is not refused


def test_minted_by_names_the_key_of_the_minting_event(
    world: World, make_ctx: CtxFactory
) -> None:
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    world.trail.record(REGION, "GetSessionToken", world.account.bob_key,
                       event_time=issued - timedelta(minutes=1), user_name="bob",
                       response_elements={"credentials": {"accessKeyId": "ASIAOTHERSESSION0001"}})
    world.trail.record(REGION, "GetSessionToken", world.account.leaked_key,
                       event_time=issued + timedelta(seconds=1),
                       response_elements={"credentials": {"accessKeyId": KEY}})
    world.leak(user_session_identity(ACCOUNT_ID, "alice", KEY,
                                     issued_at=issued.strftime("%Y-%m-%dT%H:%M:%SZ")))
    found = _found(make_ctx())
    assert found.principal_type == "IAMUser"
    assert found.user_name == "alice"
    assert found.minted_by == world.account.leaked_key
    assert found.minted_by_arn == f"arn:aws:iam::{ACCOUNT_ID}:user/alice"


def test_minting_event_outside_ten_minutes_is_not_taken(
    world: World, make_ctx: CtxFactory
) -> None:
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=60)
    world.trail.record(REGION, "GetSessionToken", world.account.leaked_key,
                       event_time=issued + timedelta(minutes=20),
                       response_elements={"credentials": {"accessKeyId": KEY}})
    world.leak(user_session_identity(ACCOUNT_ID, "alice", KEY,
                                     issued_at=issued.strftime("%Y-%m-%dT%H:%M:%SZ")))
    assert _found(make_ctx()).minted_by is None


def test_minting_event_is_found_among_many_in_a_busy_account(
    world: World, make_ctx: CtxFactory
) -> None:
    """Sixty other sessions minted around the same minute: the minting event is still
    found (pages are read, not just the first few events)."""
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    world.trail.record(REGION, "GetSessionToken", world.account.leaked_key,
                       event_time=issued,
                       response_elements={"credentials": {"accessKeyId": KEY}})
    for n in range(60):
        world.trail.record(REGION, "GetSessionToken", world.account.bob_key, user_name="bob",
                           event_time=issued + timedelta(seconds=1 + n % 50),
                           response_elements={"credentials": {
                               "accessKeyId": f"ASIABUSY{n:012d}"}})
    world.leak(user_session_identity(ACCOUNT_ID, "alice", KEY,
                                     issued_at=issued.strftime("%Y-%m-%dT%H:%M:%SZ")))
    assert _found(make_ctx()).minted_by == world.account.leaked_key


def test_hint_naming_a_missing_user_is_bad_input(world: World, make_ctx: CtxFactory) -> None:
    """A typo in --principal must not be reported as a contained session."""
    hint = SessionHint(principal_arn=f"arn:aws:iam::{ACCOUNT_ID}:user/alcie")
    with pytest.raises(BadInput, match="alcie"):
        _found(make_ctx(options=Options(session=hint)))


@pytest.mark.parametrize(("source", "found_by"), [("cli", "principal"),
                                                   ("lambda", "finding")])
def test_hint_stands_in_without_an_event(
    world: World, make_ctx: CtxFactory, source: str, found_by: str
) -> None:
    role = make_role(world.account, "app")
    hint = SessionHint(principal_arn=f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/app/s1")
    found = _found(make_ctx(options=Options(session=hint), source=source))
    assert found.found_by == found_by
    assert found.principal_type == "AssumedRole"
    assert found.role_id == role["RoleId"]
    assert found.role_arn == role["Arn"]
    assert found.aws_userid == f"{role['RoleId']}:s1"
    assert found.regions_searched[0] == "us-east-1"
    assert len(found.regions_searched) > 1  # every enabled region was searched first


def test_hint_naming_a_missing_role_is_bad_input(world: World, make_ctx: CtxFactory) -> None:
    hint = SessionHint(principal_arn=f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/app/s1")
    with pytest.raises(BadInput, match=r"role app .*does not exist"):
        service.identify(make_ctx(options=Options(session=hint)), PLAYBOOK, KEY)


def test_unreadable_cloudtrail_says_why_rather_than_no_event(
    world: World, make_ctx: CtxFactory
) -> None:
    world.leak(user_session_identity(ACCOUNT_ID, "alice", KEY))  # there, but unreadable
    world.trail.denied = True
    with pytest.raises(BadInput) as failed:
        service.identify(make_ctx(), PLAYBOOK, KEY)
    assert not isinstance(failed.value, Refused)
    message = str(failed.value)
    assert "LookupEvents" in message
    assert "denied" in message
    assert "no event" not in message
    assert len(set(world.trail.by_key())) > 1


def test_unreadable_cloudtrail_with_a_hint_uses_the_hint(
    world: World, make_ctx: CtxFactory
) -> None:
    make_role(world.account, "app")
    world.trail.denied = True
    hint = SessionHint(principal_arn=f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/app/s1")
    found = _found(make_ctx(options=Options(session=hint)))
    assert (found.found_by, found.role_name, found.session_name) == ("principal", "app", "s1")


# -- revoke-session, through the whole playbook ----------------------------------------


@dataclass(frozen=True)
class NatInstance:
    instance_id: str
    vpc_id: str
    private_ip: str
    public_ip: str
    nat_ip: str


def _nat_instance(account: Account) -> NatInstance:
    """An instance with a public address in a subnet whose default route is a NAT
    gateway (itself in a public subnet behind an internet gateway)."""
    ec2 = account.session.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    allocation = ec2.allocate_address(Domain="vpc")
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation["AllocationId"])
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                     NatGatewayId=nat["NatGateway"]["NatGatewayId"])
    ec2.associate_route_table(RouteTableId=table, SubnetId=private)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    made = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": private, "AssociatePublicIpAddress": True}])
    instance_id = made["Instances"][0]["InstanceId"]
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"][0]
    assert described.get("PublicIpAddress")
    return NatInstance(instance_id, vpc, described["PrivateIpAddress"],
                       described["PublicIpAddress"], allocation["PublicIp"])


def test_instance_behind_a_nat_gateway_keeps_both_egress_addresses(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    instance = _nat_instance(world.account)
    assert instance.nat_ip != instance.public_ip
    role = leak_role_session(world.account, world.trail, KEY, instance.instance_id, "web")
    steps = _respond(world, make_ctx(), journal)
    session = f"{role['RoleId']}:{instance.instance_id}"
    document = _role_policy(world, "web")
    statements = _by_sid(document)
    prefix = rp.AWAY_SID + instance.instance_id.replace("-", "")
    assert set(statements) == {prefix + "OtherVpc", prefix + "OtherAddress",
                               prefix + "Internet"}  # no unconditional deny
    internet = statements[prefix + "Internet"]["Condition"]
    assert sorted(internet["NotIpAddress"]["aws:SourceIp"]) == sorted(
        [f"{instance.nat_ip}/32", f"{instance.public_ip}/32"])
    other_vpc = statements[prefix + "OtherVpc"]["Condition"]
    assert other_vpc["StringNotEquals"] == {"aws:SourceVpc": instance.vpc_id}
    other_address = statements[prefix + "OtherAddress"]["Condition"]
    assert other_address["NotIpAddress"] == {"aws:VpcSourceIp": f"{instance.private_ip}/32"}
    assert all(s["Condition"]["StringEquals"] == {"aws:userid": session}
               for s in statements.values())
    denied = SessionDenied.from_detail(steps["revoke-session"].detail)
    assert denied.session == session
    assert denied.away_from_instance is not None
    assert denied.away_from_instance.vpc_id == instance.vpc_id
    assert sorted(denied.away_from_instance.egress_ips) == sorted(
        [instance.nat_ip, instance.public_ip])


def test_instance_that_is_gone_has_its_session_denied_everywhere(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    gone = "i-0123456789abcdef0"
    launch_instance(world.account)  # another instance exists; the session's does not
    role = leak_role_session(world.account, world.trail, KEY, gone, "web")
    steps = _respond(world, make_ctx(), journal)
    (statement,) = _role_policy(world, "web")["Statement"]
    assert statement["Sid"] == rp.REVOKE_SID
    assert statement["Condition"] == {"StringEquals": {"aws:userid": [f"{role['RoleId']}:{gone}"]}}
    assert SessionDenied.from_detail(steps["revoke-session"].detail).away_from_instance is None


def test_a_later_cutoff_already_on_the_user_is_kept(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    world.iam.put_user_policy(UserName="alice", PolicyName=POLICY_NAME,
                              PolicyDocument=json.dumps(deny_policy(later)))
    world.leak(user_session_identity(ACCOUNT_ID, "alice", KEY))
    steps = _respond(world, make_ctx(), journal)
    document = world.iam.get_user_policy(UserName="alice", PolicyName=POLICY_NAME)[
        "PolicyDocument"]
    assert (json.loads(document) if isinstance(document, str) else document) == deny_policy(later)
    denied = SessionDenied.from_detail(steps["revoke-session"].detail)
    assert denied.already is True
    assert denied.on == "user"
    assert denied.token_issue_time_before == cutoff_text(later)
    keys = {k["Status"] for k in world.iam.list_access_keys(UserName="alice")[
        "AccessKeyMetadata"]}
    assert keys == {"Active"}


def test_role_deleted_after_identify_completes_as_deleted(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    """Identify (the plan shown for confirmation) finds role app; the role is deleted
    before the response runs: revoke-session says so and the incident completes."""
    leak_role_session(world.account, world.trail, KEY, "ci-run-5", "app")
    ctx = make_ctx()
    planned = service.plan(ctx, PLAYBOOK, KEY)
    world.iam.delete_role(RoleName="app")
    record = service.respond(ctx, journal, PLAYBOOK, KEY, identified=planned.identified)
    assert record.status == "completed", record.error
    step = _steps(journal, record.id)["revoke-session"]
    assert step.status == "done"
    assert step.detail["principal_deleted"] is True
    assert SessionDenied.from_detail(step.detail).name == "app"


def test_role_deleted_step_run_directly(world: World, make_ctx: CtxFactory) -> None:
    """The same, the step alone: no policy is read or written on a role that is gone."""
    leak_role_session(world.account, world.trail, KEY, "ci-run-6", "app")
    ctx = make_ctx()
    found = service.identify(ctx, PLAYBOOK, KEY)
    world.iam.delete_role(RoleName="app")
    spec = PLAYBOOK.steps[1]
    result = REGISTRY[spec.action]().run(
        StepInput(ctx, found.incident, found.target, spec.settings),
        Api(ctx.session_factory(), FAST_RETRY))
    assert isinstance(result.facts, SessionDenied)
    assert result.facts.principal_deleted is True
    assert result.facts.on == "role"


def test_contain_attacker_and_revoke_session_share_the_role_policy(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    role = make_role(world.account, "app")
    earlier = f"{role['RoleId']}:old-session"
    other_instance = rp.away_statements(f"{role['RoleId']}:{INSTANCE_B}", NET_B)
    before = rp.merged(None, sessions=(earlier,), away=other_instance)
    world.iam.put_role_policy(RoleName="app", PolicyName=rp.REVOKE_POLICY,
                              PolicyDocument=json.dumps(before))
    world.leak(_role_identity(role, "ci-run-7"))
    _respond(world, make_ctx(), journal)
    after = _role_policy(world, "app")
    assert rp.sessions_in(after) == {earlier, f"{role['RoleId']}:ci-run-7"}
    for statement in other_instance:
        assert statement in after["Statement"]
    assert rp.names(after, session=f"{role['RoleId']}:{INSTANCE_B}", instance_id=INSTANCE_B)
    assert len(after["Statement"]) == 4


# -- the dry run -----------------------------------------------------------------------


def test_dry_run_plans_the_found_sessions_deny_and_changes_nothing(
    world: World, make_ctx: CtxFactory
) -> None:
    role = make_role(world.account, "app")
    world.leak(_role_identity(role, "ci-run-9"))
    planned = service.plan(make_ctx(), PLAYBOOK, KEY)
    assert [spec.name for spec, _ in planned.steps] == [
        "revoke-session", "collect-evidence", "contain-attacker", "notify", "harden"]
    assert not any(b.call.mutating for b in planned.identified.held.calls)
    _, calls = planned.steps[0]
    (put,) = [c for c in calls if c.operation == "PutRolePolicy"]
    assert put.mutating
    assert put.params["RoleName"] == "app"
    document = json.loads(put.params["PolicyDocument"])
    assert rp.sessions_in(document) == {f"{role['RoleId']}:ci-run-9"}
    assert world.iam.list_role_policies(RoleName="app")["PolicyNames"] == []


# -- identities CloudTrail writes without a sessionContext (issue 28, case 9) -------------


def test_a_role_session_without_session_context_is_named_by_its_arn(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    """Some records carry no sessionContext: the role comes from the session's ARN, and
    the session is denied on that role instead of halting on an empty RoleName."""
    role = make_role(world.account, "app")
    identity = _role_identity(role, "ci-run-9")
    del identity["sessionContext"]
    world.leak(identity)
    found = _found(make_ctx())
    assert found.role_name == "app"
    assert found.role_arn == role["Arn"]
    _respond(world, make_ctx(), journal)
    assert rp.sessions_in(_role_policy(world, "app")) == {f"{role['RoleId']}:ci-run-9"}


def test_a_role_session_that_names_no_role_is_refused_before_an_incident(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    world.leak({"type": "AssumedRole", "principalId": "AROAEXAMPLE0000000001:s",
                "accountId": ACCOUNT_ID, "accessKeyId": KEY})
    with pytest.raises(Refused, match="--principal"):
        service.respond(make_ctx(), journal, PLAYBOOK, KEY)
    assert journal.recent() == []


def test_principal_given_to_join_another_principals_incident_is_refused(
    world: World, make_ctx: CtxFactory, journal: SqliteJournal
) -> None:
    """--principal is never silently ignored: joining an open incident that identified
    another principal says so in one line and changes nothing."""
    role = make_role(world.account, "app")
    world.leak(_role_identity(role, "ci-run-7"))
    ctx = make_ctx(options=Options(replace=False))
    record = service.respond(ctx, journal, PLAYBOOK, KEY)
    journal.update_incident(record.id, datetime.now(UTC), status="halted")
    other = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/other/s"
    with pytest.raises(BadInput, match=f"respond close {record.id}"):
        service.respond(make_ctx(options=Options(session=SessionHint(principal_arn=other))),
                        journal, PLAYBOOK, KEY)
    assert journal.get(record.id).status == "halted"
