"""Finding parser: each shape AWS emits becomes the right Trigger, or the right refusal."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from responder import findings, playbook
from responder.errors import BadInput, Refused
from responder.findings import FindingRefused, Trigger

FIXTURES = Path(__file__).parent / "fixtures" / "findings"
ACCOUNT = "123456789012"
GD_ID = "a4c7e9f1b2d3e4f5a6b7c8d9e0f1a2b3"


def _doc(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _refusal(name: str | Any) -> FindingRefused:
    document = _doc(name) if isinstance(name, str) else name
    with pytest.raises(FindingRefused) as caught:
        findings.parse(document)
    assert caught.value.exit_code == 3
    return caught.value


def _camel(value: Any) -> Any:
    """The raw GuardDuty API's camelCase spelling of boto3's PascalCase output."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def test_guardduty_eventbridge_event_yields_the_key_and_playbook() -> None:
    """An EventBridge GuardDuty finding names alice's AKIA key and starts compromised-key."""
    assert findings.parse(_doc("guardduty-eventbridge.json")) == [Trigger(
        finding_id=f"guardduty:{GD_ID}",
        source="guardduty",
        finding_type="UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom",
        severity=8.0,
        access_key_id="AKIAEXAMPLEALICE0001",
        user_name="alice",
        account_id=ACCOUNT,
        region="us-east-1",
        playbook="compromised-key",
        sample=False,
    )]


def test_redelivered_finding_keeps_its_finding_id() -> None:
    """A re-delivery (new event id, higher count) has the same finding_id for the journal."""
    first = findings.parse(_doc("guardduty-eventbridge.json"))
    again = findings.parse(_doc("guardduty-duplicate.json"))
    assert _doc("guardduty-eventbridge.json")["id"] != _doc("guardduty-duplicate.json")["id"]
    assert [t.finding_id for t in again] == [t.finding_id for t in first]
    assert again == first


def test_same_finding_twice_in_one_document_is_one_trigger() -> None:
    """A list holding a finding and its re-delivery yields one trigger, not two."""
    both = [_doc(name)["detail"] for name in ("guardduty-eventbridge.json",
                                              "guardduty-duplicate.json")]
    assert [t.finding_id for t in findings.parse(both)] == [f"guardduty:{GD_ID}"]


def test_sample_finding_is_refused_as_not_a_real_incident() -> None:
    """A GuardDuty sample finding is refused (exit 3) and says it is not a real incident."""
    refusal = _refusal("guardduty-sample.json")
    assert refusal.reason == "sample"
    assert refusal.finding_id == "guardduty:7e6d5c4b3a2918f7e6d5c4b3a2918f70"
    assert "GuardDuty sample finding" in str(refusal)
    assert "not a real incident" in str(refusal)


def test_sample_with_generated_placeholder_key_is_still_a_sample_refusal() -> None:
    """CreateSampleFindings' placeholder key is refused as a sample, not as bad input."""
    event = _doc("guardduty-sample.json")
    details = event["detail"]["resource"]["accessKeyDetails"]
    details.update(accessKeyId="GeneratedFindingAccessKeyId", userName="GeneratedFindingUserName")
    assert _refusal(event).reason == "sample"


def test_boto3_getfindings_output_is_parsed() -> None:
    """boto3's PascalCase GetFindings response yields the same kind of trigger."""
    assert findings.parse(_doc("guardduty-raw-getfindings.json")) == [Trigger(
        finding_id="guardduty:f1e2d3c4b5a6978877665544332211ff",
        source="guardduty",
        finding_type="CredentialAccess:IAMUser/AnomalousBehavior",
        severity=5.0,
        access_key_id="AKIAEXAMPLEDAVE00001",
        user_name="dave",
        account_id=ACCOUNT,
        region="eu-west-1",
        playbook="compromised-key",
        sample=False,
    )]


def test_raw_api_camelcase_getfindings_matches_boto3_shape() -> None:
    """The raw API's camelCase JSON parses to exactly what boto3's PascalCase does."""
    pascal = _doc("guardduty-raw-getfindings.json")
    assert findings.parse(_camel(pascal)) == findings.parse(pascal)


