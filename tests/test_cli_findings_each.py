"""`respond finding` answers each finding of a document on its own (black box, moto server).

One bad finding used to sink the others: the valid finding's key was left Active, or
contained while the output said "refused, nothing changed". Here each finding is
answered, the output lists every outcome, and the exit code is the worst of them
(halted first, else the highest code).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import Account, CliResult
from finding_docs import UNKNOWN_KEY, asff_finding, guardduty_event, securityhub_event, write

Cli = Callable[..., CliResult]


def _status(account: Account, user: str, key: str) -> str:
    """Active, Inactive, or Deleted (replace-key deletes alice's leaked key: she has two)."""
    keys = account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return next((k["Status"] for k in keys if k["AccessKeyId"] == key), "Deleted")


def _rows(doc: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    return [(d["finding_id"], d["status"], d["exit_code"], d["access_key_id"])
            for d in doc["incidents"]]


def _incidents(cli: Cli) -> list[dict[str, Any]]:
    return list(json.loads(cli("status", "--output", "json").stdout)["incidents"])


def test_finding_unknown_key_does_not_sink_the_valid_one(
    server_account: Account, cli: Cli, tmp_path: Path
) -> None:
    """Security Hub: an unknown key first, bob's key second. Bob's key ends Inactive, the
    output lists both (bad input naming the unknown finding, then completed), exit 2."""
    event = securityhub_event(asff_finding(UNKNOWN_KEY, "unknown-1"),
                              asff_finding(server_account.bob_key, "valid-1"))
    result = cli("finding", write(tmp_path, event), "--output", "json")
    assert result.code == 2, result.stderr
    doc = result.json()
    assert _rows(doc) == [
        ("securityhub:unknown-1", "refused", 2, UNKNOWN_KEY),
        ("securityhub:valid-1", "completed", 0, server_account.bob_key),
    ]
    assert doc["incidents"][0]["incident_id"] is None
    assert UNKNOWN_KEY in doc["incidents"][0]["error"]
    assert f"respond: access key {UNKNOWN_KEY} was not found" in result.stderr
    assert _status(server_account, "bob", server_account.bob_key) == "Inactive"
    assert [i["incident_id"] for i in _incidents(cli)] == [doc["incidents"][1]["incident_id"]]


def test_finding_sample_next_to_a_real_one(server_account: Account, cli: Cli,
                                           tmp_path: Path) -> None:
    """The sample is refused (3) without touching alice; bob's key is contained; exit 3."""
    event = securityhub_event(asff_finding(server_account.leaked_key, "sample-1", sample=True),
                              asff_finding(server_account.bob_key, "real-1"))
    result = cli("finding", write(tmp_path, event), "--output", "json")
    assert result.code == 3, result.stderr
    assert _rows(result.json()) == [
        ("securityhub:sample-1", "refused", 3, server_account.leaked_key),
        ("securityhub:real-1", "completed", 0, server_account.bob_key),
    ]
    assert _status(server_account, "alice", server_account.leaked_key) == "Active"
    assert _status(server_account, "bob", server_account.bob_key) == "Inactive"


def test_finding_duplicate_next_to_a_new_one(server_account: Account, cli: Cli,
                                             tmp_path: Path) -> None:
    """A finding already handled is refused naming its incident; the new finding in the
    same document still runs; exit 3."""
    bob = guardduty_event(server_account.bob_key, "gd-bob")
    first = cli("finding", write(tmp_path, bob, "first.json"), "--output", "json")
    assert first.code == 0, first.stderr
    first_id = first.json()["incident_id"]
    both = [bob, guardduty_event(server_account.leaked_key, "gd-alice")]
    result = cli("finding", write(tmp_path, both, "both.json"), "--output", "json")
    assert result.code == 3, result.stderr
    doc = result.json()
    assert _rows(doc) == [
        ("guardduty:gd-bob", "refused", 3, server_account.bob_key),
        ("guardduty:gd-alice", "completed", 0, server_account.leaked_key),
    ]
    assert doc["incidents"][0]["incident_id"] == first_id
    assert first_id in result.stderr
    assert _status(server_account, "alice", server_account.leaked_key) != "Active"
    assert len(_incidents(cli)) == 2


def test_finding_guardduty_event_in_an_array_is_one_incident(
    server_account: Account, cli: Cli
) -> None:
    """`[event]` on stdin is that event: one incident, printed as the single §2 object."""
    event = [guardduty_event(server_account.bob_key, "gd-bob")]
    result = cli("finding", "-", "--output", "json", stdin=json.dumps(event))
    assert result.code == 0, result.stderr
    doc = result.json()
    assert "incidents" not in doc
    assert (doc["finding_id"], doc["status"], doc["access_key_id"]) == (
        "guardduty:gd-bob", "completed", server_account.bob_key)
    assert _status(server_account, "bob", server_account.bob_key) == "Inactive"
    assert len(_incidents(cli)) == 1


def test_finding_array_of_two_events_is_two_incidents(server_account: Account, cli: Cli,
                                                      tmp_path: Path) -> None:
    """Two events for two keys in one list: two incidents, both keys contained, exit 0."""
    events = [guardduty_event(server_account.bob_key, "gd-bob"),
              guardduty_event(server_account.leaked_key, "gd-alice")]
    result = cli("finding", write(tmp_path, events), "--output", "json")
    assert result.code == 0, result.stderr
    doc = result.json()
    assert _rows(doc) == [
        ("guardduty:gd-bob", "completed", 0, server_account.bob_key),
        ("guardduty:gd-alice", "completed", 0, server_account.leaked_key),
    ]
    assert _status(server_account, "bob", server_account.bob_key) == "Inactive"
    assert _status(server_account, "alice", server_account.leaked_key) != "Active"
    assert len({i["incident_id"] for i in _incidents(cli)}) == 2


def test_finding_halts_do_not_stop_the_next_and_exit_1_wins(
    server_account: Account, cli: Cli, tmp_path: Path
) -> None:
    """UpdateAccessKey is denied: each real finding gets its own halted incident (the
    second is still tried after the first halted), the sample is refused, and the exit
    code is 1 (halted), not the sample's 3."""
    events = [guardduty_event(server_account.bob_key, "gd-bob"),
              guardduty_event(server_account.leaked_key, "sample-alice", sample=True),
              guardduty_event(server_account.leaked_key, "gd-alice")]
    result = cli("finding", write(tmp_path, events), "--output", "json",
                 env={"RESPONDER_FAULT_ERROR": "UpdateAccessKey=AccessDenied"})
    assert result.code == 1, result.stderr
    doc = result.json()
    assert [(d["finding_id"], d["status"], d["exit_code"]) for d in doc["incidents"]] == [
        ("guardduty:gd-bob", "halted", 1), ("guardduty:sample-alice", "refused", 3),
        ("guardduty:gd-alice", "halted", 1)]
    assert sorted(i["status"] for i in _incidents(cli)) == ["halted", "halted"]


def test_finding_human_output_lists_the_refusal_and_the_incident(
    server_account: Account, cli: Cli, tmp_path: Path
) -> None:
    """Without --output json: the refusal is one line on stderr, the incident's summary is
    on stdout, and the exit code is still the worst (3)."""
    event = securityhub_event(asff_finding(server_account.leaked_key, "sample-1", sample=True),
                              asff_finding(server_account.bob_key, "real-1"))
    result = cli("finding", write(tmp_path, event))
    assert result.code == 3, result.stderr
    refusals = [line for line in result.stderr.splitlines() if line.startswith("respond: ")]
    assert len(refusals) == 1
    assert "sample finding" in refusals[0]
    assert "COMPLETED" in result.stdout
    assert server_account.bob_key in result.stdout
    assert _status(server_account, "bob", server_account.bob_key) == "Inactive"
