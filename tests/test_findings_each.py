"""Per-finding parsing: each finding of a document is a Trigger or a Rejected of its own.

Only a document that is no finding document at all fails as a whole; a list of
EventBridge events is a list of documents, each read on its own. A finding about a
temporary (ASIA) key is a Trigger for compromised-session carrying what the finding says
about the session (a SessionHint), which the playbook needs before CloudTrail has it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from finding_docs import (
    FIXTURES,
    UNKNOWN_KEY,
    asff_finding,
    fixture,
    guardduty_event,
    securityhub_event,
    write,
)

from responder import findings
from responder.context import SessionHint
from responder.errors import BadInput, Refused
from responder.findings import FindingRefused, Rejected, Trigger

KEY_A = "AKIAEXAMPLEALICE0001"
KEY_B = "AKIAEXAMPLEBOB000001"
ACCOUNT = "123456789012"
EXFILTRATION = "guardduty-instance-credential-exfiltration.json"
INSTANCE = "i-0abc1234def567890"


def _summary(parsed: list[findings.Parsed]) -> list[tuple[str, str | None, str | None, int]]:
    """(kind, finding id, key, exit code: 0 for a Trigger) of each outcome, in order."""
    return [(type(p).__name__, p.finding_id, p.access_key_id,
             p.exit_code if isinstance(p, Rejected) else 0) for p in parsed]


def test_security_hub_event_yields_one_outcome_per_finding() -> None:
    """The control finding without a key is rejected on its own; frank's key is a Trigger,
    and the order is the document's."""
    parsed = findings.parse_each(fixture("securityhub-multi.json"))
    control, guardduty = fixture("securityhub-multi.json")["detail"]["findings"]
    assert _summary(parsed) == [
        ("Rejected", f"securityhub:{control['Id']}", None, 3),
        ("Trigger", f"securityhub:{guardduty['Id']}", "AKIAEXAMPLEFRANK0001", 0),
    ]
    rejected = parsed[0]
    assert isinstance(rejected, Rejected)
    assert isinstance(rejected.error, FindingRefused)
    assert rejected.error.reason == "no-access-key"


def test_sample_next_to_a_real_finding_is_rejected_alone() -> None:
    """A sample finding in the same event refuses only itself (exit 3), naming its id."""
    event = securityhub_event(asff_finding(KEY_A, "sample-1", sample=True),
                              asff_finding(KEY_B, "real-1"))
    parsed = findings.parse_each(event)
    assert _summary(parsed) == [("Rejected", "securityhub:sample-1", KEY_A, 3),
                                ("Trigger", "securityhub:real-1", KEY_B, 0)]
    assert "sample" in str(parsed[0].error).lower()  # type: ignore[union-attr]


def test_malformed_key_is_bad_input_for_its_finding_only() -> None:
    """A key id that is no access key id is bad input (exit 2) for that finding alone."""
    bad = asff_finding(KEY_A, "bad-1")
    bad["Resources"][0]["Details"]["AwsIamAccessKey"]["AccessKeyId"] = "AKIA-NOT-A-KEY"
    parsed = findings.parse_each(securityhub_event(bad, asff_finding(KEY_B, "good-1")))
    assert _summary(parsed) == [("Rejected", "securityhub:bad-1", "AKIA-NOT-A-KEY", 2),
                                ("Trigger", "securityhub:good-1", KEY_B, 0)]
    error = parsed[0].error  # type: ignore[union-attr]
    assert isinstance(error, BadInput)
    assert not isinstance(error, Refused)


def test_finding_without_an_id_is_bad_input_for_itself_only() -> None:
    """An ASFF finding with no Id cannot be deduplicated: rejected (exit 2) alone."""
    nameless = asff_finding(KEY_A, "x")
    del nameless["Id"]
    parsed = findings.parse_each(securityhub_event(nameless, asff_finding(KEY_B, "good-1")))
    assert _summary(parsed) == [("Rejected", None, None, 2),
                                ("Trigger", "securityhub:good-1", KEY_B, 0)]
    assert "without `Id`" in str(parsed[0].error)  # type: ignore[union-attr]


