"""Results: metric units, the results.json document (see docs/results-schema.md), CSV and the
run's own leaderboard.md.

results.json keeps raw numbers only — per-seed task scores of both arms, per-test-image
correctness, raw metric values. Δ, intervals, p-values, the multiplicity correction, ranks and
board-derived quantities (variety V) are computed by the leaderboard over the entries on a
board (:mod:`medsynbench.leaderboard.verdict`); the run's leaderboard.md is such a board.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache import write_atomic_many
from .errors import OutputError
from .kinds import Metric, Task
from .stats import pack_correct

if TYPE_CHECKING:
    from .registry import PluginRegistry
    from .suite import EntrySpec, Suite

__all__ = ["SCHEMA_VERSION", "EntryState", "RunRecord", "build_results", "write_results"]

SCHEMA_VERSION = 2


@dataclass
class EntryState:
    """What a run learned about one entry."""

    spec: EntrySpec
    status: str = "ok"
    error: str | None = None
    failed_stage: str | None = None
    fit_info: dict[str, Any] = field(default_factory=dict)
    efficiency: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    task_scores: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    # per task, per seed: 0/1 per evaluation image (None when the task keeps none)
    task_correct: dict[str, list[list[int]] | None] = field(default_factory=dict)
    # "<stage>[:<metric or task>]" → warnings raised while computing it (shown on the board)
    flags: dict[str, list[str]] = field(default_factory=dict)
    mosaic: Path | None = None
    # cache stage → key of the entry's fit and sample units (where its images are)
    units: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class RunRecord:
    """Everything a finished run hands to :func:`write_results`: the suite, the per-entry
    states and the shared (real-only) outcomes. The runner fills it; nothing here reads the
    runner itself."""

    suite: Suite
    registry: PluginRegistry
    out_dir: Path
    entries: list[EntryState]
    class_names: tuple[str, ...]
    modality: str
    data_counts: dict[str, list[int]]
    data_duplicates: dict[str, Any] | None
    data_flags: list[str]  # warnings of the prepare unit
    prepare_key: str  # the prepare unit's cache key (where the prepared splits are)
    # task name → per-seed scores / per-image correctness of the real-only arm
    real_only: dict[str, list[dict[str, float]]]
    real_only_correct: dict[str, list[list[int]] | None]
    # encoder entry name → caveats attached to every metric computed in its space
    encoder_flags: dict[str, list[str]]


def _metric_block(record: RunRecord) -> dict[str, dict[str, dict[str, Any]]]:
    """entry name → "<metric>.<quantity>" → value record (board-derived ones with no value)."""
    blocks: dict[str, dict[str, dict[str, Any]]] = {e.spec.name: {} for e in record.entries}
    for spec in record.suite.metrics:
        cls = record.registry.get("metric", spec.plugin)
        assert issubclass(cls, Metric)
        for entry in record.entries:
            if not entry.ok or spec.name not in entry.metrics:
                continue
            flags = [*record.encoder_flags.get(spec.encoder or "", []),
                     *entry.flags.get(f"metrics:{spec.name}", [])]
            block = blocks[entry.spec.name]
            for quantity, value in entry.metrics[spec.name].items():
                q = cls.quantities.get(quantity)
                block[f"{spec.name}.{quantity}"] = {
                    "value": None if value is None or not np.isfinite(value) else float(value),
                    "axis": q.axis if q else "fidelity",
                    "higher_is_better": q.higher_is_better if q else None,
                    "encoder": spec.encoder,
                    "flags": flags,
                }
            for quantity, q in cls.quantities.items():
                if q.board_rule:
                    block[f"{spec.name}.{quantity}"] = {
                        "value": None,  # derived over the entries of each board
                        "board_rule": q.board_rule,
                        "source": f"{spec.name}.{q.source}",
                        "axis": q.axis,
                        "higher_is_better": q.higher_is_better,
                        "encoder": spec.encoder,
                        "flags": flags,
                    }
    return blocks


def _utility_block(record: RunRecord) -> dict[str, dict[str, dict[str, Any]]]:
    """entry name → task → raw per-seed scores of both arms (and per-image correctness)."""
    blocks: dict[str, dict[str, dict[str, Any]]] = {e.spec.name: {} for e in record.entries}
    for spec in record.suite.tasks:
        cls = record.registry.get("task", spec.plugin)
        assert issubclass(cls, Task)
        baseline = record.real_only.get(spec.name)
        if baseline is None:
            continue
        baseline_correct = record.real_only_correct.get(spec.name)
        for entry in record.entries:
            if not entry.ok or spec.name not in entry.task_scores:
                continue
            treated = entry.task_scores[spec.name]
            treated_correct = entry.task_correct.get(spec.name)
            names = sorted(set().union(*treated)) if treated else []
            both = baseline_correct is not None and treated_correct is not None
            n_eval = len(treated_correct[0]) if both and treated_correct else None
            blocks[entry.spec.name][spec.name] = {
                "primary": cls.primary,
                "seeds": record.suite.seeds,
                "budget": spec.params.get("budget"),
                "baseline": {s: [b.get(s) for b in baseline] for s in names},
                "treated": {s: [t.get(s) for t in treated] for s in names},
                "n_eval": n_eval,
                "baseline_correct": [pack_correct(c) for c in baseline_correct or []]
                if both else None,
                "treated_correct": [pack_correct(c) for c in treated_correct or []]
                if both else None,
                "flags": entry.flags.get(f"tasks:{spec.name}", []),
            }
    return blocks


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "entry"


def build_results(record: RunRecord, manifest: dict[str, Any]) -> dict[str, Any]:
    """The results document (schema version :data:`SCHEMA_VERSION`)."""
    suite = record.suite
    metrics, utility = _metric_block(record), _utility_block(record)
    entries = []
    for entry in record.entries:
        samples = None
        if entry.ok and entry.mosaic is not None and entry.mosaic.exists():
            samples = f"samples/{_safe(entry.spec.name)}.png"
            (record.out_dir / "samples").mkdir(exist_ok=True)
            shutil.copyfile(entry.mosaic, record.out_dir / samples)
        generator_cls = record.registry.get("generator", entry.spec.plugin)
        entries.append(
            {
                "name": entry.spec.name,
                "generator": entry.spec.plugin,
                "baseline": bool(getattr(generator_cls, "baseline", False)),
                "reference": getattr(generator_cls, "reference", None),
                "samples_real": bool(getattr(generator_cls, "samples_real", False)),
                "params": {
                    "train": entry.spec.train,
                    "sample": entry.spec.sample,
                    "split": entry.spec.split,
                    "count": entry.spec.count,
                },
                "status": entry.status,
                "error": entry.error,
                "failed_stage": entry.failed_stage,
                "metrics": metrics[entry.spec.name] if entry.ok else {},
                "utility": utility[entry.spec.name] if entry.ok else {},
                "efficiency": entry.efficiency,
                "fit": entry.fit_info,
                "timings": {k: round(v, 3) for k, v in entry.timings.items()},
                "flags": [  # warnings of the entry's own fit, sample and encode units
                    flag for where, found in entry.flags.items()
                    if not where.startswith(("metrics:", "tasks:")) for flag in found
                ],
                "samples": samples,
                "units": entry.units,
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "suite": {
            "name": suite.name,
            "hash": suite.hash,
            "protocol_hash": suite.protocol_hash,
            "protocol": suite.protocol() if hasattr(suite, "protocol") else None,
            "version": suite.version,
            "description": suite.description,
            "reference": suite.reference,
            "seeds": suite.seeds,
            "file": str(suite.path),
            "checks": suite.checks,
        },
        "dataset": {
            "plugin": suite.dataset.plugin,
            "params": suite.dataset.params,
            "class_names": list(record.class_names),
            "modality": record.modality,
            "counts": record.data_counts,
            "duplicates": record.data_duplicates,
            "flags": record.data_flags,  # the prepare unit's warnings
            "unit": record.prepare_key,  # cache key of the prepared splits
        },
        "manifest": manifest,
        "real_only": record.real_only,
        "entries": entries,
    }


def _csv(results: dict[str, Any]) -> str:
    """One row per entry: raw per-seed primary scores of each task and the raw metric values."""
    metric_keys = sorted({k for e in results["entries"] for k in e["metrics"]})
    task_names = sorted({k for e in results["entries"] for k in e["utility"]})
    seeds = results["suite"]["seeds"]
    header = ["entry", "generator", "reference", "status"]
    header += [f"{t}.{arm}.seed{s}" for t in task_names for arm in ("baseline", "treated")
               for s in seeds]
    header += [*metric_keys, "seconds_per_1000", "fit_seconds", "error"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for e in results["entries"]:
        row: list[Any] = [e["name"], e["generator"], e.get("reference") or "", e["status"]]
        for t in task_names:
            u = e["utility"].get(t, {})
            for arm in ("baseline", "treated"):
                values = (u.get(arm) or {}).get(u.get("primary")) or [None] * len(seeds)
                row += list(values)
        row += [e["metrics"].get(k, {}).get("value") for k in metric_keys]
        row += [
            e["efficiency"].get("seconds_per_1000"),
            e["efficiency"].get("fit_seconds"),
            e["error"] or "",
        ]
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def write_results(record: RunRecord, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write results.json, results.csv and leaderboard.md atomically; return the document.

    The three files are renamed into place only once all were written. An OS error (a full
    disk) raises OutputError naming the file and the reason; the previous files stay and a
    sample mosaic copied only in part is removed.
    """
    from .leaderboard import render_markdown

    out = record.out_dir
    try:
        results = build_results(record, manifest)
        write_atomic_many({
            out / "results.json": json.dumps(results, indent=2, default=_json_default),
            out / "results.csv": _csv(results),
            out / "leaderboard.md": render_markdown(results),
        })
    except OSError as exc:
        _remove_partial_samples(record)
        raise OutputError(
            f"cannot write {exc.filename2 or exc.filename or out}: {exc.strerror or exc}; "
            "the run's results were not written (previous ones are kept); free space there or "
            "pass another --out DIR, then re-run (every stage is cached)"
        ) from exc
    return results


def _remove_partial_samples(record: RunRecord) -> None:
    """Delete sample copies in ``out/samples`` that differ in size from their cached mosaic."""
    for entry in record.entries:
        target = record.out_dir / "samples" / f"{_safe(entry.spec.name)}.png"
        try:
            if entry.mosaic is not None and target.stat().st_size != entry.mosaic.stat().st_size:
                target.unlink()
        except OSError:
            continue


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
