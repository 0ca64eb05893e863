"""`respond audit` for pipelines and organizations (issue 34): --org, --fail-on and its
exit code, --output asff|sarif and --to-security-hub, in process against moto."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from responder.cli import interrupts, main
from responder.errors import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_FINDINGS

TEMPLATE = "arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"


def _respond(*argv: str) -> int:
    """main() as `respond` runs it, with what it sets for the process put back."""
    handlers = {s: signal.getsignal(s) for s in (*interrupts.SIGNALS, signal.SIGALRM)}
    mask = os.umask(0o022)
    os.umask(mask)
    try:
        return main(list(argv))
    finally:
        os.umask(mask)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _two_keys(session: boto3.Session, user: str) -> str:
    """A user with two active keys: two medium findings ("rotate to one"). Returns the
    second key's id."""
    iam = session.client("iam", region_name=REGION)
    iam.create_user(UserName=user)
    iam.create_access_key(UserName=user)
    return str(iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"])


def _in(account_id: str) -> boto3.Session:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=TEMPLATE.format(account_id=account_id), RoleSessionName="setup")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                         aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=REGION)


@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.mark.usefixtures("fresh_structlog", "moto")
def test_one_account_fail_on_asff_and_sarif(capsys: pytest.CaptureFixture[str]) -> None:
    _two_keys(boto3.Session(region_name=REGION), "two")
    assert _respond("audit", "--output", "json") == EXIT_COMPLETED
    doc = json.loads(capsys.readouterr().out)
    assert [(f["account_id"], f["severity"], f["user"]) for f in doc["findings"]] == [
        (DEFAULT_ACCOUNT_ID, "medium", "two")] * 2
    assert doc["accounts"] == [{"account_id": DEFAULT_ACCOUNT_ID, "name": "", "findings": 2,
                                "error": None, "seconds": 0.0, "role_check_gap": None}]
    # A pipeline's gate: exit 6 only at or above the rank asked.
    assert _respond("audit", "--fail-on", "medium") == EXIT_FINDINGS
    assert f"2 finding(s) at or above medium: exit {EXIT_FINDINGS}" in capsys.readouterr().err
    assert _respond("audit", "--fail-on", "high") == EXIT_COMPLETED
    capsys.readouterr()
    assert _respond("audit", "--output", "asff") == EXIT_COMPLETED
    asff = json.loads(capsys.readouterr().out)["Findings"]
    assert [f["Severity"]["Label"] for f in asff] == ["MEDIUM", "MEDIUM"]
    assert _respond("audit", "--output", "sarif") == EXIT_COMPLETED
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["version"] == "2.1.0"
    assert [r["level"] for r in sarif["runs"][0]["results"]] == ["warning", "warning"]