def test_a_security_hub_entry_that_is_not_an_object_is_rejected_alone() -> None:
    """A stray string among the event's findings does not hide the real one."""
    parsed = findings.parse_each(securityhub_event("oops", asff_finding(KEY_B, "good-1")))  # type: ignore[arg-type]
    assert _summary(parsed) == [("Rejected", None, None, 2),
                                ("Trigger", "securityhub:good-1", KEY_B, 0)]
    assert "detail.findings[0]" in str(parsed[0].error)  # type: ignore[union-attr]


def test_guardduty_event_in_a_json_array_is_one_finding() -> None:
    """`[event]` is that event, not garbage: the same single Trigger as the bare event."""
    event = fixture("guardduty-eventbridge.json")
    assert findings.parse_each([event]) == findings.parse_each(event)
    [trigger] = findings.parse_each([event])
    assert isinstance(trigger, Trigger)
    assert trigger.access_key_id == KEY_A
    assert findings.parse([event]) == findings.parse(event)


def test_array_of_two_events_for_two_keys_is_two_triggers() -> None:
    """Each element of the list is its own document: two events, two Triggers, in order."""
    parsed = findings.parse_each([guardduty_event(KEY_A, "gd-a"), guardduty_event(KEY_B, "gd-b")])
    assert _summary(parsed) == [("Trigger", "guardduty:gd-a", KEY_A, 0),
                                ("Trigger", "guardduty:gd-b", KEY_B, 0)]


def test_array_mixing_event_shapes_reads_each_element() -> None:
    """Events of different sources and a GetFindings output may share one list."""
    parsed = findings.parse_each([
        fixture("health-credentials-exposed.json"),
        fixture("securityhub-asff.json"),
        fixture("guardduty-raw-getfindings.json"),
    ])
    assert [p.access_key_id for p in parsed] == [
        "AKIAEXAMPLECAROL0001", "AKIAEXAMPLEBOB000001", "AKIAEXAMPLEDAVE00001"]
    assert all(isinstance(p, Trigger) for p in parsed)


def test_an_element_that_is_not_a_finding_is_rejected_alone() -> None:
    """An EC2 event next to a GuardDuty event: bad input for that element, naming its
    index; the GuardDuty finding is still a Trigger."""
    parsed = findings.parse_each([fixture("not-a-finding.json"), guardduty_event(KEY_B, "gd-b")],
                                 origin="events.json")
    assert _summary(parsed) == [("Rejected", None, None, 2),
                                ("Trigger", "guardduty:gd-b", KEY_B, 0)]
    assert str(parsed[0].error).startswith("events.json[0]: an event from 'aws.ec2'")  # type: ignore[union-attr]


def test_same_finding_rejected_then_actionable_in_one_list_is_one_trigger() -> None:
    """A finding and its re-delivery are one outcome; a Trigger wins over a rejected copy."""
    archived = fixture("guardduty-eventbridge.json")
    archived["detail"]["service"]["archived"] = True
    parsed = findings.parse_each([archived, fixture("guardduty-duplicate.json")])
    assert [type(p).__name__ for p in parsed] == ["Trigger"]


def test_same_rejected_finding_twice_is_one_rejection() -> None:
    """Two deliveries of one sample finding are one outcome, not two."""
    sample = fixture("guardduty-sample.json")
    assert len(findings.parse_each([sample, sample])) == 1


@pytest.mark.parametrize("document", [
    [], {}, "text", 42, [{}], [{}, 3], [[fixture("guardduty-eventbridge.json")]],
    {"Findings": []}, {"Findings": [{}, {}]},
    {"source": "aws.securityhub", "detail": {"findings": []}},
    {"source": "aws.securityhub", "detail": {"findings": ["a", 1]}},
    fixture("not-a-finding.json"),
])
def test_a_document_with_no_finding_at_all_fails_as_a_whole(document: Any) -> None:
    """Nothing recognisable anywhere in it: BadInput (exit 2) for the whole document."""
    with pytest.raises(BadInput) as caught:
        findings.parse_each(document)
    assert not isinstance(caught.value, Refused)
    assert caught.value.exit_code == 2


