"""Start-up, as ratios: `respond --help`, `--version` and `status` against
`python -c "import boto3"` and `python -c pass`.

    python benchmarks/startup.py [--runs 20] [--quick] [--respond PATH]

Wall time of each command from spawn to exit, median of `runs`. Goal (issue 18):
`--help` and `--version` <= 0.5x `import boto3` (they need no AWS SDK at all).
`--respond PATH` times another `respond` (a checkout before a change, in its own
virtualenv); the baselines run on the interpreter of the `respond` timed (its #! line).

Results: benchmarks/results/startup.json. `--quick` makes one run of each, to check the
benchmark works (CI), not to measure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import interpreter_of

RESULTS = Path(__file__).resolve().parent / "results"


def _median(argv: list[str], runs: int, env: dict[str, str]) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, timeout=120, check=False)  # noqa: S603
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="one run each: check, not measure")
    parser.add_argument("--respond", help="the respond to time (default: this virtualenv's)")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    respond = args.respond or shutil.which("respond") or str(Path(sys.executable).parent
                                                              / "respond")
    python = interpreter_of(respond)
    home = tempfile.mkdtemp()
    env = {**os.environ, "RESPONDER_HOME": home}
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import boto3'": [python, "-c", "import boto3"],
        "respond --help": [respond, "--help"],
        "respond --version": [respond, "--version"],
        "respond status": [respond, "status"],
    }
    seconds = {name: round(_median(argv, runs, env), 4) for name, argv in commands.items()}
    boto3_s = seconds["python -c 'import boto3'"]
    result: dict[str, Any] = {
        "quick": args.quick, "runs": runs, "python": sys.version.split()[0],
        "respond_path": respond, "python_path": python,
        "median_s": seconds,
        "vs_import_boto3": {name: round(s / boto3_s, 3) for name, s in seconds.items()
                            if name.startswith("respond")},
        "vs_python_pass": {name: round(s / seconds["python -c pass"], 3)
                           for name, s in seconds.items() if name.startswith("respond")},
    }
    shutil.rmtree(home, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
