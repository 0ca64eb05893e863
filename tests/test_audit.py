"""`respond audit`: each risky credential found exactly once, clean ones never, from one
credential report (not a call per user), with the command that fixes it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import FAST_RETRY, REGION, CliResult

from responder.audit import credential_report as audit
from responder.aws import Api
from responder.errors import BadInput

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HEADER = ("user,arn,user_creation_time,password_enabled,password_last_used,"
          "password_last_changed,password_next_rotation,mfa_active,access_key_1_active,"
          "access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,"
          "access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,"
          "access_key_2_last_used_date,access_key_2_last_used_region,"
          "access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,"
          "cert_2_last_rotated")


def _row(user: str, *, console: bool = False, mfa: bool = False,
         key1: tuple[int, int | None, str, str] | None = None,
         key2: tuple[int, int | None, str, str] | None = None) -> str:
    """keyN: (days since rotated, days since used or None, region, service)."""
    def key(spec: tuple[int, int | None, str, str] | None) -> list[str]:
        if spec is None:
            return ["false", "N/A", "N/A", "N/A", "N/A"]
        made, used, region, service = spec
        return ["true", (NOW - timedelta(days=made)).isoformat(),
                (NOW - timedelta(days=used)).isoformat() if used is not None else "N/A",
                region if used is not None else "N/A", service if used is not None else "N/A"]
    created = (NOW - timedelta(days=400)).isoformat()
    return ",".join([user, f"arn:aws:iam::123456789012:user/{user}", created,
                     str(console).lower(), "N/A", "N/A", "N/A", str(mfa).lower(),
                     *key(key1), *key(key2), "false", "N/A", "false", "N/A"])


REPORT = "\n".join([
    HEADER,
    _row("<root_account>", key1=(500, 3, "us-east-1", "s3")),
    _row("old", key1=(200, 1, "us-east-1", "s3")),
    _row("idle", key1=(30, None, "N/A", "N/A")),
    _row("stale", key1=(50, 100, "us-east-1", "ec2")),
    _row("doubled", key1=(10, 1, "us-east-1", "s3"), key2=(5, 1, "us-east-1", "s3")),
    _row("nomfa", console=True),
    _row("moved", key1=(20, 1, "ap-east-1", "s3")),
    _row("clean", key1=(10, 1, "us-east-1", "s3")),
    _row("clean-console", console=True, mfa=True),
    _row("clean-nokeys"),
])
SEEN = {"moved/access_key_1": {"regions": ["us-east-1"], "services": ["s3"]}}


def test_each_risky_credential_is_found_once_and_clean_ones_never() -> None:
    found = audit.findings(audit.report_rows(REPORT), NOW,
                           audit.Settings(max_age_days=90, unused_days=25), SEEN)
    by = {(f.user, f.credential): f for f in found}
    assert len(by) == len(found)  # one finding per credential
    assert set(by) == {("<root_account>", "root_keys"), ("old", "access_key_1"),
                       ("idle", "access_key_1"), ("stale", "access_key_1"),
                       ("doubled", "access_key_1"), ("doubled", "access_key_2"),
                       ("nomfa", "console"), ("moved", "access_key_1")}
    assert found[0].severity == "critical"
    assert [f.severity for f in found] == sorted(
        (f.severity for f in found), key=audit.SEVERITY.__getitem__)
    assert any("not rotated for 200 days" in p for p in by[("old", "access_key_1")].problems)
    assert any("never used" in p for p in by[("idle", "access_key_1")].problems)
    assert any("unused for 100 days" in p for p in by[("stale", "access_key_1")].problems)
    assert any("two active keys" in p for p in by[("doubled", "access_key_2")].problems)
    assert by[("moved", "access_key_1")].problems == (
        "last used from a region never seen before: ap-east-1",)
    assert "delete-login-profile --user-name nomfa" in by[("nomfa", "console")].fix


def test_not_a_credential_report_is_bad_input() -> None:
    with pytest.raises(BadInput, match="credential report"):
        audit.report_rows("name,age\nx,1\n")


def test_audit_against_moto_asks_only_flagged_users_for_key_ids(account: Any,
                                                               tmp_path: Path) -> None:
    """One report for the account, ListAccessKeys only for users with a key finding; the
    fix names the real key id; what each key was used from is remembered."""
    iam = account.session.client("iam", region_name=REGION)
    iam.create_user(UserName="carol")
    iam.create_login_profile(UserName="carol", Password="Carol-console-1")
    iam.create_user(UserName="dave")  # no credentials at all
    calls: list[str] = []
    session = boto3.Session(region_name=REGION)
    session.events.register("before-call.iam",
                            lambda model, **_: calls.append(model.name))
    later = datetime.now(UTC) + timedelta(days=120)  # every key is old and unused now
    found = audit.audit(Api(session, FAST_RETRY), later, audit.Settings(),
                        tmp_path / "seen.json", sleep=lambda _: None)
    users = sorted({f.user for f in found})
    assert users == ["alice", "bob", "carol"]
    alice_keys = {k["AccessKeyId"] for k in iam.list_access_keys(
        UserName="alice")["AccessKeyMetadata"]}
    alice = [f for f in found if f.user == "alice"]
    assert {f.access_key_id for f in alice} == alice_keys
    assert all(f.access_key_id in f.fix for f in alice)
    assert calls.count("ListAccessKeys") == 2  # alice and bob, not carol or dave
    assert {"GenerateCredentialReport", "GetCredentialReport"} <= set(calls)
    assert json.loads((tmp_path / "seen.json").read_text()) is not None


def test_cli_audit_outputs(server_account: Any, cli: Callable[..., CliResult]) -> None:
    doc = cli("audit", "--output", "json")
    assert doc.code == 0, doc.stderr
    parsed = json.loads(doc.stdout)
    assert parsed["settings"] == {"max_age_days": 90, "unused_days": 90}
    assert isinstance(parsed["findings"], list)
    table = cli("audit", "--output", "csv", "--max-age-days", "30")
    assert table.code == 0, table.stderr
    assert next(csv.reader(io.StringIO(table.stdout)))[:3] == ["severity", "user",
                                                               "credential"]
    bad = cli("audit", "--max-age-days", "0")
    assert bad.code == 2


@pytest.mark.parametrize("operation", ["GenerateCredentialReport", "GetCredentialReport"])
def test_a_denied_report_is_one_line_and_exit_2(server_account: Any,
                                                cli: Callable[..., CliResult],
                                                operation: str) -> None:
    result = cli("audit", env={"RESPONDER_FAULT_ERROR": f"{operation}=AccessDenied"})
    assert result.code == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "audit:" in result.stderr
    assert "AccessDenied" in result.stderr
