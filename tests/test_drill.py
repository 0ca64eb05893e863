"""`respond drill`: each scenario's attack, the real playbook against the embedded
account, and the checks, in-process; the command line black-box."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import RESPOND

from responder import drill
from responder.errors import BadInput

SCENARIOS = ("leaked-key-recon", "persistence", "session-pivot", "two-keys", "crash-midway",
             "instance-exfiltration", "exfiltration", "late-delivery")


def _respond(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"RESPONDER_HOME": str(home), "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
           "AWS_PROFILE": "does-not-exist", "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(RESPOND), "drill", *args], env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def test_the_scenarios_are_the_attacks_this_tool_answers() -> None:
    assert drill.names() == SCENARIOS
    assert all(s["summary"] for s in drill.describe())


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_passes_every_check(name: str) -> None:
    """Each scenario's attack is answered: the checks every response must pass and the
    scenario's own; the timeline puts the attacker before the responder's containment."""
    result = drill.run(name)
    assert result.passed, result.render()
    assert len(result.checks) > 6  # the common ones and at least one of its own
    whos = [t["who"] for t in result.timeline]
    assert whos[0] == "attacker"
    contained = next(t for t in result.timeline if t["what"] == "contained")
    first_step = next(t for t in result.timeline if t["who"] == "responder")
    assert contained["offset_seconds"] >= first_step["offset_seconds"]
    assert result.time_to_contain is not None
    assert result.time_to_contain > 0
    # identify's reads and the containment calls (a resume adds its looks)
    assert result.calls_before_containment >= 3
    assert Path(result.report_html).is_file()


def test_scenario_checks_what_it_rehearses() -> None:
    """The persistence scenario's own checks read AWS: quarantine, key, undo command."""
    result = drill.run("persistence")
    names = {c.name for c in result.checks}
    assert "the attacker's user support-backup is quarantined" in names
    assert "the AdministratorAccess attachment is listed with its undo command" in names
    assert any(a["action"] == "iam:AttachUserPolicy" for a in result.attacker)


def test_unknown_scenario_is_bad_input() -> None:
    """An unknown scenario names the known ones."""
    with pytest.raises(BadInput, match="persistence"):
        drill.run("nope")


def test_basic_is_still_accepted() -> None:
    assert drill.check_name("basic") == "two-keys"


def test_list_names_every_scenario(tmp_path: Path) -> None:
    proc = _respond("--list", "--output", "json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [s["name"] for s in json.loads(proc.stdout)] == list(SCENARIOS)
    human = _respond("--list", home=tmp_path)
    assert all(name in human.stdout for name in SCENARIOS)


def test_unknown_scenario_exits_2_and_builds_nothing(tmp_path: Path) -> None:
    proc = _respond("--scenario", "nope", home=tmp_path)
    assert proc.returncode == 2
    assert "persistence" in proc.stderr
    assert not (tmp_path / "drills").exists()


def test_all_scenarios_black_box(tmp_path: Path) -> None:
    """`respond drill --scenario all --output json` passes even with a bogus endpoint and
    profile in the shell; every scenario carries its timeline and an HTML report that
    names its incident and fetches nothing."""
    proc = _respond("--scenario", "all", "--output", "json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["passed"] is True
    by_name: dict[str, Any] = {s["scenario"]: s for s in doc["scenarios"]}
    assert list(by_name) == list(SCENARIOS)
    for scenario in by_name.values():
        assert scenario["incident"]["status"] == "completed"
        assert scenario["time_to_contain_seconds"] > 0
        assert {t["who"] for t in scenario["timeline"]} == {"attacker", "responder"}
        html = Path(scenario["report_html"]).read_text("utf-8")
        assert scenario["incident"]["incident_id"] in html
        assert "<svg" in html
        for fetch in ("http://", "https://", "<script", "src="):
            assert fetch not in html
