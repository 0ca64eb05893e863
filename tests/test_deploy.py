"""deploy/template.yaml: the Lambda role holds exactly what the steps declare."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from responder import iam_policy
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


def test_role_has_exactly_the_generated_lambda_policy() -> None:
    """The function's own statements are the `lambda` use of responder.iam_policy
    (regenerate: python -m responder.iam_policy); the journal and the cross-account role
    are the template's own."""
    function = _sam_template()["Resources"]["ResponderFunction"]["Properties"]
    statements = [s for policy in function["Policies"] if isinstance(policy, dict)
                  for s in policy["Statement"]]
    generated = [s for s in statements if s["Sid"] not in {"Journal", "ReachOtherAccounts"}]
    assert generated == iam_policy.template_statements()
    assert TEMPLATE.read_text() == iam_policy.with_template_statements(TEMPLATE.read_text())
    by_sid = {s["Sid"]: s for s in statements}
    assert all(a.startswith("dynamodb:") for a in by_sid["Journal"]["Action"])
    assert "dynamodb:DeleteTable" not in by_sid["Journal"]["Action"]
    assert by_sid["ReachOtherAccounts"]["Action"] == "sts:AssumeRole"
    granted = {a for s in generated if s["Effect"] == "Allow" for a in s["Action"]}
    assert set(required_permissions()) - granted == {
        "iam:AttachUserPolicy", "iam:CreatePolicy", "iam:CreatePolicyVersion",
        "iam:DeletePolicyVersion", "iam:ListPolicyVersions",  # harden --apply's: not here
        "iam:DeleteRolePolicy", "iam:DeleteUserPolicy",  # rollback's: by hand, on call
        "s3:ListBucket",  # harden --data-events reading a trail's bucket: on call
        "secretsmanager:GetSecretValue"}  # rotate's test of the new key
    assert not [s for s in generated if s["Effect"] == "Allow" and s["Resource"] == "*"
                and set(s["Action"]) - iam_policy.UNSCOPED]


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


# -- the template as SAM CLI packages it and the SAM transform expands it (issue 30) -----

REPO = TEMPLATE.parent.parent
DEPLOY_DOC = REPO / "docs" / "deploy.md"
ARTIFACT_BUCKET = "sam-artifacts-bucket"
ARTIFACT_KEY = "0123456789abcdef0123456789abcdef"
BASIC_EXECUTION_ROLE = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
# The managed policies the template names, as SAM would find them in IAM (offline here).
MANAGED_POLICIES = {"AWSLambdaBasicExecutionRole": BASIC_EXECUTION_ROLE}
EVENTS = ("GuardDutyAccessKeyFindings", "HealthExposedCredentials",
          "SecurityHubAccessKeyFindings")
# What the stack holds once CloudFormation has run the SAM transform: nothing else.
TRANSFORMED_RESOURCES = {
    "IncidentTopic": "AWS::SNS::Topic",
    "DeadLetterQueue": "AWS::SQS::Queue",
    "JournalTable": "AWS::DynamoDB::Table",
    "EvidenceBucket": "AWS::S3::Bucket",
    "EvidenceBucketPolicy": "AWS::S3::BucketPolicy",
    "SchedulerRole": "AWS::IAM::Role",
    "SchedulerInvokePolicy": "AWS::IAM::RolePolicy",
    "ResponderFunction": "AWS::Lambda::Function",
    "ResponderFunctionRole": "AWS::IAM::Role",
    **{f"ResponderFunction{event}": "AWS::Events::Rule" for event in EVENTS},
    **{f"ResponderFunction{event}Permission": "AWS::Lambda::Permission" for event in EVENTS},
}
PSEUDO_PARAMETERS = {"AWS::AccountId", "AWS::NoValue", "AWS::Partition", "AWS::Region",
                     "AWS::StackName", "AWS::StackId", "AWS::URLSuffix"}


