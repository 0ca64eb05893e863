"""Per-finding parsing: each finding of a document is a Trigger or a Rejected of its own.

Only a document that is no finding document at all fails as a whole; a list of
EventBridge events is a list of documents, each read on its own.
"""

from __future__ import annotations

import io
import json
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
from responder.errors import BadInput, Refused
from responder.findings import FindingRefused, Rejected, Trigger

KEY_A = "AKIAEXAMPLEALICE0001"
KEY_B = "AKIAEXAMPLEBOB000001"


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
        findings.parse_each([{}, 3], origin="x.json")
    message = str(caught.value)
    assert message.startswith("x.json: none of the 2 entries of the list is a finding")
    assert "x.json[0]" in message
    assert "x.json[1]: a JSON int" in message
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
