"""Lambda cold start: importing the handler in a fresh process from a code directory
nothing may write to, as Lambda runs it (issue 30).

    python benchmarks/coldstart.py [--runs 10] [--quick] [--build-dir DIR]

Builds the function's code directory as docs/deploy.md does (`pip install . -t DIR`,
which compiles every module to bytecode for the interpreter that builds it), unless
`--build-dir` names one already built; then times `import responder.lambda_handler`
in fresh processes started with `-B` (Python writes no bytecode, like a read-only
directory), the median of `runs`, with the bytecode as built and with every
`__pycache__` removed. Also reports how many modules lack bytecode for this
interpreter. Goal: as built, under 0.5 s here.

Results: benchmarks/results/coldstart.json. `--quick`: one run each, to check that
the benchmark works, not to measure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PROBE = ("import sys, time; sys.path.insert(0, {path!r}); t = time.perf_counter(); "
         "import responder.lambda_handler; print(time.perf_counter() - t)")


def build(target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", str(ROOT),  # noqa: S603
                    "-t", str(target)], check=True, timeout=900)


def missing_bytecode(code: Path) -> int:
    """Modules under `code` with no bytecode for this interpreter next to them."""
    tag = sys.implementation.cache_tag
    return sum(1 for source in code.rglob("*.py")
               if not (source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc").is_file())


def median_import(code: Path, runs: int) -> float:
    samples = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-B", "-I", "-c",  # noqa: S603
                               PROBE.format(path=str(code))],
                              capture_output=True, text=True, timeout=120, check=True)
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="one run each: check, not measure")
    parser.add_argument("--build-dir", type=Path, help="a code directory already built")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    work = Path(tempfile.mkdtemp())
    try:
        built = args.build_dir or work / "as-built"
        if args.build_dir is None:
            build(built)
        stripped = work / "no-bytecode"
        shutil.copytree(built, stripped)
        for cache in list(stripped.rglob("__pycache__")):
            shutil.rmtree(cache)
        result: dict[str, Any] = {
            "python": sys.version.split()[0], "runs": runs,
            "modules_without_bytecode": missing_bytecode(built),
            "import_seconds_as_built": round(median_import(built, runs), 3),
            "import_seconds_without_bytecode": round(median_import(stripped, runs), 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "coldstart.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
