"""docs/findings.md's tables are the shipped trigger mapping, and the code decides as they say.

The tables list every GuardDuty finding type whose resource is an IAM access key, with
its decision (respond with which playbook, notify only, or ignore). These tests read
them and playbooks/triggers.json and fail on any difference, then send every type
through `findings.parse_each` (what the Lambda handler and `respond finding` call) as
a GuardDuty event about a long-term key and about a temporary key, and as a Security
Hub finding under the ASFF type the tables give.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from responder import findings
from responder.findings import FindingRefused, Rejected, Trigger

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "findings.md"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "findings"
HEADER = ("GuardDuty type", "Security Hub (ASFF) type", "Decision", "Long-term key (AKIA)",
          "Temporary key (ASIA)", "Why")
NONE = "—"
"""What a playbook cell holds for a type that starts no playbook."""
REFUSALS = {"notify": "notify-only", "ignore": "ignored"}
"""The refusal reason each non-respond decision is answered with."""
NON_GUARDDUTY = ("AWS_RISK_*",)
"""Rules of the shipped mapping that are not GuardDuty types (AWS Health events)."""


@dataclass(frozen=True)
class Row:
    finding_type: str
    asff_type: str
    decision: str
    long_term: str | None
    temporary: str | None
    why: str


def _code(cell: str) -> str:
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"docs/findings.md: expected one `code` span, got {cell!r}"
    return match[1]


def _playbook(cell: str) -> str | None:
    return None if cell == NONE else _code(cell)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def doc_rows(text: str) -> list[Row]:
    """Every row of every table in `text` whose header is HEADER, in order."""
    rows: list[Row] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("|") or tuple(_cells(line)) != HEADER:
            continue
        for body in lines[index + 2:]:
            if not body.startswith("|"):
                break
            cells = _cells(body)
            assert len(cells) == len(HEADER), f"docs/findings.md: {body!r}"
            type_, asff, decision, long_term, temporary, why = cells
            rows.append(Row(_code(type_), _code(asff), decision, _playbook(long_term),
                            _playbook(temporary), why))
    return rows


ROWS = doc_rows(DOC.read_text("utf-8"))


def _decisions_in_doc() -> dict[str, tuple[str, str | None, str | None]]:
    return {r.finding_type: (r.decision, r.long_term, r.temporary) for r in ROWS}


def _decisions_in_data() -> dict[str, tuple[str, str | None, str | None]]:
    """Each GuardDuty type of the shipped mapping: (action, AKIA playbook, ASIA playbook)."""
    table: dict[str, tuple[str, str | None, str | None]] = {}
    seen: set[tuple[str, str]] = set()
    for rule in findings.load_mapping().rules:
        if rule.match in NON_GUARDDUTY:
            continue
        assert (rule.match, rule.keys) not in seen, f"two rules for {rule.match} {rule.keys}"
        seen.add((rule.match, rule.keys))
        action, long_term, temporary = table.get(rule.match, (rule.action, None, None))
        assert action == rule.action, f"{rule.match}: respond for one kind of key only"
        if rule.keys in ("long-term", "any"):
            long_term = rule.playbook
        if rule.keys in ("temporary", "any"):
            temporary = rule.playbook
        table[rule.match] = (action, long_term, temporary)
    return table


def test_the_tables_list_each_type_once_with_a_decision_and_a_reason() -> None:
    """Both tables are read; each row names a type once, decides it, and says why."""
    assert len(ROWS) >= 30
    types = [r.finding_type for r in ROWS]
    assert len(types) == len(set(types)), "a type is listed twice"
    for row in ROWS:
        assert re.fullmatch(r"[A-Za-z]+:IAMUser/[A-Za-z0-9.]+", row.finding_type), row
        assert row.decision in ("respond", "notify", "ignore"), row
        assert len(row.why) > 20, f"{row.finding_type}: say why"
        if row.decision == "respond":
            assert (row.long_term, row.temporary) == ("compromised-key",
                                                      "compromised-session"), row
        else:
            assert (row.long_term, row.temporary) == (None, None), row


def test_the_data_holds_exactly_the_tables_decisions() -> None:
    """playbooks/triggers.json decides exactly the types the tables list, as they say:
    no type decided in one and not the other, no decision that differs."""
    doc, data = _decisions_in_doc(), _decisions_in_data()
    assert sorted(set(doc) - set(data)) == [], "in docs/findings.md, not in triggers.json"
    assert sorted(set(data) - set(doc)) == [], "in triggers.json, not in docs/findings.md"
    assert {t: d for t, d in data.items() if doc[t] != d} == {}


def test_every_access_key_purpose_and_the_named_types_are_decided() -> None:
    """Every threat purpose GuardDuty has IAMUser types for is there, and so are the types
    the issue names."""
    types = {r.finding_type for r in ROWS}
    purposes = {t.split(":", 1)[0] for t in types}
    assert purposes >= {
        "CredentialAccess", "DefenseEvasion", "Discovery", "Exfiltration", "Impact",
        "InitialAccess", "PenTest", "Persistence", "Policy", "PrivilegeEscalation", "Recon",
        "Stealth", "UnauthorizedAccess"}
    assert types >= {
        "Recon:IAMUser/MaliciousIPCaller", "Recon:IAMUser/MaliciousIPCaller.Custom",
        "Recon:IAMUser/TorIPCaller", "UnauthorizedAccess:IAMUser/TorIPCaller",
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
        "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
        "Policy:IAMUser/RootCredentialUsage", "Stealth:IAMUser/CloudTrailLoggingDisabled",
        "Stealth:IAMUser/PasswordPolicyChange"}


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _guardduty(finding_type: str, fixture: str) -> Any:
    event = _fixture(fixture)
    event["detail"]["type"] = finding_type
    return event


def _asff(asff_type: str) -> Any:
    event = _fixture("securityhub-asff.json")
    event["detail"]["findings"][0]["Types"] = [asff_type]
    return event


def _one(document: Any, mapping: findings.TriggerMapping | None = None) -> Trigger | Rejected:
    [parsed] = findings.parse_each(document, mapping=mapping)
    return parsed


def _assert_decided(parsed: Trigger | Rejected, decision: str, playbook: str | None,
                    finding_type: str) -> None:
    if decision == "respond":
        assert isinstance(parsed, Trigger), f"{finding_type}: {parsed}"
        assert parsed.playbook == playbook
        return
    assert isinstance(parsed, Rejected), f"{finding_type}: started {parsed}"
    assert getattr(parsed.error, "reason", None) == REFUSALS[decision], parsed.error
    assert f"rule {finding_type!r} in playbooks/triggers.json" in str(parsed.error)


@pytest.mark.parametrize("row", ROWS, ids=[r.finding_type for r in ROWS])
def test_guardduty_finding_about_a_long_term_key_is_decided_as_the_table_says(row: Row) -> None:
    """An EventBridge GuardDuty finding naming alice's AKIA key, severity 8."""
    parsed = _one(_guardduty(row.finding_type, "guardduty-eventbridge.json"))
    _assert_decided(parsed, row.decision, row.long_term, row.finding_type)
    if isinstance(parsed, Trigger):
        assert (parsed.access_key_id, parsed.finding_type) == (
            "AKIAEXAMPLEALICE0001", row.finding_type)


