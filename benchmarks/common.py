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


def peak_rss_mib() -> float | None:
    """The process's peak resident memory (VmHWM: reset by exec, unlike ru_maxrss, which
    a child started from a big parent inherits), interpreter included."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None
