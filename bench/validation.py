"""Wall time of the known-answer validation suite against its 15-minute CPU budget.

Runs ``medsynbench run suites/validation.toml`` in a fresh process with an empty cache (so every
unit is computed), then prints the wall time, the budget and their ratio, the time per stage from
the manifest and how many known-answer checks passed. The same command a user runs; no peer
harness has such a suite, so the figure is compared with the issue's budget (900 s on a 2-core CPU).

    python bench/validation.py                       # suites/validation.toml, budget 900 s
    python bench/validation.py --suite my.toml --budget 600 --keep runs/validation
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=str(ROOT / "suites" / "validation.toml"))
    parser.add_argument("--budget", type=float, default=900.0, help="seconds (default 900)")
    parser.add_argument("--keep", help="write the run here instead of a temporary folder")
    args = parser.parse_args()

    out = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="msb-validation-"))
    if out.exists() and args.keep:
        shutil.rmtree(out / "cache", ignore_errors=True)  # an empty cache: every unit computed
    command = [sys.executable, "-m", "medsynbench.cli", "run", args.suite, "--out", str(out),
               "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
    wall = time.perf_counter() - start
    results_file = out / "results.json"
    if not results_file.exists():
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        print(f"error: the run wrote no results.json (exit {done.returncode})", file=sys.stderr)
        return 2
    results = json.loads(results_file.read_text())
    manifest = results["manifest"]
    from medsynbench.checks import evaluate_checks
    from medsynbench.leaderboard import rank_entries

    checks = evaluate_checks(results["suite"].get("checks") or [], rank_entries(results["entries"]))
    passed = sum(1 for c in checks if c["passed"] is True)
    stack = manifest.get("float_stack") or {}
    cpu = (stack.get("cpu") or {}).get("model") if isinstance(stack.get("cpu"), dict) else None
    print(f"suite            {args.suite}")
    print(f"machine          {cpu or manifest.get('platform')}, {os.cpu_count()} cores, "
          f"device {manifest.get('device')}, cpu_threads {manifest.get('cpu_threads')}")
    print(f"wall (ours)      {wall:8.1f} s   (exit {done.returncode})")
    print(f"budget           {args.budget:8.1f} s")
    print(f"ratio            {wall / args.budget:8.2f}   (≤ 1 meets the budget)")
    for stage, seconds in (manifest.get("stage_seconds") or {}).items():
        print(f"  {stage:<14} {seconds:8.1f} s")
    print(f"checks           {passed} of {len(checks)} passed")
    for check in checks:
        if check["passed"] is not True:
            print(f"  FAILED {check['entry']} {check['value']} {check['expect']}: "
                  f"{check['observed']}")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0 if passed == len(checks) and wall <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
