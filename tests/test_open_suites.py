"""Every open-data suite in suites/ runs end to end, scaled down: every entry ok, results written.

A suite is open-data when its dataset lives under ``$MEDSYNBENCH_DATA`` (its ``root``, or the
dataset's default folder there) and ../shared/data holds that folder; the others skip (generated
data: tests/test_demo.py and tests/test_validation.py run those). Each suite is read as shipped
and scaled by :func:`medsynbench.testing.scale_suite` (2 seeds, tiny generator presets, a few
steps, one epoch, at most 16 images per class in every split where the dataset declares
``max_per_class`` — chosen before decoding) — same dataset and image size, entries, encoders,
metrics and tasks — then run by the Runner on the CPU. New suites are picked up by file name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from medsynbench.registry import get_registry
from medsynbench.runner import Runner
from medsynbench.suite import build_suite, read_suite_file
from medsynbench.testing import scale_suite

SUITES = Path(__file__).resolve().parents[1] / "suites"
PER_CLASS = 16


def open_data_folder(path: Path, data: Path) -> tuple[Path | None, str]:
    """The folder under ``data`` that the suite reads (None and why, when it reads none)."""
    raw = read_suite_file(path)
    table = raw.get("dataset", {})
    root = table.get("root")
    if root is None:
        cls = get_registry().get("dataset", table["plugin"])
        folder = getattr(cls, "default_folder", "")
        if not folder:
            return None, f"dataset {table['plugin']!r} is generated, not read from files"
        root = str(data / folder)
    try:
        relative = Path(root).relative_to(data)
    except ValueError:
        return None, f"dataset root {root} is not under $MEDSYNBENCH_DATA"
    return data / relative.parts[0], ""


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("path", sorted(SUITES.glob("*.toml")), ids=lambda p: p.name)
def test_open_suite_runs_scaled_with_every_entry_ok(path, tmp_path, monkeypatch, shared_data):
    monkeypatch.setenv("MEDSYNBENCH_DATA", str(shared_data))
    monkeypatch.delenv("MEDSYNBENCH_CACHE", raising=False)
    folder, why = open_data_folder(path, shared_data)
    if folder is None:
        pytest.skip(why)
    if not folder.exists():
        pytest.skip(f"{folder} is absent: the suite's data is not in the shared data folder")

    registry = get_registry()
    raw = scale_suite(read_suite_file(path), registry, per_class=PER_CLASS)
    suite = build_suite(raw, path, registry, allow_underpowered=True)
    results = Runner(suite, registry, tmp_path / "out", device="cpu").run()

    failed = {e["name"]: f"{e['failed_stage']}: {e['error']}"
              for e in results["entries"] if e["status"] != "ok"}
    assert not failed, json.dumps(failed, indent=2)
    assert [e["name"] for e in results["entries"]] == [e.name for e in suite.entries]
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written["suite"]["name"] == suite.name
    assert {e["name"] for e in written["entries"]} == {e.name for e in suite.entries}
    assert os.path.getsize(tmp_path / "out" / "leaderboard.md") > 0


def test_scale_suite_shortens_training_and_keeps_the_protocol(tmp_path):
    registry = get_registry()
    demo = SUITES / "demo.toml"
    raw = read_suite_file(demo)
    raw["checks"] = [{"entry": "copy-real", "value": "fid.fid", "expect": "<= 1"}]
    scaled = scale_suite(raw, registry)
    assert raw["suite"]["seeds"] == list(range(8)) and "checks" in raw  # the input is untouched
    assert scaled["suite"]["seeds"] == [0, 1] and scaled["suite"]["cpu_threads"] == 1
    assert "checks" not in scaled and "output" not in scaled
    assert scaled["dataset"] == raw["dataset"]  # same data, same image size
    vqvae2 = next(g for g in scaled["generators"] if g["plugin"] == "vqvae2")
    # tiny preset, steps cut, the suite's other choices kept
    assert vqvae2["train"] == {"preset": "tiny", "channels": 64, "codebook_size": 64,
                               "vq_steps": 4, "prior_steps": 4}
    assert [g["plugin"] for g in scaled["generators"]] == [g["plugin"] for g in raw["generators"]]
    assert scaled["encoders"] == [{"plugin": "efficientnet-lite0", "resolution": 64}]
    assert scaled["tasks"][0]["epochs"] == 1 and scaled["tasks"][0]["image_size"] == 32
    suite = build_suite(scaled, demo, registry, allow_underpowered=True)
    assert [e.name for e in suite.entries] == [
        "copy-real", "classical-augment", "vqvae2", "noise", "heldout-real", "label-swap"]


def test_scale_suite_caps_images_per_class_where_the_dataset_declares_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYNBENCH_DATA", str(tmp_path))
    registry = get_registry()
    raw = read_suite_file(SUITES / "pneumoniamnist-lite.toml")
    assert "max_per_class" not in raw["dataset"]
    scaled = scale_suite(raw, registry, per_class=PER_CLASS)
    assert scaled["dataset"] == {**raw["dataset"], "max_per_class": PER_CLASS}
    # Every entry samples the cap per class: k-NN metrics need more than k synthetic images,
    # which synthetic_ratio × 16 real images need not give.
    assert {g.get("count") for g in scaled["generators"]} == {PER_CLASS}
    raw["dataset"]["max_per_class"] = 5  # a smaller cap of the suite's own stays
    assert scale_suite(raw, registry, per_class=PER_CLASS)["dataset"]["max_per_class"] == 5
    lungpet = read_suite_file(SUITES / "ct-lungpet-smoke.toml")  # 28 montages: nothing to cap
    unscaled = scale_suite(lungpet, registry)
    assert unscaled["dataset"] == lungpet["dataset"]
    assert all("count" not in g for g in unscaled["generators"])
