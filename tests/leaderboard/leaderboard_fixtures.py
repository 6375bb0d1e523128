"""Builders of results documents (docs/results-schema.md, version 1) for the leaderboard tests.

The names are unique across tests/ so this module can be imported from any leaderboard test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SUITE_HASH = "a" * 64
SEEDS = [0, 1, 2, 3, 4, 5]


def utility_result(
    delta_pp: float | None,
    significant: bool = False,
    seeds: list[int] | None = None,
    base_accuracy: float = 0.80,
    spread: float = 0.004,
) -> dict[str, Any]:
    """A task result whose per-seed arms average to ``delta_pp`` percentage points."""
    seeds = list(SEEDS if seeds is None else seeds)
    offsets = np.linspace(-spread, spread, len(seeds))
    baseline = [round(base_accuracy + float(o), 6) for o in offsets]
    if delta_pp is None:
        return {"primary": "accuracy", "seeds": seeds, "baseline": {"accuracy": baseline},
                "treated": {}, "delta_pp": None, "ci95_pp": None, "p_value": None,
                "p_value_holm": None, "significant": False, "note": "task produced no scores"}
    jitter = np.linspace(spread, -spread, len(seeds)) / 2
    pairs = zip(baseline, jitter, strict=True)
    treated = [round(b + delta_pp / 100 + float(j), 6) for b, j in pairs]
    return {
        "primary": "accuracy",
        "seeds": seeds,
        "baseline": {"accuracy": baseline, "balanced_accuracy": baseline},
        "treated": {"accuracy": treated, "balanced_accuracy": treated},
        "delta_pp": delta_pp,
        "delta_rel_pct": delta_pp / base_accuracy,
        "ci95_pp": [delta_pp - 0.5, delta_pp + 0.5],
        "p_value": 0.03125 if significant else 0.3,
        "p_value_holm": 0.03125 if significant else 0.6,
        "significant": significant,
        "note": "",
    }


def metric(value: float, axis: str, higher_is_better: bool) -> dict[str, Any]:
    """One metric record."""
    return {"value": value, "axis": axis, "higher_is_better": higher_is_better,
            "encoder": "efficientnet-lite0", "flags": []}


def make_entry(
    name: str,
    delta_pp: float | None = 1.0,
    significant: bool = False,
    *,
    generator: str | None = None,
    baseline: bool = False,
    fid: float | None = 10.0,
    precision: float | None = 0.5,
    variety: float | None = 0.5,
    privacy: float | None = 0.9,
    feature_extraction: float | None = None,
    status: str = "ok",
    samples: str | None = None,
) -> dict[str, Any]:
    """An entry in results-schema version 1; ``status="failed"`` gives a failed entry."""
    metrics: dict[str, Any] = {}
    if fid is not None:
        metrics["fid.fid"] = metric(fid, "fidelity", False)
    if precision is not None:
        metrics["prdc.precision"] = metric(precision, "fidelity", True)
    if variety is not None:
        metrics["mean-image-jpeg.variety"] = metric(variety, "variety", True)
    if privacy is not None:
        metrics["knn-privacy.P"] = metric(privacy, "privacy", True)
    utility: dict[str, Any] = {}
    if delta_pp is not None:
        utility["augmentation"] = utility_result(delta_pp, significant)
    if feature_extraction is not None:
        utility["feature-extraction"] = utility_result(feature_extraction, False)
    failed = status != "ok"
    return {
        "name": name,
        "generator": generator or name.split("[")[0],
        "baseline": baseline,
        "params": {"train": {"steps": 10}, "sample": {}},
        "status": status,
        "error": "CUDA out of memory while sampling" if failed else None,
        "failed_stage": "sample" if failed else None,
        "metrics": {} if failed else metrics,
        "utility": {} if failed else utility,
        "efficiency": {"fit_seconds": 3.5, "fit_steps": 10, "sample_seconds": 0.2,
                       "seconds_per_1000": 1.9, "peak_gpu_memory_mb_8": None},
        "timings": {"fit": 3.5, "sample": 0.2},
        "samples": samples,
    }


def make_results(
    entries: list[dict[str, Any]],
    *,
    suite_name: str = "demo",
    suite_hash: str = SUITE_HASH,
    schema_version: int = 1,
) -> dict[str, Any]:
    """A complete results document around ``entries``."""
    return {
        "schema_version": schema_version,
        "suite": {"name": suite_name, "hash": suite_hash, "version": "1",
                  "description": "test suite",
                  "reference": "tests", "seeds": SEEDS, "file": f"suites/{suite_name}.toml"},
        "dataset": {"plugin": "phantom-xray", "params": {"size": 16},
                    "class_names": ["normal", "pneumonia"], "modality": "x-ray",
                    "counts": {"train": [24, 24], "test": [12, 12]}},
        "manifest": {"python": "3.11.7", "torch": "2.14.1", "cuda": None, "gpu": None,
                     "platform": "Linux-x86_64", "git_commit": "0123456789abcdef",
                     "medsynbench": "0.1.0", "plugins": {"copy-real": "0.1.0"},
                     "started": "2026-11-22T20:00:00+00:00", "wall_seconds": 12.0,
                     "device": "cpu", "stage_seconds": {"fit": 3.5}},
        "entries": entries,
    }


def standard_entries() -> list[dict[str, Any]]:
    """Five entries whose utility order differs from their fidelity order, plus one failure."""
    return [
        make_entry("copy-real", 0.4, generator="copy-real", baseline=True, fid=0.5,
                   precision=0.95, variety=0.2, privacy=0.0, samples="samples/copy-real.png"),
        make_entry("noise", -3.0, fid=300.0, precision=0.01, variety=0.9, privacy=1.0,
                   samples="samples/noise.png"),
        make_entry("stylegan2[truncation=0.6]", 2.5, True, generator="stylegan2", fid=20.0,
                   precision=0.7, variety=0.4, privacy=0.8,
                   samples="samples/stylegan2_truncation-0.6.png"),
        make_entry("vqvae2", 1.2, False, fid=45.0, precision=0.6, variety=0.6, privacy=0.85),
        make_entry("ldm", 1.0, True, fid=30.0, precision=0.65, variety=0.5, privacy=0.9,
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
