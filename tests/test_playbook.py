"""Playbook loading: the shipped one is valid; every defect is named by file, step, field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from responder import playbook
from responder.errors import BadInput, PlaybookInvalid

ROOT = Path(__file__).resolve().parent.parent
GOOD = """\
name: custom
version: 1
steps:
  - {name: identify, action: identify}
  - {name: disable-key, action: disable_access_key}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "book.yaml"
    path.write_text(text)
    return path


def test_shipped_playbook_matches_design() -> None:
    """compromised-key ships inside the package with the seven steps of DESIGN §3, and
    harden last (issue 21; docs/decisions.md 34)."""
    pb = playbook.load("compromised-key")
    assert [(s.name, s.action) for s in pb.steps] == [
        ("identify", "identify"),
        ("disable-key", "disable_access_key"),
        ("revoke-sessions", "attach_deny_policy"),
        ("collect-evidence", "collect_cloudtrail"),
        ("contain-attacker", "contain_attacker"),
        ("replace-key", "replace_access_key"),
        ("notify", "notify"),
        ("harden", "harden"),
    ]
    assert pb.steps[-1].settings == {"apply": False}
    evidence = pb.steps[3]
    assert evidence.on_failure == "continue"
    assert dict(evidence.settings) == {"lookback_days": 90, "regions": "all"}
    assert all(s.on_failure == "halt" for s in pb.steps if s is not evidence)
    assert playbook.shipped_names() == ["compromised-key", "compromised-session",
                                       "retire-unused-key", "rotate-key"]