def test_getfindings_sample_flag_inside_additional_info_value_is_refused() -> None:
    """GetFindings encodes additionalInfo as a JSON string; its sample flag is honoured."""
    document = _doc("guardduty-raw-getfindings.json")
    document["Findings"][0]["Service"]["AdditionalInfo"]["Value"] = '{"sample":true}'
    assert _refusal(document).reason == "sample"


def test_root_key_is_refused_with_console_instructions() -> None:
    """A root user's key is refused: act in the console as root."""
    refusal = _refusal("guardduty-root.json")
    assert refusal.reason == "root"
    message = str(refusal)
    assert "root user" in message
    assert "sign in to the console as the root user" in message
    assert "AKIAEXAMPLEROOT00001" in message


@pytest.mark.parametrize("principal", [{"userType": "IAMUser", "userName": "root"},
                                       {"userType": "Root", "userName": "Root"}])
def test_root_is_recognised_by_type_or_name(principal: dict[str, str]) -> None:
    """userType Root or userName root both mark a root finding."""
    event = _doc("guardduty-eventbridge.json")
    event["detail"]["resource"]["accessKeyDetails"].update(principal)
    assert _refusal(event).reason == "root"


def _long_term_only() -> findings.TriggerMapping:
    """The shipped mapping without its `"keys": "temporary"` rules: what a mapping written
    before compromised-session existed looks like."""
    shipped = findings.load_mapping()
    return findings.TriggerMapping(tuple(r for r in shipped.rules if r.keys == "long-term"),
                                   shipped.min_severity, "old-triggers.yaml")


def test_temporary_key_without_a_temporary_rule_is_refused_naming_the_role() -> None:
    """With no `"keys": "temporary"` rule, an ASIA key is refused naming its principal,
    and how to have the session denied (by hand, or with such a rule)."""
    with pytest.raises(FindingRefused) as caught:
        findings.parse(_doc("guardduty-temporary-key.json"), mapping=_long_term_only())
    refusal = caught.value
    assert (refusal.reason, refusal.exit_code) == ("temporary-key", 3)
    assert refusal.access_key_id == "ASIAEXAMPLEROLE00001"
    message = str(refusal)
    assert "temporary (STS) key" in message
    assert "cannot be disabled" in message
    assert "role web-server-role" in message
    assert "denies exactly that session" in message
    assert '(old-triggers.yaml) with `"keys": "temporary"`' in message
    assert "`respond compromised ASIAEXAMPLEROLE00001` by hand" in message
    assert "\n" not in message


def test_temporary_key_without_principal_says_how_to_find_it() -> None:
    """With no principal in the finding, the refusal says so, and that `respond` finds the
    session itself (through CloudTrail)."""
    event = _doc("guardduty-temporary-key.json")
    event["detail"]["resource"]["accessKeyDetails"] = {"accessKeyId": "ASIAEXAMPLEROLE00001"}
    with pytest.raises(FindingRefused) as caught:
        findings.parse(event, mapping=_long_term_only())
    message = str(caught.value)
    assert "a principal the finding does not name" in message
    assert "`respond compromised ASIAEXAMPLEROLE00001` by hand" in message


def test_long_term_rules_never_answer_a_temporary_key(tmp_path: Path) -> None:
    """A catch-all rule without `keys` answers AKIA keys only; an ASIA key is refused."""
    path = tmp_path / "all.yaml"
    path.write_text("rules:\n  - {match: '*', playbook: compromised-key}\n")
    mapping = findings.load_mapping(str(path))
    assert [t.playbook for t in findings.parse(_doc("guardduty-eventbridge.json"),
                                               mapping=mapping)] == ["compromised-key"]
    with pytest.raises(FindingRefused) as caught:
        findings.parse(_doc("guardduty-temporary-key.json"), mapping=mapping)
    assert caught.value.reason == "temporary-key"
    assert str(path) in str(caught.value)


