"""What the benchmarks share."""

from __future__ import annotations

import sys
from pathlib import Path


def interpreter_of(script: str) -> str:
    """The Python that runs `script` (a console script's #! line), else this one: the
    baselines run on the same interpreter and site-packages as the `respond` timed, so
    what Python's start-up costs there (an editable install's finder: about 13 ms) is
    paid by both sides of each ratio."""
    try:
        with open(script, "rb") as file:
            line = file.readline().decode("utf-8", "replace")
    except OSError:
        return sys.executable
    python = line[2:].strip() if line.startswith("#!") else ""
    return python if python and " " not in python and Path(python).is_file() else sys.executable
