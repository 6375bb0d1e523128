"""The known-answer validation suite, scaled down: every control must get its known answer.

``suites/validation.toml`` (about 15 minutes on a 2-core CPU, ``bench/validation.py``) is run here
through ``include`` with smaller images and sets, the same generators, metrics, tasks, seeds and
``[[checks]]``. The test fails when any metric or task stops reacting as it must.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCALED = """
include = "{base}"

[suite]
name = "validation"

[dataset]
plugin = "phantom-xray"
classes = 2
resolution = 32
n_train = 60
n_val = 60
n_test = 100
lesion_contrast = 0.3
marker_rate = 0.1
seed = 0

[[encoders]]
plugin = "efficientnet-lite0"
resolution = 64

[[tasks]]
plugin = "augmentation"
classifier = "small-cnn"
epochs = 8

[[tasks]]
plugin = "bias-probe"
classifier = "small-cnn"
epochs = 8

[output]
dir = "{out}"
"""


@pytest.mark.slow
def test_scaled_validation_suite_passes_every_known_answer(tmp_path: Path) -> None:
    suite = tmp_path / "validation-scaled.toml"
    out = tmp_path / "run"
    suite.write_text(SCALED.format(base=ROOT / "suites" / "validation.toml", out=out))
    done = subprocess.run(
        [sys.executable, "-m", "medsynbench.cli", "run", str(suite), "--quiet"],
        capture_output=True, text=True, timeout=1200,
    )
    board = (out / "leaderboard.md").read_text() if (out / "leaderboard.md").exists() else ""
    assert done.returncode == 0, done.stderr[-4000:] + board[-6000:]
    results = json.loads((out / "results.json").read_text())
    assert len(results["suite"]["checks"]) == 16
    assert "16 of 16 passed" in board
    assert "Known-answer checks" in board
