"""The demo suite end to end, scaled down (32 px, fewer images) so CI stays fast.

The suite below includes suites/demo.toml unchanged and overrides only data size and epochs, so
the demo's generators, reference rows, encoder, metrics and 8-seed augmentation task all run for
real.
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
n_val = 60
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
    assert results["schema_version"] == 2
    entries = {e["name"]: e for e in results["entries"]}
    assert set(entries) == {"copy-real", "classical-augment", "vqvae2", "noise", "heldout-real",
                            "label-swap"}
    assert all(e["status"] == "ok" for e in entries.values())
    assert {n: e["reference"] for n, e in entries.items()} == {
        "copy-real": "memoriser", "classical-augment": "classical", "vqvae2": None,
        "noise": None, "heldout-real": "positive-control", "label-swap": "negative-control"}

    copy = entries["copy-real"]["metrics"]
    assert copy["knn-privacy.privacy"]["value"] == pytest.approx(0.0, abs=1e-9)  # the memoriser
    assert copy["fid.fid"]["value"] < entries["noise"]["metrics"]["fid.fid"]["value"]
    assert entries["vqvae2"]["metrics"]["knn-privacy.privacy"]["value"] > 0.0
    for entry in entries.values():
        assert {"fid.fid", "prdc.precision", "prdc.recall", "prdc.density", "prdc.coverage",
                "knn-privacy.fidelity", "knn-privacy.privacy", "knn-privacy.fidelity_privacy",
                "mean-image-jpeg.jpeg_bytes", "mean-image-jpeg.variety"} <= set(entry["metrics"])
        # V is derived on each board, from jpeg_bytes: results.json keeps no value for it
        variety = entry["metrics"]["mean-image-jpeg.variety"]
        assert variety["value"] is None and variety["board_rule"] == "inverse-minmax"
        utility = entry["utility"]["augmentation"]
        assert len(utility["treated"]["accuracy"]) == 8 == len(utility["baseline"]["accuracy"])
        assert not {"delta_pp", "p_value", "significant"} & set(utility)  # raw numbers only
        assert len(utility["treated_correct"]) == 8 and utility["n_eval"] == 120

    from medsynbench.leaderboard import rank_entries

    board = rank_entries(results["entries"])
    assert [e["name"] for e in board if e["rank"] is not None] in (
        ["vqvae2", "noise"], ["noise", "vqvae2"])
    varieties = [e["metrics"]["mean-image-jpeg.variety"]["value"] for e in board]
    assert min(varieties) == 0.0 and max(varieties) == 1.0  # normalised across the board
    markdown = (out / "leaderboard.md").read_text()
    assert all(name in markdown for name in entries)
    assert "## Reference rows (not ranked)" in markdown
    assert "Rank intervals: 2000 bootstrap replicates resampling 8 seeds" in markdown
    assert len((out / "results.csv").read_text().splitlines()) == 7
    assert "demo" in proc.stdout  # the leaderboard is printed at the end