def test_file_playbook_loads(tmp_path: Path) -> None:
    """A valid file is loaded by path and round-trips through to_dict/from_dict."""
    pb = playbook.load(str(_write(tmp_path, GOOD)))
    assert pb.name == "custom"
    assert playbook.Playbook.from_dict(pb.to_dict(), "again") == playbook.Playbook(
        pb.name, pb.version, pb.steps, "again", pb.description)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nversion: 1\nsteps: [\n", r"book\.yaml: line \d+ column \d+: invalid YAML"),
        ("- just\n- a list\n", r"book\.yaml: a playbook must be a mapping"),
        (GOOD.replace("action: disable_access_key", "action: nuke_account"),
         r"book\.yaml: step 'disable-key' \(steps\[1\]\) field 'action': unknown action "
         r"'nuke_account'"),
        (GOOD.replace("action: disable_access_key}", "action: disable_access_key, colour: red}"),
         r"book\.yaml: step 'disable-key' \(steps\[1\]\): unknown field 'colour'"),
        (GOOD + "owner: me\n", r"book\.yaml: top level: unknown field 'owner'"),
        (GOOD.replace("version: 1", "version: one"), r"field 'version'"),
        (GOOD.replace("{name: disable-key, action: disable_access_key}",
                      "{name: disable-key, action: disable_access_key, on_failure: shrug}"),
         r"step 'disable-key' \(steps\[1\]\) field 'on_failure'"),
        (GOOD.replace("{name: disable-key, action: disable_access_key}",
                      "{name: ev, action: collect_cloudtrail, with: {lookback_days: 400}}"),
         r"step 'ev' \(steps\[1\]\) field 'with.lookback_days'"),
        (GOOD.replace("{name: disable-key, action: disable_access_key}",
                      "{name: ev, action: collect_cloudtrail, with: {colour: red}}"),
         r"step 'ev' \(steps\[1\]\) field 'with': unknown field 'colour'"),
        (GOOD.replace("name: disable-key", "name: identify"), r"step name used twice"),
        (GOOD.replace("name: disable-key", "name: completed"), r"'completed' is reserved"),
        (GOOD.replace("{name: identify, action: identify}\n  - ", ""),
         r"the first step must use action 'identify'"),
        ("name: x\nversion: 1\n", r"top level: 'steps' is required"),
        ("name: x\nversion: 1\nsteps: []\n", r"field 'steps'"),
    ],
)
def test_invalid_playbooks_are_refused_with_location(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Each defect raises PlaybookInvalid (exit 2) naming the file, and step/field if any."""
    with pytest.raises(PlaybookInvalid, match=expected) as failure:
        playbook.load(str(_write(tmp_path, text)))
    assert failure.value.exit_code == 2


def test_unknown_playbook_name_lists_the_shipped_ones() -> None:
    """A name that is neither shipped nor a file is bad input that says what exists."""
    with pytest.raises(BadInput, match=r"unknown playbook 'nope'.*compromised-key"):
        playbook.load("nope")


def test_unreadable_playbook_file(tmp_path: Path) -> None:
    """A missing file is bad input naming the path, not a traceback."""
    with pytest.raises(BadInput, match="cannot read playbook"):
        playbook.load(str(tmp_path / "missing.yaml"))


def test_shipped_json_is_the_yaml_validated_now() -> None:
    """playbooks/shipped.json, which `respond` reads instead of parsing and validating the
    shipped YAML, is what validating the YAML gives today. When this fails, regenerate:
    `python -m responder.playbook > playbooks/shipped.json`."""
    shipped = json.loads((playbook.shipped_dir() / playbook.SHIPPED_JSON).read_text("utf-8"))
    assert shipped == playbook.validated_shipped()
    assert (ROOT / "playbooks" / playbook.SHIPPED_JSON).read_text("utf-8") == (
        playbook.render_shipped())


def test_shipped_playbooks_load_without_yaml_or_jsonschema(tmp_path: Path) -> None:
    """Loading a shipped playbook by name, and rebuilding it from its journaled form (the
    runner's from_dict), imports neither PyYAML nor jsonschema nor any step module."""
    code = (
        "import sys\n"
        "from responder import playbook\n"
        "for name in playbook.shipped_names():\n"
        "    pb = playbook.load(name)\n"
        "    data = json.loads(json.dumps(pb.to_dict()))\n"
        "    assert playbook.Playbook.from_dict(data, 'incident x') == playbook.Playbook(\n"
        "        pb.name, pb.version, pb.steps, 'incident x', pb.description, pb.sweeps)\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in {'yaml', 'jsonschema'}\n"
        "          or m.startswith('responder.steps.')]\n"
        "assert not loaded, loaded\n"
    )
    # Elsewhere than the checkout: `python -c` puts its folder first on sys.path, and
    # ./responder (without the playbooks the wheel installs) would shadow the package.
    done = subprocess.run([sys.executable, "-c", "import json\n" + code], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_from_dict_validates_anything_but_a_shipped_playbook() -> None:
    """Only data exactly equal to a shipped playbook skips validation: a changed setting,
    even one equal in Python (0 == False), is validated and refused."""
    data = playbook.load("compromised-key").to_dict()
    data["steps"][-1]["with"] = {"apply": 0}
    with pytest.raises(PlaybookInvalid, match=r"incident x: step 'harden' .* 'with.apply'"):
        playbook.Playbook.from_dict(data, "incident x")
    data["steps"][-1]["with"] = {"apply": False}
    data["steps"][1]["action"] = "nuke_account"
    with pytest.raises(PlaybookInvalid, match="unknown action 'nuke_account'"):
        playbook.Playbook.from_dict(data, "incident x")


def test_a_file_playbook_is_validated_on_every_load(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's playbook file is parsed and validated each time it is loaded, and nothing
    is kept under $RESPONDER_HOME: an edit that breaks it is refused on the next load."""
    home = tmp_path / "home"
    monkeypatch.setenv("RESPONDER_HOME", str(home))
    good = _write(tmp_path, GOOD)
    assert playbook.load(str(good)).name == "custom"
    assert playbook.load(str(good)).name == "custom"
    good.write_text(GOOD.replace("action: disable_access_key", "action: no_such_action"))
    with pytest.raises(PlaybookInvalid, match="no_such_action"):
        playbook.load(str(good))
    assert not home.exists()
