"""Which columns a leaderboard shows, what they are called, and how their values are formatted.

Shared by the Markdown, CSV and HTML writers so that the three always show the same columns in
the same order: utility tasks (ranking priority), then metric columns grouped by axis
(fidelity, variety, privacy, efficiency, anything else), then the entry's efficiency record.

Every known quantity has a human name and a one-line definition (:data:`QUANTITIES`, the same
text as the "Quantities on the board" section of docs/leaderboard.md; per-class keys such as
``marker-rate.marker_rate[normal]`` are named from their base, :func:`quantity`); unknown ones
show their key. Utility tasks are described by their *plugin* (:data:`TASKS`), found in the
suite's protocol that results.json records (a task may be renamed, e.g. ``augmentation-cropped``
running ``augmentation``), with the parameters that set it apart (:func:`describe_task`).
:data:`HEADLINE` names the few columns of the compact main table — one or two per axis — the
rest are folded into the full table. Values are shown to the precision of their column
(:func:`column_decimals`): an FID of −9e-06 beside FIDs in the hundreds is float noise and shows
as ``0.0``; the JSON and CSV keep the raw value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AXIS_ORDER",
    "AXIS_TITLES",
    "CORRELATED_AXES",
    "DOCS_SECTION",
    "EFFICIENCY_FIELDS",
    "HEADLINE",
    "QUANTITIES",
    "TASKS",
    "TASK_SCORES",
    "TASK_SETTINGS",
    "Column",
    "Quantity",
    "TaskSpec",
    "column_decimals",
    "describe_column",
    "describe_task",
    "efficiency_columns",
    "format_number",
    "format_p",
    "format_value",
    "headline_columns",
    "metric_columns",
    "metric_value",
    "quantity",
    "suite_tasks",
    "task_settings",
]

#: Metric axes in display order; metrics on other axes follow, alphabetically.
AXIS_ORDER: tuple[str, ...] = ("fidelity", "variety", "privacy", "efficiency")
#: Axes whose metrics are correlated with utility.
CORRELATED_AXES: tuple[str, ...] = ("fidelity", "variety", "privacy")
#: What each axis asks, for group headings.
AXIS_TITLES: dict[str, str] = {
    "utility": "utility — does the synthetic data help a classifier?",
    "fidelity": "fidelity — do the images look real?",
    "variety": "variety — do they cover the range of the real data?",
    "privacy": "privacy — are they not copies of training images?",
    "efficiency": "efficiency — what do they cost?",
}
#: Where the definitions are written out in the repository (named by the page and the Markdown).
DOCS_SECTION = "docs/leaderboard.md, section “Quantities on the board”"


@dataclass(frozen=True)
class Quantity:
    """A human name (short ``label`` for a column header) and a one-line ``definition``."""

    label: str
    name: str
    definition: str


#: Known metric keys (``plugin.quantity``) and efficiency fields; anything else shows its key.
QUANTITIES: dict[str, Quantity] = {
    "fid.fid": Quantity("FID", "Fréchet distance",
                        "distance between Gaussian fits of real and synthetic image features"),
    "kid.kid_mean": Quantity("KID", "kernel inception distance",
                             "mean MMD² between real and synthetic features over subsets"),
    "kid.kid_std": Quantity("KID sd", "KID spread", "standard deviation of KID over subsets"),
    "prdc.precision": Quantity("precision", "precision",
                               "share of synthetic images inside the k-NN manifold of "
                               "the real images"),
    "prdc.density": Quantity("density", "density",
                             "how many real k-NN balls hold each synthetic image, on average"),
    "prdc.recall": Quantity("recall", "recall",
                            "share of real images inside the k-NN manifold of the "
                            "synthetic images"),
    "prdc.coverage": Quantity("coverage", "coverage",
                              "share of real images with a synthetic image in their k-NN ball"),
    "knn-privacy.fidelity": Quantity("F", "kNN fidelity F",
                                     "share of synthetic images inside the real k-NN manifold "
                                     "(Xing et al.)"),
    "knn-privacy.privacy": Quantity("P", "kNN privacy P",
                                    "1 − share of synthetic images closer to a real image than "
                                    "its own nearest real neighbour (a copy)"),
    "knn-privacy.fidelity_privacy": Quantity("F^p", "privacy-adjusted fidelity F^p",
                                             "share of synthetic images that are realistic and "
                                             "not copies"),
    "mean-image-jpeg.variety": Quantity("V", "variety V",
                                        "1 − min-max normalised JPEG size of the mean synthetic "
                                        "image over the entries of this board (1 = most varied)"),
    "mean-image-jpeg.variety_class_mean": Quantity("V per class", "per-class variety V",
                                                   "V from the per-class mean images"),
    "mean-image-jpeg.jpeg_bytes": Quantity("mean-image bytes", "mean-image JPEG size",
                                           "bytes of the JPEG of the mean synthetic image "
                                           "(a sharp mean = little variety)"),
    "mean-image-jpeg.jpeg_bytes_class_mean": Quantity("class mean-image bytes",
                                                      "per-class mean-image JPEG size",
                                                      "the same, averaged over classes"),
    "mean-image-jpeg.real_jpeg_bytes": Quantity("real mean-image bytes",
                                                "real mean-image JPEG size",
                                                "the same for the real training images "
                                                "(a reference, equal for every entry)"),
    "dcr.dcr_median": Quantity("DCR", "distance to closest record",
                               "median distance of a synthetic image to its closest training "
                               "image"),
    "dcr.dcr_p05": Quantity("DCR 5%", "DCR 5th percentile", "5th percentile of that distance"),
    "dcr.heldout_dcr_median": Quantity("held-out DCR", "held-out DCR",
                                       "the same median for held-out real images"),
    "dcr.closer_to_train": Quantity("closer to train", "closer to train",
                                    "share closer to a training than to a held-out image "
                                    "(≈ 0.5 ideal)"),
    "authenticity.authenticity": Quantity("authenticity", "authenticity",
                                          "share of synthetic images judged authentic "
                                          "(not copies)"),
    "marker-rate.marker_rate": Quantity("marker rate", "marker rate",
                                        "share of synthetic images with a burned-in marker (a "
                                        "bright, character-sized, isolated mark) in the border "
                                        "band: a shortcut a classifier can learn"),
    "marker-rate.real_marker_rate": Quantity("real marker rate", "real marker rate",
                                             "the same share in the real reference set (what "
                                             "the generator saw; equal for every entry)"),
    "marker-rate.marker_rate_excess": Quantity("marker excess", "marker-rate excess",
                                               "marker rate − real marker rate: > 0 the "
                                               "generator adds markers, < 0 it drops them"),
    "fd-infinity.fd_infinity": Quantity("FD∞", "FD∞ (extrapolated FID)",
                                        "Fréchet distance extrapolated to infinitely many "
                                        "images: FID without its sample-size bias"),
    "fd-infinity.fd_infinity_slope": Quantity("FD∞ slope", "FD∞ slope",
                                              "b in FID_N = FD∞ + b/N: the finite-sample bias"),
    "alpha-precision.alpha_precision": Quantity("α-precision", "α-precision",
                                                "1 − area between the α-precision curve and "
                                                "the diagonal (Alaa et al.)"),
    "alpha-precision.beta_recall": Quantity("β-recall", "β-recall",
                                            "1 − area between the β-recall curve and the "
                                            "diagonal (Alaa et al.)"),
    "vendi.vendi": Quantity("Vendi", "Vendi score",
                            "effective number of distinct synthetic images (exp of the entropy "
                            "of the similarity matrix's eigenvalues)"),
    "vendi.real_vendi": Quantity("real Vendi", "real Vendi score",
                                 "the same for the real reference set (equal for every entry)"),
    "data-copying.ct": Quantity("C_T", "data-copying C_T",
                                "Meehan et al.'s z-score: ≪ 0 the entry copies its training "
                                "images, ≈ 0 ideal, ≫ 0 it underfits"),
    "frd.frd": Quantity("FRD", "Fréchet radiomics distance",
                        "Fréchet distance of standardised radiomics features (first-order, "
                        "GLCM, GLRLM, GLSZM; no learned weights)"),
    "reader-study.fir": Quantity("human FIR", "human fake-identification rate",
                                 "share of the entry's synthetic images that readers called fake "
                                 "in a reader study (lower = more realistic; shown, never "
                                 "ranked; docs/reader-study.md)"),
    "reader-study.threshold_ms": Quantity("human threshold ms", "HYPE-time threshold",
                                          "exposure (ms) at which readers' 3-down/1-up "
                                          "staircase settled on the entry's images (higher = "
                                          "harder to tell from real)"),
    "fit_seconds": Quantity("fit s", "fit time", "seconds to fit the generator"),
    "fit_steps": Quantity("fit steps", "fit steps", "optimisation steps of the fit"),
    "sample_seconds": Quantity("sample s", "sampling time", "seconds to sample its images"),
    "seconds_per_1000": Quantity("s / 1000 img", "sampling cost",
                                 "seconds to sample 1,000 images"),
    "peak_gpu_memory_mb_8": Quantity("GPU MB (8 img)", "peak GPU memory",
                                     "peak GPU memory sampling 8 images, MB"),
}
#: Columns of the compact main table, in order; the others are folded into the full table.
HEADLINE: tuple[str, ...] = (
    "fid.fid", "prdc.precision", "knn-privacy.fidelity", "reader-study.fir", "prdc.recall",
    "mean-image-jpeg.variety", "knn-privacy.privacy", "authenticity.authenticity",
    "seconds_per_1000",
)
#: What Δ of each known utility task measures ({primary} is the task's primary score).
TASKS: dict[str, str] = {
    "augmentation": "{primary} of a classifier trained on real + synthetic images of the entry "
                    "minus the same classifier trained on real images only",
    "feature-extraction": "{primary} of a classifier whose features were learned with the "
                          "synthetic images of the entry minus one learned on real images only",
    "cross-task-svm": "{primary} of an SVM on features of another dataset from a network "
                      "trained with the synthetic images of the entry minus one trained on real "
                      "images only",
    "bias-probe": "{primary} (test images with a misleading marker) of a classifier trained with "
                  "the synthetic images of the entry minus one trained on real images only",
    "bias-probe-masked": "{primary} (the evaluation images with their real markers taken away) "
                         "of a classifier trained with the synthetic images of the entry minus "
                         "one trained on real images only",
}
#: Per-seed task scores worth a name (``plugin.score``), e.g. in the utility block of results.json.
TASK_SCORES: dict[str, Quantity] = {
    "bias-probe.accuracy_swapped": Quantity(
        "accuracy swapped", "accuracy, markers swapped",
        "accuracy when every marker sits where another class's would"),
    "bias-probe.marker_gap": Quantity(
        "marker gap", "marker reliance",
        "accuracy without markers − accuracy with swapped markers (0 = no reliance)"),
    "bias-probe-masked.accuracy_masked": Quantity(
        "accuracy masked", "accuracy, markers taken away",
        "accuracy on the evaluation images with the markers taken away (probe = band: the "
        "border band flattened, an upper bound on reliance; marks: the detected marks erased, a "
        "lower bound)"),
    "bias-probe-masked.marker_gap": Quantity(
        "marker gap", "marker reliance",
        "accuracy as is − accuracy with the markers taken away (> 0: the classifier used what "
        "was taken away; 0 = no reliance)"),
}
#: Task parameters that change what a task measures, with what they do: shown beside the task's
#: description whenever set (``crop_border`` is left out of a task's parameters at its default 0).
TASK_SETTINGS: dict[str, str] = {
    "crop_border": "that fraction cut off every border of every image, resized back",
    "probe": "how the markers are taken away",
    "probe_border": "border band probed, fraction of the side",
}

#: Known fields of an entry's ``efficiency`` record with their display labels, in display order.
EFFICIENCY_FIELDS: dict[str, str] = {
    "fit_seconds": "fit s",
    "fit_steps": "fit steps",
    "sample_seconds": "sample s",
    "seconds_per_1000": "s / 1000 img",
    "peak_gpu_memory_mb_8": "GPU MB (8 img)",
}


@dataclass(frozen=True)
class Column:
    """One value column: where its value comes from and how to label it.

    ``source`` is ``"metric"`` (``entry["metrics"][key]["value"]``) or ``"efficiency"``
    (``entry["efficiency"][key]``). ``higher_is_better`` is None when unknown.
    """

    key: str
    source: str
    axis: str
    label: str
    higher_is_better: bool | None = None

    @property
    def arrow(self) -> str:
        """``↑`` / ``↓`` when the better direction is known, else the empty string."""
        if self.higher_is_better is None:
            return ""
        return "↑" if self.higher_is_better else "↓"

    @property
    def direction(self) -> str:
        """``"Higher is better."`` / ``"Lower is better."``, or ``""`` when unknown."""
        if self.higher_is_better is None:
            return ""
        return "Higher is better." if self.higher_is_better else "Lower is better."

    def value(self, entry: Mapping[str, Any]) -> float | None:
        """The entry's finite numeric value for this column, or None."""
        if self.source == "metric":
            return metric_value(entry, self.key)
        record = entry.get("efficiency") or {}
        return _as_float(record.get(self.key)) if isinstance(record, Mapping) else None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def metric_value(entry: Mapping[str, Any], key: str) -> float | None:
    """``entry["metrics"][key]["value"]`` as a finite float, or None."""
    metrics = entry.get("metrics") or {}
    record = metrics.get(key) if isinstance(metrics, Mapping) else None
    if not isinstance(record, Mapping):
        return None
    return _as_float(record.get("value"))


