"""Builders of results documents (docs/results-schema.md, version 2) for the leaderboard tests.

Results keep raw numbers only: per-seed scores of both arms and per-test-image correctness.
Every entry shares one real-only arm (:data:`BASELINE_CORRECT` of :data:`N_EVAL` test images
per seed) and its treated arm is that arm plus a per-seed Δ given in percentage points
(multiples of 0.25 pp = one test image), so each board statistic is hand-computable from the
Δ lists used in a test. The names are unique across tests/ so this module can be imported
from any leaderboard test.
"""

from __future__ import annotations

import copy
import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from medsynbench.stats import pack_correct
from PIL import Image

SUITE_HASH = "a" * 64
PROTOCOL_HASH = "p" * 64
SEEDS = [0, 1, 2, 3, 4, 5, 6, 7]
#: Test images per seed: one image = 0.25 pp (below the 0.5 pp "coarse test set" flag).
N_EVAL = 400
#: Real-only arm: test images classified correctly, per seed (mean 320.5 / 400 = 80.125%).
BASELINE_CORRECT = [320, 324, 316, 328, 320, 312, 324, 320]
#: The suite's protocol (what suite.protocol_hash identifies), as results.json records it.
PROTOCOL: dict[str, Any] = {
    "name": "demo",
    "version": "1",
    "seeds": SEEDS,
    "dataset": ["phantom-xray", "0.1.0", {"size": 16}],
    "encoders": {"efficientnet-lite0": ["efficientnet-lite0", "0.1.0", {}]},
    "metrics": [["fid", "fid", "0.1.0", "efficientnet-lite0", {}]],
    "tasks": [["augmentation", "augmentation", "2.0.0", {"budget": "steps", "epochs": 5}]],
}


def spread_deltas(delta_pp: float, jitter_pp: float = 0.5, n: int = len(SEEDS)) -> list[float]:
    """Per-seed Δ alternating ``delta_pp ± jitter_pp`` (mean exactly ``delta_pp`` for even n)."""
    return [delta_pp + (jitter_pp if i % 2 == 0 else -jitter_pp) for i in range(n)]


def _images(pp: float) -> int:
    count = pp * N_EVAL / 100
    if abs(count - round(count)) > 1e-9:
        raise ValueError(f"Δ {pp} pp is not a whole number of test images (0.25 pp steps)")
    return round(count)


def _baseline_bits(index: int) -> np.ndarray:
    rng = np.random.default_rng([index, 7])
    bits = np.zeros(N_EVAL, dtype=np.uint8)
    bits[rng.choice(N_EVAL, BASELINE_CORRECT[index], replace=False)] = 1
    return bits


def _treated_bits(baseline: np.ndarray, change: int, rng: np.random.Generator) -> np.ndarray:
    """``baseline`` with ``change`` images turned right (> 0) or wrong (< 0), chosen by ``rng``."""
    bits = baseline.copy()
    pool = np.flatnonzero(bits == (0 if change > 0 else 1))
    bits[rng.choice(pool, abs(change), replace=False)] = 1 if change > 0 else 0
    return bits


