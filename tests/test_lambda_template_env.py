"""The Lambda handler, end to end, with exactly the environment deploy/template.yaml gives
ResponderFunction (issue 30, item 6).

The variables are read from the template, not written here: each !Ref, !GetAtt and !Sub
is resolved against resources made in moto the way the template declares them (the
journal table with the template's keys and indexes, the topic, the evidence bucket, the
scheduler role), so a variable the template renames, drops or points at the wrong
resource leaves the handler without its table, topic, bucket or role, and a test fails.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from conftest import REGION, Account, make_account
from finding_docs import fixture
from moto import mock_aws
from test_deploy import _sam_template

from responder import lambda_handler
from responder.drill.cloudtrail import CloudTrailFake
from responder.journal.dynamodb import DynamoDbJournal

ACCOUNT = "123456789012"  # moto's default account, the fixtures' account
OTHER_ACCOUNT = "222222222222"
STACK = "key-responder"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-ResponderFunction-AbC123"
FIXTURE_KEY = "AKIAEXAMPLEALICE0001"
LAMBDA_TMP = PurePosixPath("/tmp")  # noqa: S108 - Lambda's writable disk, moved to tmp_path
EVIDENCE_FILES = ("cloudtrail.jsonl", "report.md", "report.json")
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": "aws",
          "AWS::StackName": STACK, "AWS::URLSuffix": "amazonaws.com"}
NO_VALUE = object()


@dataclass
class Stack:
    """The template's resources the function's environment names, made in moto on first
    reference, and the intrinsic functions resolved against them and the parameters."""

    template: dict[str, Any]
    session: boto3.Session
    parameters: dict[str, Any] = field(default_factory=dict)
    made: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        defaults = {name: spec.get("Default") for name, spec in
                    self.template["Parameters"].items()}
        self.parameters = {**defaults, **self.parameters}

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=REGION)

    # -- intrinsic functions -------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in map(self.resolve, node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((name, args),) = node.items()
            functions: dict[str, Callable[[Any], Any]] = {
                "Ref": self._ref, "Fn::GetAtt": self._get_att, "Fn::Sub": self._sub,
                "Fn::If": self._if, "Fn::Not": lambda a: not self.resolve(a[0]),
                "Fn::Equals": lambda a: str(self.resolve(a[0])) == str(self.resolve(a[1])),
            }
            if name in functions:
                return functions[name](args)
            assert not name.startswith("Fn::"), f"the test cannot resolve {name}"
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.resource(name)["Ref"]

    def _get_att(self, args: list[str]) -> str:
        name, attribute = args
        return self.resource(name)[attribute]

    def _sub(self, args: Any) -> str:
        text, variables = (args, {}) if isinstance(args, str) else args

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                return self._get_att(name.split(".", 1))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", value, text)

    def _if(self, args: list[Any]) -> Any:
        condition, then, otherwise = args
        return self.resolve(then if self.resolve(self.template["Conditions"][condition])
                            else otherwise)

    # -- resources, made in moto as CloudFormation would ---------------------------------

    def resource(self, name: str) -> dict[str, str]:
        if name not in self.made:
            spec = self.template["Resources"][name]
            makers: dict[str, Callable[[str, dict[str, Any]], dict[str, str]]] = {
                "AWS::DynamoDB::Table": self._table, "AWS::SNS::Topic": self._topic,
                "AWS::S3::Bucket": self._bucket, "AWS::IAM::Role": self._role,
            }
            assert spec["Type"] in makers, f"{name} ({spec['Type']}): teach the test to make it"
            self.made[name] = makers[spec["Type"]](name, self.resolve(spec["Properties"]))
        return self.made[name]

    def _physical(self, name: str) -> str:
        return f"{STACK}-{name}-1A2B3C4D5E6F"

    def _table(self, name: str, props: dict[str, Any]) -> dict[str, str]:
        dynamodb = self.client("dynamodb")
        table = props.get("TableName") or self._physical(name)
        dynamodb.create_table(TableName=table, **{
            k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
                                  "BillingMode") if k in props})
        if "TimeToLiveSpecification" in props:
            dynamodb.update_time_to_live(TableName=table,
                                         TimeToLiveSpecification=props["TimeToLiveSpecification"])
        arn = dynamodb.describe_table(TableName=table)["Table"]["TableArn"]
        return {"Ref": table, "Arn": arn}

    def _topic(self, name: str, props: dict[str, Any]) -> dict[str, str]:
        topic = props.get("TopicName") or self._physical(name)
        arn = self.client("sns").create_topic(Name=topic)["TopicArn"]
        return {"Ref": arn, "TopicArn": arn, "TopicName": topic}

    def _bucket(self, name: str, props: dict[str, Any]) -> dict[str, str]:
        s3 = self.client("s3")
        bucket = props.get("BucketName") or self._physical(name).lower()
        s3.create_bucket(Bucket=bucket)
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=bucket,
                                     VersioningConfiguration=props["VersioningConfiguration"])
        return {"Ref": bucket, "Arn": f"arn:aws:s3:::{bucket}"}

    def _role(self, name: str, props: dict[str, Any]) -> dict[str, str]:
        role = props.get("RoleName") or self._physical(name)
        made = self.client("iam").create_role(
            RoleName=role, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))
        return {"Ref": role, "Arn": made["Role"]["Arn"], "RoleId": made["Role"]["RoleId"]}

    # -- the function's environment ------------------------------------------------------

    def environment(self, tmp_path: Path) -> dict[str, str]:
        """ResponderFunction's Environment.Variables, resolved; a path on Lambda's /tmp
        is moved under tmp_path (same name below it)."""
        function = self.template["Resources"]["ResponderFunction"]["Properties"]
        env: dict[str, str] = {}
        for name, value in function["Environment"]["Variables"].items():
            resolved = self.resolve(value)
            if resolved is NO_VALUE:
                continue
            text = str(resolved)
            if PurePosixPath(text).is_relative_to(LAMBDA_TMP):
                text = str(tmp_path / PurePosixPath(text).relative_to(LAMBDA_TMP))
            env[name] = text
        return env


@dataclass(frozen=True)
class Deployed:
    """moto with the stack's resources, the environment set from the template, a queue
    subscribed to the incident topic (the pager), and a test account."""

    stack: Stack
    env: dict[str, str]
    account: Account
    pager: str

    def notices(self) -> list[dict[str, Any]]:
        sqs = self.stack.client("sqs")
        got = sqs.receive_message(QueueUrl=self.pager, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]

    def keys(self, account: Account, user: str) -> dict[str, str]:
        return {k["AccessKeyId"]: k["Status"] for k in
                account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def _apply(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Only the template's variables (plus instant retries) reach the handler."""
    for name in [n for n in os.environ if n.startswith("RESPONDER_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RESPONDER_RETRY_INITIAL_SECONDS", "0")
    monkeypatch.setenv("RESPONDER_RETRY_MAX_SECONDS", "0")


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Deployed]:
    with mock_aws(), CloudTrailFake().installed():
        session = boto3.Session(region_name=REGION)
        stack = Stack(_sam_template(), session)
        env = stack.environment(tmp_path)
        # Without it the handler would write to the real /tmp/responder.
        assert "RESPONDER_HOME" in env, "the template no longer sets RESPONDER_HOME"
        _apply(monkeypatch, env)
        topic = stack.resource("IncidentTopic")["Ref"]
        sqs = session.client("sqs", region_name=REGION)
        pager = sqs.create_queue(QueueName="pager")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=pager, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        session.client("sns", region_name=REGION).subscribe(TopicArn=topic, Protocol="sqs",
                                                            Endpoint=queue_arn)
        yield Deployed(stack, env, make_account(session), pager)