def test_temporary_rules_never_answer_a_long_term_key(tmp_path: Path) -> None:
    """A rule with `keys: temporary` is not considered for an AKIA key."""
    path = tmp_path / "temp.yaml"
    path.write_text("rules:\n  - {match: '*', keys: temporary, playbook: compromised-session}\n")
    mapping = findings.load_mapping(str(path))
    [temporary] = findings.parse(_doc("guardduty-temporary-key.json"), mapping=mapping)
    assert temporary.playbook == "compromised-session"
    with pytest.raises(FindingRefused) as caught:
        findings.parse(_doc("guardduty-eventbridge.json"), mapping=mapping)
    assert caught.value.reason == "not-configured"


def test_temporary_key_below_min_severity_is_not_configured(tmp_path: Path) -> None:
    """The severity threshold applies to temporary rules as to long-term ones."""
    path = tmp_path / "strict.yaml"
    path.write_text("rules:\n  - {match: '*', keys: temporary, playbook: s, min_severity: 9}\n")
    with pytest.raises(FindingRefused, match=re.escape("below min_severity 9")) as caught:
        findings.parse(_doc("guardduty-temporary-key.json"),
                       mapping=findings.load_mapping(str(path)))
    assert caught.value.reason == "not-configured"


def test_finding_without_access_key_is_refused() -> None:
    """An EC2 finding names no key: investigate what it names in the console."""
    refusal = _refusal("guardduty-no-key.json")
    assert refusal.reason == "no-access-key"
    message = str(refusal)
    assert "names no access key" in message
    assert "investigate the principal" in message
    assert "GuardDuty console" in message
    assert "i-0abc123def4567890" in message


def test_iam_finding_without_key_names_the_principal() -> None:
    """A console-login style finding with a user but no key names that user."""
    event = _doc("guardduty-eventbridge.json")
    del event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"]
    message = str(_refusal(event))
    assert "names no access key" in message
    assert "IAM user alice" in message


def test_low_severity_finding_is_not_configured_to_trigger() -> None:
    """A Discovery finding below min_severity is refused and says where to change that."""
    refusal = _refusal("guardduty-low-severity.json")
    assert refusal.reason == "not-configured"
    message = str(refusal)
    assert "not configured to trigger a playbook" in message
    assert "min_severity 4" in message
    assert "triggers.json" in message


def test_unmapped_finding_type_is_not_configured_to_trigger() -> None:
    """A finding type no rule matches (one GuardDuty might add) is refused, naming the
    mapping to add it to."""
    event = _doc("guardduty-eventbridge.json")
    event["detail"]["type"] = "Impact:IAMUser/NotDecidedYet"
    refusal = _refusal(event)
    assert refusal.reason == "not-configured"
    assert "not configured to trigger a playbook: add a rule for it" in str(refusal)




def test_archived_finding_is_refused() -> None:
    """A finding someone archived starts nothing."""
    event = _doc("guardduty-eventbridge.json")
    event["detail"]["service"]["archived"] = True
    assert _refusal(event).reason == "archived"


def test_malformed_key_in_a_finding_is_bad_input() -> None:
    """A key id that is not an access key id is bad input (exit 2), naming the finding."""
    event = _doc("guardduty-eventbridge.json")
    event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = "AIDAEXAMPLEALICE0001"
    with pytest.raises(BadInput, match=f"GuardDuty finding {GD_ID}.*IAM user id") as caught:
        findings.parse(event)
    assert caught.value.exit_code == 2


def test_health_credentials_exposed_event_yields_the_key() -> None:
    """AWS Health AWS_RISK_CREDENTIALS_EXPOSED names the key in affectedEntities."""
    [trigger] = findings.parse(_doc("health-credentials-exposed.json"))
    arn = _doc("health-credentials-exposed.json")["detail"]["eventArn"]
    assert trigger == Trigger(
        finding_id=f"health:{arn}#AKIAEXAMPLECAROL0001",
        source="health",
        finding_type="AWS_RISK_CREDENTIALS_EXPOSED",
        severity=None,
        access_key_id="AKIAEXAMPLECAROL0001",
        user_name=None,
        account_id=ACCOUNT,
        region="us-east-1",
        playbook="compromised-key",
        sample=False,
    )


def test_other_aws_risk_codes_trigger_too() -> None:
    """Any AWS_RISK_* Health code with a key starts the playbook."""
    event = _doc("health-credentials-exposed.json")
    event["detail"]["eventTypeCode"] = "AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED"
    [trigger] = findings.parse(event)
    assert trigger.finding_type == "AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED"


