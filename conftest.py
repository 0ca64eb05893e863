"""`python -m pytest` from the repository root, with the project installed without -e.

`python -m` puts the current directory first on sys.path, so the tests would import
`responder` from this working tree while the `respond` they start is the installed one,
and the shipped playbooks (./playbooks, installed as `responder.playbooks`) would not be
found at all. Rather than a collection error, say the one command that makes the
working tree the tested one. Plain `pytest` (the README's command, and CI's) imports
the installed package and passes through here untouched.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import responder


def pytest_configure(config: pytest.Config) -> None:
    """Stop before collection when the working tree is imported but not installed."""
    del config
    here = Path(__file__).resolve().parent / "responder"
    if Path(responder.__file__).resolve().parent != here:
        return
    if importlib.util.find_spec("responder.playbooks") is None:
        pytest.exit("`python -m pytest` imports ./responder, but the project is installed "
                    "without -e: run `pip install -e '.[test]'` once to test your working "
                    "tree (or run plain `pytest`, which tests the installed package)",
                    returncode=4)
