"""How well does each fidelity / variety / privacy metric predict utility across entries?

For every such metric and every utility task, Spearman's ρ and Kendall's τ (scipy.stats, with
two-sided p-values) are computed over the completed entries that have both values — baselines
included, since they are legitimate points of the metric–utility relation. When no coefficient
can be computed (fewer than 3 entries, or a constant column) the row says why instead.

``agreement`` orients ρ by the metric's direction: positive means "entries with a better metric
value are more useful", whatever the metric's sign convention (e.g. FID, lower is better).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from .columns import CORRELATED_AXES, metric_columns
from .ranking import is_ok, task_delta, utility_tasks

__all__ = ["MIN_ENTRIES", "correlate", "correlations"]

#: Fewer entries than this give no rank correlation.
MIN_ENTRIES = 3


def _clean(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def correlate(metric: Sequence[float], utility: Sequence[float]) -> dict[str, Any]:
    """Spearman and Kendall coefficients with p-values, or a ``reason`` when undefined."""
    n = len(metric)
    empty: dict[str, Any] = {
        "n": n, "spearman": None, "spearman_p": None, "kendall": None, "kendall_p": None,
        "reason": None,
    }
    if n < MIN_ENTRIES:
        empty["reason"] = (
            f"only {n} entr{'y has' if n == 1 else 'ies have'} both values; "
            f"rank correlation needs at least {MIN_ENTRIES}"
        )
        return empty
    if len(set(metric)) == 1:
        empty["reason"] = f"the metric is constant across the {n} entries"
        return empty
    if len(set(utility)) == 1:
        empty["reason"] = f"the utility Δ is constant across the {n} entries"
        return empty
    from scipy import stats  # imported on use: scipy.stats takes ~1 s to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho, rho_p = stats.spearmanr(metric, utility)
        tau, tau_p = stats.kendalltau(metric, utility)
    result = dict(empty)
    result.update(
        spearman=_clean(rho), spearman_p=_clean(rho_p), kendall=_clean(tau), kendall_p=_clean(tau_p)
    )
    if result["spearman"] is None:
        result["reason"] = "scipy returned no finite coefficient"
    return result


def correlations(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (fidelity/variety/privacy metric, utility task) over the completed entries."""
    ok = [entry for entry in entries if is_ok(entry)]
    rows: list[dict[str, Any]] = []
    for task in utility_tasks(ok):
        for column in metric_columns(ok, axes=CORRELATED_AXES):
            pairs = [
                (value, delta)
                for entry in ok
                if (value := column.value(entry)) is not None
                and (delta := task_delta(entry, task)) is not None
            ]
            row: dict[str, Any] = {
                "metric": column.key,
                "axis": column.axis,
                "higher_is_better": column.higher_is_better,
                "utility": f"{task}.delta_pp",
            }
            row.update(correlate([p[0] for p in pairs], [p[1] for p in pairs]))
            rho, hib = row["spearman"], column.higher_is_better
            row["agreement"] = None if rho is None or hib is None else (rho if hib else 0.0 - rho)
            rows.append(row)
    return rows