def test_a_list_of_non_findings_names_each_entry_once() -> None:
    """The whole-document error lists each entry and gives the usage help once."""
    with pytest.raises(BadInput) as caught:
        findings.parse_each([{}, 3, None], origin="x.json")
    message = str(caught.value)
    assert message.startswith("x.json: none of the 3 entries of the list is a finding")
    assert "x.json[0]" in message
    assert "x.json[1]: a JSON number" in message  # JSON's words, never Python's
    assert "NoneType" not in message
    assert message.count("`respond finding` takes") == 1


def test_every_rejected_document_is_outcomes_not_an_error() -> None:
    """A document whose only findings are refused still parses: one Rejected each."""
    event = fixture("securityhub-multi.json")
    event["detail"]["findings"][1]["Sample"] = True
    parsed = findings.parse_each(event)
    assert [type(p).__name__ for p in parsed] == ["Rejected", "Rejected"]
    assert [p.exit_code for p in parsed] == [3, 3]  # type: ignore[union-attr]


def test_load_each_reads_an_array_file(tmp_path: Path) -> None:
    """load_each on a file holding `[event, event]` gives one outcome per event."""
    path = write(tmp_path, [guardduty_event(KEY_A, "gd-a"), guardduty_event(KEY_B, "gd-b")])
    assert [p.finding_id for p in findings.load_each(path)] == ["guardduty:gd-a",
                                                                "guardduty:gd-b"]


def test_load_each_reads_stdin() -> None:
    """load_each('-') reads the given stream."""
    stream = io.StringIO(json.dumps([fixture("guardduty-eventbridge.json")]))
    [trigger] = findings.load_each("-", stream)
    assert trigger.access_key_id == KEY_A


def test_load_each_of_broken_json_fails_as_a_whole() -> None:
    """Not JSON at all: BadInput naming the file."""
    path = str(FIXTURES / "broken.json")
    with pytest.raises(BadInput, match=r"broken\.json: invalid JSON"):
        findings.load_each(path)


def test_unknown_but_well_formed_key_is_a_trigger() -> None:
    """Whether a key exists is for identify to say, not the parser: it is a Trigger."""
    [trigger] = findings.parse_each(securityhub_event(asff_finding(UNKNOWN_KEY, "u-1")))
    assert isinstance(trigger, Trigger)
    assert trigger.access_key_id == UNKNOWN_KEY


# Temporary (ASIA) keys: compromised-session, and the session the finding describes.


def _trigger(document: Any) -> Trigger:
    [parsed] = findings.parse_each(document)
    assert isinstance(parsed, Trigger), parsed
    return parsed


def _hint(document: Any) -> SessionHint:
    session = _trigger(document).session
    assert session is not None
    return session


def _pascal(value: Any) -> Any:
    """boto3's PascalCase spelling of a camelCase GuardDuty finding."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: _pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_pascal(v) for v in value]
    return value


def test_instance_credential_exfiltration_carries_the_instance_and_its_network() -> None:
    """Every SessionHint field comes from the finding: the role session (role id, ARN),
    the instance, its VPC, private and public address, and the finding's region."""
    trigger = _trigger(fixture(EXFILTRATION))
    assert (trigger.access_key_id, trigger.playbook, trigger.user_name) == (
        "ASIAEXAMPLEWEBINST01", "compromised-session", "web-instance-role")
    assert trigger.session == SessionHint(
        principal_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/web-instance-role/{INSTANCE}",
        role_id="AROAEXAMPLEROLEID123", instance_id=INSTANCE, region="us-east-1",
        vpc_id="vpc-0example", private_ip="10.0.1.23", public_ips=("198.51.100.10",))


def test_inside_aws_variant_maps_the_same_way() -> None:
    """InstanceCredentialExfiltration.InsideAWS starts the same playbook with the same hint."""
    event = fixture(EXFILTRATION)
    event["detail"]["type"] = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS"
    inside = _trigger(event)
    assert inside.finding_type.endswith(".InsideAWS")
    assert inside.playbook == "compromised-session"
    assert inside.session == _hint(fixture(EXFILTRATION))


