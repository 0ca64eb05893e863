"""Findings in, incidents out: `respond finding`, the Lambda handler, dedupe, accounts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION, Account, CliResult, Faults, make_account
from finding_docs import UNKNOWN_KEY, asff_finding, guardduty_event, securityhub_event
from moto import mock_aws

from responder import lambda_handler
from responder.drill.cloudtrail import CloudTrailFake
from responder.journal.dynamodb import DynamoDbJournal

Cli = Callable[..., CliResult]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "findings"
FIXTURE_KEY = "AKIAEXAMPLEALICE0001"
OTHER_ACCOUNT = "222222222222"


def _event(name: str, key: str | None = None, **replace: str) -> dict[str, Any]:
    """A fixture with its example key swapped for a real one of the test account."""
    text = (FIXTURES / name).read_text()
    if key:
        text = text.replace(FIXTURE_KEY, key)
    for old, new in replace.items():
        text = text.replace(old, new)
    return dict(json.loads(text))


def _write(tmp_path: Path, event: dict[str, Any], name: str = "event.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(event))
    return str(path)


def _keys(account: Account, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"]
            for k in account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def test_finding_runs_the_playbook_once(server_account: Account, cli: Cli,
                                        tmp_path: Path) -> None:
    """A GuardDuty event contains the key it names; the same finding again is refused
    (exit 3) naming the first incident, and nothing more happens."""
    path = _write(tmp_path, _event("guardduty-eventbridge.json", server_account.bob_key,
                                   alice="bob"))
    first = cli("finding", path, "--output", "json")
    assert first.code == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["status"] == "completed"
    assert _keys(server_account, "bob")[server_account.bob_key] == "Inactive"
    again = cli("finding", path, "--output", "json")
    assert again.code == 3
    assert doc["incident_id"] in again.stderr
    status = json.loads(cli("status", "--output", "json").stdout)["incidents"]
    assert len(status) == 1


@pytest.mark.parametrize(("fixture", "code", "words"), [
    ("guardduty-sample.json", 3, "sample"),
    ("guardduty-root.json", 3, "root"),
    ("guardduty-no-key.json", 3, "no access key"),
    ("guardduty-low-severity.json", 3, "min_severity"),
    ("not-a-finding.json", 2, ""),
    ("broken.json", 2, "broken.json"),
])
def test_refused_findings_change_nothing(server_account: Account, cli: Cli, fixture: str,
                                         code: int, words: str) -> None:
    """Each refusal: its exit code, one line naming the reason, no incident, no change."""
    before = _keys(server_account, "alice")
    result = cli("finding", str(FIXTURES / fixture))
    assert result.code == code, result.stderr
    assert words.lower() in result.stderr.lower()
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert _keys(server_account, "alice") == before
    assert json.loads(cli("status", "--output", "json").stdout)["incidents"] == []


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[DynamoDbJournal]:
    """In-process moto with the DynamoDB journal table, as the SAM template makes it."""
    with mock_aws(), CloudTrailFake().installed():
        client = boto3.client("dynamodb", region_name=REGION)
        DynamoDbJournal.create_table(client, "journal")
        monkeypatch.setenv("RESPONDER_TABLE", "journal")
        monkeypatch.setenv("RESPONDER_HOME", str(tmp_path / "lambda"))
        monkeypatch.setenv("RESPONDER_RETRY_INITIAL_SECONDS", "0")
        monkeypatch.setenv("RESPONDER_RETRY_MAX_SECONDS", "0")
        yield DynamoDbJournal("journal", client=client)


def test_lambda_contains_and_deduplicates(lambda_env: DynamoDbJournal) -> None:
    """The handler runs the playbook with the DynamoDB journal; EventBridge delivering the
    same event twice yields one incident."""
    account = make_account(boto3.Session(region_name=REGION))
    event = _event("guardduty-eventbridge.json", account.bob_key, alice="bob")
    first = lambda_handler.handler(event, None)
    assert first["status"] == "completed"
    assert _keys(account, "bob")[account.bob_key] == "Inactive"
    second = lambda_handler.handler(event, None)
    assert second["incident_id"] == first["incident_id"]
    assert len(lambda_env.history_for_key(account.bob_key)) == 1


def test_lambda_refuses_a_sample_finding(lambda_env: DynamoDbJournal) -> None:
    """A sample finding returns a refusal and opens no incident."""
    result = lambda_handler.handler(_event("guardduty-sample.json"), None)
    assert result["status"] == "refused"
    assert "sample" in result["error"].lower()
    assert lambda_env.recent() == []


def _other_account() -> Account:
    """Credentials inside OTHER_ACCOUNT (moto accounts are chosen by the assumed role)."""
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/bootstrap",
        RoleSessionName="setup")["Credentials"]
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name=REGION)
    session.client("iam").create_role(RoleName="KeyResponder", AssumeRolePolicyDocument="{}")
    return make_account(session)


def test_cross_account_finding_assumes_the_role(
    lambda_env: DynamoDbJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finding about another account is handled there, through the role template; the
    key in that account ends Inactive and the home account is untouched."""
    home = make_account(boto3.Session(region_name=REGION))
    other = _other_account()
    monkeypatch.setenv("RESPONDER_ROLE_ARN_TEMPLATE", "arn:aws:iam::{account_id}:role/KeyResponder")
    event = _event("guardduty-eventbridge.json", other.bob_key, alice="bob",
                   **{"123456789012": OTHER_ACCOUNT})
    result = lambda_handler.handler(event, None)
    assert result["status"] == "completed", result
    assert result["account_id"] == OTHER_ACCOUNT
    assert _keys(other, "bob")[other.bob_key] == "Inactive"
    assert _keys(home, "bob")[home.bob_key] == "Active"


