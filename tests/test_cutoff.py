"""revoke-sessions' cutoff: after the key was disabled plus the propagation margin,
decided once, and told to the humans."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Account, CliResult, Crash, Faults, crash

from responder import playbook
from responder.context import Options, RunContext, parse_iso
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.run import service
from responder.steps.deny import POLICY_NAME, deny_policy

Cli = Callable[..., CliResult]


def _policy_cutoff(account: Account) -> datetime:
    document = account.iam.get_user_policy(UserName="alice",
                                           PolicyName=POLICY_NAME)["PolicyDocument"]
    parsed = json.loads(document) if isinstance(document, str) else document
    cutoff = parse_iso(parsed["Statement"][0]["Condition"]["DateLessThan"][
        "aws:TokenIssueTime"])
    assert cutoff is not None
    return cutoff


def test_cutoff_is_after_update_access_key_reached_aws(server_account: Account,
                                                       cli: Cli) -> None:
    """The deny covers tokens minted while the disabling spreads: its cutoff is the
    margin (300 s) after UpdateAccessKey was sent, and the report and notice say it."""
    run = cli("compromised", server_account.leaked_key, "--yes", "--no-replace", "--output",
              "json")
    assert run.code == 0, run.stderr
    incident = json.loads(run.stdout)["incident_id"]
    report = json.loads(cli("report", incident, "--format", "json").stdout)
    sent = next(c["at"] for t in report["timeline"] for c in t["calls"]
                if c["api"] == "iam:UpdateAccessKey")
    sent_at = parse_iso(sent)
    assert sent_at is not None
    cutoff = _policy_cutoff(server_account)
    assert cutoff - sent_at >= timedelta(seconds=299)
    assert cutoff - sent_at < timedelta(seconds=330)  # the margin, not a later moment
    assert report["sessions_cutoff"] == cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert any(report["sessions_cutoff"] in a and "issued before" in a
               for a in report["next_actions"])


@pytest.mark.parametrize("margin", [0, 3600])
def test_margin_comes_from_the_playbook(
    account: Account, journal: SqliteJournal, make_ctx: Callable[..., RunContext],
    margin: int,
) -> None:
    """propagation_margin_seconds sets the cutoff: disabling moment plus the margin,
    rounded up to the second."""
    data = playbook.load("compromised-key").to_dict()
    for step in data["steps"]:
        if step["action"] == "attach_deny_policy":
            step["with"] = {"propagation_margin_seconds": margin}
    pb = playbook.Playbook.from_dict(data, "test")
    record = service.respond(make_ctx(options=Options(replace=False)), journal, pb,
                             account.leaked_key)
    disabled = next(s for s in IncidentView.load(journal, record.id).steps
                    if s.name == "disable-key")
    assert disabled.effective_at is not None
    expected = disabled.effective_at + timedelta(seconds=margin)
    cutoff = _policy_cutoff(account)
    assert timedelta(0) <= cutoff - expected <= timedelta(seconds=1)  # ms in the journal
    assert cutoff.microsecond == 0


@pytest.mark.parametrize("margin", [-1, 3601, "5"])
def test_margin_out_of_range_is_an_invalid_playbook(tmp_path: Path, cli: Cli,
                                                   margin: Any) -> None:
    """The margin is a whole number of seconds from 0 to 3600."""
    path = tmp_path / "margin.yaml"
    path.write_text("name: m\nversion: 1\nsteps:\n  - {name: identify, action: identify}\n"
                    "  - {name: disable-key, action: disable_access_key}\n"
                    "  - name: revoke-sessions\n    action: attach_deny_policy\n"
                    f"    with: {{propagation_margin_seconds: {json.dumps(margin)}}}\n")
    result = cli("playbooks", "validate", str(path))
    assert result.code == 2
    assert "propagation_margin_seconds" in result.stderr



def test_cutoff_is_decided_once_across_a_resume(
    account: Account, journal: SqliteJournal, make_ctx: Callable[..., RunContext],
    faults: Faults,
) -> None:
    """Killed right after PutUserPolicy and resumed an hour later: the policy keeps the
    cutoff first sent (no second PutUserPolicy), and the step's facts name it."""
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]

    def clock() -> datetime:
        now[0] += timedelta(milliseconds=10)
        return now[0]

    ctx = make_ctx(session_factory=faults.session_factory(), clock=clock,
                   options=Options(replace=False))
    faults.rewrite("PutUserPolicy", crash)
    with pytest.raises(Crash):
        service.respond(ctx, journal, playbook.load("compromised-key"), account.leaked_key)
    first = _policy_cutoff(account)
    (incident,) = journal.recent()
    faults.clear()
    now[0] += timedelta(hours=1)
    record = service.resume(ctx, journal, incident.id)
    assert record.status == "completed"
    assert _policy_cutoff(account) == first
    assert faults.count("PutUserPolicy") == 1
    revoked = IncidentView.load(journal, incident.id).sessions_revoked
    assert revoked is not None
    assert revoked.already is True
    assert revoked.token_issue_time_before == first.strftime("%Y-%m-%dT%H:%M:%SZ")
    document = account.iam.get_user_policy(UserName="alice",
                                           PolicyName=POLICY_NAME)["PolicyDocument"]
    parsed = json.loads(document) if isinstance(document, str) else document
    assert parsed == deny_policy(first)