def _axis_rank(axis: str) -> tuple[int, str]:
    return (AXIS_ORDER.index(axis), "") if axis in AXIS_ORDER else (len(AXIS_ORDER), axis)


def metric_columns(
    entries: Iterable[Mapping[str, Any]], axes: Iterable[str] | None = None
) -> list[Column]:
    """Metric columns present in any entry, grouped by axis order then sorted by key.

    ``axes`` restricts the result to metrics on those axes. The first entry that declares a
    metric decides its axis and direction.
    """
    wanted = set(axes) if axes is not None else None
    found: dict[str, Column] = {}
    for entry in entries:
        metrics = entry.get("metrics") or {}
        if not isinstance(metrics, Mapping):
            continue
        for key, record in metrics.items():
            if key in found or not isinstance(record, Mapping):
                continue
            axis = str(record.get("axis", "other"))
            if axis == "utility" or (wanted is not None and axis not in wanted):
                continue
            hib = record.get("higher_is_better")
            known = quantity(str(key))
            label = known.label if known is not None else str(key)
            direction = hib if isinstance(hib, bool) else None
            found[key] = Column(str(key), "metric", axis, label, direction)
    return sorted(
        found.values(), key=lambda c: (_axis_rank(c.axis), _headline_rank(c.key), c.key)
    )