def test_cross_account_without_a_role_is_refused(lambda_env: DynamoDbJournal) -> None:
    """Without a role template a finding about another account is refused, unchanged."""
    other = _other_account()
    event = _event("guardduty-eventbridge.json", other.bob_key, alice="bob",
                   **{"123456789012": OTHER_ACCOUNT})
    result = lambda_handler.handler(event, None)
    assert result["status"] == "refused"
    assert "RESPONDER_ROLE_ARN_TEMPLATE" in result["error"]
    assert _keys(other, "bob")[other.bob_key] == "Active"


# -- every finding of an event answered on its own (issue 14, item 3) ---------------------


def _lambda_with_faults(monkeypatch: pytest.MonkeyPatch, faults: Faults) -> None:
    """The handler's AWS sessions carry the fault hooks (in-process moto)."""
    monkeypatch.setattr(lambda_handler, "session_factory",
                        lambda *_, **__: faults.session_factory())


def _status_of(account: Account, user: str, key: str) -> str:
    """Active, Inactive, or Deleted (replace-key deletes alice's leaked key: she has two)."""
    return _keys(account, user).get(key, "Deleted")


def test_lambda_unknown_key_does_not_sink_the_valid_finding(
    lambda_env: DynamoDbJournal,
) -> None:
    """A Security Hub event naming an unknown key first and bob's key second: bob's key
    ends Inactive, both outcomes are returned, and nothing is raised (bad input is not
    retried)."""
    account = make_account(boto3.Session(region_name=REGION))
    event = securityhub_event(asff_finding(UNKNOWN_KEY, "unknown-1"),
                              asff_finding(account.bob_key, "valid-1"))
    result = lambda_handler.handler(event, None)
    assert [(d["finding_id"], d["status"], d["exit_code"]) for d in result["incidents"]] == [
        ("securityhub:unknown-1", "refused", 2), ("securityhub:valid-1", "completed", 0)]
    assert UNKNOWN_KEY in result["incidents"][0]["error"]
    assert _keys(account, "bob")[account.bob_key] == "Inactive"
    assert len(lambda_env.history_for_key(account.bob_key)) == 1


def test_lambda_guardduty_event_in_an_array_is_one_incident(
    lambda_env: DynamoDbJournal,
) -> None:
    """`[event]` is the event: one incident, returned as the single §2 object."""
    account = make_account(boto3.Session(region_name=REGION))
    result = lambda_handler.handler(
        [_event("guardduty-eventbridge.json", account.bob_key, alice="bob")], None)  # type: ignore[arg-type]
    assert result["status"] == "completed", result
    assert "incidents" not in result
    assert _keys(account, "bob")[account.bob_key] == "Inactive"
    assert len(lambda_env.recent()) == 1


def test_lambda_array_of_two_events_is_two_incidents(lambda_env: DynamoDbJournal) -> None:
    """Two events for two keys in one list: two incidents, both keys contained."""
    account = make_account(boto3.Session(region_name=REGION))
    result = lambda_handler.handler([guardduty_event(account.bob_key, "gd-bob"),  # type: ignore[arg-type]
                                     guardduty_event(account.leaked_key, "gd-alice")], None)
    assert [(d["finding_id"], d["status"]) for d in result["incidents"]] == [
        ("guardduty:gd-bob", "completed"), ("guardduty:gd-alice", "completed")]
    assert len({d["incident_id"] for d in result["incidents"]}) == 2
    assert _status_of(account, "bob", account.bob_key) == "Inactive"
    assert _status_of(account, "alice", account.leaked_key) != "Active"


