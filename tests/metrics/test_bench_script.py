"""bench/metrics.py keeps working: a small CPU run agrees with the reference packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "metrics.py"


@pytest.mark.slow
def test_cpu_bench_runs_and_values_agree() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--n", "400", "--d", "64"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "speed-up:" in proc.stdout
    assert proc.stdout.count(" equal") == 5 and "DIFFERENT" not in proc.stdout