def _headline_rank(key: str) -> int:
    return HEADLINE.index(key) if key in HEADLINE else len(HEADLINE)


def headline_columns(columns: Sequence[Column]) -> list[Column]:
    """The columns of the compact main table: those in :data:`HEADLINE`, else the first of each
    axis, so every axis present keeps at least one column."""
    chosen = [c for c in columns if c.key in HEADLINE]
    axes = {c.axis for c in chosen}
    for column in columns:
        if column.axis not in axes:
            chosen.append(column)
            axes.add(column.axis)
    return [c for c in columns if c in chosen]


def describe_column(column: Column) -> tuple[str, str]:
    """(human name, one-line definition) of a column; the key when it is not a known quantity."""
    known = quantity(column.key)
    if known is None:
        return column.label, f"{column.axis} quantity {column.key}"
    return known.name, known.definition


_PER_CLASS = re.compile(r"^(?P<base>.+)\[(?P<cls>[^\[\]]+)\]$")


def quantity(key: str) -> Quantity | None:
    """The known quantity ``key`` (:data:`QUANTITIES`), or for a per-class key ``BASE[CLASS]``
    (``marker-rate.marker_rate[normal]``) its base's, restricted to that class; else None."""
    if key in QUANTITIES:
        return QUANTITIES[key]
    match = _PER_CLASS.match(key)
    base = QUANTITIES.get(match["base"]) if match else None
    if match is None or base is None:
        return None
    cls = match["cls"]
    return Quantity(f"{base.label} {cls}", f"{base.name}, class {cls}",
                    f"{base.definition}; among the images of class {cls}")


