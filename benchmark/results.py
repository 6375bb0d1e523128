"""Results: metric units, the results.json document (see docs/results-schema.md), CSV and a
first leaderboard.md ranked by utility."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .cache import content_key, write_atomic
from .kinds import Encoder, Metric, MetricInputs, Task

if TYPE_CHECKING:
    from .runner import EntryState, Runner
    from .suite import MetricSpec

__all__ = ["SCHEMA_VERSION", "build_results", "run_metric", "write_results"]

SCHEMA_VERSION = 1


def run_metric(runner: Runner, entry: EntryState, spec: MetricSpec) -> None:
    """Compute one metric for one entry (a cached unit) and store it on the entry."""
    cls = runner.registry.get("metric", spec.plugin)
    metric = runner.registry.create("metric", spec.plugin, spec.params)
    assert isinstance(metric, Metric) and entry.synthetic is not None
    data, split = runner.data, entry.spec.split
    if spec.encoder is None:
        real, synthetic, heldout = data[split].images, entry.synthetic.images, data.test.images
        representation: Literal["features", "codes", "images"] = "images"
        sources = [f"{runner.prepare_key}/{split}", entry.sample_key]
    else:
        reps = runner.representations
        real = reps[(spec.encoder, f"real:{split}")]
        synthetic = reps[(spec.encoder, entry.spec.name)]
        heldout = reps[(spec.encoder, "real:test")]
        encoder_cls = runner.registry.get("encoder", runner.suite.encoders[spec.encoder].plugin)
        assert issubclass(encoder_cls, Encoder)
        representation = encoder_cls.output
        sources = [runner._encoder_keys[spec.encoder], runner.prepare_key, split, entry.sample_key]
    inputs = MetricInputs(
        real=np.asarray(real),
        synthetic=np.asarray(synthetic),
        heldout=np.asarray(heldout),
        real_labels=data[split].labels,
        synthetic_labels=entry.synthetic.labels,
        class_names=data.class_names,
        representation=representation,
        encoder=spec.encoder,
    )
    key = content_key(
        stage="metrics",
        plugin=spec.plugin,
        version=cls.version,
        params=spec.params,
        sources=sources,
    )
    _, values = runner._unit(
        "metrics",
        key,
        f"{spec.name} {entry.spec.name}",
        {"metric": spec.name},
        lambda workdir: {
            k: float(v)
            for k, v in metric.compute(inputs, runner._ctx(runner.base_seed, workdir)).items()
        },
        entry,
    )
    entry.metrics[spec.name] = values


def _metric_block(runner: Runner) -> dict[str, dict[str, dict[str, Any]]]:
    """entry name → "<metric>.<quantity>" → value record, with cross-entry quantities added."""
    blocks: dict[str, dict[str, dict[str, Any]]] = {e.spec.name: {} for e in runner.entries}
    for spec in runner.suite.metrics:
        cls = runner.registry.get("metric", spec.plugin)
        assert issubclass(cls, Metric)
        values = {
            e.spec.name: e.metrics[spec.name]
            for e in runner.entries
            if e.ok and spec.name in e.metrics
        }
        extra = cls.across_entries(values) if values and hasattr(cls, "across_entries") else {}
        for entry_name, quantities in values.items():
            for quantity, value in {**quantities, **extra.get(entry_name, {})}.items():
                q = cls.quantities.get(quantity)
                blocks[entry_name][f"{spec.name}.{quantity}"] = {
                    "value": None if value is None or not np.isfinite(value) else float(value),
                    "axis": q.axis if q else "fidelity",
                    "higher_is_better": q.higher_is_better if q else None,
                    "encoder": spec.encoder,
                    "flags": runner.flags.get(spec.encoder or "", []),
                }
    return blocks


def _utility_block(runner: Runner) -> dict[str, dict[str, dict[str, Any]]]:
    from .stats import holm, paired_comparison

    blocks: dict[str, dict[str, dict[str, Any]]] = {e.spec.name: {} for e in runner.entries}
    for spec in runner.suite.tasks:
        cls = runner.registry.get("task", spec.plugin)
        assert issubclass(cls, Task)
        baseline = runner.real_only.get(spec.name)
        if baseline is None:
            continue
        names = [e.spec.name for e in runner.entries if e.ok and spec.name in e.task_scores]
        records = {}
        for entry in runner.entries:
            if entry.spec.name not in names:
                continue
            treated = entry.task_scores[spec.name]
            score_names = sorted(treated[0]) if treated else []
            comparison = paired_comparison(
                [b[cls.primary] for b in baseline],
                [t[cls.primary] for t in treated],
                seed=runner.base_seed,
            )
            records[entry.spec.name] = {
                "primary": cls.primary,
                "seeds": runner.suite.seeds,
                "baseline": {s: [b.get(s) for b in baseline] for s in score_names},
                "treated": {s: [t.get(s) for t in treated] for s in score_names},
                **comparison,
            }
        adjusted = holm([records[n].get("p_value") for n in names])
        for name, p_holm in zip(names, adjusted, strict=True):
            record = records[name]
            record["p_value_holm"] = p_holm
            record["significant"] = bool(
                p_holm is not None and p_holm < 0.05 and record["delta_pp"] > 0
            )
            blocks[name][spec.name] = record
    return blocks


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "entry"


def build_results(runner: Runner, manifest: dict[str, Any]) -> dict[str, Any]:
    """The results document (schema version :data:`SCHEMA_VERSION`)."""
    suite, data = runner.suite, runner.data
    metrics, utility = _metric_block(runner), _utility_block(runner)
    entries = []
    for entry in runner.entries:
        samples = None
        if entry.ok and entry.mosaic is not None and entry.mosaic.exists():
            samples = f"samples/{_safe(entry.spec.name)}.png"
            (runner.out_dir / "samples").mkdir(exist_ok=True)
            shutil.copyfile(entry.mosaic, runner.out_dir / samples)
        generator_cls = runner.registry.get("generator", entry.spec.plugin)
        entries.append(
            {
                "name": entry.spec.name,
                "generator": entry.spec.plugin,
                "baseline": bool(getattr(generator_cls, "baseline", False)),
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
                "samples": samples,
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "suite": {
            "name": suite.name,
            "hash": suite.hash,
            "protocol_hash": suite.protocol_hash,
            "version": suite.version,
            "description": suite.description,
            "reference": suite.reference,
            "seeds": suite.seeds,
            "file": str(suite.path),
        },
        "dataset": {
            "plugin": suite.dataset.plugin,
            "params": suite.dataset.params,
            "class_names": list(data.class_names),
            "modality": data.modality,
            "counts": runner.data_counts,
        },
        "manifest": manifest,
        "real_only": runner.real_only,
        "entries": entries,
    }


def _csv(results: dict[str, Any]) -> str:
    metric_keys = sorted({k for e in results["entries"] for k in e["metrics"]})
    task_names = sorted({k for e in results["entries"] for k in e["utility"]})
    header = ["entry", "generator", "baseline", "status"]
    header += [
        f"{t}.{f}"
        for t in task_names
        for f in ("delta_pp", "ci95_lo", "ci95_hi", "p_value", "p_value_holm")
    ]
    header += [*metric_keys, "seconds_per_1000", "fit_seconds", "error"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for e in results["entries"]:
        row: list[Any] = [e["name"], e["generator"], e["baseline"], e["status"]]
        for t in task_names:
            u = e["utility"].get(t, {})
            ci = u.get("ci95_pp") or [None, None]
            row += [u.get("delta_pp"), ci[0], ci[1], u.get("p_value"), u.get("p_value_holm")]
        row += [e["metrics"].get(k, {}).get("value") for k in metric_keys]
        row += [
            e["efficiency"].get("seconds_per_1000"),
            e["efficiency"].get("fit_seconds"),
            e["error"] or "",
        ]
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def write_results(runner: Runner, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write results.json, results.csv and leaderboard.md atomically; return the document."""
    from .leaderboard import render_markdown

    results = build_results(runner, manifest)
    out = runner.out_dir
    write_atomic(out / "results.json", json.dumps(results, indent=2, default=_json_default))
    write_atomic(out / "results.csv", _csv(results))
    write_atomic(out / "leaderboard.md", render_markdown(results))
    return results


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