def test_lambda_sample_and_duplicate_next_to_new_findings(lambda_env: DynamoDbJournal) -> None:
    """A sample and an already handled finding are refused (not retried: no raise); the
    new finding next to them is contained; the duplicate names the first incident."""
    account = make_account(boto3.Session(region_name=REGION))
    first = lambda_handler.handler(guardduty_event(account.bob_key, "gd-bob"), None)
    result = lambda_handler.handler([
        guardduty_event(account.bob_key, "gd-bob"),  # type: ignore[list-item]
        guardduty_event(account.leaked_key, "sample-alice", sample=True),
        guardduty_event(account.leaked_key, "gd-alice"),
    ], None)
    assert [(d["finding_id"], d["status"], d["exit_code"]) for d in result["incidents"]] == [
        ("guardduty:gd-bob", "refused", 3), ("guardduty:sample-alice", "refused", 3),
        ("guardduty:gd-alice", "completed", 0)]
    assert result["incidents"][0]["incident_id"] == first["incident_id"]
    assert _status_of(account, "alice", account.leaked_key) != "Active"
    assert len(lambda_env.recent()) == 2


def test_lambda_halt_raises_after_all_findings_and_the_retry_resumes(
    lambda_env: DynamoDbJournal, monkeypatch: pytest.MonkeyPatch, faults: Faults
) -> None:
    """alice's disable is denied once: bob's finding is still contained, then the handler
    raises so Lambda retries. The retry resumes alice's halted incident (same id) to the
    end and refuses bob's finished one as a duplicate, without raising."""
    account = make_account(boto3.Session(region_name=REGION))
    _lambda_with_faults(monkeypatch, faults)
    faults.fail("UpdateAccessKey", "AccessDenied", times=1)
    event = [guardduty_event(account.leaked_key, "gd-alice"),
             guardduty_event(account.bob_key, "gd-bob")]
    with pytest.raises(lambda_handler.Unfinished) as caught:
        lambda_handler.handler(event, None)  # type: ignore[arg-type]
    first = caught.value.result["incidents"]
    assert [(d["finding_id"], d["status"]) for d in first] == [
        ("guardduty:gd-alice", "halted"), ("guardduty:gd-bob", "completed")]
    assert [o.finding_id for o in caught.value.unfinished] == ["guardduty:gd-alice"]
    assert _keys(account, "alice")[account.leaked_key] == "Active"
    assert _keys(account, "bob")[account.bob_key] == "Inactive"

    retry = lambda_handler.handler(event, None)  # type: ignore[arg-type]
    assert [(d["finding_id"], d["status"]) for d in retry["incidents"]] == [
        ("guardduty:gd-alice", "completed"), ("guardduty:gd-bob", "refused")]
    assert retry["incidents"][0]["incident_id"] == first[0]["incident_id"]
    assert retry["incidents"][1]["incident_id"] == first[1]["incident_id"]
    assert _status_of(account, "alice", account.leaked_key) != "Active"
    assert len(lambda_env.recent()) == 2


def test_lambda_document_with_no_finding_is_returned_refused(
    lambda_env: DynamoDbJournal,
) -> None:
    """An event that is no finding at all returns bad input (exit 2), not retried."""
    result = lambda_handler.handler(_event("not-a-finding.json"), None)
    assert (result["status"], result["exit_code"]) == ("refused", 2)
    assert lambda_env.recent() == []


def test_a_notify_only_finding_tells_the_topic_and_runs_nothing(
    lambda_env: DynamoDbJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/findings.md decides Stealth:IAMUser/CloudTrailLoggingDisabled is notify only:
    the Lambda opens no incident, leaves the key Active, and the on-call topic hears of
    the finding with the command that would act on it."""
    account = make_account(boto3.Session(region_name=REGION))
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="oncall")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"RawMessageDelivery": "true"})
    monkeypatch.setenv("RESPONDER_NOTIFY_TOPIC", topic)
    event = _event("guardduty-eventbridge.json", account.bob_key, alice="bob")
    event["detail"]["type"] = "Stealth:IAMUser/CloudTrailLoggingDisabled"
    result = lambda_handler.handler(event, None)
    assert result["status"] == "refused"
    assert "notify-only" in result["error"]
    assert _keys(account, "bob")[account.bob_key] == "Active"
    assert lambda_env.history_for_key(account.bob_key) == []
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert f"respond compromised {account.bob_key}" in message["Body"]
    assert "CloudTrailLoggingDisabled" in message["Body"]
