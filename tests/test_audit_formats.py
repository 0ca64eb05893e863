"""The audit as ASFF and SARIF, and its import into Security Hub: every field AWS
requires, within AWS's limits, the same Id for the same credential on every run, one
finding per credential however often it is imported, and fixed ones archived.

Findings come from the real `credential_report.findings` over a report in the shape AWS
writes it. The import runs against moto's Security Hub in process; what moto does not
emulate (Filters, the UpdatedAt ordering rule, "not enabled") is said where it matters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.session
import jsonschema
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator
from conftest import FAST_RETRY, REGION
from moto import mock_aws
from test_audit import HEADER

from responder.audit import credential_report as audit
from responder.audit import formats, security_hub
from responder.audit.credential_report import Finding
from responder.aws import Api
from responder.errors import BadInput
from responder.redaction import SECRET_FIELDS, SECRET_SHAPED

ACCOUNT = "123456789012"  # moto's default account
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MODEL: Any = botocore.session.get_session().get_service_model("securityhub")
Key = tuple[int, int | None, str, str]
"""(days since rotated, days since last used or None, region, service)"""


def _at(days: int) -> str:
    return (NOW - timedelta(days=days)).isoformat()  # AWS writes +00:00


def _row(user: str, *, console: bool = False, mfa: bool = False,
         key1: Key | None = None, key2: Key | None = None) -> str:
    def key(spec: Key | None) -> list[str]:
        if spec is None:
            return ["false", "N/A", "N/A", "N/A", "N/A"]
        made, used, region, service = spec
        return ["true", _at(made), _at(used) if used is not None else "N/A",
                region if used is not None else "N/A", service if used is not None else "N/A"]
    if user == "<root_account>":
        head = [user, f"arn:aws:iam::{ACCOUNT}:root", _at(900), "not_supported", _at(2),
                "not_supported", "not_supported", str(mfa).lower()]
    else:
        head = [user, f"arn:aws:iam::{ACCOUNT}:user/{user}", _at(400), str(console).lower(),
                _at(1) if console else "N/A", _at(300) if console else "N/A", "N/A",
                str(mfa).lower()]
    return ",".join([*head, *key(key1), *key(key2), "false", "N/A", "false", "N/A"])


def _report(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


REPORT = _report(
    _row("<root_account>", mfa=True, key1=(500, 3, "us-east-1", "s3")),
    _row("old", key1=(200, 1, "us-east-1", "s3")),
    _row("idle", key1=(30, None, "N/A", "N/A")),
    _row("doubled", key1=(10, 1, "us-east-1", "s3"), key2=(5, 1, "us-east-1", "s3")),
    _row("nomfa", console=True),
    _row("clean", key1=(10, 1, "us-east-1", "s3"), console=True, mfa=True),
)
SETTINGS = audit.Settings(max_age_days=90, unused_days=25)


def _found(report: str = REPORT, now: datetime = NOW) -> list[Finding]:
    return audit.findings(audit.report_rows(report), now, SETTINGS, {})


def _asff(found: list[Finding], now: datetime = NOW) -> list[dict[str, Any]]:
    return formats.asff(found, account_id=ACCOUNT, region=REGION, partition="aws", now=now)


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair at any depth, and every string as ("", text)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    elif isinstance(value, str):
        yield "", value


# --- ASFF -------------------------------------------------------------------------------


def test_asff_is_valid_for_batch_import_findings_by_aws_own_model() -> None:
    """botocore's model of BatchImportFindings: every required member present, no member
    it does not know, every type right; then the enums and limits botocore leaves out."""
    found = _found()
    findings = _asff(found)
    assert len(findings) == len(found) == 6
    report = ParamValidator().validate(
        {"Findings": findings}, MODEL.operation_model("BatchImportFindings").input_shape)
    assert not report.has_errors(), report.generate_report()
    required = set(MODEL.shape_for("AwsSecurityFinding").required_members)
    labels = set(MODEL.shape_for("SeverityLabel").enum)
    for f in findings:
        assert required <= set(f), required - set(f)
        assert f["SchemaVersion"] == "2018-10-08"
        assert f["ProductArn"] == (
            f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default")
        assert f["GeneratorId"].startswith("aws-key-responder/audit/")
        assert f["CreatedAt"] == f["UpdatedAt"] == "2026-12-01T09:00:00.000Z"
        assert f["Severity"]["Label"] in labels
        assert f["FindingProviderFields"]["Severity"] == f["Severity"]
        assert f["Types"] == f["FindingProviderFields"]["Types"] == [
            "Software and Configuration Checks/AWS Security Best Practices"]
        assert (f["Compliance"], f["Workflow"], f["RecordState"]) == (
            {"Status": "FAILED"}, {"Status": "NEW"}, "ACTIVE")
        assert 1 <= len(f["Title"]) <= 256
        assert 1 <= len(f["Description"]) <= 1024
        assert 1 <= len(f["Remediation"]["Recommendation"]["Text"]) <= 512
        assert len(f["Id"]) <= 512
        assert len(f["Resources"]) == 1


def test_long_texts_are_cut_to_the_limits_with_an_ellipsis() -> None:
    long = Finding("medium", "u", "access_key_1", ("x" * 3000, "y" * 10), "z" * 900)
    [f] = _asff([long])
    text = f["Remediation"]["Recommendation"]["Text"]
    assert [len(f["Title"]), len(f["Description"]), len(text)] == [256, 1024, 512]
    assert {f["Title"][-1], f["Description"][-1], text[-1]} == {"…"}
    [short] = _asff([replace(long, problems=("not rotated for 200 days",), fix="rotate it")])
    assert "…" not in short["Title"] + short["Description"]


def test_severity_labels_and_generators_follow_the_audit() -> None:
    by = {(f["Resources"][0]["Type"], f["GeneratorId"]): f["Severity"] for f in _asff(_found())}
    assert by[("AwsAccount", "aws-key-responder/audit/root-access-keys")] == {
        "Label": "CRITICAL", "Original": "critical"}
    assert by[("AwsIamUser", "aws-key-responder/audit/console-password")] == {
        "Label": "HIGH", "Original": "high"}
    labels = {f["Id"].rsplit("/", 2)[1]: f["Severity"]["Label"] for f in _asff(_found())}
    assert labels["old"] == "HIGH"  # not rotated: may have leaked
    assert labels["idle"] == "MEDIUM"  # never used: hygiene
    low = Finding("low", "u", "access_key_2", ("p",), "f")
    assert _asff([low])[0]["Severity"]["Label"] == "LOW"


def test_resources_name_the_key_when_its_id_is_known_else_the_user() -> None:
    keyless = next(f for f in _found() if f.user == "old")
    keyed = replace(keyless, access_key_id="AKIAEXAMPLEOLD000001", fix="respond rotate x")
    [by_user], [by_key] = _asff([keyless]), _asff([keyed])
    assert by_user["Resources"][0] == {
        "Type": "AwsIamUser", "Id": f"arn:aws:iam::{ACCOUNT}:user/old", "Partition": "aws",
        "Region": REGION, "Details": {"AwsIamUser": {"UserName": "old"}}}
    assert by_key["Resources"][0]["Type"] == "AwsIamAccessKey"
    assert by_key["Resources"][0]["Id"] == "AWS::IAM::AccessKey:AKIAEXAMPLEOLD000001"
    details = by_key["Resources"][0]["Details"]["AwsIamAccessKey"]
    assert details | {"CreatedAt": None} == {
        "AccessKeyId": "AKIAEXAMPLEOLD000001", "AccountId": ACCOUNT, "PrincipalName": "old",
        "PrincipalType": "IAMUser", "Status": "Active", "CreatedAt": None}
    assert details["CreatedAt"].startswith("2026-05-15")  # the slot's last_rotated
    assert by_key["Remediation"]["Recommendation"]["Text"] == "respond rotate x"
    assert "rotate" in by_user["Remediation"]["Recommendation"]["Text"]  # no fix: the rule's
    assert by_user["Id"] == by_key["Id"]  # the key id's arrival changes no Id
    console = next(f for f in _found() if f.credential == "console")
    assert _asff([replace(console, access_key_id="AKIAEXAMPLEOLD000001")])[0][
        "Resources"][0]["Type"] == "AwsIamUser"  # a password is not a key


def test_ids_are_stable_across_runs_and_unique_within_one() -> None:
    first = [f["Id"] for f in _asff(_found())]
    later = NOW + timedelta(days=1)
    second = [f["Id"] for f in _asff(_found(now=later), now=later)]
    assert first == second
    assert len(set(first)) == len(first)
    assert f"aws-key-responder/{ACCOUNT}/doubled/access_key_2" in first
    assert f"aws-key-responder/{ACCOUNT}/<root_account>/root_keys" in first


def test_nothing_secret_shaped_or_secret_named_is_written() -> None:
    found = [replace(f, access_key_id="AKIAEXAMPLEKEY000001") if f.credential.startswith(
        "access_key_") else f for f in _found()]
    for key, value in _walk([*_asff(found), formats.sarif({ACCOUNT: found}, tool_version="1")]):
        assert key not in SECRET_FIELDS
        assert "secret" not in key.lower()
        assert not (isinstance(value, str) and SECRET_SHAPED.search(value)), value


# --- SARIF ------------------------------------------------------------------------------

SARIF_SUBSET: dict[str, Any] = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["tool"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {
                    "driver": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"}, "version": {"type": "string"},
                        "informationUri": {"type": "string", "format": "uri"},
                        "rules": {"type": "array", "uniqueItems": True, "items": {
                            "type": "object", "required": ["id"], "properties": {
                                "id": {"type": "string"},
                                "shortDescription": {"$ref": "#/$defs/message"},
                                "help": {"$ref": "#/$defs/message"}}}}}}}},
                "results": {"type": "array", "items": {
                    "type": "object", "required": ["message"], "properties": {
                        "ruleId": {"type": "string"},
                        "ruleIndex": {"type": "integer", "minimum": -1},
                        "level": {"enum": ["none", "note", "warning", "error"]},
                        "message": {"$ref": "#/$defs/message"},
                        "partialFingerprints": {"type": "object",
                                                "additionalProperties": {"type": "string"}},
                        "locations": {"type": "array", "items": {
                            "type": "object", "properties": {"logicalLocations": {
                                "type": "array", "minItems": 1, "uniqueItems": True,
                                "items": {"type": "object", "properties": {
                                    "name": {"type": "string"},
                                    "fullyQualifiedName": {"type": "string"},
                                    "kind": {"type": "string"}}}}}}}}}}}}},
    },
    "$defs": {"message": {"type": "object", "anyOf": [{"required": ["text"]},
                                                      {"required": ["id"]}],
                          "properties": {"text": {"type": "string"}}}},
}
"""The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json) that this output uses:
their required properties, types and enums. The full schema is not installable here
offline (no PyPI package ships it), so this subset, copied from it, stands in."""


def test_sarif_has_the_2_1_0_structure_a_result_per_problem_and_stable_locations() -> None:
    found = _found()
    doc = formats.sarif({ACCOUNT: found, "210987654321": found[:1]}, tool_version="0.1.0")
    jsonschema.validate(doc, SARIF_SUBSET)
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    [run] = doc["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("aws-key-responder", "0.1.0")
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(set(rule_ids)) == len(rule_ids)
    results = run["results"]
    assert len(results) == sum(len(f.problems) for f in found) + len(found[0].problems)
    for r in results:
        assert rule_ids[r["ruleIndex"]] == r["ruleId"]
        assert r["ruleId"] != "credential-hygiene", r["message"]  # every problem has its rule
    levels = {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]: r["level"]
              for r in results}
    assert levels[f"aws:{ACCOUNT}:iam:user/<root_account>/root_keys"] == "error"
    assert levels[f"aws:{ACCOUNT}:iam:user/nomfa/console"] == "error"
    assert levels[f"aws:{ACCOUNT}:iam:user/idle/access_key_1"] == "warning"
    assert levels["aws:210987654321:iam:user/<root_account>/root_keys"] == "error"
    assert all(r["locations"][0]["logicalLocations"][0]["kind"] == "resource" for r in results)
    low = formats.sarif({ACCOUNT: [Finding("low", "u", "console", ("p",), "")]},
                        tool_version="1", information_uri="https://example.com/tool")
    jsonschema.validate(low, SARIF_SUBSET)
    assert low["runs"][0]["results"][0]["level"] == "note"
    again = formats.sarif({ACCOUNT: _found()}, tool_version="0.1.0")["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in again] == [
        r["partialFingerprints"] for r in results if r["properties"]["account"] == ACCOUNT]


# --- Security Hub, against moto ---------------------------------------------------------


class Hub:
    """moto's Security Hub (enabled) with an Api over it, counting the calls made."""

    def __init__(self) -> None:
        self.session = boto3.Session(region_name=REGION)
        self.calls: list[str] = []
        self.params: dict[str, list[dict[str, Any]]] = {}
        self.session.events.register("before-parameter-build.securityhub", self._seen)
        self.api = Api(self.session, FAST_RETRY)
        self.client = self.session.client("securityhub", region_name=REGION)
        self.client.enable_security_hub()
        self.calls.clear()

    def _seen(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append(model.name)
        self.params.setdefault(model.name, []).append(params)

    def send(self, found: list[Finding], now: datetime) -> security_hub.Imported:
        return security_hub.to_security_hub(
            self.api, formats.asff(found, account_id=ACCOUNT, region=REGION, partition="aws",
                                   now=now),
            account_id=ACCOUNT, region=REGION, partition="aws", now=now)

    def stored(self) -> dict[str, dict[str, Any]]:
        pages = self.client.get_paginator("get_findings").paginate()
        return {f["Id"]: f for page in pages for f in page["Findings"]}


@pytest.fixture
def hub() -> Iterator[Hub]:
    with mock_aws():
        yield Hub()


def test_reimport_updates_in_place_and_a_fixed_credential_is_archived(hub: Hub) -> None:
    found = _found()
    first = hub.send(found, NOW)
    assert first == security_hub.Imported(imported=6, archived=0, failed=())
    assert len(hub.stored()) == 6
    later = NOW + timedelta(hours=1)
    second = hub.send(_found(now=later), later)
    assert second == security_hub.Imported(imported=6, archived=0, failed=())
    stored = hub.stored()
    assert len(stored) == 6  # no duplicates
    assert {f["UpdatedAt"] for f in stored.values()} == {"2026-12-01T10:00:00.000Z"}
    assert {f["CreatedAt"] for f in stored.values()} == {"2026-12-01T09:00:00.000Z"}
    # nomfa enabled MFA: that one finding, and only it, is archived
    fixed = _report(*[r for r in REPORT.splitlines()[1:] if not r.startswith("nomfa,")],
                    _row("nomfa", console=True, mfa=True))
    even_later = later + timedelta(hours=1)
    third = hub.send(_found(fixed, even_later), even_later)
    assert third == security_hub.Imported(imported=5, archived=1, failed=())
    stored = hub.stored()
    archived = {k for k, f in stored.items() if f["RecordState"] == "ARCHIVED"}
    assert archived == {f"aws-key-responder/{ACCOUNT}/nomfa/console"}
    gone = stored[f"aws-key-responder/{ACCOUNT}/nomfa/console"]
    assert gone["Compliance"] == {"Status": "PASSED"}
    assert gone["UpdatedAt"] == "2026-12-01T11:00:00.000Z"
    assert gone["CreatedAt"] == "2026-12-01T09:00:00.000Z"
    assert gone["FindingProviderFields"]["Severity"]["Label"] == "HIGH"
    assert "Workflow" not in hub.params["BatchImportFindings"][-1]["Findings"][-1]
    sent = [f for p in hub.params["BatchImportFindings"] for f in p["Findings"]]
    assert not any("Severity" in f or "Types" in f for f in sent)  # FindingProviderFields'
    # archived stays archived: the next run neither re-archives nor counts it
    assert hub.send(_found(fixed, even_later), even_later + timedelta(hours=1)) == (
        security_hub.Imported(imported=5, archived=0, failed=()))


def test_an_update_is_always_later_than_what_security_hub_has(hub: Hub) -> None:
    """Security Hub ignores an update whose UpdatedAt is not later (moto applies any)."""
    ahead = NOW + timedelta(days=10)  # a run from a clock that was ahead
    hub.send(_found(now=ahead), ahead)
    hub.send(_found(), NOW)
    assert {f["UpdatedAt"] for f in hub.stored().values()} == {"2026-12-11T09:00:00.001Z"}


def test_get_findings_asks_only_for_our_active_findings_and_checks_the_answer(hub: Hub) -> None:
    """moto ignores GetFindings' Filters, so this test can only show which filters are
    sent (and that AWS's model knows them), and that what comes back is checked again:
    another product's ACTIVE finding in the same hub is never archived."""
    other = {**_asff(_found()[:1])[0], "Id": "someone-else/1",
             "ProductArn": f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"}
    hub.client.batch_import_findings(Findings=[other])
    result = hub.send([], NOW)
    assert result == security_hub.Imported(imported=0, archived=0, failed=())
    assert hub.stored()["someone-else/1"]["RecordState"] == "ACTIVE"
    filters = hub.params["GetFindings"][0]["Filters"]
    assert filters == {
        "ProductArn": [{"Value": other["ProductArn"], "Comparison": "EQUALS"}],
        "AwsAccountId": [{"Value": ACCOUNT, "Comparison": "EQUALS"}],
        "Id": [{"Value": f"aws-key-responder/{ACCOUNT}/", "Comparison": "PREFIX"}],
        "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}]}
    known = MODEL.shape_for("AwsSecurityFindingFilters").members
    comparisons = MODEL.shape_for("StringFilterComparison").enum
    assert all(k in known and v[0]["Comparison"] in comparisons for k, v in filters.items())


def test_250_findings_go_in_3_batches_and_all_archive_when_all_are_fixed(hub: Hub) -> None:
    many = _report(*[_row(f"user{i:03}", key1=(200, 1, "us-east-1", "s3"))
                     for i in range(250)])
    found = _found(many)
    assert len(found) == 250
    assert hub.send(found, NOW) == security_hub.Imported(imported=250, archived=0, failed=())
    assert hub.calls.count("BatchImportFindings") == 3
    assert [len(p["Findings"]) for p in hub.params["BatchImportFindings"]] == [100, 100, 50]
    assert len(hub.stored()) == 250
    hub.calls.clear()
    later = NOW + timedelta(days=1)
    everyone_fixed = hub.send([], later)
    assert everyone_fixed == security_hub.Imported(imported=0, archived=250, failed=())
    assert hub.calls.count("GetFindings") == 3  # 250 earlier findings, 100 a page
    assert hub.calls.count("BatchImportFindings") == 3
    assert {f["RecordState"] for f in hub.stored().values()} == {"ARCHIVED"}


def _answer(code: str, message: str) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message},
                     "ResponseMetadata": {"HTTPStatusCode": 400}}
    return ClientError(response, "GetFindings")


def test_security_hub_not_enabled_is_one_clear_error_before_anything_is_sent(hub: Hub) -> None:
    """moto's GetFindings and BatchImportFindings answer whether or not Security Hub is
    enabled, so AWS's InvalidAccessException is injected where AWS raises it."""
    def refuse(**_: Any) -> None:
        raise _answer("InvalidAccessException",
                      f"Account {ACCOUNT} is not subscribed to AWS Security Hub")

    hub.session.events.register("before-call.securityhub.GetFindings", refuse)
    with pytest.raises(BadInput) as caught:
        hub.send(_found(), NOW)
    said = str(caught.value)
    assert said.startswith(f"Security Hub is not enabled in account {ACCOUNT}, region {REGION}")
    assert "aws securityhub enable-security-hub --region us-east-1" in said
    assert said.endswith("or drop --to-security-hub")
    assert "\n" not in said
    assert "BatchImportFindings" not in hub.calls


def test_findings_all_refused_as_invalid_access_are_the_same_clear_error(hub: Hub) -> None:
    """The docs' other form of the same cause: every finding in FailedFindings."""
    def refuse_each(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        failed = [{"Id": f"f{i}", "ErrorCode": "InvalidAccess", "ErrorMessage": "not enabled"}
                  for i in range(6)]
        return AWSResponse("https://securityhub", 200, {}, None), {  # type: ignore[arg-type]
            "FailedCount": 6, "SuccessCount": 0, "FailedFindings": failed}

    hub.session.events.register(  # botocore takes a before-call answer as the response
        "before-call.securityhub.BatchImportFindings", refuse_each)  # type: ignore[arg-type]
    with pytest.raises(BadInput, match=r"Security Hub is not enabled.*--to-security-hub"):
        hub.send(_found(), NOW)


def test_a_partly_failed_batch_reports_which_findings_failed(hub: Hub) -> None:
    def one_fails(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        failed = [{"Id": f"aws-key-responder/{ACCOUNT}/idle/access_key_1",
                   "ErrorCode": "InvalidInput", "ErrorMessage": "bad"}]
        return AWSResponse("https://securityhub", 200, {}, None), {  # type: ignore[arg-type]
            "FailedCount": 1, "SuccessCount": 5, "FailedFindings": failed}

    hub.session.events.register(
        "before-call.securityhub.BatchImportFindings", one_fails)  # type: ignore[arg-type]
    assert hub.send(_found(), NOW) == security_hub.Imported(
        imported=5, archived=0,
        failed=((f"aws-key-responder/{ACCOUNT}/idle/access_key_1", "InvalidInput", "bad"),))


def test_a_denied_get_findings_names_the_permission(hub: Hub) -> None:
    def deny(**_: Any) -> None:
        raise _answer("AccessDeniedException", "not authorized to perform GetFindings")

    hub.session.events.register("before-call.securityhub.GetFindings", deny)
    with pytest.raises(BadInput, match="securityhub:GetFindings"):
        hub.send(_found(), NOW)
    assert set(security_hub.PERMISSIONS) == {"securityhub:BatchImportFindings",
                                             "securityhub:GetFindings"}