@dataclass(frozen=True)
class TaskSpec:
    """A utility task of a suite as results.json records it: board name, plugin, parameters."""

    name: str
    plugin: str
    params: Mapping[str, Any]


def suite_tasks(suite: Mapping[str, Any] | None) -> dict[str, TaskSpec]:
    """Task name → :class:`TaskSpec` from a results (or leaderboard) document's ``suite``
    block: its ``protocol`` lists every task as ``[name, plugin, version, params]``. Empty when
    the protocol is not recorded (older results)."""
    protocol = suite.get("protocol") if isinstance(suite, Mapping) else None
    rows = protocol.get("tasks") if isinstance(protocol, Mapping) else None
    found: dict[str, TaskSpec] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, list) and len(row) >= 2 and all(isinstance(v, str) for v in row[:2]):
            params = row[3] if len(row) > 3 and isinstance(row[3], Mapping) else {}
            found[row[0]] = TaskSpec(row[0], row[1], params)
    return found


def task_settings(task: str, tasks: Mapping[str, TaskSpec]) -> list[str]:
    """The parameters that set ``task`` apart, as ``"key value"``: those of
    :data:`TASK_SETTINGS` it has (``crop_border`` only when not 0), and those whose value
    differs from another task of the same plugin on the board (absent: the other's default)."""
    spec = tasks.get(task)
    if spec is None:
        return []
    keys = [k for k in TASK_SETTINGS if k in spec.params
            and not (k == "crop_border" and not spec.params[k])]
    for other in tasks.values():
        if other.name != task and other.plugin == spec.plugin:
            keys += [k for k in sorted(set(spec.params) | set(other.params))
                     if k in spec.params and spec.params.get(k) != other.params.get(k)]
    return [f"{k} {_setting_text(spec.params[k])}" for k in dict.fromkeys(keys)]