def test_health_event_without_a_key_is_refused() -> None:
    """A Health event whose entities name no key points at the Health Dashboard."""
    event = _doc("health-credentials-exposed.json")
    event["detail"]["affectedEntities"] = [{"entityValue": "carol"}]
    event["resources"] = []
    refusal = _refusal(event)
    assert refusal.reason == "no-access-key"
    assert "AWS Health Dashboard" in str(refusal)


def test_security_hub_asff_finding_yields_the_key_from_the_resource_id() -> None:
    """An ASFF AwsIamAccessKey resource gives key (from its Id), user, severity/10."""
    [trigger] = findings.parse(_doc("securityhub-asff.json"))
    finding = _doc("securityhub-asff.json")["detail"]["findings"][0]
    assert trigger == Trigger(
        finding_id=f"securityhub:{finding['Id']}",
        source="securityhub",
        finding_type="Effects/Data Exfiltration/Exfiltration:IAMUser-AnomalousBehavior",
        severity=8.0,
        access_key_id="AKIAEXAMPLEBOB000001",
        user_name="bob",
        account_id=ACCOUNT,
        region="us-east-1",
        playbook="compromised-key",
        sample=False,
    )


def test_security_hub_access_key_id_detail_wins_over_the_resource_id() -> None:
    """Details.AwsIamAccessKey.AccessKeyId, when present, is the key used."""
    event = _doc("securityhub-asff.json")
    resource = event["detail"]["findings"][0]["Resources"][0]
    resource["Id"] = "arn:aws:iam::123456789012:user/bob"
    resource["Details"]["AwsIamAccessKey"]["AccessKeyId"] = "AKIAEXAMPLEBOB000002"
    [trigger] = findings.parse(event)
    assert trigger.access_key_id == "AKIAEXAMPLEBOB000002"


def test_security_hub_label_only_severity_is_used() -> None:
    """Without Severity.Normalized, the label's lower bound decides (LOW < 4)."""
    event = _doc("securityhub-asff.json")
    event["detail"]["findings"][0]["Severity"] = {"Label": "LOW"}
    assert _refusal(event).reason == "not-configured"


def test_security_hub_multi_returns_only_the_actionable_finding() -> None:
    """Two findings, one a control finding with no key: only frank's key is returned."""
    triggers = findings.parse(_doc("securityhub-multi.json"))
    assert [(t.access_key_id, t.user_name, t.severity) for t in triggers] == [
        ("AKIAEXAMPLEFRANK0001", "frank", 5.0)]
    assert triggers[0].finding_type == "TTPs/Initial Access/UnauthorizedAccess:IAMUser-TorIPCaller"


def test_security_hub_event_with_no_actionable_finding_is_refused() -> None:
    """When no finding in the event is actionable, the refusal lists each reason."""
    event = _doc("securityhub-multi.json")
    event["detail"]["findings"][1]["Sample"] = True
    refusal = _refusal(event)
    assert refusal.reason == "none-actionable"
    assert [getattr(p, "reason", None) for p in refusal.problems] == ["no-access-key", "sample"]
    assert "none of the 2 findings" in str(refusal)


def test_security_hub_archived_finding_is_refused() -> None:
    """RecordState ARCHIVED starts nothing."""
    event = _doc("securityhub-asff.json")
    event["detail"]["findings"][0]["RecordState"] = "ARCHIVED"
    assert _refusal(event).reason == "archived"


def test_security_hub_getfindings_output_is_parsed() -> None:
    """Security Hub GetFindings output (a Findings list of ASFF) works like the event."""
    finding = _doc("securityhub-asff.json")["detail"]["findings"][0]
    [trigger] = findings.parse({"Findings": [finding]})
    assert trigger.access_key_id == "AKIAEXAMPLEBOB000001"


