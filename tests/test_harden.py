"""`respond harden`: MFA and a least-privilege policy drawn from the user's real usage.

The world of issue 21, on the moto server with the CloudTrail fake: alice signs in to the
console without MFA and holds an admin-like inline policy; for 90 days she read and wrote
one bucket and queried one table; 40 minutes ago her leaked key, from a new IP, created a
user and attached a policy to it. The proposal must hold exactly her three actions, on
the bucket and the table, and nothing of the attacker's.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cloudtrail_faults import FaultyCloudTrail
from conftest import REGION, Account, CliResult, iam_state

Cli = Callable[..., CliResult]
BUCKET, TABLE = "alice-reports", "orders"
ADMIN = {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ATTACKER_IP = "198.51.100.66"


def _world(account: Account, trail: FaultyCloudTrail, *, console: bool = True) -> datetime:
    """alice's history and the attacker's minutes; returns when the attack began."""
    iam = account.iam
    if console:
        iam.create_login_profile(UserName="alice", Password="Correct-Horse-9!")
    iam.put_user_policy(UserName="alice", PolicyName="admin",
                        PolicyDocument=json.dumps(ADMIN))
    now = datetime.now(UTC)
    for day in range(1, 90, 3):
        at = now - timedelta(days=day)
        trail.record(REGION, "GetObject", account.other_key, event_time=at,
                     event_source="s3.amazonaws.com", source_ip="192.0.2.10",
                     request_parameters={"bucketName": BUCKET, "key": f"r/{day}.csv"})
        trail.record(REGION, "PutObject", account.other_key, event_time=at + timedelta(hours=1),
                     event_source="s3.amazonaws.com", source_ip="192.0.2.10",
                     request_parameters={"bucketName": BUCKET, "key": f"r/{day}.out"})
        trail.record(REGION, "Query", account.other_key, event_time=at + timedelta(hours=2),
                     event_source="dynamodb.amazonaws.com", source_ip="192.0.2.10",
                     request_parameters={"tableName": TABLE})
    attack = now - timedelta(minutes=40)
    trail.record(REGION, "CreateUser", account.leaked_key, event_time=attack,
                 source_ip=ATTACKER_IP, request_parameters={"userName": "backdoor"})
    trail.record(REGION, "AttachUserPolicy", account.leaked_key,
                 event_time=attack + timedelta(seconds=5), source_ip=ATTACKER_IP,
                 request_parameters={"userName": "backdoor",
                                     "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    return attack


def _actions(doc: dict[str, Any]) -> dict[str, list[str]]:
    """Each proposed action and the resources its statement names."""
    found: dict[str, list[str]] = {}
    for statement in doc["hardening"]["proposed_policy"]["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            found[action] = [resources] if isinstance(resources, str) else resources
    return found


def _check_proposal(doc: dict[str, Any]) -> None:
    actions = _actions(doc)
    assert set(actions) == {"s3:GetObject", "s3:PutObject", "dynamodb:Query"}
    assert f"arn:aws:s3:::{BUCKET}/*" in actions["s3:GetObject"]
    assert actions["dynamodb:Query"] == [f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}"]
    assert not any(a.startswith("iam:") for a in actions)
    unused = doc["hardening"]["unused_permissions"]
    assert any(u["policy"] == "admin" and u["action"] == "*" for u in unused)
    mfa = doc["hardening"]["mfa"]
    assert mfa == {"console": True, "mfa_device": False, "policy_proposed": True,
                   "reason": mfa["reason"]}


@pytest.mark.parametrize("given", [True, False], ids=["compromised-at", "default-time"])
def test_the_proposal_is_exactly_the_users_own_usage(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli, given: bool
) -> None:
    attack = _world(server_account, server_trail)
    before = iam_state(server_account.iam)
    extra = ("--compromised-at", attack.isoformat()) if given else ()
    run = cli("harden", "alice", "--output", "json", *extra)
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    _check_proposal(doc)
    hard = doc["hardening"]
    assert hard["compromised_at_source"].startswith("given" if given else "24 h before now")
    assert ATTACKER_IP in hard["new_source_ips"]
    assert hard["applied"] is None
    written = json.loads(Path(hard["proposed_policy_path"]).read_text())
    assert written == hard["proposed_policy"]
    assert len(json.dumps(written, separators=(",", ":"))) <= 6144
    assert iam_state(server_account.iam) == before  # a proposal changes nothing


def test_dry_run_changes_and_writes_nothing(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    _world(server_account, server_trail)
    before = iam_state(server_account.iam)
    run = cli("harden", "alice", "--dry-run", "--apply", "--yes", "--output", "json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["status"] == "planned"
    assert doc["hardening"]["proposed_policy_path"] is None
    assert iam_state(server_account.iam) == before


def test_a_programmatic_user_gets_no_mfa_policy(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    _world(server_account, server_trail, console=False)
    run = cli("harden", "alice", "--apply", "--yes", "--output", "json")
    assert run.code == 0, run.stderr
    mfa = json.loads(run.stdout)["hardening"]["mfa"]
    assert mfa["policy_proposed"] is False
    assert "no console password" in mfa["reason"]
    assert "responder-require-mfa" not in server_account.iam.list_user_policies(
        UserName="alice")["PolicyNames"]


def test_apply_adds_and_removes_nothing_and_twice_changes_nothing(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    _world(server_account, server_trail)
    iam = server_account.iam
    first = cli("harden", "alice", "--apply", "--yes", "--output", "json")
    assert first.code == 0, first.stderr
    applied = json.loads(first.stdout)["hardening"]["applied"]
    arn = applied["policy_arn"]
    assert arn.endswith(":policy/responder-proposed-alice")
    assert applied["policy"] == "created"
    attached = iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]
    assert {"admin", "responder-require-mfa"} <= set(
        iam.list_user_policies(UserName="alice")["PolicyNames"])  # the old one stays
    # Nothing is offered for taking away until the proposal has been in place a while.
    hardening = json.loads(first.stdout)["hardening"]
    assert hardening["finish_commands"] == []
    assert hardening["grace"]["ready"] is False
    assert "offered from" in hardening["grace"]["reason"]

    second = cli("harden", "alice", "--apply", "--yes", "--output", "json")
    assert second.code == 0, second.stderr
    again = json.loads(second.stdout)["hardening"]["applied"]
    assert again["policy"] == "unchanged"
    assert again["attached"] is False
    assert again["mfa_policy"] == "unchanged"
    assert [v["VersionId"] for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]] == ["v1"]
    assert len(iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"]) == 1
    assert json.loads(second.stdout)["hardening"]["finish_commands"] == []

    # Past the grace period (none, here) with nothing denied and nothing outside it:
    # the commands that take the rest away are offered, and still never run.
    third = cli("harden", "alice", "--grace-days", "0", "--output", "json")
    assert third.code == 0, third.stderr
    hardening = json.loads(third.stdout)["hardening"]
    assert hardening["grace"]["ready"] is True, hardening["grace"]
    assert "aws iam delete-user-policy --user-name alice --policy-name admin" in \
        hardening["finish_commands"]
    assert "admin" in iam.list_user_policies(UserName="alice")["PolicyNames"]


def test_apply_without_yes_and_no_terminal_is_bad_input(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    _world(server_account, server_trail)
    before = iam_state(server_account.iam)
    run = cli("harden", "alice", "--apply")
    assert run.code == 2
    assert "--yes" in run.stderr
    assert iam_state(server_account.iam) == before


@pytest.mark.parametrize(("args", "said"), [
    (("nobody",), "no IAM user"),
    (("alice", "--compromised-at", "yesterday"), "ISO 8601"),
    (("alice", "--compromised-at", "2999-01-01T00:00:00Z"), "future"),
    (("alice", "--lookback-days", "91"), "90 days"),
])
def test_bad_input_changes_nothing(server_account: Account, cli: Cli, args: tuple[str, ...],
                                   said: str) -> None:
    run = cli("harden", *args)
    assert run.code == 2, run.stderr
    assert said in run.stderr


def test_every_incident_report_carries_a_hardening_section(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """The playbook's harden step proposes (never applies); `respond harden --incident`
    applies within the incident, and the report shows both."""
    _world(server_account, server_trail)
    run = cli("compromised", server_account.leaked_key, "--yes", "--output", "json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["steps"][-1]["name"] == "harden"
    assert doc["steps"][-1]["status"] == "done"
    _check_proposal(doc)
    assert doc["hardening"]["compromised_at_source"].startswith("24 h before incident")
    assert doc["hardening"]["applied"] is None
    incident = doc["incident_id"]
    assert Path(doc["hardening"]["proposed_policy_path"]).parent.name == incident
    iam = server_account.iam
    assert iam.list_attached_user_policies(UserName="alice")["AttachedPolicies"] == []
    assert "## Hardening" in cli("report", incident).stdout

    applied = cli("harden", "alice", "--incident", incident, "--apply", "--yes",
                  "--output", "json")
    assert applied.code == 0, applied.stderr
    assert json.loads(applied.stdout)["hardening"]["applied"]["policy"] == "created"
    report = json.loads(cli("report", incident, "--format", "json").stdout)
    assert report["hardening"]["applied"]["policy"] == "created"
    wrong = cli("harden", "bob", "--incident", incident)
    assert wrong.code == 2


def test_apply_refuses_a_proposal_of_nothing(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """bob did nothing CloudTrail shows: a deny-everything proposal is never attached."""
    before = iam_state(server_account.iam)
    run = cli("harden", "bob", "--apply", "--yes")
    assert run.code == 3, run.stderr  # refused by a guardrail, nothing applied (DESIGN §2)
    assert "lock the user out" in run.stderr
    assert iam_state(server_account.iam) == before


def test_apply_refuses_a_proposal_from_an_unreadable_region(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """CloudTrail down in a region read: the proposal may miss actions, so it is shown
    but not attached."""
    _world(server_account, server_trail)
    server_trail.failing_regions = frozenset({REGION})
    before = iam_state(server_account.iam)
    run = cli("harden", "alice", "--regions", REGION, "--apply", "--yes")
    assert run.code == 1, run.stderr
    assert "could not be read" in run.stderr
    assert iam_state(server_account.iam) == before


def _data_event(at: datetime, account_id: str) -> dict[str, Any]:
    """alice's DynamoDB GetItem as a trail with data events writes it (CloudTrail user
    guide, "DynamoDB data events": eventCategory Data, managementEvent false, the table
    in resources)."""
    table = f"arn:aws:dynamodb:{REGION}:{account_id}:table/{TABLE}"
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                         "arn": f"arn:aws:iam::{account_id}:user/alice",
                         "accountId": account_id, "accessKeyId": "AKIAOTHER",
                         "userName": "alice"},
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "dynamodb.amazonaws.com", "eventName": "GetItem",
        "awsRegion": REGION, "sourceIPAddress": "192.0.2.10", "userAgent": "app/1.0",
        "requestParameters": {"tableName": TABLE, "key": {"id": "HIDDEN_DUE_TO_SECURITY"},
                              "consistentRead": False},
        "responseElements": None, "requestID": "R1", "eventID": "e-getitem-1",
        "readOnly": True, "resources": [{"accountId": account_id,
                                         "type": "AWS::DynamoDB::Table", "ARN": table}],
        "eventType": "AwsApiCall", "apiVersion": "2012-08-10", "managementEvent": False,
        "recipientAccountId": account_id, "eventCategory": "Data",
    }


def test_data_events_are_read_from_a_named_trail_and_the_proposal_is_proved(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """GetItem is a data event: never in LookupEvents, so without the trail the proposal
    says so; with it, the trail's log file for that day is read and GetItem proposed."""
    _world(server_account, server_trail)
    account_id = server_account.session.client("sts").get_caller_identity()["Account"]
    at = datetime.now(UTC) - timedelta(days=5)
    s3 = server_account.session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="trail-logs")
    key = (f"logs/AWSLogs/{account_id}/CloudTrail/{REGION}/{at:%Y/%m/%d}/"
           f"{account_id}_CloudTrail_{REGION}_{at:%Y%m%dT%H%MZ}_Ab12Cd34Ef56Gh78.json.gz")
    s3.put_object(Bucket="trail-logs", Key=key, Body=gzip.compress(json.dumps(
        {"Records": [_data_event(at - timedelta(minutes=3), account_id)]}).encode()))

    without = json.loads(cli("harden", "alice", "--output", "json").stdout)["hardening"]
    assert "dynamodb:GetItem" not in _actions({"hardening": without})
    assert "--data-events s3://BUCKET/PREFIX" in without["cannot_show"][0]
    run = cli("harden", "alice", "--data-events", "s3://trail-logs/logs", "--output", "json")
    assert run.code == 0, run.stderr
    hard = json.loads(run.stdout)["hardening"]
    assert _actions({"hardening": hard})["dynamodb:GetItem"] == [
        f"arn:aws:dynamodb:{REGION}:{account_id}:table/{TABLE}"]
    assert hard["cannot_show"][0].startswith(
        "data events read from s3://trail-logs/logs: 1 of alice's in 1 log files")
    assert hard["proof"]["unproven"] == []
    assert hard["proof"]["checked"] == hard["proof"]["allowed"] > 0
    bad = cli("harden", "alice", "--data-events", "trail-logs/logs")
    assert bad.code == 2
    assert "trail-logs/logs" in bad.stderr


def test_apply_is_refused_when_the_named_trail_could_not_be_read(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """A trail bucket that is not there: the data events are unknown, so the proposal may
    deny them; it is still shown, never applied."""
    _world(server_account, server_trail)
    before = iam_state(server_account.iam)
    run = cli("harden", "alice", "--data-events", "s3://no-such-trail-bucket",
              "--apply", "--yes")
    assert run.code == 1, run.stderr
    assert "not applying: data events read from s3://no-such-trail-bucket" in run.stderr
    assert iam_state(server_account.iam) == before