@pytest.mark.parametrize("row", ROWS, ids=[r.finding_type for r in ROWS])
def test_guardduty_finding_about_a_temporary_key_is_decided_as_the_table_says(row: Row) -> None:
    """The same type about a role session's ASIA key."""
    parsed = _one(_guardduty(row.finding_type, "guardduty-temporary-key.json"))
    _assert_decided(parsed, row.decision, row.temporary, row.finding_type)
    if isinstance(parsed, Trigger):
        assert parsed.access_key_id == "ASIAEXAMPLEROLE00001"


@pytest.mark.parametrize("row", ROWS, ids=[r.finding_type for r in ROWS])
def test_security_hub_finding_is_decided_as_the_table_says(row: Row) -> None:
    """The type as GuardDuty sends it to Security Hub (the table's ASFF column) reads back
    as that very GuardDuty type, so the same rule decides it."""
    parsed = _one(_asff(row.asff_type))
    _assert_decided(parsed, row.decision, row.long_term, row.finding_type)
    if isinstance(parsed, Trigger):
        assert parsed.finding_type == row.asff_type
    probe = findings.TriggerMapping((findings.Rule(row.finding_type, "probe"),))
    probed = _one(_asff(row.asff_type), probe)
    assert isinstance(probed, Trigger), f"{row.asff_type} does not read as {row.finding_type}"


@pytest.mark.parametrize("finding_type", [
    "Recon:IAMUser/MaliciousIPCaller", "Recon:IAMUser/MaliciousIPCaller.Custom",
    "Recon:IAMUser/TorIPCaller"])