class _SamLoader(yaml.SafeLoader):
    """Reads short-form tags as CloudFormation's JSON form ({"Fn::GetAtt": [r, a]}, ...),
    as SAM CLI hands the template to the SAM transform."""


def _long_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    value = _tag(loader, suffix, node)[suffix]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_SamLoader.add_multi_constructor("!", _long_form)


def _sam_template() -> dict[str, Any]:
    return dict(yaml.load(TEMPLATE.read_text(), Loader=_SamLoader))  # noqa: S506 - SafeLoader subclass


def _packaged(template: dict[str, Any]) -> dict[str, Any]:
    """What `sam deploy` / `sam package` make of the template before CloudFormation sees
    it (samcli/lib/package: ResourceZip.export, upload_local_artifacts): a CodeUri that
    is a literal local path, relative to the template's folder, is zipped, uploaded and
    replaced by its s3:// URI. A CodeUri that is not a string (a !Ref) is left as it is,
    and the transform then refuses it."""
    function = template["Resources"]["ResponderFunction"]["Properties"]
    code_uri = function["CodeUri"]
    assert isinstance(code_uri, str), f"SAM CLI uploads only a literal path, not {code_uri}"
    assert not code_uri.startswith("s3://"), "the template names the local build folder"
    function["CodeUri"] = f"s3://{ARTIFACT_BUCKET}/{ARTIFACT_KEY}"
    return template