def test_pascal_case_getfindings_output_gives_the_same_hint() -> None:
    """GetFindings through boto3 (PascalCase, a Findings list) reads the same session."""
    document = {"Findings": [_pascal(fixture(EXFILTRATION)["detail"])]}
    assert document["Findings"][0]["Resource"]["InstanceDetails"]["NetworkInterfaces"]
    assert _trigger(document) == _trigger(fixture(EXFILTRATION))


def test_first_interface_gives_the_network_every_interface_a_public_ip() -> None:
    """VPC and private address from the first interface; public addresses from all of
    them, in order, once each; an interface without one adds none."""
    event = fixture(EXFILTRATION)
    interfaces = event["detail"]["resource"]["instanceDetails"]["networkInterfaces"]
    interfaces += [{"vpcId": "vpc-0other", "privateIpAddress": "10.0.2.9",
                    "publicIp": "203.0.113.5"},
                   {"privateIpAddress": "10.0.3.1", "publicIp": ""},
                   {"publicIp": "198.51.100.10"}, "not an interface"]
    hint = _hint(event)
    assert (hint.vpc_id, hint.private_ip) == ("vpc-0example", "10.0.1.23")
    assert hint.public_ips == ("198.51.100.10", "203.0.113.5")


def test_role_session_without_instance_details() -> None:
    """A role session named after no instance: its ARN and role id, no instance, no
    network; the finding's own severity still applies (5 is above the default 4)."""
    trigger = _trigger(fixture("guardduty-role-session.json"))
    assert (trigger.playbook, trigger.severity) == ("compromised-session", 5.0)
    assert trigger.session == SessionHint(
        principal_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy-role/deploy-pipeline-4711",
        role_id="AROAEXAMPLEDEPLOYID1", region="us-east-1")


@pytest.mark.parametrize(("session_name", "instance"), [
    ("i-0abc123def4567890", "i-0abc123def4567890"),
    ("i-0abc1234", "i-0abc1234"),
    ("i-0abc123", None),
    ("i-0ABC123DEF4567890", None),
    ("i-0abc123def4567890-x", None),
    ("deploy-pipeline-4711", None),
])
def test_instance_id_from_the_session_name_only_when_it_is_one(
        session_name: str, instance: str | None) -> None:
    """Without instanceDetails, EC2's session name is the instance id, if it looks like one."""
    event = fixture("guardduty-role-session.json")
    event["detail"]["resource"]["accessKeyDetails"]["principalId"] = (
        f"AROAEXAMPLEDEPLOYID1:{session_name}")
    hint = _hint(event)
    assert hint.instance_id == instance
    assert hint.principal_arn == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy-role/{session_name}")


def test_instance_details_win_over_the_session_name() -> None:
    """instanceDetails.instanceId is the instance, whatever the session is called."""
    event = fixture(EXFILTRATION)
    event["detail"]["resource"]["accessKeyDetails"]["principalId"] = (
        "AROAEXAMPLEROLEID123:i-0fffffffffffffff0")
    assert _hint(event).instance_id == INSTANCE


def test_iam_user_session_names_the_user() -> None:
    """A GetSessionToken key: the user's ARN, no role id, no instance."""
    event = fixture("guardduty-role-session.json")
    event["detail"]["resource"]["accessKeyDetails"].update(
        principalId="AIDAEXAMPLECAROL0001", userType="IAMUser", userName="carol")
    assert _hint(event) == SessionHint(principal_arn=f"arn:aws:iam::{ACCOUNT}:user/carol",
                                       region="us-east-1")