def test_unrelated_eventbridge_event_is_bad_input() -> None:
    """An EC2 state-change event is not a finding: exit 2, naming its source."""
    with pytest.raises(BadInput) as caught:
        findings.parse(_doc("not-a-finding.json"))
    assert not isinstance(caught.value, Refused)
    assert caught.value.exit_code == 2
    assert "'aws.ec2'" in str(caught.value)
    assert "not a GuardDuty, AWS Health or Security Hub finding" in str(caught.value)


@pytest.mark.parametrize("document", [[], {}, "text", 42, {"Findings": []},
                                      {"source": "aws.securityhub", "detail": {"findings": []}}])
def test_documents_without_a_finding_are_bad_input(document: Any) -> None:
    """Empty or non-object documents are bad input, not a crash."""
    with pytest.raises(BadInput):
        findings.parse(document)


def test_broken_json_file_is_bad_input_naming_the_file() -> None:
    """Invalid JSON is bad input whose message names the file and the position."""
    path = FIXTURES / "broken.json"
    with pytest.raises(BadInput, match=re.escape(str(path)) + r": invalid JSON at line \d+"):
        findings.load(str(path))


def test_missing_file_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    """An unreadable finding file is bad input naming it."""
    path = tmp_path / "nope.json"
    with pytest.raises(BadInput, match=re.escape(f"cannot read finding file {path}")):
        findings.load(str(path))


def test_load_reads_a_file() -> None:
    """load() with a path parses the file."""
    [trigger] = findings.load(str(FIXTURES / "guardduty-eventbridge.json"))
    assert trigger.finding_id == f"guardduty:{GD_ID}"


def test_load_dash_reads_the_given_stdin() -> None:
    """load('-') reads the finding from the stream it is given."""
    stream = io.StringIO((FIXTURES / "health-credentials-exposed.json").read_text())
    [trigger] = findings.load("-", stream)
    assert trigger.access_key_id == "AKIAEXAMPLECAROL0001"


def test_load_dash_with_empty_stdin_is_bad_input() -> None:
    """Nothing on stdin is bad input, not a JSON traceback."""
    with pytest.raises(BadInput, match="<stdin>: empty"):
        findings.load("-", io.StringIO(""))


def test_shipped_mapping_is_the_documented_default() -> None:
    """The default mapping ships in the package: every AWS Health risk event, and each
    GuardDuty type it responds to with compromised-key for an AKIA key and
    compromised-session for an ASIA key (tests/test_findings_mapping.py holds each
    type's decision to docs/findings.md)."""
    mapping = findings.load_mapping()
    assert mapping.min_severity == 4.0
    respond = {(r.match, r.keys): r.playbook for r in mapping.rules if r.action == "respond"}
    assert respond.pop(("AWS_RISK_*", "long-term")) == "compromised-key"
    long_term = {m for (m, keys) in respond if keys == "long-term"}
    temporary = {m for (m, keys) in respond if keys == "temporary"}
    assert long_term == temporary
    assert all(respond[(m, "long-term")] == "compromised-key" for m in long_term)
    assert all(respond[(m, "temporary")] == "compromised-session" for m in temporary)
    assert not [r for r in mapping.rules if "*" in r.match and r.match != "AWS_RISK_*"]
    assert '"keys": "temporary"' in mapping.description
    assert findings.DEFAULT_MAPPING in {p.name for p in playbook.shipped_dir().iterdir()}


def test_every_playbook_the_default_mapping_names_is_shipped() -> None:
    """A default rule can never point at a playbook that does not exist."""
    for rule in findings.load_mapping().rules:
        if rule.playbook is not None:
            assert playbook.load(rule.playbook).name == rule.playbook


def test_custom_mapping_file_changes_playbook_and_threshold(tmp_path: Path) -> None:
    """A YAML mapping of one's own picks the playbook and lowers the threshold."""
    path = tmp_path / "triggers.yaml"
    path.write_text(
        "min_severity: 7\n"
        "rules:\n"
        "  - {match: 'Discovery:IAMUser/*', playbook: audit-only, min_severity: 1}\n"
        "  - {match: '*', playbook: compromised-key}\n"
    )
    mapping = findings.load_mapping(str(path))
    [low] = findings.parse(_doc("guardduty-low-severity.json"), mapping=mapping)
    assert (low.playbook, low.severity) == ("audit-only", 2.0)
    [high] = findings.load(str(FIXTURES / "guardduty-eventbridge.json"), mapping=mapping)
    assert high.playbook == "compromised-key"
    with pytest.raises(FindingRefused, match=re.escape(f"min_severity 7 (rule '*' in {path})")):
        findings.parse(_doc("securityhub-multi.json"), mapping=mapping)


