"""`respond drill`: the real playbook against the embedded account, checked and timed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import RESPOND

from responder import drill
from responder.errors import BadInput


def test_drill_passes_every_check() -> None:
    """The basic drill contains the leaked key and the attacker (its user is quarantined),
    and every check passes."""
    result = drill.run("basic")
    assert result.passed, result.render()
    names = {c.name for c in result.checks}
    assert {"leaked key disabled (then deleted to make room for the new one)",
            "the user's other key is untouched",
            "deny policy attached, cutoff after the key was disabled",
            "attacker's user support-backup quarantined",
            "replacement key stored in Secrets Manager and working",
            "notification delivered to the on-call topic",
            "attacker's events (and its session's) in the evidence"} <= names
    assert result.time_to_contain is not None
    assert result.time_to_contain > 0
    assert [s for _, s, _ in result.timeline][:3] == ["identify", "disable-key",
                                                      "revoke-sessions"]
    assert any(a["action"] == "sts:GetSessionToken" for a in result.attacker)


def test_unknown_scenario_is_bad_input() -> None:
    """An unknown scenario names the known ones."""
    with pytest.raises(BadInput, match="basic"):
        drill.run("nope")


def test_drill_cli_json_ignores_the_shells_aws_settings(tmp_path: Path) -> None:
    """`respond drill --output json` passes even with a bogus endpoint and profile set."""
    env = {"RESPONDER_HOME": str(tmp_path), "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
           "AWS_PROFILE": "does-not-exist", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([str(RESPOND), "drill", "--output", "json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["passed"] is True
    assert doc["incident"]["status"] == "completed"
    assert doc["time_to_contain_seconds"] > 0
