"""deploy/template.yaml: the Lambda role holds exactly what the steps declare."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from responder.journal.dynamodb import TABLE_DEFINITION
from responder.steps import required_permissions

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !GetAtt, ...) as plain data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node)
    else:
        value = loader.construct_mapping(node)  # type: ignore[arg-type]
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


def _template() -> dict[str, Any]:
    return dict(yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader))  # noqa: S506 - SafeLoader subclass


def _function() -> dict[str, Any]:
    return dict(_template()["Resources"]["ResponderFunction"]["Properties"])


def test_role_has_exactly_the_step_permissions() -> None:
    """The ResponderSteps statement lists every declared permission and nothing else."""
    statements = {
        s["Sid"]: s for policy in _function()["Policies"] if isinstance(policy, dict)
        for s in policy["Statement"]
    }
    assert sorted(statements["ResponderSteps"]["Action"]) == required_permissions()
    assert statements["ResponderSteps"]["Resource"] == "*"
    journal_actions = set(statements["Journal"]["Action"])
    assert all(a.startswith("dynamodb:") for a in journal_actions)
    assert "dynamodb:DeleteTable" not in journal_actions
    assert statements["ReachOtherAccounts"]["Action"] == "sts:AssumeRole"


def test_handler_and_rules_point_at_real_things() -> None:
    """The handler path imports; the rules cover GuardDuty, Health and Security Hub."""
    from responder import lambda_handler

    function = _function()
    module, name = function["Handler"].rsplit(".", 1)
    assert module == lambda_handler.__name__
    assert callable(getattr(lambda_handler, name))
    sources = {e["Properties"]["Pattern"]["source"][0] for e in function["Events"].values()}
    assert sources == {"aws.guardduty", "aws.health", "aws.securityhub"}
    assert function["DeadLetterQueue"]["Type"] == "SQS"
    env = function["Environment"]["Variables"]
    assert {"RESPONDER_TABLE", "RESPONDER_NOTIFY_TOPIC", "RESPONDER_ROLE_ARN_TEMPLATE"} <= set(env)


def test_table_is_the_one_the_dynamodb_journal_creates() -> None:
    """Keys, attributes, indexes, billing and TTL equal DynamoDbJournal's own definition."""
    table = _template()["Resources"]["JournalTable"]["Properties"]
    for field in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode"):
        assert table[field] == TABLE_DEFINITION[field], field
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


_NO_VALUE = object()


