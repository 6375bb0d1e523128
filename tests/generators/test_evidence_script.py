"""bench/generator_evidence.py: the generator-evidence run works end to end (tiny presets on
procedural pathology phantoms) and refuses bad input before writing anything."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from medsynbench import RunContext
from medsynbench.plugins.datasets import PhantomPathology

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "generator_evidence.py"


def _run(*args: str | Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def phantom_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tissue classes at 16 px in the --save-npz format."""
    tmp = tmp_path_factory.mktemp("evidence")
    splits = PhantomPathology(resolution=16, n_train=12, n_val=0, n_test=6, seed=0).load(
        RunContext(workdir=tmp))
    keep = splits.train.labels < 2, splits.test.labels < 2
    path = tmp / "phantom.npz"
    np.savez(path, train_images=splits.train.images[keep[0]],
             train_labels=splits.train.labels[keep[0]],
             test_images=splits.test.images[keep[1]], test_labels=splits.test.labels[keep[1]],
             class_names=np.array(splits.class_names[:2]))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_tiny_run_writes_complete_evidence(device: str, phantom_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _run("--npz", phantom_npz, "--preset", "tiny", "--seconds", "2", "--device", device,
                "--set", "stylegan2.batch_size=4", "--set", "stylegan2.augment=color", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FID vs held-out: real-vs-real" in proc.stdout
    report = json.loads((out / "evidence.json").read_text())
    assert report["complete"] and report["n_train"] == 24 and report["n_heldout"] == 12
    assert "fid_caveat" in report  # 12 < 1280 features
    assert report["fid_real_matched_vs_heldout"] < report["fid_noise_vs_heldout"]
    assert set(report["families"]) == {"vqvae2", "ldm", "stylegan2"}
    assert report["families"]["stylegan2"]["params"] == {
        "preset": "tiny", "batch_size": 4, "augment": "color", "max_train_seconds": 2}
    for family, entry in report["families"].items():
        assert "error" not in entry, entry
        assert entry["fit"]["train_seconds"] <= 2 + 30  # the budget is honoured (one step over)
        assert entry["efficiency"]["seconds_per_1000"] > 0
        memory = entry["efficiency"]["peak_gpu_memory_mb_8"]
        assert memory is None if device == "cpu" else memory > 0  # CPU: not measured
        for sample in entry["samples"]:
            assert sample["n"] == 12 and math.isfinite(sample["fid_vs_heldout"])
        saved = np.load(out / f"samples_{family}.npz")
        assert saved["images"].shape == (12, 3, 16, 16) and np.bincount(saved["labels"]).tolist() \
            == [6, 6]
        assert (out / f"samples_{family}.png").stat().st_size > 0
    assert (out / "real_heldout.png").is_file()


def test_save_npz_round_trip_and_refusals(phantom_npz: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    missing = _run("--npz", tmp_path / "nope.npz", "--out", out)
    assert missing.returncode == 2 and "nope.npz: no such file" in missing.stderr
    assert "--save-npz" in missing.stderr

    partial = tmp_path / "partial.npz"
    np.savez(partial, train_images=np.zeros((2, 3, 8, 8), np.uint8))
    lacking = _run("--npz", partial, "--out", out)
    assert lacking.returncode == 2 and "lacks train_labels, test_images" in lacking.stderr

    floats = tmp_path / "floats.npz"
    with np.load(phantom_npz) as data:
        arrays = dict(data)
    np.savez(floats, **{**arrays, "test_images": arrays["test_images"].astype(np.float32)})
    wrong = _run("--npz", floats, "--out", out)
    assert wrong.returncode == 2 and "test_images must be uint8" in wrong.stderr

    no_data = _run("--data", tmp_path / "no-lc25000", "--out", out)
    assert no_data.returncode == 2 and "no-lc25000" in no_data.stderr

    unknown = _run("--npz", phantom_npz, "--families", "vqvae2,dalle", "--out", out)
    assert unknown.returncode == 2 and "unknown dalle" in unknown.stderr

    size = _run("--npz", phantom_npz, "--resolution", "64", "--out", out)
    assert size.returncode == 2 and "holds 16 px images, not --resolution 64" in size.stderr

    bad_set = _run("--npz", phantom_npz, "--families", "ldm", "--set", "vqvae2.x=1", "--out", out)
    assert bad_set.returncode == 2 and "expected FAMILY.KEY=VALUE" in bad_set.stderr

    bad_value = _run("--npz", phantom_npz, "--families", "stylegan2",
                     "--set", "stylegan2.batch_size=0", "--out", out)
    assert bad_value.returncode == 2 and "batch_size" in bad_value.stderr
    if not torch.cuda.is_available():
        no_gpu = _run("--npz", phantom_npz, "--device", "cuda", "--out", out)
        assert no_gpu.returncode == 2 and "CUDA is not available" in no_gpu.stderr
    assert not out.exists()  # nothing half-written


@pytest.mark.shared_data
def test_lc25000_split_from_the_real_layout(shared_data: Path, tmp_path: Path) -> None:
    npz = tmp_path / "lc25000_64.npz"
    proc = _run("--data", shared_data / "lc25000", "--save-npz", npz, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with np.load(npz) as data:
        assert data["train_images"].shape == (973, 3, 64, 64)
        assert data["test_images"].shape == (243, 3, 64, 64)
        assert np.bincount(data["test_labels"]).tolist() == [49, 49, 48, 49, 48]
        assert list(data["class_names"]) == ["colon_aca", "colon_n", "lung_aca", "lung_n",
                                             "lung_scc"]
    assert not (tmp_path / "out").exists()  # --save-npz only prepares
