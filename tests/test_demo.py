"""The demo suite end to end, scaled down (32 px, fewer images) so CI stays fast.

The suite below includes suites/demo.toml unchanged and overrides only data size and epochs, so
the demo's generators, encoder, metrics and 6-seed augmentation task all run for real.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "suites" / "demo.toml"

SMALL = """
include = "{demo}"

[dataset]
resolution = 32
n_train = 60
n_test = 60

[[tasks]]
plugin = "augmentation"
classifier = "small-cnn"
epochs = 4

[output]
dir = "{out}"
"""


@pytest.mark.slow
def test_demo_suite_end_to_end(tmp_path):
    suite = tmp_path / "demo-small.toml"
    suite.write_text(SMALL.format(demo=DEMO, out=tmp_path / "out"))
    proc = subprocess.run(
        [sys.executable, "-m", "medsynbench.cli", "run", str(suite), "--device", "cpu", "--quiet"],
        capture_output=True, text=True, timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    entries = {e["name"]: e for e in results["entries"]}
    assert set(entries) == {"copy-real", "classical-augment", "vqvae2", "noise"}
    assert all(e["status"] == "ok" for e in entries.values())

    copy = entries["copy-real"]["metrics"]
    assert copy["knn-privacy.privacy"]["value"] == pytest.approx(0.0, abs=1e-9)  # the memoriser
    assert copy["fid.fid"]["value"] < entries["noise"]["metrics"]["fid.fid"]["value"]
    assert entries["vqvae2"]["metrics"]["knn-privacy.privacy"]["value"] > 0.0
    for entry in entries.values():
        assert {"fid.fid", "prdc.precision", "prdc.recall", "prdc.density", "prdc.coverage",
                "knn-privacy.fidelity", "knn-privacy.privacy", "knn-privacy.fidelity_privacy",
                "mean-image-jpeg.variety"} <= set(entry["metrics"])
        utility = entry["utility"]["augmentation"]
        assert len(utility["treated"]["accuracy"]) == 6
        assert utility["p_value"] is None or 0.0 < utility["p_value"] <= 1.0
        assert "delta_pp" in utility and len(utility["ci95_pp"]) == 2
    varieties = [e["metrics"]["mean-image-jpeg.variety"]["value"] for e in entries.values()]
    assert min(varieties) == 0.0 and max(varieties) == 1.0  # normalised across the suite

    board = (out / "leaderboard.md").read_text()
    assert all(name in board for name in entries)
    assert len((out / "results.csv").read_text().splitlines()) == 5
    assert "demo" in proc.stdout  # the leaderboard is printed at the end