def utility_result(
    deltas_pp: Sequence[float | None],
    name: str = "entry",
    *,
    correct: bool = True,
    flags: Sequence[str] = (),
) -> dict[str, Any]:
    """A raw task record: the shared real-only arm and the arm shifted by ``deltas_pp`` per seed.

    A ``None`` in ``deltas_pp`` is a seed whose treated arm produced no score. Per-image
    correctness is kept (``correct``) with the changed images drawn by an RNG seeded by
    ``name``, so different entries improve on different images.
    """
    n = len(deltas_pp)
    seeds = SEEDS[:n]
    rng = np.random.default_rng([zlib.crc32(name.encode()), n])
    base_bits = [_baseline_bits(i) for i in range(n)]
    treated_bits = [
        None if d is None else _treated_bits(b, _images(d), rng)
        for b, d in zip(base_bits, deltas_pp, strict=True)
    ]
    baseline = [BASELINE_CORRECT[i] / N_EVAL for i in range(n)]
    treated = [None if t is None else int(t.sum()) / N_EVAL for t in treated_bits]
    keep_bits = correct and all(t is not None for t in treated_bits)
    return {
        "primary": "accuracy",
        "seeds": seeds,
        "budget": "steps",
        "baseline": {"accuracy": baseline, "balanced_accuracy": list(baseline)},
        "treated": {"accuracy": treated, "balanced_accuracy": list(treated)},
        "n_eval": N_EVAL if keep_bits else None,
        "baseline_correct": [pack_correct(b) for b in base_bits] if keep_bits else None,
        "treated_correct": [pack_correct(t) for t in treated_bits if t is not None]
        if keep_bits else None,
        "flags": list(flags),
    }


def metric(value: float | None, axis: str, higher_is_better: bool,
           flags: Sequence[str] = ()) -> dict[str, Any]:
    """One raw metric record."""
    return {"value": value, "axis": axis, "higher_is_better": higher_is_better,
            "encoder": "efficientnet-lite0", "flags": list(flags)}


def board_metric(source: str) -> dict[str, Any]:
    """A board-derived quantity (variety V): no value in results.json, derived on the board."""
    return {"value": None, "board_rule": "inverse-minmax", "source": source, "axis": "variety",
            "higher_is_better": True, "encoder": None, "flags": []}


def make_entry(
    name: str,
    delta_pp: float | None = 1.0,
    *,
    deltas: Sequence[float | None] | None = None,
    jitter_pp: float = 0.5,
    generator: str | None = None,
    reference: str | None = None,
    fid: float | None = 10.0,
    precision: float | None = 0.5,
    jpeg_bytes: float | None = 5000.0,
    privacy: float | None = 0.9,
    feature_extraction: float | None = None,
    status: str = "ok",
    samples: str | None = None,
    correct: bool = True,
) -> dict[str, Any]:
    """An entry in results-schema version 2; ``status="failed"`` gives a failed entry.

    The augmentation Δ per seed is ``deltas`` when given, else :func:`spread_deltas` of
    ``delta_pp`` and ``jitter_pp``; ``delta_pp=None`` gives an entry without that task.
    ``reference`` makes it a reference row ("classical", "positive-control", ...).
    """
    metrics: dict[str, Any] = {}
    if fid is not None:
        metrics["fid.fid"] = metric(fid, "fidelity", False)
    if precision is not None:
        metrics["prdc.precision"] = metric(precision, "fidelity", True)
    if jpeg_bytes is not None:
        metrics["mean-image-jpeg.jpeg_bytes"] = metric(jpeg_bytes, "variety", False)
        metrics["mean-image-jpeg.variety"] = board_metric("mean-image-jpeg.jpeg_bytes")
    if privacy is not None:
        metrics["knn-privacy.P"] = metric(privacy, "privacy", True)
    utility: dict[str, Any] = {}
    if deltas is None and delta_pp is not None:
        deltas = spread_deltas(delta_pp, jitter_pp)
    if deltas is not None:
        utility["augmentation"] = utility_result(deltas, name, correct=correct)
    if feature_extraction is not None:
        utility["feature-extraction"] = utility_result(
            spread_deltas(feature_extraction), f"{name}/fe", correct=correct)
    failed = status != "ok"
    return {
        "name": name,
        "generator": generator or name.split("[")[0],
        "baseline": False,
        "reference": reference,
        "samples_real": reference is not None,
        "params": {"train": {"steps": 10}, "sample": {}},
        "status": status,
        "error": "CUDA out of memory while sampling" if failed else None,
        "failed_stage": "sample" if failed else None,
        "metrics": {} if failed else metrics,
        "utility": {} if failed else utility,
        "efficiency": {"fit_seconds": 3.5, "fit_steps": 10, "sample_seconds": 0.2,
                       "seconds_per_1000": 1.9, "peak_gpu_memory_mb_8": None},
        "timings": {"fit": 3.5, "sample": 0.2},
        "flags": [],
        "samples": samples,
    }


