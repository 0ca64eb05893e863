"""`respond sweep` and the evidence bucket, through the installed `respond` against a moto
server and the CloudTrail fake.

An attacker's CreateAccessKey that happened before the response but that CloudTrail
delivers only after it is found by a sweep (the key Inactive, the event added once); a
second sweep changes nothing. With an evidence bucket the bucket holds the evidence with
the reported sha256 and the report; a missing bucket leaves the key contained, the files
local, the bucket named and exit 5.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloudtrail_faults import FaultyCloudTrail
from conftest import REGION, Account, CliResult, Pager, logged_calls

Cli = Callable[..., CliResult]
MUTATING = {"UpdateAccessKey", "PutUserPolicy", "PutRolePolicy", "CreateAccessKey",
            "DeleteAccessKey", "Publish"}


def _contained(cli: Cli, account: Account, trail: FaultyCloudTrail, *args: str,
               env: dict[str, str] | None = None) -> dict[str, Any]:
    """The leaked key used three minutes ago, then `respond compromised` run to the end."""
    trail.record(REGION, "ListBuckets", account.leaked_key,
                 event_time=datetime.now(UTC) - timedelta(minutes=3))
    result = cli("compromised", account.leaked_key, "--yes", "--no-replace", "--output",
                 "json", *args, env=env)
    assert result.code == 0, result.stderr[-3000:]
    doc: dict[str, Any] = result.json()
    return doc


def _late_key(account: Account, trail: FaultyCloudTrail) -> str:
    """Carol's key, made by the attacker before the response, recorded only now."""
    account.iam.create_user(UserName="carol")
    made = str(account.iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"])
    trail.record(REGION, "CreateAccessKey", account.leaked_key,
                 event_time=datetime.now(UTC) - timedelta(minutes=2),
                 request_parameters={"userName": "carol"},
                 response_elements={"accessKey": {"accessKeyId": made, "userName": "carol"}})
    return made


def _status(account: Account, user: str, key: str) -> str:
    keys = account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return str(next(k["Status"] for k in keys if k["AccessKeyId"] == key))


def _event_ids(path: str) -> list[str]:
    return [json.loads(line)["eventID"] for line in Path(path).read_text().splitlines()]


def _sweep(cli: Cli, incident_id: str, tmp_path: Path, *args: str) -> tuple[CliResult, list[str]]:
    log = tmp_path / f"sweep-{len(list(tmp_path.glob('sweep-*.log')))}.log"
    result = cli("sweep", incident_id, "--output", "json", *args,
                 env={"RESPONDER_FAULT_LOG": str(log)})
    return result, logged_calls(log)


def test_a_sweep_contains_what_cloudtrail_delivered_late(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli, tmp_path: Path
) -> None:
    doc = _contained(cli, server_account, server_trail)
    assert doc["sweeps"]["next"]["command"] == f"respond sweep {doc['incident_id']}"
    assert len(doc["sweeps"]["due"]) == 2
    before = doc["evidence"]["sha256"]
    carol_key = _late_key(server_account, server_trail)
    first, calls = _sweep(cli, doc["incident_id"], tmp_path)
    assert first.code == 0, first.stderr[-3000:]
    assert _status(server_account, "carol", carol_key) == "Inactive"
    assert "UpdateAccessKey" in calls
    swept = first.json()
    evidence = swept["evidence"]
    ids = _event_ids(evidence["path"])
    assert len(ids) == len(set(ids)) == 2
    assert evidence["sha256"] != before
    assert evidence["sha256"] == hashlib.sha256(Path(evidence["path"]).read_bytes()).hexdigest()
    assert [(s["step"], s["new_events"]) for s in swept["sweeps"]["done"]] == [("sweep-1", 1)]
    assert swept["sweeps"]["due"] == doc["sweeps"]["due"]  # a sweep by hand uses none up
    assert [s["name"] for s in swept["steps"]][-1] == "harden"  # §2 lists the playbook only

    second, calls = _sweep(cli, doc["incident_id"], tmp_path)
    assert second.code == 0, second.stderr[-3000:]
    assert not MUTATING & set(calls), calls
    assert second.json()["evidence"]["sha256"] == evidence["sha256"]
    assert _event_ids(evidence["path"]) == ids
    assert [s["new_events"] for s in second.json()["sweeps"]["done"]] == [1, 0]


def test_a_sweep_names_what_it_shut_and_what_it_left_for_a_human(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    """Delivered late: a key made for carol, user backdoor made with a key, a policy
    attached to bob. The sweep's entry in the JSON names what it shut and what it left
    for a human (with the undo command), as contain-attacker's does; the human output
    lists them under the sweep."""
    doc = _contained(cli, server_account, server_trail)
    leaked, iam = server_account.leaked_key, server_account.iam
    carol_key = _late_key(server_account, server_trail)
    at = datetime.now(UTC) - timedelta(minutes=2)
    iam.create_user(UserName="backdoor")
    server_trail.record(REGION, "CreateUser", leaked, event_time=at + timedelta(seconds=1),
                        request_parameters={"userName": "backdoor"},
                        response_elements={"user": {"userName": "backdoor", "path": "/"}})
    made = str(iam.create_access_key(UserName="backdoor")["AccessKey"]["AccessKeyId"])
    server_trail.record(REGION, "CreateAccessKey", leaked, event_time=at + timedelta(seconds=2),
                        request_parameters={"userName": "backdoor"},
                        response_elements={"accessKey": {"accessKeyId": made,
                                                         "userName": "backdoor",
                                                         "status": "Active"}})
    policy = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    server_trail.record(REGION, "AttachUserPolicy", leaked, event_time=at + timedelta(seconds=3),
                        request_parameters={"userName": "bob", "policyArn": policy})
    result = cli("sweep", doc["incident_id"], "--output", "json")
    assert result.code == 0, result.stderr[-3000:]
    (entry,) = result.json()["sweeps"]["done"]
    assert entry["new_events"] == 4
    assert {(k["user_name"], k["access_key_id"], k["already"]) for k in entry["keys_disabled"]} \
        >= {("carol", carol_key, False)}
    assert entry["principals_quarantined"] == [
        {"type": "user", "name": "backdoor", "keys_disabled": [made]}]
    assert entry["sessions_revoked"] == []
    undo = f"aws iam detach-user-policy --user-name bob --policy-arn {policy}"
    assert [(h["event_name"], h["undo"]) for h in entry["needs_human"]] == [
        ("AttachUserPolicy", undo)]
    assert _status(server_account, "carol", carol_key) == "Inactive"

    shown = cli("status", doc["incident_id"])
    assert shown.code == 0, shown.stderr[-2000:]
    text = shown.stdout
    assert "sweep-1: 4 new events" in text, text
    assert f"shut: key {carol_key} of carol disabled" in text, text
    assert f"shut: user backdoor quarantined (keys {made} disabled)" in text, text
    assert undo in text.split("for a human:", 1)[-1], text


def test_a_sweep_notifies_only_when_something_is_new(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli, pager: Pager,
    tmp_path: Path
) -> None:
    doc = _contained(cli, server_account, server_trail, "--notify-topic", pager.topic_arn)
    assert len(pager.messages()) == 1  # the completion notice
    quiet, calls = _sweep(cli, doc["incident_id"], tmp_path)
    assert quiet.code == 0, quiet.stderr[-3000:]
    assert "Publish" not in calls
    _late_key(server_account, server_trail)
    found, calls = _sweep(cli, doc["incident_id"], tmp_path)
    assert found.code == 0, found.stderr[-3000:]
    assert calls.count("Publish") == 1
    subjects = [m["Subject"] for m in pager.messages()]
    assert any("sweep found 1 late events" in s for s in subjects), subjects


def test_a_sweep_killed_halfway_is_finished_by_the_next(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli, tmp_path: Path
) -> None:
    """Killed right before it disables the late key (the events already merged): the next
    `respond sweep` runs the same sweep again and still contains them."""
    doc = _contained(cli, server_account, server_trail)
    carol_key = _late_key(server_account, server_trail)
    probe = tmp_path / "probe.log"
    killed = cli("sweep", doc["incident_id"], env={"RESPONDER_FAULT_LOG": str(probe),
                                                   "RESPONDER_FAULT_ERROR": "UpdateAccessKey="
                                                   "ServiceUnavailable"})
    calls = logged_calls(probe)
    crash_at = calls.index("UpdateAccessKey") + 1
    assert killed.code == 1  # the sweep failed (every attempt refused), nothing disabled
    assert _status(server_account, "carol", carol_key) == "Active"
    crashed = cli("sweep", doc["incident_id"],
                  env={"RESPONDER_FAULT_CRASH_BEFORE": str(crash_at)})
    assert crashed.code == 137
    again, _ = _sweep(cli, doc["incident_id"], tmp_path)
    assert again.code == 0, again.stderr[-3000:]
    assert _status(server_account, "carol", carol_key) == "Inactive"
    swept = again.json()["sweeps"]["done"]
    assert [(s["step"], s["status"], s["new_events"]) for s in swept] == [("sweep-1", "done", 1)]
    assert len(_event_ids(again.json()["evidence"]["path"])) == 2


def test_a_sweep_is_refused_before_containment(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    halted = cli("compromised", server_account.leaked_key, "--yes", "--output", "json",
                 env={"RESPONDER_FAULT_ERROR": "UpdateAccessKey=AccessDenied"})
    assert halted.code == 1, halted.stderr[-2000:]
    result = cli("sweep", halted.json()["incident_id"], "--output", "json")
    assert result.code == 3
    assert "never contained" in result.stderr


def test_status_shows_sweeps_done_and_due(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli, tmp_path: Path
) -> None:
    doc = _contained(cli, server_account, server_trail)
    listed = cli("status")
    assert "0 done, next" in listed.stdout, listed.stdout
    assert _sweep(cli, doc["incident_id"], tmp_path)[0].code == 0
    assert "1 done, next" in cli("status").stdout
    shown = json.loads(cli("status", doc["incident_id"], "--output", "json").stdout)
    assert len(shown["sweeps"]["done"]) == 1
    assert len(shown["sweeps"]["due"]) == 2  # the sweep ran before the first was due


def test_watch_runs_the_sweeps_when_due(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli, tmp_path: Path
) -> None:
    """--watch with a playbook whose sweep is due at once: it runs, then one JSON object."""
    shipped = Path(__file__).resolve().parent.parent / "playbooks" / "compromised-key.yaml"
    playbook = tmp_path / "now.yaml"
    playbook.write_text(shipped.read_text().replace(
        "sweeps: {after_minutes: [15, 60], overlap_minutes: 30}",
        "sweeps: {after_minutes: [0], overlap_minutes: 30}").replace(
        "name: compromised-key", "name: sweep-now"))
    server_trail.record(REGION, "ListBuckets", server_account.leaked_key,
                        event_time=datetime.now(UTC) - timedelta(minutes=3))
    _late_key(server_account, server_trail)
    result = cli("compromised", server_account.leaked_key, "--yes", "--no-replace",
                 "--playbook", str(playbook), "--watch", "--output", "json")
    assert result.code == 0, result.stderr[-3000:]
    doc = result.json()
    assert [(s["status"], s["new_events"]) for s in doc["sweeps"]["done"]] == [("done", 0)]
    assert doc["sweeps"]["due"] == []
    assert "sweep-1 due at" in result.stderr


def test_the_evidence_bucket_keeps_the_evidence_and_the_report(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    s3 = server_account.session.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="incident-evidence")
    doc = _contained(cli, server_account, server_trail,
                     env={"RESPONDER_EVIDENCE_BUCKET": "incident-evidence"})
    prefix = f"incidents/{doc['incident_id']}/"
    assert doc["evidence"]["s3_uri"] == f"s3://incident-evidence/{prefix}"
    stored = s3.get_object(Bucket="incident-evidence", Key=prefix + "cloudtrail.jsonl")
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == doc["evidence"]["sha256"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="incident-evidence")["Contents"]}
    assert {prefix + "report.md", prefix + "report.json", prefix + "log.jsonl"} <= keys


def test_a_missing_bucket_never_blocks_containment(
    server_account: Account, server_trail: FaultyCloudTrail, cli: Cli
) -> None:
    server_trail.record(REGION, "ListBuckets", server_account.leaked_key,
                        event_time=datetime.now(UTC) - timedelta(minutes=3))
    result = cli("compromised", server_account.leaked_key, "--yes", "--no-replace",
                 "--output", "json", "--evidence-bucket", "no-such-evidence-bucket")
    assert result.code == 5, result.stderr[-3000:]
    doc = result.json()
    assert doc["status"] == "completed"
    assert doc["contained_at"] is not None
    assert _status(server_account, "alice", server_account.leaked_key) == "Inactive"
    assert doc["evidence"]["s3_uri"] is None
    assert "no-such-evidence-bucket" in doc["evidence"]["archive_error"]
    assert Path(doc["evidence"]["path"]).is_file()
    assert Path(doc["report"]).is_file()
