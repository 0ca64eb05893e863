"""The wheel carries everything `respond` needs, even with the source tree gone."""

from __future__ import annotations

import tomllib
from pathlib import Path

from responder import playbook

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    """A new responder/ subpackage missing from pyproject would vanish from installs."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "responder").rglob("__init__.py")
    }
    assert on_disk | {"responder.playbooks"} == listed


def test_tests_run_against_the_installed_package() -> None:
    """Tests import the installed wheel (CI) or an editable install, and the shipped
    playbooks resolve through the package, not through a path into the checkout."""
    names = {p.name for p in playbook.shipped_dir().iterdir()}
    assert {"compromised-key.yaml", "playbook.schema.json"} <= names