def _setting_text(value: Any) -> str:
    return format_number(float(value)) if isinstance(value, float) else str(value)


def describe_task(task: str, primary: str, suite: Mapping[str, Any] | None = None) -> str:
    """What Δ of the task named ``task`` measures (its primary score ``primary``), from its
    plugin's text in :data:`TASKS` — the plugin found in ``suite``'s protocol, else the name
    itself — followed, for a renamed task or one with :func:`task_settings`, by the plugin and
    those settings, e.g. ``… (plugin augmentation, crop_border 0.17: that fraction cut off
    every border of every image, resized back)``."""
    tasks = suite_tasks(suite)
    spec = tasks.get(task)
    plugin = spec.plugin if spec is not None else task
    what = TASKS.get(plugin, "{primary} with the synthetic images of the entry minus real only")
    text = what.format(primary=primary)
    settings = task_settings(task, tasks)
    if plugin == task and not settings:
        return text
    explained = [f"{s}: {TASK_SETTINGS[s.split(' ')[0]]}" if s.split(" ")[0] in TASK_SETTINGS
                 else s for s in settings]
    return f"{text} (plugin {plugin}{''.join(', ' + s for s in explained)})"


def efficiency_columns(entries: Iterable[Mapping[str, Any]]) -> list[Column]:
    """Numeric fields of the entries' ``efficiency`` records (known ones first), lower is better."""
    present: set[str] = set()
    for entry in entries:
        record = entry.get("efficiency") or {}
        if isinstance(record, Mapping):
            present.update(k for k, v in record.items() if _as_float(v) is not None)
    ordered = [k for k in EFFICIENCY_FIELDS if k in present] + sorted(
        present.difference(EFFICIENCY_FIELDS)
    )
    hib: dict[str, bool | None] = {"fit_steps": None}
    return [
        Column(k, "efficiency", "efficiency", EFFICIENCY_FIELDS.get(k, k), hib.get(k, False))
        for k in ordered
    ]


def format_number(value: float | None, digits: int = 4) -> str:
    """A compact representation (``digits`` significant digits), ``—`` for missing values."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    if abs(value) >= 10 ** digits or abs(value) < 10 ** -(digits - 1):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def format_p(value: float | None) -> str:
    """A p-value to three significant digits, ``—`` when missing."""
    if value is None:
        return "—"
    return f"{value:.3g}" if value >= 1e-4 else f"{value:.1e}"


def column_decimals(column: Column, entries: Iterable[Mapping[str, Any]], digits: int = 4) -> int:
    """Decimals that show the column's largest magnitude to ``digits`` significant digits.

    Every value of the column is then shown with that many decimals, so values many orders
    below the column's scale (float noise such as an FID of −1.4e-13) read as 0.
    """
    values = [abs(v) for entry in entries if (v := column.value(entry)) is not None]
    largest = max(values, default=0.0)
    if largest == 0:
        return 1
    return max(0, min(8, digits - 1 - math.floor(math.log10(largest))))


def format_value(value: float | None, decimals: int) -> str:
    """``value`` with ``decimals`` decimals (no ``-0.0``), ``—`` for missing values."""
    if value is None:
        return "—"
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text
