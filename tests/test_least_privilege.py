"""The compromised-key playbook runs under exactly the IAM policy the project ships.

The responder's credentials are an IAM user whose only policy is
`responder.iam_policy.document()` (what docs/iam-policy.json holds), and moto checks every
request's signature and authorizes its action against that user's policies
(`moto.core.enable_iam_authentication`). The real playbook then runs in-process through
the real boto3 clients: if a step needed an action its declaration does not name, AWS
would refuse it in production and moto refuses it here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import REGION, Account, make_account, record_backdoor
from moto import mock_aws
from moto.core import enable_iam_authentication
from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend
from moto.iam.access_control import IAMRequestBase

from responder import iam_policy, playbook
from responder.context import Options, RunContext
from responder.drill.cloudtrail import CloudTrailFake
from responder.errors import ResponderError
from responder.journal.sqlite import SqliteJournal
from responder.run import service
from responder.steps.attacker import QUARANTINE_POLICY
from responder.steps.deny import POLICY_NAME as DENY_POLICY

CtxFactory = Callable[..., RunContext]
ALLOW_ALL = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class World:
    """alice (leaked key + one more), bob, an attacker-made `backdoor` user, a topic, and
    two signing identities: the responder (policy under test) and an admin (allow-all)."""

    account: Account
    trail: CloudTrailFake
    topic_arn: str
    backdoor_key: str
    responder: boto3.Session
    admin: boto3.Session
    authorized: list[tuple[str, str]]
    """(caller ARN, service:Action) of every request moto checked and let through."""


def _user_with_key(iam: Any, name: str, policy: dict[str, Any]) -> boto3.Session:
    """IAM user `name` whose only policy is `policy`, and a session signing as it."""
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=f"{name}-policy",
                        PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.Session(aws_access_key_id=key["AccessKeyId"],
                         aws_secret_access_key=key["SecretAccessKey"], region_name=REGION)


@contextmanager
def _world(policy: dict[str, Any]) -> Iterator[World]:
    """Build the account with no authorization, then turn enforcement on for the rest."""
    authorized: list[tuple[str, str]] = []
    permitted = IAMRequestBase.check_action_permitted

    def spy(self: Any, resource: str) -> None:
        permitted(self, resource)  # raises AccessDenied when the policy does not allow it
        authorized.append((self._access_key.arn, self._action))

    # moto limitation, worked around narrowly: its ec2 DescribeRegions also lists the
    # aws-us-gov and aws-cn regions, which real AWS never returns to a commercial-partition
    # account. Under enforcement moto looks the caller's key up in that other partition's
    # IAM, finds no such user and answers InvalidClientTokenId, so collect-evidence would
    # report 4 failed regions (us-gov-*, cn-*) a real account never lists. Keep the aws ones.
    commercial = set(boto3.Session().get_available_regions("ec2"))
    regions = [r for r in RegionsAndZonesBackend.regions if r.name in commercial]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(IAMRequestBase, "check_action_permitted", spy)
        patch.setattr(RegionsAndZonesBackend, "regions", regions)
        with mock_aws(), CloudTrailFake().installed() as trail:
            setup = boto3.Session(region_name=REGION)
            account = make_account(setup)
            backdoor_key = record_backdoor(account, trail, "ASIALEASTPRIVILEGE01")
            topic = setup.client("sns", region_name=REGION).create_topic(Name="incidents")
            responder = _user_with_key(account.iam, "responder", policy)
            admin = _user_with_key(account.iam, "admin", ALLOW_ALL)
            with enable_iam_authentication():
                yield World(account, trail, topic["TopicArn"], backdoor_key, responder,
                            admin, authorized)


def _as_moto_checks(document: dict[str, Any]) -> dict[str, Any]:
    """The shipped policy as moto can enforce it: moto authorizes an action against the
    resource `*` (S3 aside), so the Allow statements name `*` here; which resources each
    action may name is checked against the policies themselves (tests/test_policies.py)."""
    return {**document, "Statement": [
        {k: v for k, v in {**s, "Resource": "*"}.items() if k != "Condition"}
        for s in document["Statement"] if s["Effect"] == "Allow"]}


@pytest.fixture
def world() -> Iterator[World]:
    """The account under the shipped policy, enforcement on."""
    with _world(_as_moto_checks(iam_policy.document())) as built:
        yield built


@pytest.fixture(params=["oncall", "lambda"])
def world_of_use(request: pytest.FixtureRequest) -> Iterator[World]:
    """The account under one use's policy (docs/policies/<use>.json), enforcement on."""
    with _world(_as_moto_checks(iam_policy.document(request.param))) as built:
        yield built


