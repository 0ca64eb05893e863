"""Black-box: replacement, notifications, reports, and that the new secret leaks nowhere."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloudtrail_faults import FaultyCloudTrail
from conftest import REGION, Account, CliResult, Pager

Cli = Callable[..., CliResult]


@dataclass
class Webhook:
    """A local Slack stand-in: records POSTed JSON, answers with queued status codes."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            hook.bodies.append(json.loads(self.rfile.read(length)))
            status = hook.statuses.pop(0) if hook.statuses else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXX"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


def _run(cli: Cli, key: str, *extra: str, code: int = 0) -> tuple[CliResult, dict[str, Any]]:
    result = cli("compromised", key, "--yes", "--output", "json", *extra)
    assert result.code == code, result.stderr
    return result, json.loads(result.stdout)


def _keys(account: Account, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"]
            for k in account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def _stored(account: Account, arn: str) -> dict[str, Any]:
    sm = account.session.client("secretsmanager", region_name=REGION)
    return dict(json.loads(sm.get_secret_value(SecretId=arn)["SecretString"]))


def test_one_key_user_gets_a_working_replacement(
    server_account: Account, cli: Cli, moto_server: str
) -> None:
    """bob (one key) keeps the Inactive key and gets a new one whose stored secret works."""
    _, doc = _run(cli, server_account.bob_key)
    new = doc["replacement"]["access_key_id"]
    assert _keys(server_account, "bob") == {server_account.bob_key: "Inactive", new: "Active"}
    secret = _stored(server_account, doc["replacement"]["secret_ref"])
    assert secret["AccessKeyId"] == new
    who = boto3.client("sts", endpoint_url=moto_server, region_name=REGION,
                       aws_access_key_id=new,
                       aws_secret_access_key=secret["SecretAccessKey"]).get_caller_identity()
    assert who["Account"] == doc["account_id"]


def test_no_replace_keeps_the_user_without_a_new_key(server_account: Account, cli: Cli) -> None:
    """--no-replace: key disabled, no key created, replacement null, step skipped."""
    _, doc = _run(cli, server_account.bob_key, "--no-replace")
    assert _keys(server_account, "bob") == {server_account.bob_key: "Inactive"}
    assert doc["replacement"] is None
    replace = next(s for s in doc["steps"] if s["name"] == "replace-key")
    assert replace["status"] == "skipped"


def test_evidence_failure_halts_before_deleting(
    server_account: Account, cli: Cli, server_trail: FaultyCloudTrail, pager: Pager
) -> None:
    """Two keys and no evidence: exit 1 at replace-key, both keys kept, and the halt is
    announced with the resume command."""
    ec2 = server_account.session.client("ec2", region_name=REGION)
    server_trail.failing_regions = frozenset(
        r["RegionName"] for r in ec2.describe_regions()["Regions"])
    result, doc = _run(cli, server_account.leaked_key, "--notify-topic", pager.topic_arn,
                       code=1)
    assert doc["status"] == "halted"
    assert "evidence collection has not finished" in doc["error"]
    assert _keys(server_account, "alice") == {server_account.leaked_key: "Inactive",
                                              server_account.other_key: "Active"}
    (message,) = pager.messages()
    assert "HALTED" in message["Subject"]
    assert f"respond resume {doc['incident_id']}" in message["Message"]
    assert "replace-key" in message["Message"]
    assert "respond resume" in result.stdout + result.stderr


def test_sns_and_slack_are_notified(
    server_account: Account, cli: Cli, pager: Pager, webhook: Webhook
) -> None:
    """Completion reaches the SNS subscriber and the Slack webhook, with the facts."""
    _, doc = _run(cli, server_account.leaked_key, "--notify-topic", pager.topic_arn,
                  "--slack-webhook", webhook.url)
    (message,) = pager.messages()
    body = message["Message"]
    for fact in (doc["incident_id"], server_account.leaked_key, "alice", doc["account_id"],
                 doc["replacement"]["access_key_id"], doc["replacement"]["secret_ref"]):
        assert fact in body
    assert "MFA" in body
    (posted,) = webhook.bodies
    assert doc["incident_id"] in json.dumps(posted)
    notify = next(s for s in doc["steps"] if s["name"] == "notify")
    assert notify["status"] == "done"
    assert {s["channel"] for s in notify["detail"]["sent"]} == {"sns", "slack"}


def test_failing_slack_does_not_block_containment(
    server_account: Account, cli: Cli, webhook: Webhook
) -> None:
    """A Slack webhook that refuses (HTTP 400) leaves the incident completed, exit 5,
    with the failure recorded and the webhook URL nowhere in the output."""
    webhook.statuses = [400]
    result, doc = _run(cli, server_account.bob_key, "--slack-webhook", webhook.url, code=5)
    assert doc["status"] == "completed"
    notify = next(s for s in doc["steps"] if s["name"] == "notify")
    assert notify["status"] == "failed"
    assert "400" in notify["error"]
    assert len(webhook.bodies) == 1
    assert webhook.url not in result.stdout + result.stderr


def test_slack_5xx_is_retried(server_account: Account, cli: Cli, webhook: Webhook) -> None:
    """Two 503s then 200: delivered, three requests seen."""
    webhook.statuses = [503, 503]
    _run(cli, server_account.bob_key, "--slack-webhook", webhook.url)
    assert len(webhook.bodies) == 3


def test_report_files_and_command(server_account: Account, cli: Cli, pager: Pager) -> None:
    """report.json carries the timeline, containment time, snapshots, evidence, replacement,
    notifications and next actions; `respond report` prints the same from the journal."""
    _, doc = _run(cli, server_account.leaked_key, "--notify-topic", pager.topic_arn)
    md = Path(doc["report"])
    assert md.name == "report.md"
    rep = json.loads((md.parent / "report.json").read_text())
    assert rep["incident_id"] == doc["incident_id"]
    assert [t["step"] for t in rep["timeline"]] == [s["name"] for s in doc["steps"]]
    apis = [c["api"] for t in rep["timeline"] for c in t["calls"]]
    assert "iam:UpdateAccessKey" in apis
    assert "iam:CreateAccessKey" in apis
    disable = next(t for t in rep["timeline"] if t["step"] == "disable-key")
    assert disable["duration_seconds"] is not None
    assert rep["time_to_contain_seconds"] > 0
    at_containment = rep["iam_snapshot"]["at_containment"]
    assert {k["AccessKeyId"]: k["Status"] for k in at_containment["access_keys"]}[
        server_account.leaked_key] == "Inactive"
    after = {k["AccessKeyId"] for k in rep["iam_snapshot"]["after_replacement"]["access_keys"]}
    assert after == {server_account.other_key, doc["replacement"]["access_key_id"]}
    assert rep["evidence_summary"]["sha256"] == doc["evidence"]["sha256"]
    assert rep["replacement"] == doc["replacement"]
    assert rep["notifications"]["sent"][0]["channel"] == "sns"
    assert any("MFA" in a for a in rep["next_actions"])
    assert doc["incident_id"] in md.read_text()
    again = cli("report", doc["incident_id"], "--format", "json")
    assert again.code == 0
    assert json.loads(again.stdout)["timeline"] == rep["timeline"]


def test_the_new_secret_appears_nowhere(
    server_account: Account, cli: Cli, pager: Pager, webhook: Webhook, tmp_path: Path
) -> None:
    """The replacement's secret access key is in Secrets Manager and nowhere else: not in
    stdout, stderr, log.jsonl, the journal, the reports, the SNS message or Slack post."""
    result, doc = _run(cli, server_account.leaked_key, "--notify-topic", pager.topic_arn,
                       "--slack-webhook", webhook.url, "-v")
    secret = _stored(server_account, doc["replacement"]["secret_ref"])["SecretAccessKey"]
    incident_dir = Path(doc["report"]).parent
    home = incident_dir.parent.parent
    places: dict[str, bytes] = {
        "stdout": result.stdout.encode(), "stderr": result.stderr.encode(),
        "sns": json.dumps(pager.messages()).encode(), "slack": json.dumps(webhook.bodies).encode(),
    }
    for path in [*incident_dir.iterdir(), *home.glob("responder.db*")]:
        if path.is_file():
            places[path.name] = path.read_bytes()
    assert {"log.jsonl", "report.md", "report.json", "responder.db"} <= set(places)
    leaks = [name for name, data in places.items() if secret.encode() in data]
    assert leaks == []