@pytest.mark.parametrize(("details", "arn", "role_id"), [
    ({"userType": "FederatedUser", "principalId": f"{ACCOUNT}:bob", "userName": "bob"},
     None, None),
    ({"userName": None}, None, "AROAEXAMPLEDEPLOYID1"),
    ({"principalId": "AROAEXAMPLEDEPLOYID1"}, None, "AROAEXAMPLEDEPLOYID1"),
    ({"principalId": "AIDAEXAMPLEDEPLOYID1:deploy"},
     f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy-role/deploy", None),
])
def test_principal_arn_only_when_every_part_is_known(
        details: dict[str, Any], arn: str | None, role_id: str | None) -> None:
    """No ARN for other principal types, without a role name or session name; the role
    id only from an AROA principal id: a guess would revoke the wrong session."""
    event = fixture("guardduty-role-session.json")
    event["detail"]["resource"]["accessKeyDetails"].update(details)
    hint = _hint(event)
    assert (hint.principal_arn, hint.role_id) == (arn, role_id)


def test_arn_uses_the_finding_partition_and_the_envelope_account() -> None:
    """GovCloud findings get aws-us-gov ARNs; the event's account fills in a missing one."""
    event = fixture("guardduty-role-session.json")
    event["detail"]["partition"] = "aws-us-gov"
    del event["detail"]["accountId"]
    event["account"] = "210987654321"
    assert _hint(event).principal_arn == (
        "arn:aws-us-gov:sts::210987654321:assumed-role/deploy-role/deploy-pipeline-4711")


def test_long_term_key_has_no_session_hint() -> None:
    """An AKIA key's Trigger carries no session, even if the finding names an instance."""
    event = fixture("guardduty-eventbridge.json")
    event["detail"]["resource"]["instanceDetails"] = fixture(EXFILTRATION)["detail"][
        "resource"]["instanceDetails"]
    trigger = _trigger(event)
    assert (trigger.playbook, trigger.session) == ("compromised-key", None)


def _refused(document: Any) -> FindingRefused:
    [parsed] = findings.parse_each(document)
    assert isinstance(parsed, Rejected), parsed
    assert isinstance(parsed.error, FindingRefused)
    return parsed.error


def test_instance_id_from_the_session_name_of_the_older_fixture() -> None:
    """The exfiltration fixture without instanceDetails: instance from the session name."""
    trigger = _trigger(fixture("guardduty-temporary-key.json"))
    assert (trigger.access_key_id, trigger.playbook) == ("ASIAEXAMPLEROLE00001",
                                                         "compromised-session")
    assert trigger.session == SessionHint(
        principal_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/web-server-role/i-0abc123def4567890",
        role_id="AROAEXAMPLEWEBROLE01", instance_id="i-0abc123def4567890", region="us-east-1")


@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: d["service"].update(additionalInfo={"sample": True}), "sample"),
    (lambda d: d["service"].update(archived=True), "archived"),
    (lambda d: d["resource"]["accessKeyDetails"].update(userType="Root"), "root"),
])
def test_refusals_that_come_first_still_win_for_a_temporary_key(
        change: Callable[[dict[str, Any]], None], reason: str) -> None:
    """A sample, archived or root finding is refused as such even with an ASIA key."""
    event = fixture(EXFILTRATION)
    change(event["detail"])
    refusal = _refused(event)
    assert (refusal.reason, refusal.access_key_id) == (reason, "ASIAEXAMPLEWEBINST01")


def test_malformed_temporary_key_is_bad_input() -> None:
    """An ASIA-prefixed id that is no key id is bad input (exit 2), not a refusal."""
    event = fixture(EXFILTRATION)
    event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = "ASIA-NOT-A-KEY"
    [parsed] = findings.parse_each(event)
    assert isinstance(parsed, Rejected)
    assert parsed.exit_code == 2
    assert not isinstance(parsed.error, Refused)
    assert "malformed access key id" in str(parsed.error)


def test_security_hub_temporary_key_maps_without_a_session_hint() -> None:
    """ASFF names no session: an ASIA key there maps to compromised-session, hint None."""
    trigger = _trigger(securityhub_event(asff_finding("ASIAEXAMPLEROLE00001", "t-1")))
    assert (trigger.access_key_id, trigger.playbook, trigger.session) == (
        "ASIAEXAMPLEROLE00001", "compromised-session", None)


def test_health_temporary_key_is_refused() -> None:
    """AWS_RISK_* is a long-term rule only, so a Health event naming an ASIA key is refused."""
    text = (FIXTURES / "health-credentials-exposed.json").read_text()
    event = json.loads(text.replace("AKIAEXAMPLECAROL0001", "ASIAEXAMPLECAROL0001"))
    refusal = _refused(event)
    assert (refusal.reason, refusal.access_key_id) == ("temporary-key", "ASIAEXAMPLECAROL0001")
