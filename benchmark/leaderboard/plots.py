"""Matplotlib figures of a leaderboard, each written as PNG (shown on the page) and SVG.

- ``scatter``: one per fidelity / variety / privacy metric, metric value vs the primary utility Δ;
- ``heatmap``: Spearman ρ of every metric against every utility task;
- ``boxplot``: per utility task, the per-seed Δ (treated − real-only, pp) of every entry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .columns import CORRELATED_AXES
from .ranking import task_delta
from .schema import columns_of

__all__ = ["per_seed_deltas", "plot_label", "write_plots"]

_DPI = 100


def plot_label(text: object, limit: int = 32) -> str:
    """A user string made safe for matplotlib (no mathtext) and short enough for a label."""
    label = " ".join(str(text).split())
    if len(label) > limit:
        label = label[: limit - 1] + "…"
    return label.replace("\\", "\\\\").replace("$", r"\$")


def _slug(text: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "plot"
    slug, counter = base[:60], 1
    while slug in used:
        counter += 1
        slug = f"{base[:56]}-{counter}"
    used.add(slug)
    return slug


def per_seed_deltas(result: Any) -> list[float]:
    """Per-seed Δ in pp of a task result (accuracies in [0, 1] are scaled by 100)."""
    if not isinstance(result, Mapping):
        return []
    primary = result.get("primary", "accuracy")
    treated = (result.get("treated") or {}).get(primary)
    baseline = (result.get("baseline") or {}).get(primary)
    if not isinstance(treated, list) or not isinstance(baseline, list):
        return []
    if len(treated) != len(baseline) or not treated:
        return []
    values = [float(v) for v in treated + baseline if isinstance(v, int | float)]
    if len(values) != 2 * len(treated) or not all(math.isfinite(v) for v in values):
        return []
    scale = 100.0 if all(0.0 <= v <= 1.0 for v in values) else 1.0
    return [scale * (float(t) - float(b)) for t, b in zip(treated, baseline, strict=True)]


def _save(figure: Figure, directory: Path, slug: str) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(directory / f"{slug}.png", dpi=_DPI)
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: small, searchable
        figure.savefig(directory / f"{slug}.svg")
    plt.close(figure)
    return {"png": f"{directory.name}/{slug}.png", "svg": f"{directory.name}/{slug}.svg"}


def _scatter(
    document: Mapping[str, Any], ok: Sequence[Mapping[str, Any]], task: str, out: Path,
    used: set[str],
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    rho_of = {
        row["metric"]: row.get("spearman")
        for row in document.get("correlations", [])
        if row.get("utility") == f"{task}.delta_pp"
    }
    for column in columns_of(document):
        if column.axis not in CORRELATED_AXES:
            continue
        points = [
            (value, delta, entry)
            for entry in ok
            if (value := column.value(entry)) is not None
            and (delta := task_delta(entry, task)) is not None
        ]
        if not points:
            continue
        figure, axes = plt.subplots(figsize=(5.2, 3.8))
        for value, delta, entry in points:
            marker, color = ("s", "#888888") if entry.get("baseline") else ("o", "#1f5fa8")
            axes.scatter([value], [delta], marker=marker, color=color, s=36, zorder=3)
            axes.annotate(plot_label(entry.get("name", "?"), 24), (value, delta), fontsize=7,
                          xytext=(4, 3), textcoords="offset points")
        axes.axhline(0.0, color="#bbbbbb", linewidth=0.8, zorder=1)
        axes.set_xlabel(f"{plot_label(column.key, 60)} {column.arrow}".strip())
        axes.set_ylabel(f"{plot_label(task)} Δ (pp)")
        rho = rho_of.get(column.key)
        subtitle = "ρ undefined" if rho is None else f"Spearman ρ = {rho:+.2f}"
        axes.set_title(f"{plot_label(column.key, 40)} vs utility ({subtitle})", fontsize=9)
        title = f"{column.key} vs {task} Δ"
        paths = _save(figure, out, _slug(f"scatter-{column.key}", used))
        records.append({"kind": "scatter", "title": title, "metric": column.key, **paths})
    return records


def _heatmap(document: Mapping[str, Any], out: Path, used: set[str]) -> list[dict[str, Any]]:
    rows = document.get("correlations", [])
    metrics = list(dict.fromkeys(row["metric"] for row in rows))
    tasks = list(dict.fromkeys(row["utility"] for row in rows))
    if not metrics or not tasks:
        return []
    grid = [[math.nan] * len(tasks) for _ in metrics]
    for row in rows:
        if row.get("spearman") is not None:
            grid[metrics.index(row["metric"])][tasks.index(row["utility"])] = row["spearman"]
    height = 1.2 + 0.38 * len(metrics)
    figure, axes = plt.subplots(figsize=(2.8 + 1.3 * len(tasks), height))
    image = axes.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    axes.set_xticks(range(len(tasks)), [plot_label(t, 28) for t in tasks], fontsize=8)
    axes.set_yticks(range(len(metrics)), [plot_label(m, 36) for m in metrics], fontsize=8)
    for i, line in enumerate(grid):
        for j, value in enumerate(line):
            axes.text(j, i, "n/a" if math.isnan(value) else f"{value:+.2f}", ha="center",
                      va="center", fontsize=7)
    figure.colorbar(image, ax=axes, label="Spearman ρ")
    axes.set_title("Rank correlation: metric vs utility Δ", fontsize=9)
    paths = _save(figure, out, _slug("correlation-heatmap", used))
    return [{"kind": "heatmap", "title": "Spearman ρ of each metric with each utility Δ", **paths}]


def _boxplots(
    document: Mapping[str, Any], ok: Sequence[Mapping[str, Any]], out: Path, used: set[str]
) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for task in document.get("utility_tasks", []):
        series = [
            (entry, deltas)
            for entry in ok
            if (deltas := per_seed_deltas((entry.get("utility") or {}).get(task)))
        ]
        if not series:
            continue
        figure, axes = plt.subplots(figsize=(max(4.5, 0.7 * len(series) + 2), 3.8))
        axes.boxplot([d for _, d in series], showmeans=True)
        axes.set_xticks(
            range(1, len(series) + 1),
            [f"{e.get('rank_label') or 'ref'}. {plot_label(e.get('name', '?'), 20)}"
             for e, _ in series],
            rotation=30, ha="right", fontsize=7,
        )
        axes.axhline(0.0, color="#bbbbbb", linewidth=0.8)
        axes.set_ylabel("Δ per seed (pp)")
        axes.set_title(
            f"{plot_label(task)}: per-seed utility Δ (ranked, then reference rows)", fontsize=9
        )
        paths = _save(figure, out, _slug(f"seeds-{task}", used))
        records.append({"kind": "boxplot", "title": f"Per-seed {task} Δ", "task": task, **paths})
    return records


def write_plots(document: Mapping[str, Any], site: Path) -> list[dict[str, Any]]:
    """Draw every figure of ``document`` into ``site/plots``; return their records."""
    out = site / "plots"
    ok = [entry for entry in document.get("entries", []) if entry.get("status", "ok") == "ok"]
    tasks = document.get("utility_tasks", [])
    used: set[str] = set()
    records: list[dict[str, Any]] = []
    if tasks:
        records += _scatter(document, ok, tasks[0], out, used)
    records += _heatmap(document, out, used)
    records += _boxplots(document, ok, out, used)
    return records
