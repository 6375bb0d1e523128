"""Which columns a leaderboard shows, and how their values are read and formatted.

Shared by the Markdown, CSV and HTML writers so that the three always show the same columns in
the same order: utility tasks (ranking priority), then metric columns grouped by axis
(fidelity, variety, privacy, efficiency, anything else), then the entry's efficiency record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AXIS_ORDER",
    "CORRELATED_AXES",
    "EFFICIENCY_FIELDS",
    "Column",
    "efficiency_columns",
    "format_number",
    "format_p",
    "metric_columns",
    "metric_value",
]

#: Metric axes in display order; metrics on other axes follow, alphabetically.
AXIS_ORDER: tuple[str, ...] = ("fidelity", "variety", "privacy", "efficiency")
#: Axes whose metrics are correlated with utility.
CORRELATED_AXES: tuple[str, ...] = ("fidelity", "variety", "privacy")
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
            found[key] = Column(
                str(key), "metric", axis, str(key), hib if isinstance(hib, bool) else None
            )
    return sorted(found.values(), key=lambda c: (_axis_rank(c.axis), c.key))


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
    hib = {"fit_steps": None}
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
