"""Matplotlib figures of a leaderboard, each written as PNG (shown on the page) and SVG.

- ``scatter``: one per fidelity / variety / privacy metric, metric value vs the primary utility Δ;
  points carry numbers placed so that no two labels overlap (:func:`place_labels`), with a key
  of numbers → entry names beside the axes;
- ``heatmap``: Spearman ρ of every metric against every utility task;
- ``boxplot``: per utility task, the per-seed Δ (treated − real-only, pp) of every entry.

Figures are saved with a tight bounding box, so labels outside the axes (the colour-bar label,
the scatter key) are never clipped.
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
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from .columns import CORRELATED_AXES, QUANTITIES, Column
from .ranking import is_ok, task_delta
from .schema import columns_of

__all__ = ["heatmap_figure", "per_seed_deltas", "place_labels", "plot_label", "scatter_figure",
           "write_plots"]

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
    # tight: the saved area grows to hold every label (colour-bar label, scatter key)
    figure.savefig(directory / f"{slug}.png", dpi=_DPI, bbox_inches="tight", pad_inches=0.1)
    # text stays text (small, searchable); a fixed id salt and no date: the same board gives
    # the same bytes, so a republished site changes only where a board changed
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "medsynbench"}):
        figure.savefig(directory / f"{slug}.svg", bbox_inches="tight", pad_inches=0.1,
                       metadata={"Date": None})
    plt.close(figure)
    return {"png": f"{directory.name}/{slug}.png", "svg": f"{directory.name}/{slug}.svg"}


#: Label offsets tried in turn (points from the marker), nearest first, in eight directions.
_OFFSETS: tuple[tuple[float, float], ...] = tuple(
    (radius * dx, radius * dy)
    for radius in (5.0, 11.0, 18.0, 26.0, 36.0)
    for dx, dy in ((1, 0.6), (1, -1), (-1, 0.6), (-1, -1), (0, 1.2), (0, -1.6), (1.3, 0), (-1.3, 0))
)


def _name(key: str) -> str:
    return QUANTITIES[key].label if key in QUANTITIES else key


def place_labels(figure: Figure, axes: Any, points: Sequence[tuple[float, float]],
                 labels: Sequence[str]) -> list[Annotation]:
    """Annotate each point with its label at the first offset of :data:`_OFFSETS` whose box
    overlaps no label placed before it and no marker (greedy); the last one tried otherwise."""
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    markers = []
    for x, y in points:
        px, py = axes.transData.transform((x, y))
        markers.append(Bbox.from_extents(px - 4, py - 4, px + 4, py + 4))
    placed: list[Bbox] = []
    annotations = []
    for (x, y), label in zip(points, labels, strict=True):
        annotation = None
        for dx, dy in _OFFSETS:
            if annotation is not None:
                annotation.remove()
            annotation = axes.annotate(
                label, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=8,
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy > 0 else "top" if dy < 0 else "center", color="#222222",
            )
            box = annotation.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in (*placed, *markers)):
                break
        assert annotation is not None
        placed.append(annotation.get_window_extent(renderer))
        annotations.append(annotation)
    return annotations


def scatter_figure(
    column: Column, task: str, points: Sequence[tuple[float, float, Mapping[str, Any]]],
    rho: float | None,
) -> tuple[Figure, list[Annotation]]:
    """Metric value vs Δ: numbered markers (entries at the same spot share one label) and a key
    of numbers → names beside the axes. Returns the figure and its point labels."""
    figure, axes = plt.subplots(figsize=(5.6, 3.8))
    spots: dict[tuple[float, float], list[int]] = {}
    key_lines = []
    for number, (value, delta, entry) in enumerate(points, start=1):
        reference = bool(entry.get("baseline") or entry.get("reference"))
        marker, color = ("s", "#888888") if reference else ("o", "#1f5fa8")
        axes.scatter([value], [delta], marker=marker, color=color, s=36, zorder=3)
        spots.setdefault((value, delta), []).append(number)
        kind = " (reference)" if reference else ""
        key_lines.append(f"{number}  {plot_label(entry.get('name', '?'), 26)}{kind}")
    axes.axhline(0.0, color="#bbbbbb", linewidth=0.8, zorder=1)
    axes.margins(0.12)
    name = _name(column.key)
    axes.set_xlabel(f"{plot_label(name, 60)} {column.arrow}".strip())
    axes.set_ylabel(f"{plot_label(task)} Δ (pp)")
    subtitle = "ρ undefined" if rho is None else f"Spearman ρ = {rho:+.2f}"
    axes.set_title(f"{plot_label(name, 40)} vs utility ({subtitle})", fontsize=9)
    axes.text(1.03, 1.0, "\n".join(key_lines), transform=axes.transAxes, va="top", ha="left",
              fontsize=7, family="monospace")
    figure.tight_layout()
    numbers = [",".join(map(str, group)) for group in spots.values()]
    labels = place_labels(figure, axes, list(spots), numbers)
    return figure, labels


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
        figure, _ = scatter_figure(column, task, points, rho_of.get(column.key))
        title = f"{_name(column.key)} ({column.key}) vs {task} Δ"
        paths = _save(figure, out, _slug(f"scatter-{column.key}", used))
        records.append({"kind": "scatter", "title": title, "metric": column.key, **paths})
    return records


def heatmap_figure(rows: Sequence[Mapping[str, Any]]) -> Figure | None:
    """Spearman ρ of every metric (rows) with every utility task (columns); None when empty."""
    metrics = list(dict.fromkeys(row["metric"] for row in rows))
    tasks = list(dict.fromkeys(row["utility"] for row in rows))
    if not metrics or not tasks:
        return None
    grid = [[math.nan] * len(tasks) for _ in metrics]
    for row in rows:
        if row.get("spearman") is not None:
            grid[metrics.index(row["metric"])][tasks.index(row["utility"])] = row["spearman"]
    height = 1.4 + 0.34 * len(metrics)
    figure, axes = plt.subplots(figsize=(3.6 + 1.3 * len(tasks), height))
    image = axes.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    axes.set_xticks(range(len(tasks)), [plot_label(t.split(".")[0], 28) for t in tasks],
                    fontsize=8)
    axes.set_yticks(range(len(metrics)), [plot_label(_name(m), 36) for m in metrics], fontsize=8)
    for i, line in enumerate(grid):
        for j, value in enumerate(line):
            axes.text(j, i, "n/a" if math.isnan(value) else f"{value:+.2f}", ha="center",
                      va="center", fontsize=7)
    figure.colorbar(image, ax=axes, label="Spearman ρ (metric vs Δ)")
    axes.set_title("Rank correlation: metric vs utility Δ", fontsize=9)
    return figure


def _heatmap(document: Mapping[str, Any], out: Path, used: set[str]) -> list[dict[str, Any]]:
    figure = heatmap_figure(document.get("correlations", []))
    if figure is None:
        return []
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
    ok = [entry for entry in document.get("entries", []) if is_ok(entry)]
    tasks = document.get("utility_tasks", [])
    used: set[str] = set()
    records: list[dict[str, Any]] = []
    if tasks:
        records += _scatter(document, ok, tasks[0], out, used)
    records += _heatmap(document, out, used)
    records += _boxplots(document, ok, out, used)
    return records
