"""`pytest` stays in process and quick (docs/decisions.md 41): a test that starts the moto
server, `respond` or any other process, or runs a whole drill, is marked e2e (or slow) and
runs with `pytest -m 'e2e or slow'`, as CI does.

tests/conftest.py marks e2e every test asking for `moto_server` (through `cli`,
`server_account`, `pager`... too) and every test of a file in E2E_FILES. These tests keep
a new process-starting test from slipping into the default loop unnoticed.
"""

from __future__ import annotations

import ast
import io
import tokenize
import tomllib
from pathlib import Path

import pytest
from conftest import E2E_FILES

TESTS = Path(__file__).resolve().parent
MODULES = sorted(p for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name)

# A name used in a test module's code (not in its strings or comments) that starts a
# process or a server. A module using one is in E2E_FILES, marked e2e or slow as a whole,
# or below in QUICK_PROCESSES. (`run_respond`, `reference_run` and `fresh_server_account`
# are not here: they need the server's URL, so their tests ask for `moto_server`.)
STARTERS = {
    "subprocess", "Popen", "pty", "fork", "multiprocessing",
    "ThreadedMotoServer",
    "RESPOND", "FAULTY_RESPOND", "respond_command", "interrupting_respond",
}
DRILLS = {("drill", "run"), ("drill", "run_all")}  # a whole drill: 8-14 s a scenario

# In-process test modules whose one process is a short `python -c`, about a second.
QUICK_PROCESSES = {
    "test_aws.py": "a fresh interpreter shows what importing responder.aws loads",
    "test_playbook.py": "a fresh interpreter loads the shipped playbooks without PyYAML",
    "test_logging.py": "a fresh interpreter logs, then kills itself with SIGKILL",
    "test_cli_close.py": "a `python -c` that has exited gives a pid surely dead",
}


def starters(path: Path) -> set[str]:
    """The process starters `path`'s code uses (STARTERS, and `drill.run`)."""
    found: set[str] = set()
    names = [t.string for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
             if t.type in (tokenize.NAME, tokenize.OP)]
    for i, name in enumerate(names):
        if name in STARTERS:
            found.add(name)
        if i >= 2 and (names[i - 2], name) in DRILLS and names[i - 1] == ".":
            found.add(f"{names[i - 2]}.{name}")
    return found


def marked_as_a_whole(path: Path) -> bool:
    """A module-level `pytestmark` naming e2e or slow."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets):
            marks = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            if marks & {"e2e", "slow"}:
                return True
    return False


def test_the_markers_are_registered_and_the_default_run_deselects_them() -> None:
    options = tomllib.loads((TESTS.parent / "pyproject.toml").read_text())[
        "tool"]["pytest"]["ini_options"]
    assert {m.split(":")[0] for m in options["markers"]} >= {"e2e", "slow"}
    assert "-m 'not slow and not e2e'" in options["addopts"]


def test_every_file_that_starts_a_process_is_e2e_or_slow() -> None:
    loose = {p.name: sorted(found) for p in MODULES if (found := starters(p))
             and p.name not in E2E_FILES and p.name not in QUICK_PROCESSES
             and not marked_as_a_whole(p)}
    assert not loose, (
        f"these test files start a process or a whole drill in the default run: {loose}. "
        "Add each to E2E_FILES in tests/conftest.py, saying why, or give it "
        "`pytestmark = pytest.mark.e2e`; a quick `python -c` goes in QUICK_PROCESSES here")


def test_the_lists_name_existing_files_that_start_processes() -> None:
    """No stale entry: a file renamed or made in-process leaves its list."""
    names = {p.name for p in MODULES}
    assert set(E2E_FILES) <= names
    assert set(QUICK_PROCESSES) <= names
    assert not set(E2E_FILES) & set(QUICK_PROCESSES)
    quiet = [n for n in QUICK_PROCESSES if not starters(TESTS / n)]
    assert not quiet, f"these start no process any more: drop them from QUICK_PROCESSES {quiet}"


def test_the_scan_sees_code_and_not_words(tmp_path: Path) -> None:
    code = tmp_path / "test_x.py"
    code.write_text('"""Runs `respond` as a subprocess; RESPOND: a ThreadedMotoServer."""\n'
                    "# subprocess.run, drill.run()\n"
                    "x = 'Popen'\n")
    assert starters(code) == set()
    code.write_text("from responder import drill\n\ndef test_it():\n    drill.run('x')\n")
    assert starters(code) == {"drill.run"}
    code.write_text("import subprocess\npytestmark = pytest.mark.e2e\n")
    assert starters(code) == {"subprocess"}
    assert marked_as_a_whole(code)


def test_no_test_of_this_run_uses_the_moto_server_unmarked(request: pytest.FixtureRequest
                                                           ) -> None:
    """Every test collected in this run that asks for the moto server, or is in an
    E2E_FILES file, is marked e2e; in the default run none of them is selected."""
    items = request.session.items
    unmarked = [i.nodeid for i in items
                if ("moto_server" in getattr(i, "fixturenames", ()) or i.path.name in E2E_FILES)
                and i.get_closest_marker("e2e") is None]
    assert not unmarked, unmarked
    if request.config.option.markexpr == "not slow and not e2e":  # the default run
        selected = [i.nodeid for i in items
                    if i.get_closest_marker("e2e") or i.get_closest_marker("slow")]
        assert not selected, selected