def _resolve(node: Any, parameters: dict[str, Any]) -> Any:
    """The template fragment as CloudFormation would see it with these parameter values:
    Ref, Fn::If, Fn::Not and Fn::Equals evaluated, AWS::NoValue dropped."""
    template = _template()
    values: dict[str, Any] = {name: spec.get("Default")
                              for name, spec in template["Parameters"].items()}
    values.update(parameters)
    values["AWS::NoValue"] = _NO_VALUE

    def if_(args: list[Any]) -> Any:
        name, then, otherwise = args
        return evaluate(then if evaluate(template["Conditions"][name]) else otherwise)

    functions: dict[str, Callable[[Any], Any]] = {
        "Ref": lambda name: values.get(name, {"Ref": name}),
        "If": if_,
        "Not": lambda args: not evaluate(args[0]),
        "Equals": lambda args: str(evaluate(args[0])) == str(evaluate(args[1])),
    }

    def evaluate(value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in map(evaluate, value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and next(iter(value)) in functions:
            ((name, args),) = value.items()
            return functions[name](args)
        resolved = {k: evaluate(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    return evaluate(node)


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in _template()["Resources"].items() if r["Type"] == kind}


def test_evidence_bucket_is_private_versioned_and_encrypted() -> None:
    """All public access blocked, versioned, SSE-S3 (what the archive step asks for, so the
    function needs no KMS permission), no ACLs, kept when the stack goes, TLS only."""
    from responder.steps import archive

    resource = _template()["Resources"]["EvidenceBucket"]
    assert resource["Type"] == "AWS::S3::Bucket"
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"
    bucket = resource["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True,
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": archive.ENCRYPTION}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]

    policies = [p["Properties"] for p in _resources("AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": "EvidenceBucket"}]
    assert len(policies) == 1
    (deny,) = [s for s in policies[0]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"GetAtt": "EvidenceBucket.Arn"} in deny["Resource"]
    assert {"Sub": "${EvidenceBucket.Arn}/*"} in deny["Resource"]
    assert not [s for s in policies[0]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]


def test_function_is_given_the_bucket_and_the_scheduler_role(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment names the bucket and the scheduler role, under the names the
    handler reads (with the role set, the handler schedules sweeps on itself)."""
    from responder import lambda_handler

    env = _function()["Environment"]["Variables"]
    assert env["RESPONDER_EVIDENCE_BUCKET"] == {"Ref": "EvidenceBucket"}
    assert env["RESPONDER_SCHEDULER_ROLE_ARN"] == {"GetAtt": "SchedulerRole.Arn"}
    resources = _template()["Resources"]
    assert resources["SchedulerRole"]["Type"] == "AWS::IAM::Role"

    for name in env:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RESPONDER_SCHEDULER_TARGET_ARN", raising=False)
    monkeypatch.setenv("RESPONDER_EVIDENCE_BUCKET", "evidence-bucket")
    monkeypatch.setenv("RESPONDER_SCHEDULER_ROLE_ARN", "arn:aws:iam::111122223333:role/sched")
    context = SimpleNamespace(
        invoked_function_arn="arn:aws:lambda:us-east-1:111122223333:function:responder")
    ctx = lambda_handler._context(context)
    assert ctx.options.evidence_bucket == "evidence-bucket"
    assert ctx.scheduler is not None
    assert ctx.scheduler.role_arn == "arn:aws:iam::111122223333:role/sched"
    assert ctx.scheduler.target_arn == context.invoked_function_arn


def test_scheduler_role_only_lets_the_scheduler_invoke_the_function() -> None:
    """Trusted by scheduler.amazonaws.com of this account alone; every permission it has,
    wherever attached, is lambda:InvokeFunction on the responder function."""
    role = _template()["Resources"]["SchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow"
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role

    attached = [
        r["Properties"]["PolicyDocument"]
        for kind in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for r in _resources(kind).values()
        if r["Properties"].get("RoleName") == {"Ref": "SchedulerRole"}
        or {"Ref": "SchedulerRole"} in r["Properties"].get("Roles", [])]
    statements = [s for document in attached for s in document["Statement"]]
    assert statements, "the scheduler role may invoke nothing"
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Action"] in ("lambda:InvokeFunction", ["lambda:InvokeFunction"])
        assert statement["Resource"] in ({"GetAtt": "ResponderFunction.Arn"},
                                         [{"GetAtt": "ResponderFunction.Arn"}])
        assert "NotAction" not in statement
        assert "NotResource" not in statement


def test_retention_parameter_toggles_object_lock() -> None:
    """EvidenceRetentionDays 0 (the default): no Object Lock. Above 0: Object Lock with a
    default GOVERNANCE retention of that many days, on a versioned bucket."""
    parameter = _template()["Parameters"]["EvidenceRetentionDays"]
    assert parameter["Type"] == "Number"
    bucket = _template()["Resources"]["EvidenceBucket"]["Properties"]

    off = _resolve(bucket, {})
    assert "ObjectLockEnabled" not in off
    assert "ObjectLockConfiguration" not in off
    assert off == _resolve(bucket, {"EvidenceRetentionDays": 0})

    on = _resolve(bucket, {"EvidenceRetentionDays": 30})
    assert on["ObjectLockEnabled"] is True
    assert on["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}}
    assert on["VersioningConfiguration"] == {"Status": "Enabled"}