def test_known_malicious_or_tor_caller_on_a_users_key_contains_it(finding_type: str) -> None:
    """A threat-listed or Tor caller using a user's key runs compromised-key, from a
    GuardDuty event and from GetFindings output alike."""
    event = _guardduty(finding_type, "guardduty-eventbridge.json")
    assert _one(event) == Trigger(
        finding_id="guardduty:a4c7e9f1b2d3e4f5a6b7c8d9e0f1a2b3", source="guardduty",
        finding_type=finding_type, severity=8.0, access_key_id="AKIAEXAMPLEALICE0001",
        user_name="alice", account_id="123456789012", region="us-east-1",
        playbook="compromised-key", sample=False)
    assert _one({"findings": [copy.deepcopy(event["detail"])]}) == _one(event)


def test_a_real_root_credential_finding_is_refused_by_the_root_guardrail_first() -> None:
    """RootCredentialUsage is notify in the table; a finding about the root user itself
    meets the root guardrail before the mapping, which says what to do in the console."""
    event = _fixture("guardduty-root.json")
    event["detail"]["type"] = "Policy:IAMUser/RootCredentialUsage"
    parsed = _one(event)
    assert isinstance(parsed, Rejected)
    assert getattr(parsed.error, "reason", None) == "root"


def test_the_table_reader_sees_a_changed_decision() -> None:
    """The reader is not vacuous: a row whose decision is edited no longer matches."""
    text = DOC.read_text("utf-8")
    row = "| `Recon:IAMUser/TorIPCaller` | `TTPs/Discovery/Recon:IAMUser-TorIPCaller` | respond |"
    assert row in text
    edited = doc_rows(text.replace(row, row.replace("| respond |", "| notify |")))
    assert {r.finding_type: r.decision for r in edited}["Recon:IAMUser/TorIPCaller"] == "notify"
    assert len(edited) == len(ROWS)

def _refused(document: Any) -> FindingRefused:
    """The one finding of `document`, refused (exit 3)."""
    parsed = _one(document)
    assert isinstance(parsed, Rejected), parsed
    assert isinstance(parsed.error, FindingRefused), parsed.error
    assert parsed.exit_code == 3
    return parsed.error


def test_notify_only_type_is_refused_as_decided_not_as_missing() -> None:
    """A type the mapping decided to notify about only starts nothing, and says it was
    decided (no rule to add), where to look, and how to respond by hand."""
    event = _fixture("guardduty-eventbridge.json")
    event["detail"]["type"] = "Stealth:IAMUser/CloudTrailLoggingDisabled"
    refusal = _refused(event)
    assert (refusal.reason, refusal.access_key_id) == ("notify-only", "AKIAEXAMPLEALICE0001")
    message = str(refusal)
    assert "'Stealth:IAMUser/CloudTrailLoggingDisabled' is notify-only" in message
    assert "nothing was changed" in message
    assert "GuardDuty console" in message
    assert "`respond compromised AKIAEXAMPLEALICE0001`" in message
    assert "add a rule" not in message


def test_ignored_type_is_refused_as_ignored() -> None:
    """An ignored type starts nothing, whatever its severity, with its own reason."""
    event = _fixture("guardduty-eventbridge.json")
    event["detail"]["type"] = "Recon:IAMUser/UserPermissions"
    event["detail"]["severity"] = 9
    refusal = _refused(event)
    assert refusal.reason == "ignored"
    assert "'Recon:IAMUser/UserPermissions' is ignored (rule " in str(refusal)


def test_notify_rule_answers_a_temporary_key_too() -> None:
    """A notify rule covers both kinds of key: an ASIA key is not refused as a temporary
    key no rule selects."""
    event = _fixture("guardduty-temporary-key.json")
    event["detail"]["type"] = "Stealth:IAMUser/PasswordPolicyChange"
    assert _refused(event).reason == "notify-only"

def test_notify_and_ignore_rules_answer_both_kinds_of_key_unless_told(tmp_path: Path) -> None:
    """`keys` defaults to any for a rule that starts no playbook, and may narrow it."""
    path = tmp_path / "quiet.yaml"
    path.write_text("rules:\n  - {match: 'A:*', action: notify}\n"
                    "  - {match: 'B:*', action: ignore, keys: temporary}\n")
    notify, ignore = findings.load_mapping(str(path)).rules
    assert (notify.keys, notify.playbook, notify.action) == ("any", None, "notify")
    assert (ignore.keys, ignore.action) == ("temporary", "ignore")
    assert notify.answers("long-term")
    assert notify.answers("temporary")
    assert ignore.answers("temporary")
    assert not ignore.answers("long-term")