def _guardduty_event(key: str, finding_id: str, account: str = ACCOUNT) -> dict[str, Any]:
    """tests/fixtures/findings/guardduty-eventbridge.json about bob's key."""
    text = json.dumps(fixture("guardduty-eventbridge.json"))
    text = text.replace(FIXTURE_KEY, key).replace("alice", "bob").replace(ACCOUNT, account)
    event: dict[str, Any] = json.loads(text)
    event["detail"]["id"] = finding_id
    return event


def test_template_environment_names_what_the_handler_reads(deployed: Deployed) -> None:
    """Every variable resolved to the resource the template means (the table's name, the
    topic's ARN, the bucket's name, the scheduler role's ARN)."""
    made = deployed.stack.made
    assert set(made) >= {"JournalTable", "IncidentTopic", "EvidenceBucket", "SchedulerRole"}
    values = set(deployed.env.values())
    for name, attribute in (("JournalTable", "Ref"), ("IncidentTopic", "Ref"),
                            ("EvidenceBucket", "Ref"), ("SchedulerRole", "Arn")):
        assert made[name][attribute] in values, f"no variable names {name}"


@pytest.mark.slow  # about 5 s: some 250 calls to moto, the journal's among them
def test_handler_contains_a_guardduty_finding_with_the_template_environment(
        deployed: Deployed) -> None:
    """A GuardDuty finding, through the handler, with only the template's variables: the
    key ends Inactive, the incident is in the template's DynamoDB table, the notice on
    its SNS topic, the evidence in its bucket, the sweeps scheduled with its role."""
    account, stack = deployed.account, deployed.stack
    context = SimpleNamespace(invoked_function_arn=FUNCTION_ARN)
    result = lambda_handler.handler(_guardduty_event(account.bob_key, "gd-template-env"),
                                    context)
    assert result["status"] == "completed", result
    incident = result["incident_id"]
    assert deployed.keys(account, "bob")[account.bob_key] == "Inactive"

    table = stack.made["JournalTable"]["Ref"]
    journal = DynamoDbJournal(table, client=stack.client("dynamodb"))
    assert result["finding_id"] == "guardduty:gd-template-env"
    record = journal.find_by_finding(result["finding_id"])
    assert record is not None, f"no incident in {table}"
    assert record.id == incident
    assert [r.id for r in journal.history_for_key(account.bob_key)] == [incident]

    (notice,) = deployed.notices()
    assert notice["TopicArn"] == stack.made["IncidentTopic"]["Ref"]
    assert incident in notice["Message"]
    assert account.bob_key in notice["Message"]

    bucket = stack.made["EvidenceBucket"]["Ref"]
    listed = stack.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"incidents/{incident}/")
    stored = {o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", [])}
    assert set(EVIDENCE_FILES) <= stored, stored
    assert result["evidence"]["s3_uri"] == f"s3://{bucket}/incidents/{incident}/"

    schedules = stack.client("scheduler").list_schedules()["Schedules"]
    assert schedules, "no sweep was scheduled"
    for listed_schedule in schedules:
        target = stack.client("scheduler").get_schedule(Name=listed_schedule["Name"])["Target"]
        assert target["RoleArn"] == stack.made["SchedulerRole"]["Arn"]
        assert target["Arn"] == FUNCTION_ARN

    home = Path(deployed.env["RESPONDER_HOME"])
    assert not (home / "responder.db").exists(), "the journal went to a local file"


@pytest.mark.slow  # about 5 s, as above
def test_other_account_is_reached_through_the_template_role_name(
        deployed: Deployed) -> None:
    """A finding about another account: the function assumes the role the template's
    RESPONDER_ROLE_ARN_TEMPLATE names there (ResponderRoleName), and contains the key."""
    role_name = deployed.stack.parameters["ResponderRoleName"]
    sts = deployed.stack.client("sts")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/bootstrap",
                            RoleSessionName="setup")["Credentials"]
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name=REGION)
    session.client("iam").create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")
    other = make_account(session)

    result = lambda_handler.handler(
        _guardduty_event(other.bob_key, "gd-other-account", OTHER_ACCOUNT), None)
    assert result["status"] == "completed", result
    assert result["account_id"] == OTHER_ACCOUNT
    assert deployed.keys(other, "bob")[other.bob_key] == "Inactive"
    assert deployed.keys(deployed.account, "bob")[deployed.account.bob_key] == "Active"


def test_slack_parameter_sets_the_webhook_the_handler_reads(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SlackWebhookUrl empty (the default): no RESPONDER_SLACK_WEBHOOK; set: the handler's
    options carry it."""
    url = "https://hooks.slack.example/services/T0/B0/x"
    with mock_aws():
        env = Stack(_sam_template(), boto3.Session(region_name=REGION)).environment(tmp_path)
    assert "RESPONDER_SLACK_WEBHOOK" not in env
    with mock_aws():
        env = Stack(_sam_template(), boto3.Session(region_name=REGION),
                    {"SlackWebhookUrl": url}).environment(tmp_path)
        _apply(monkeypatch, env)
        options = lambda_handler._context(None).options
    assert env["RESPONDER_SLACK_WEBHOOK"] == url
    assert options.slack_webhook == url
