"""A proposal proved against its history, held to IAM's catalog, said with its limits, and
the grace period before anything is taken away (issue 33). Plain records, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from responder.hardening import grace
from responder.hardening.policy import MANAGED_POLICY_MAX_CHARS, propose
from responder.hardening.proposal import DATA_EVENTS, WITHHELD, draw
from responder.hardening.prove import allowed, known_actions, prove
from responder.hardening.usage import Tally, Usage

ACCOUNT = "123456789012"
REGION = "eu-west-1"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def record(source: str, name: str, params: dict[str, Any] | None = None, *,
           at: datetime = T0, **extra: Any) -> dict[str, Any]:
    """A management event as CloudTrail writes it (eventVersion 1.09)."""
    return {
        "eventVersion": "1.09", "eventID": f"{name}-{at.isoformat()}-{len(str(params))}",
        "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                         "accountId": ACCOUNT, "accessKeyId": "AKIAEXAMPLE",
                         "userName": "alice"},
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": source,
        "eventName": name, "awsRegion": REGION, "sourceIPAddress": "198.51.100.7",
        "requestParameters": params, "responseElements": None,
        "recipientAccountId": ACCOUNT, **extra,
    }


def tally_of(*records: dict[str, Any], before: datetime | None = None,
             since: datetime | None = None) -> Tally:
    tally = Tally(before=before, since=since)
    for each in records:
        tally.add(each)
    return tally


# --- IAM's evaluation ---------------------------------------------------------------


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_allowed_is_iams_evaluation_of_one_identity_policy() -> None:
    bucket = "arn:aws:s3:::reports/*"
    policy = doc({"Effect": "Allow", "Action": "S3:get*", "Resource": bucket})
    assert allowed(policy, "s3:GetObject", "arn:aws:s3:::reports/q1.csv")  # any case
    assert not allowed(policy, "s3:GetObject", "arn:aws:s3:::Reports/q1.csv")  # resources
    assert not allowed(policy, "s3:PutObject", "arn:aws:s3:::reports/q1.csv")
    assert not allowed(policy, "s3:GetObject", "*")  # a resource not named: only "*" does
    denied = doc({"Effect": "Allow", "Action": "*", "Resource": "*"},
                 {"Effect": "Deny", "Action": "s3:GetObject", "Resource": bucket})
    assert not allowed(denied, "s3:GetObject", "arn:aws:s3:::reports/a")  # deny wins
    assert allowed(denied, "s3:GetObject", "arn:aws:s3:::other/a")
    conditional = doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                       "Condition": {"Bool": {"aws:SecureTransport": "true"}}})
    assert not allowed(conditional, "s3:GetObject", "*")  # not proof without the context
    not_action = doc({"Effect": "Allow", "NotAction": "iam:*", "NotResource": bucket})
    assert allowed(not_action, "s3:GetObject", "arn:aws:s3:::other/a")
    assert not allowed(not_action, "iam:GetUser", "*")
    assert not allowed(not_action, "s3:GetObject", "arn:aws:s3:::reports/a")


def test_known_actions_holds_the_document_to_iams_catalog() -> None:
    policy = doc({"Sid": "A", "Effect": "Allow", "Resource": "*",
                  "Action": ["s3:GetObject", "apigateway:GetRestApis", "s3:Get*"]},
                 {"Sid": "B", "Effect": "Allow", "Action": "tagging:GetResources",
                  "Resource": "*"},
                 {"Sid": "C", "Effect": "Allow", "Action": "s3:Nope*", "Resource": "*"},
                 {"Sid": "D", "Effect": "Deny", "Action": "made:Up", "Resource": "*"})
    kept, removed = known_actions(policy)
    assert removed == ("apigateway:GetRestApis", "tagging:GetResources", "s3:Nope*")
    assert [s["Sid"] for s in kept["Statement"]] == ["A", "D"]
    assert kept["Statement"][0]["Action"] == ["s3:GetObject", "s3:Get*"]


# --- the proof ----------------------------------------------------------------------


def test_every_used_call_is_proved_against_the_proposal() -> None:
    tally = tally_of(
        record("s3.amazonaws.com", "GetObject", {"bucketName": "reports", "key": "a"}),
        record("iam.amazonaws.com", "GetRole", {"roleName": "app"}),
        record("s3.amazonaws.com", "ListBuckets", {}),
        record("lambda.amazonaws.com", "CreateFunction20150331",
               {"functionName": "f", "role": f"arn:aws:iam::{ACCOUNT}:role/service-role/x"}))
    drawn = draw(tally, "alice", start=T0 - timedelta(days=90), days=90, data_events=None)
    assert drawn.proof.unproven == ()
    assert drawn.proof.checked == drawn.proof.allowed == 6  # GetRole: with and without path
    assert drawn.any_resource == {
        "s3:ListAllMyBuckets": "IAM takes no resource ARN for this action"}


def test_a_proposal_widened_to_fit_is_still_proved() -> None:
    usages = [Usage(f"s3:Get{n}Thing{n}", (f"arn:aws:s3:::bucket-{n}",), 1, T0, T0)
              for n in range(300)]
    proposal = propose(usages)
    assert proposal.collapsed
    assert proposal.chars <= MANAGED_POLICY_MAX_CHARS
    proof = prove(proposal.document, usages)
    assert proof.complete
    assert proof.checked == 300


def test_what_cannot_be_proved_is_listed_with_why() -> None:
    used = [Usage("s3:GetObject", ("arn:aws:s3:::a/*",), 1, T0, T0),
            Usage("ec2:DescribeInstances", (), 1, T0, T0, why_any="IAM takes no ARN")]
    narrow = doc({"Effect": "Allow", "Action": ["ec2:DescribeInstances"],
                  "Resource": "arn:aws:ec2:*:*:instance/*"})
    proof = prove(narrow, used, {"s3:NoSuchCall": 3}, ["made:Up"])
    assert [u.call for u in proof.unproven] == [
        "s3:NoSuchCall", "made:Up", "s3:GetObject on arn:aws:s3:::a/*",
        "ec2:DescribeInstances on *"]
    assert "3 events" in proof.unproven[0].why
    assert "IAM takes no ARN" in proof.unproven[3].why
    assert not proof.complete


def test_passrole_on_every_role_is_never_proposed() -> None:
    """The map asks for iam:PassRole on `*` when RunInstances names an instance profile
    (not its role): proposing it would let the user hand any role to a service."""
    tally = tally_of(record("ec2.amazonaws.com", "RunInstances", {
        "instanceType": "t3.micro",
        "iamInstanceProfile": {"arn": f"arn:aws:iam::{ACCOUNT}:instance-profile/p"}}))
    drawn = draw(tally, "alice", start=T0 - timedelta(days=90), days=90, data_events=None)
    actions = {a for s in drawn.proposal.document["Statement"] for a in s["Action"]}
    assert "ec2:RunInstances" in actions
    assert "iam:PassRole" not in actions
    assert drawn.proof.unproven == (f"iam:PassRole on *: {WITHHELD['iam:PassRole']}",)


def test_the_history_says_what_it_cannot_show() -> None:
    console = record("ec2.amazonaws.com", "DescribeInstances", {},
                     sessionCredentialFromConsole="true")
    new_api = record("lambda.amazonaws.com", "GetFunctionRecursionConfig",
                     {"functionName": "f"}, at=T0 + timedelta(minutes=1))
    drawn = draw(tally_of(console, new_api), "alice", start=T0 - timedelta(days=30),
                 days=30, data_events=None)
    lines = drawn.cannot_show
    assert lines[0].startswith(DATA_EVENTS)
    assert lines[0].endswith("respond harden alice --data-events s3://BUCKET/PREFIX")
    assert "(30 days back)" in lines[1]
    assert lines[2].startswith("1 of the calls came from console sessions")
    assert "lambda:GetFunctionRecursionConfig" in lines[3]
    read = draw(tally_of(console), "alice", start=T0, days=30,
                data_events="data events read from s3://trail: 3 of alice's")
    assert read.cannot_show[0] == "data events read from s3://trail: 3 of alice's"


# --- the grace period -----------------------------------------------------------------


def placed(days_ago: float, document: dict[str, Any] | None = None) -> grace.InPlace:
    return grace.InPlace(f"arn:aws:iam::{ACCOUNT}:policy/responder-proposed-alice",
                         T0 - timedelta(days=days_ago),
                         document or doc({"Effect": "Allow", "Action": "s3:GetObject",
                                          "Resource": "arn:aws:s3:::reports/*"}), True)


def test_nothing_is_offered_before_the_proposal_is_in_place() -> None:
    never = grace.judge("alice", None, T0, 14, denied={}, since_usages=())
    assert not never.ready
    assert "not applied" in never.reason
    detached = grace.judge("alice", grace.InPlace("arn", T0, {}, False), T0, 14, denied={},
                           since_usages=())
    assert not detached.ready
    assert "not attached" in detached.reason


def test_the_grace_period_must_pass_with_nothing_denied_and_nothing_outside() -> None:
    used = (Usage("s3:GetObject", ("arn:aws:s3:::reports/*",), 4, T0, T0),)
    early = grace.judge("alice", placed(3), T0, 14, denied={}, since_usages=used)
    assert not early.ready
    assert early.ends_at == "2026-11-12T00:00:00.000Z"
    assert "3.0 of 14 days" in early.reason
    ready = grace.judge("alice", placed(15), T0, 14, denied={}, since_usages=used)
    assert ready.ready
    assert ready.checked == 1
    refused = grace.judge("alice", placed(15), T0, 14,
                          denied={"sqs:SendMessage": (2, T0)}, since_usages=used)
    assert not refused.ready
    assert refused.denied == ("sqs:SendMessage: 2 times, last 2026-11-01T00:00:00.000Z",)
    outside = grace.judge("alice", placed(15), T0, 14, denied={}, since_usages=(
        *used, Usage("sns:Publish", ("arn:aws:sns:x:1:t",), 1, T0, T0)))
    assert not outside.ready
    assert outside.would_deny == ("sns:Publish on arn:aws:sns:x:1:t",)


@pytest.mark.parametrize("code", ["AccessDenied", "UnauthorizedOperation"])
def test_the_tally_counts_refusals_and_use_since_the_proposal(code: str) -> None:
    since = T0 + timedelta(days=1)
    tally = tally_of(
        record("sqs.amazonaws.com", "SendMessage", {}, errorCode=code),  # before: ignored
        record("sqs.amazonaws.com", "SendMessage", {}, errorCode=code,
               at=since + timedelta(hours=1)),
        record("s3.amazonaws.com", "ListBuckets", {}),
        record("s3.amazonaws.com", "ListBuckets", {}, at=since + timedelta(hours=2)),
        since=since)
    assert tally.denied == {"sqs:SendMessage": (1, since + timedelta(hours=1))}
    assert [(u.action, u.count) for u in tally.usages()] == [("s3:ListAllMyBuckets", 2)]
    assert [(u.action, u.count) for u in tally.since_usages()] == [("s3:ListAllMyBuckets", 1)]