def test_custom_mapping_can_match_asff_types_directly(tmp_path: Path) -> None:
    """Rules may also match the raw ASFF Types entry."""
    path = tmp_path / "triggers.json"
    path.write_text(json.dumps({"rules": [
        {"match": "Effects/Data Exfiltration/*", "playbook": "exfil"}]}))
    [trigger] = findings.parse(_doc("securityhub-asff.json"),
                               mapping=findings.load_mapping(str(path)))
    assert trigger.playbook == "exfil"


@pytest.mark.parametrize(("text", "words"), [
    ("rules: [\n  {match: x", "invalid YAML"),
    ("- just a list\n", "must be a mapping"),
    ("min_severity: 4\n", "`rules` is required"),
    ("rules:\n  - {match: 'X:*', playbok: compromised-key}\n", "unknown field 'playbok'"),
    ("rules:\n  - {playbook: compromised-key}\n", "rules[0]: `match` is required"),
    ("min_severity: 11\nrules: []\n", "from 0 to 10"),
    ("rules:\n  - {match: 'X:*', playbook: ''}\n", "playbook must be a non-empty string"),
    ("rulez: []\n", "unknown field 'rulez'"),
    ("rules:\n  - {match: 'X:*', playbook: p, keys: session}\n",
     "rules[0]: keys must be 'long-term' or 'temporary'"),
    ("rules:\n  - {match: 'X:*', playbook: p, keys: null}\n", "got None"),
    ("rules:\n  - {match: 'X:*', playbook: p, keys: any}\n",
     "rules[0]: keys must be 'long-term' or 'temporary'"),
    ("rules:\n  - {match: 'X:*'}\n", "rules[0]: `playbook` is required"),
    ("rules:\n  - {match: 'X:*', action: alert}\n",
     "rules[0]: action must be one of 'respond', 'notify', 'ignore'"),
    ("rules:\n  - {match: 'X:*', action: notify, playbook: p}\n",
     "an `action: notify` rule starts no playbook, so it takes no `playbook`"),
    ("rules:\n  - {match: 'X:*', action: ignore, min_severity: 3}\n",
     "takes no `min_severity`"),
])
def test_invalid_mapping_file_is_bad_input_naming_it(tmp_path: Path, text: str,
                                                     words: str) -> None:
    """Each defect in a mapping file is bad input naming the file and the defect."""
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(BadInput) as caught:
        findings.load_mapping(str(path))
    assert str(path) in str(caught.value)
    assert words in str(caught.value)


def test_rule_for_considers_only_rules_for_the_kind_of_key() -> None:
    """First match wins among the rules for the asked kind; the other kind is skipped."""
    mapping = findings.TriggerMapping((
        findings.Rule("A:*", "long-a"),
        findings.Rule("A:*", "temp-a", keys="temporary"),
        findings.Rule("*", "temp-any", keys="temporary"),
    ))
    types = [("A:x", "A:x")]
    assert mapping.rule_for(types) == (mapping.rules[0], "A:x")
    assert mapping.rule_for(types, keys="temporary") == (mapping.rules[1], "A:x")
    assert mapping.rule_for([("B:y", "B:y")], keys="temporary") == (mapping.rules[2], "B:y")
    assert mapping.rule_for([("B:y", "B:y")]) is None


def test_unreadable_mapping_file_is_bad_input(tmp_path: Path) -> None:
    """A missing mapping file is bad input naming it."""
    with pytest.raises(BadInput, match=r"cannot read trigger mapping .*absent\.yaml"):
        findings.load_mapping(str(tmp_path / "absent.yaml"))


def test_fixtures_are_not_modified_by_parsing() -> None:
    """parse() never mutates the document it is given."""
    document = _doc("securityhub-multi.json")
    before = copy.deepcopy(document)
    findings.parse(document)
    assert document == before