@pytest.mark.usefixtures("fresh_structlog", "moto")
def test_an_organization_is_audited_account_by_account_and_ranked(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    orgs = boto3.client("organizations", region_name=REGION)
    orgs.create_organization(FeatureSet="ALL")
    members = [orgs.create_account(Email=f"m{n}@example.test", AccountName=f"member{n}")[
        "CreateAccountStatus"]["AccountId"] for n in range(2)]
    for n, account in enumerate(members):
        _two_keys(_in(account), f"two{n}")
    monkeypatch.setenv("RESPONDER_ROLE_ARN_TEMPLATE", TEMPLATE)
    assert _respond("audit", "--org", "--output", "json") == EXIT_COMPLETED
    doc = json.loads(capsys.readouterr().out)
    assert [a["account_id"] for a in doc["accounts"]] == sorted([DEFAULT_ACCOUNT_ID, *members])
    assert all(a["error"] is None for a in doc["accounts"])
    assert sorted((f["account_id"], f["user"]) for f in doc["findings"]) == sorted(
        [(members[0], "two0")] * 2 + [(members[1], "two1")] * 2)
    assert _respond("audit", "--org") == EXIT_COMPLETED
    human = capsys.readouterr().out
    assert human.startswith("audit of 3 accounts: 3 audited, 4 credential(s) to fix")

    # --deactivate-unused across the organization: each key retired in its own account,
    # through the role, as an incident reaches any key of another account.
    from moto.iam.models import iam_backends

    old = iam_backends[members[1]]["aws"].users["two1"].access_keys[0]
    old.create_date -= timedelta(days=200)
    monkeypatch.setenv("RESPONDER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RESPONDER_JOURNAL", str(tmp_path / "journal.db"))
    assert _respond("audit", "--org", "--deactivate-unused", "90", "--yes", "--output",
                    "json") == EXIT_COMPLETED
    (done,) = json.loads(capsys.readouterr().out)["deactivate_unused"]["done"]
    assert (done["account_id"], done["access_key_id"], done["state"]) == (
        members[1], old.access_key_id, "RETIRED")
    listed = _in(members[1]).client("iam").list_access_keys(UserName="two1")
    assert {k["AccessKeyId"]: k["Status"] for k in listed["AccessKeyMetadata"]}[
        old.access_key_id] == "Inactive"


@pytest.mark.usefixtures("fresh_structlog", "moto")
def test_org_without_a_role_template_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert _respond("audit", "--org") == EXIT_BAD_INPUT
    assert "RESPONDER_ROLE_ARN_TEMPLATE" in capsys.readouterr().err


@pytest.mark.usefixtures("fresh_structlog", "moto")
def test_security_hub_gets_each_finding_once_and_fixed_ones_archived(
        capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("securityhub", region_name=REGION).enable_security_hub()
    second = _two_keys(boto3.Session(region_name=REGION), "two")
    for _ in range(2):
        assert _respond("audit", "--to-security-hub", "--output", "json") == EXIT_COMPLETED
        said = json.loads(capsys.readouterr().out)["security_hub"][DEFAULT_ACCOUNT_ID]
        assert said == {"imported": 2, "archived": 0, "failed": []}
    hub = boto3.client("securityhub", region_name=REGION)
    assert len(hub.get_findings()["Findings"]) == 2  # updated, not duplicated
    boto3.client("iam", region_name=REGION).delete_access_key(UserName="two",
                                                            AccessKeyId=second)
    assert _respond("audit", "--to-security-hub", "--output", "json") == EXIT_COMPLETED
    said = json.loads(capsys.readouterr().out)["security_hub"][DEFAULT_ACCOUNT_ID]
    assert said == {"imported": 0, "archived": 2, "failed": []}
    assert {f["RecordState"] for f in hub.get_findings()["Findings"]} == {"ARCHIVED"}


@pytest.mark.usefixtures("fresh_structlog")
def test_a_key_used_only_from_inside_aws_says_use_a_role(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The audit end to end: moto records the key's use in its credential report, the
    CloudTrail fake holds its calls (from a private address and a service), and the key
    gets "use an IAM role instead" with what it was used for; a user with a path is named
    by the report's ARN in ASFF; an unreadable page is said in the headline."""
    from datetime import UTC, datetime, timedelta

    from responder.drill.cloudtrail import CloudTrailFake, FakeError

    trail = CloudTrailFake()
    with mock_aws(), trail.installed():
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="etl", Path="/batch/")
        made = iam.create_access_key(UserName="etl")["AccessKey"]
        key = made["AccessKeyId"]
        # a call signed with the key: moto records its last use (date, region, service)
        boto3.client("sts", region_name=REGION, aws_access_key_id=key,
                     aws_secret_access_key=made["SecretAccessKey"]).get_caller_identity()
        now = datetime.now(UTC)
        for n, (source, name, service) in enumerate([
                ("10.0.4.17", "GetObject", "s3"), ("10.0.4.17", "GetObject", "s3"),
                ("sqs.amazonaws.com", "SendMessage", "sqs")]):
            trail.record(REGION, name, key, event_time=now - timedelta(minutes=n + 1),
                         event_source=f"{service}.amazonaws.com", source_ip=source,
                         user_name="etl")
        assert _respond("audit", "--output", "json") == EXIT_COMPLETED
        (found,) = json.loads(capsys.readouterr().out)["findings"]
        assert found["user"] == "etl"
        assert found["access_key_id"] == key
        assert found["problems"] == [
            "used only from inside AWS (10.0.4.17; sqs.amazonaws.com) for "
            "s3:GetObject \N{MULTIPLICATION SIGN}2, sqs:SendMessage \N{MULTIPLICATION SIGN}1: "
            "use an IAM role instead"]
        assert found["fix"].startswith("give what runs it an IAM role")
        assert found["details"]["arn"].endswith(":user/batch/etl")

        # The same key also called from the internet: no longer a role's job.
        trail.record(REGION, "GetObject", key, event_time=now, source_ip="198.51.100.20",
                     event_source="s3.amazonaws.com", user_name="etl")
        assert _respond("audit", "--output", "json") == EXIT_COMPLETED
        assert json.loads(capsys.readouterr().out)["findings"] == []
        assert _respond("audit", "--role-check-keys", "0") == EXIT_COMPLETED
        assert capsys.readouterr().out.startswith("audit: nothing to fix")

    class Refusing(CloudTrailFake):
        def lookup(self, region: str, request: Any) -> dict[str, Any]:
            raise FakeError("AccessDeniedException", 400, "not authorized to perform: "
                            "cloudtrail:LookupEvents")

    # LookupEvents refused: the role check's gap is said first.
    with mock_aws(), Refusing().installed():
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="etl", Path="/batch/")
        made = iam.create_access_key(UserName="etl")["AccessKey"]
        iam.create_access_key(UserName="etl")
        boto3.client("sts", region_name=REGION, aws_access_key_id=made["AccessKeyId"],
                     aws_secret_access_key=made["SecretAccessKey"]).get_caller_identity()
        assert _respond("audit") == EXIT_COMPLETED
        said = capsys.readouterr().out
        assert said.startswith("ROLE CHECK INCOMPLETE: role check: 0 of 1 recently used keys "
                               f"read; 1 unreadable: {made['AccessKeyId']}")
        assert _respond("audit", "--output", "asff") == EXIT_COMPLETED
        asff = json.loads(capsys.readouterr().out)["Findings"]
        assert {r["Id"] for f in asff for r in f["Resources"]} >= {
            f"AWS::IAM::AccessKey:{made['AccessKeyId']}"}