def make_results(
    entries: list[dict[str, Any]],
    *,
    suite_name: str = "demo",
    suite_hash: str = SUITE_HASH,
    protocol_hash: str | None = PROTOCOL_HASH,
    protocol: dict[str, Any] | None = None,
    schema_version: int = 2,
) -> dict[str, Any]:
    """A complete results document around ``entries``."""
    return {
        "schema_version": schema_version,
        "suite": {"name": suite_name, "hash": suite_hash, "protocol_hash": protocol_hash,
                  "protocol": copy.deepcopy(PROTOCOL if protocol is None else protocol),
                  "version": "1", "description": "test suite",
                  "reference": "tests", "seeds": SEEDS, "file": f"suites/{suite_name}.toml"},
        "dataset": {"plugin": "phantom-xray", "params": {"size": 16},
                    "class_names": ["normal", "pneumonia"], "modality": "x-ray",
                    "counts": {"train": [24, 24], "test": [200, 200]}},
        "manifest": {"python": "3.11.7", "torch": "2.14.1", "cuda": None, "gpu": None,
                     "platform": "Linux-x86_64", "git_commit": "0123456789abcdef",
                     "medsynbench": "0.1.0", "plugins": {"copy-real": "0.1.0"},
                     "started": "2026-11-22T20:00:00+00:00", "wall_seconds": 12.0,
                     "device": "cpu", "stage_seconds": {"fit": 3.5}},
        "real_only": {},
        "entries": entries,
    }


def standard_entries() -> list[dict[str, Any]]:
    """Four generators whose utility order differs from their fidelity order, the memoriser
    (a reference row) and one failure.

    With 8 seeds and ±0.5 pp jitter: stylegan2 (Δ +2.5), ldm (+1.0) and noise (−3.0) have Δ of
    one sign on every seed (exact Wilcoxon p = 2/2^8); vqvae2 (+1.25 ± 1.5) does not.
    """
    return [
        make_entry("copy-real", 0.5, generator="copy-real", reference="memoriser", fid=0.5,
                   precision=0.95, jpeg_bytes=9000.0, privacy=0.0,
                   samples="samples/copy-real.png"),
        make_entry("noise", -3.0, fid=300.0, precision=0.01, jpeg_bytes=1000.0, privacy=1.0,
                   samples="samples/noise.png"),
        make_entry("stylegan2[truncation=0.6]", 2.5, generator="stylegan2", fid=20.0,
                   precision=0.7, jpeg_bytes=6000.0, privacy=0.8,
                   samples="samples/stylegan2_truncation-0.6.png"),
        make_entry("vqvae2", 1.25, jitter_pp=1.5, fid=45.0, precision=0.6, jpeg_bytes=4000.0,
                   privacy=0.85),
        make_entry("ldm", 1.0, fid=30.0, precision=0.65, jpeg_bytes=5000.0, privacy=0.9,
                   samples="samples/ldm.png"),
        make_entry("broken-gan", status="failed"),
    ]


def write_results(directory: Path, document: dict[str, Any], mosaics: bool = True) -> Path:
    """Write ``results.json`` and a small PNG mosaic for every ``samples`` path."""
    directory.mkdir(parents=True, exist_ok=True)
    if mosaics:
        for index, entry in enumerate(document["entries"]):
            if entry.get("samples"):
                target = directory / entry["samples"]
                target.parent.mkdir(parents=True, exist_ok=True)
                pixels = np.full((24, 48, 3), 40 * index % 256, dtype=np.uint8)
                Image.fromarray(pixels).save(target)
    path = directory / "results.json"
    path.write_text(json.dumps(document, indent=2))
    return path