def test_the_playbook_completes_under_each_containing_use(
    world_of_use: World, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """The on-call and the Lambda policies are enough for the whole compromised-key
    playbook (moto checks each call's action against the use's policy)."""
    record = service.respond(_ctx(make_ctx, world_of_use), journal,
                             playbook.load("compromised-key"), world_of_use.account.leaked_key)
    steps = {s.name: s for s in journal.steps(record.id)}
    assert {n: s.status for n, s in steps.items()} == dict.fromkeys(
        ("identify", "disable-key", "revoke-sessions", "collect-evidence",
         "contain-attacker", "replace-key", "notify", "harden"), "done"), \
        {n: s.error for n, s in steps.items()}


def _without(action: str) -> dict[str, Any]:
    doc = _as_moto_checks(iam_policy.document())
    for statement in doc["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != action]
    return doc


def _ctx(make_ctx: CtxFactory, world: World) -> RunContext:
    return make_ctx(session_factory=lambda: world.responder,
                    options=Options(notify_topic=world.topic_arn))


def test_shipped_document_is_docs_iam_policy() -> None:
    """The policy these tests grant is the one shipped to operators (docs/iam-policy.json)."""
    shipped = Path(__file__).resolve().parents[1] / "docs" / "iam-policy.json"
    assert json.loads(shipped.read_text()) == iam_policy.document()


def test_playbook_completes_under_the_generated_policy(
    world: World, journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """Every step of compromised-key succeeds signing as a user that holds only the
    generated policy, and moto checked every call it made against that policy: the key is
    disabled (then deleted by replace-key, alice having a second key), the deny policy and
    the quarantine are in place, a replacement key is stored and the humans are told."""
    made: list[str] = []
    world.responder.events.register(
        "before-call",
        lambda model, **_: made.append(f"{model.service_model.signing_name}:{model.name}"))
    record = service.respond(_ctx(make_ctx, world), journal, playbook.load("compromised-key"),
                             world.account.leaked_key)
    steps = {s.name: s for s in journal.steps(record.id)}
    assert record.status == "completed", (record.error, {n: s.error for n, s in steps.items()})
    assert {n: s.status for n, s in steps.items()} == dict.fromkeys(
        ("identify", "disable-key", "revoke-sessions", "collect-evidence",
         "contain-attacker", "replace-key", "notify", "harden"), "done")

    # Enforcement covered the whole run: each service:Action the responder sent was
    # authorized by moto against the responder user's policy, none slipped past unchecked.
    responder_arn = "arn:aws:iam::123456789012:user/responder"
    checked = {action for arn, action in world.authorized if arn == responder_arn}
    assert set(made) == checked
    assert {"iam:UpdateAccessKey", "iam:PutUserPolicy", "iam:CreateAccessKey",
            "iam:DeleteAccessKey", "secretsmanager:CreateSecret", "sns:Publish",
            "cloudtrail:LookupEvents", "ec2:DescribeRegions"} <= checked
    assert checked <= {a for st in iam_policy.document()["Statement"] for a in st["Action"]}
    evidence = steps["collect-evidence"].detail
    assert evidence["regions_failed"] == {}
    assert evidence["events"] == 3

    assert steps["disable-key"].detail["status"] == "Inactive"
    assert steps["replace-key"].detail["deleted_compromised"] is True
    iam = world.admin.client("iam")
    new_key = steps["replace-key"].detail["access_key_id"]
    assert {k["AccessKeyId"]: k["Status"]
            for k in iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]} == {
        world.account.other_key: "Active", new_key: "Active"}
    assert DENY_POLICY in iam.list_user_policies(UserName="alice")["PolicyNames"]
    assert iam.list_user_policies(UserName="backdoor")["PolicyNames"] == [QUARANTINE_POLICY]
    assert [(k["AccessKeyId"], k["Status"]) for k in
            iam.list_access_keys(UserName="backdoor")["AccessKeyMetadata"]] == [
        (world.backdoor_key, "Inactive")]
    secret = world.admin.client("secretsmanager").get_secret_value(
        SecretId=steps["replace-key"].detail["secret_ref"])
    assert json.loads(secret["SecretString"])["AccessKeyId"] == new_key
    assert steps["notify"].detail["failed"] == []


def test_enforcement_is_on(world: World) -> None:
    """The control: the responder key is refused what its policy does not grant, so the
    run above passed because the policy suffices, not because nothing was checked."""
    with pytest.raises(ClientError) as denied:
        world.responder.client("iam").create_user(UserName="mallory")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    world.admin.client("iam").get_user(UserName="alice")  # the admin is let through


def test_without_update_access_key_the_run_halts_at_disable_key(
    journal: SqliteJournal, make_ctx: CtxFactory
) -> None:
    """The control on the playbook itself: drop iam:UpdateAccessKey from the generated
    policy and the same run halts at disable-key with AccessDenied, the key still Active."""
    with _world(_without("iam:UpdateAccessKey")) as world:
        with pytest.raises(ResponderError) as halted:
            service.respond(_ctx(make_ctx, world), journal, playbook.load("compromised-key"),
                            world.account.leaked_key)
        assert halted.value.status == "halted"
        incident = journal.find_open(world.account.leaked_key)
        assert incident is not None
        steps = {s.name: s for s in journal.steps(incident.id)}
        assert steps["disable-key"].status == "failed"
        assert ("is not authorized to perform: iam:UpdateAccessKey"
                in (steps["disable-key"].error or ""))
        keys = {k["AccessKeyId"]: k["Status"] for k in world.admin.client("iam")
                .list_access_keys(UserName="alice")["AccessKeyMetadata"]}
        assert keys[world.account.leaked_key] == "Active"
