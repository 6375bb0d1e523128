"""Reference rows and controls through the runner: missing pools, flags, sample counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from medsynbench.errors import DataError
from medsynbench.runner import Runner
from medsynbench.suite import load_suite

from .conftest import toy_suite_text


def _with_control(tmp_path: Path, pool: str) -> Path:
    text = toy_suite_text(tmp_path).replace(
        "[[metrics]]",
        f'[[generators]]\nplugin = "heldout-real"\ntrain = {{ pool = "{pool}" }}\n\n[[metrics]]',
        1,
    )
    path = tmp_path / "controls.toml"
    path.write_text(text)
    return path


def test_control_asking_for_a_missing_split_fails_before_any_fit(registry, tmp_path):
    suite = load_suite(_with_control(tmp_path, "val"), registry)  # the toy dataset has no val
    out = tmp_path / "out"
    runner = Runner(suite, registry, out, device="cpu")
    with pytest.raises(DataError) as caught:
        runner.run()
    message = str(caught.value)
    assert "generator 'heldout-real' draws from split 'val', which the dataset lacks" in message
    assert "splits train, test" in message and "nothing was fitted" in message
    # nothing half-written: no fit unit, no log of the counting generators, no results
    fit_units = list((out / "cache" / "fit").glob("*")) if (out / "cache" / "fit").exists() else []
    assert fit_units == []
    assert not (tmp_path / "alpha.log").exists()
    assert not (out / "results.json").exists()


def test_warnings_of_a_unit_become_flags_and_survive_the_cache(registry, tmp_path, monkeypatch):
    import warnings

    metric = registry.get("metric", "toy-gap")
    compute = metric.compute

    def warning_compute(self, inputs, ctx):
        warnings.warn("rank-deficient covariance", UserWarning, stacklevel=1)
        return compute(self, inputs, ctx)

    monkeypatch.setattr(metric, "compute", warning_compute)
    suite = load_suite(_toy(tmp_path), registry)
    for _ in range(2):  # computed, then read back from the cache with its warning
        results = Runner(suite, registry, tmp_path / "out", device="cpu").run()
        for entry in results["entries"]:
            assert entry["metrics"]["toy-gap.gap"]["flags"] == ["rank-deficient covariance"]
    assert results["manifest"]["stage_units"]["metrics"] == {"computed": 0, "cached": 2}


def _toy(tmp_path: Path) -> Path:
    path = tmp_path / "toy.toml"
    path.write_text(toy_suite_text(tmp_path))
    return path


def test_results_keep_reference_kind_and_raw_scores(registry, tmp_path):
    path = tmp_path / "refs.toml"
    path.write_text(toy_suite_text(tmp_path).replace(
        "[[metrics]]", '[[generators]]\nplugin = "copy-real"\n\n[[metrics]]', 1))
    suite = load_suite(path, registry)
    results = Runner(suite, registry, tmp_path / "out", device="cpu").run()
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results, default=str))
    by_name = {e["name"]: e for e in on_disk["entries"]}
    assert by_name["copy-real"]["reference"] == "memoriser"
    assert by_name["alpha"]["reference"] is None
    record = by_name["alpha"]["utility"]["toy-centroid"]
    assert "delta_pp" not in record and "p_value" not in record  # computed on the board only
    assert len(record["baseline"][record["primary"]]) == len(suite.seeds)
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "## Reference rows (not ranked)" in board and "| copy-real | memoriser |" in board