def _transformed(monkeypatch: pytest.MonkeyPatch, parameters: dict[str, Any] | None = None,
                 *, package: bool = True) -> dict[str, Any]:
    """The packaged template through the SAM transform (aws-sam-translator, the library
    SAM CLI and CloudFormation's AWS::Serverless transform run), offline: the managed
    policy names SAM does not bundle are looked up in MANAGED_POLICIES, not in IAM."""
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    class OfflinePolicies(ManagedPolicyLoader):
        """The managed-policy map without listing IAM's policies."""

        def __init__(self) -> None:
            super().__init__(iam_client=None)  # type: ignore[arg-type]

        def load(self) -> dict[str, str]:
            return dict(MANAGED_POLICIES)

    monkeypatch.setattr(ArnGenerator, "BOTO_SESSION_REGION_NAME", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    values = {name: spec["Default"] for name, spec in _template()["Parameters"].items()}
    values.update(parameters or {})
    template = _packaged(_sam_template()) if package else _sam_template()
    return dict(transform(template, values, OfflinePolicies()))


def _references(node: Any) -> Iterator[str]:
    """Every logical id or parameter a Ref, Fn::GetAtt or Fn::Sub in `node` names."""
    if isinstance(node, list):
        for item in node:
            yield from _references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                yield str(value)
            elif key == "Fn::GetAtt":
                yield str(value[0] if isinstance(value, list) else value.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    yield name.split(".", 1)[0]
                if isinstance(value, list):
                    yield from _references(value[1])
            else:
                yield from _references(value)


def test_code_uri_is_the_folder_the_deploy_doc_builds() -> None:
    """CodeUri is a literal path (SAM CLI skips a !Ref, and the transform accepts only an
    s3:// URI), relative to deploy/: the folder docs/deploy.md's pip command fills."""
    code_uri = _sam_template()["Resources"]["ResponderFunction"]["Properties"]["CodeUri"]
    assert isinstance(code_uri, str), f"SAM CLI uploads only a literal path, not {code_uri}"
    folder = (TEMPLATE.parent / code_uri).resolve()
    assert folder == REPO / "build" / "lambda"
    deploy = DEPLOY_DOC.read_text().split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]
    built = re.findall(r"\s-t (\S+)", deploy)  # every pip install's target folder
    assert re.search(r"pip install \. -t ", deploy), "the Deploy section builds no package"
    assert {(REPO / path).resolve() for path in built} == {folder}
    assert "sam deploy --guided" in deploy
    assert "CodeUri" not in _template()["Parameters"]


def test_unpackaged_template_is_refused_by_the_transform(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Why packaging is a step: the transform takes no local path (nor a !Ref)."""
    from samtranslator.model.exceptions import InvalidDocumentException

    with pytest.raises(InvalidDocumentException, match="CodeUri"):
        _transformed(monkeypatch, package=False)


@pytest.mark.parametrize("parameters", [
    {},
    {"ResponderRoleName": "IncidentResponder", "SlackWebhookUrl": "https://hooks.example/x",
     "EvidenceRetentionDays": 30},
], ids=["defaults", "every-parameter-set"])
def test_sam_transform_yields_the_stack(monkeypatch: pytest.MonkeyPatch,
                                        parameters: dict[str, Any]) -> None:
    """The packaged template transforms, and yields exactly the resources the docs name:
    the function (code from the uploaded zip, its role, its dead-letter queue), its role,
    one EventBridge rule per source targeting the function with a Lambda permission for
    that rule, and the table, bucket, topic, queue and scheduler role unchanged."""
    source = _sam_template()
    out = _transformed(monkeypatch, parameters)
    resources = out["Resources"]
    assert {name: r["Type"] for name, r in resources.items()} == TRANSFORMED_RESOURCES

    sam = source["Resources"]["ResponderFunction"]["Properties"]
    function = resources["ResponderFunction"]["Properties"]
    assert function["Code"] == {"S3Bucket": ARTIFACT_BUCKET, "S3Key": ARTIFACT_KEY}
    for field in ("Handler", "Runtime", "Timeout", "MemorySize",
                  "ReservedConcurrentExecutions", "Environment"):
        assert function[field] == sam[field], field
    assert function["Role"] == {"Fn::GetAtt": ["ResponderFunctionRole", "Arn"]}
    assert function["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": ["DeadLetterQueue",
                                                                         "Arn"]}}

    role = resources["ResponderFunctionRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["lambda.amazonaws.com"]}
    assert trust["Action"] == ["sts:AssumeRole"]
    managed = [p for p in sam["Policies"] if isinstance(p, str)]
    assert BASIC_EXECUTION_ROLE in role["ManagedPolicyArns"]
    assert len(role["ManagedPolicyArns"]) == len(managed)
    for arn in role["ManagedPolicyArns"]:  # a name SAM cannot resolve stays a bare name
        assert arn.startswith("arn:aws:iam::aws:policy/"), arn
    declared = [s for p in sam["Policies"] if isinstance(p, dict) for s in p["Statement"]]
    granted = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    dead_letters = {"Action": "sqs:SendMessage", "Effect": "Allow",
                    "Resource": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    canonical = partial(json.dumps, sort_keys=True)
    assert sorted(map(canonical, granted)) == sorted(map(canonical, [*declared, dead_letters])), \
        "the role holds the template's statements, unchanged, and the dead-letter send"

    for event in EVENTS:
        rule = resources[f"ResponderFunction{event}"]["Properties"]
        spec = sam["Events"][event]["Properties"]
        assert rule["EventPattern"] == spec["Pattern"], event
        assert rule.get("State", "ENABLED") == "ENABLED"
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["ResponderFunction", "Arn"]}
        assert target.get("RetryPolicy") == spec.get("RetryPolicy")
        permission = resources[f"ResponderFunction{event}Permission"]["Properties"]
        assert permission == {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": "ResponderFunction"},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [f"ResponderFunction{event}", "Arn"]}}

    for name in ("IncidentTopic", "DeadLetterQueue", "JournalTable", "EvidenceBucket",
                 "EvidenceBucketPolicy", "SchedulerRole", "SchedulerInvokePolicy"):
        assert resources[name] == source["Resources"][name], name
    assert out["Outputs"] == source["Outputs"]
    assert "Transform" not in out

    known = set(resources) | set(out["Parameters"]) | PSEUDO_PARAMETERS
    dangling = {name for name in _references([resources, out["Outputs"]]) if name not in known}
    assert not dangling, f"references to nothing: {sorted(dangling)}"
