"""How well does each fidelity / variety / privacy metric predict utility across entries?

For every such metric and every utility task, Spearman's ρ and Kendall's τ-b are computed over
the completed entries that have both values — baselines included, since they are legitimate
points of the metric–utility relation. When no coefficient can be computed (fewer than 3
entries, or a constant column) the row says why instead.

Honesty rules (a board has a handful of entries, so asymptotic formulas do not apply):

* **p-values are permutation p-values**, two-sided: the fraction of orderings of the utility
  values whose |ρ| (|τ|) is at least the observed one. Up to :data:`EXACT_MAX_N` entries every
  one of the n! orderings is enumerated (exact, ties handled by mid-ranks); above, a Monte Carlo
  permutation p over :data:`MC_RESAMPLES` random orderings drawn with the fixed seed
  :data:`MC_SEED`, reported as (1 + count) / (1 + resamples) so it is never 0. The
  t-approximation is not used: at n = 4 it prints p = 0 for ρ = 1, where the exact p is
  2/24 = 0.083.
* **min_p** is the smallest p any ordering of these values could give. When it is not below
  :data:`ALPHA` (n ≤ 4 without ties) the row cannot show a relation either way, and its
  ``reason`` says so in a plain sentence.
* **The interval on ρ** is a Fisher-z interval with the Bonett–Wright (2000) standard error
  √((1 + ρ²/2) / (n − 3)), the usual interval for Spearman's ρ; a bootstrap over entries is not
  used because with a handful of entries most resamples repeat points and the percentile
  interval collapses onto the observed ρ (at |ρ| = 1 every resample gives 1). Bonett and Wright
  checked its coverage from n = 10 on; with fewer entries (:data:`MIN_INTERVAL_N`), or at
  |ρ| = 1 where z is infinite, no interval is given and ``interval_note`` says why.
* p-values are per row: they are **not** corrected for the number of metrics on the board.

``agreement`` orients ρ by the metric's direction: positive means "entries with a better metric
value are more useful", whatever the metric's sign convention (e.g. FID, lower is better).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from .columns import CORRELATED_AXES, metric_columns
from .ranking import is_ok, task_delta, utility_tasks

__all__ = [
    "ALPHA",
    "EXACT_MAX_N",
    "MC_RESAMPLES",
    "MC_SEED",
    "MIN_ENTRIES",
    "MIN_INTERVAL_N",
    "correlate",
    "correlations",
    "mid_ranks",
    "permutation_test",
    "small_n_sentence",
]

#: Fewer entries than this give no rank correlation.
MIN_ENTRIES = 3
#: Up to this many entries the permutation p enumerates all n! orderings (9! = 362,880).
EXACT_MAX_N = 9
#: Random orderings of the Monte Carlo permutation p above EXACT_MAX_N entries.
MC_RESAMPLES = 20_000
#: Seed of those random orderings: the same board always prints the same p.
MC_SEED = 0
#: Fewer entries than this give no interval on ρ (Bonett–Wright checked coverage from n = 10).
MIN_INTERVAL_N = 10
#: The level a row is judged against ("can this row reach p < ALPHA at all?").
ALPHA = 0.05
_Z975 = 1.959963984540054
# Statistics equal up to float noise count as "at least as extreme" (ties in the null).
_TOLERANCE = 1e-9


def mid_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks (as scipy.stats.rankdata)."""
    array = np.asarray(values, dtype=float)
    order = np.argsort(array, kind="mergesort")
    ranks = np.empty(len(array))
    sorted_values = array[order]
    start = 0
    while start < len(array):
        stop = start
        while stop + 1 < len(array) and sorted_values[stop + 1] == sorted_values[start]:
            stop += 1
        ranks[order[start : stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


@lru_cache(maxsize=EXACT_MAX_N + 1)
def _all_orderings(n: int) -> np.ndarray:
    return np.array(list(itertools.permutations(range(n))), dtype=np.int8)


def _orderings(n: int) -> tuple[np.ndarray, bool]:
    """Every ordering of n items (exact) or MC_RESAMPLES seeded random ones."""
    if n <= EXACT_MAX_N:
        return _all_orderings(n), True
    rng = np.random.default_rng(MC_SEED)
    return np.argsort(rng.random((MC_RESAMPLES, n)), axis=1), False


def _spearman(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """ρ of rx against every row of ry (Pearson's r of the mid-ranks)."""
    x = rx - rx.mean()
    y = ry - ry.mean(axis=-1, keepdims=True)
    denominator = math.sqrt(float(x @ x)) * np.sqrt((y * y).sum(axis=-1))
    return np.asarray((y @ x) / denominator)


def _pair_signs(values: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(values.shape[-1], k=1)
    return np.asarray(np.sign(values[..., j] - values[..., i]))


def _kendall(sx: np.ndarray, y: np.ndarray) -> np.ndarray:
    """τ-b of the pair signs sx against every row of y."""
    sy = _pair_signs(y)
    denominator = math.sqrt(float(np.abs(sx).sum())) * np.sqrt(np.abs(sy).sum(axis=-1))
    return np.asarray((sy @ sx) / denominator)


def permutation_test(metric: Sequence[float], utility: Sequence[float]) -> dict[str, Any]:
    """ρ, τ-b and their two-sided permutation p-values (see the module docstring).

    Both columns must hold at least two distinct values. Returns ``spearman``,
    ``spearman_p``, ``kendall``, ``kendall_p``, ``min_p`` (the smallest Spearman p any
    ordering could reach), ``method`` ("exact" or "monte-carlo") and ``resamples``.
    """
    rx, ry = mid_ranks(metric), mid_ranks(utility)
    orderings, exact = _orderings(len(rx))
    permuted = ry[orderings]
    rho = float(_spearman(rx, ry[None, :])[0])
    sx = _pair_signs(rx)
    tau = float(_kendall(sx, ry[None, :])[0])
    null_rho = np.abs(_spearman(rx, permuted))
    null_tau = np.abs(_kendall(sx, permuted))
    count_rho = int((null_rho >= abs(rho) - _TOLERANCE).sum())
    count_tau = int((null_tau >= abs(tau) - _TOLERANCE).sum())
    count_max = int((null_rho >= null_rho.max() - _TOLERANCE).sum())
    total = len(orderings)
    if exact:
        p_rho, p_tau, min_p = count_rho / total, count_tau / total, count_max / total
    else:  # the observed ordering counts as one of the resamples: p is never 0
        p_rho, p_tau = (1 + count_rho) / (1 + total), (1 + count_tau) / (1 + total)
        untied = len(set(metric)) == len(rx) and len(set(utility)) == len(rx)
        min_p = 2 / math.factorial(len(rx)) if untied else max(count_max, 1) / total
    return {
        "spearman": rho, "spearman_p": min(1.0, p_rho), "kendall": tau,
        "kendall_p": min(1.0, p_tau), "min_p": min_p,
        "method": "exact" if exact else "monte-carlo", "resamples": total,
    }


def fisher_interval(rho: float, n: int) -> tuple[list[float] | None, str | None]:
    """95% Fisher-z interval of Spearman's ρ (Bonett–Wright SE), or None and why not."""
    if n < MIN_INTERVAL_N:
        return None, (
            f"no interval on ρ: {n} entries are too few for one (it needs {MIN_INTERVAL_N})"
        )
    if abs(rho) >= 1.0:
        return None, "no interval on ρ at |ρ| = 1 (the Fisher z of ±1 is infinite)"
    z = math.atanh(rho)
    half = _Z975 * math.sqrt((1 + rho * rho / 2) / (n - 3))
    return [math.tanh(z - half), math.tanh(z + half)], None


def small_n_sentence(n: int, min_p: float, alpha: float = ALPHA, tied: bool = False) -> str:
    """The plain sentence shown when no ordering of n entries can reach p < alpha."""
    ties = " and these ties" if tied else ""
    return (
        f"with {n} entries{ties} no ordering can reach p < {alpha:g} (the smallest possible p is "
        f"{min_p:.3g}): this row cannot show a relation either way"
    )


def correlate(metric: Sequence[float], utility: Sequence[float]) -> dict[str, Any]:
    """Spearman and Kendall coefficients with permutation p-values and an interval on ρ.

    When undefined (fewer than :data:`MIN_ENTRIES` pairs, or a constant column) the
    coefficients are None and ``reason`` says why. ``reason`` also carries the plain
    sentence of :func:`small_n_sentence` when no ordering could reach p < :data:`ALPHA`.
    """
    n = len(metric)
    result: dict[str, Any] = {
        "n": n, "spearman": None, "spearman_p": None, "spearman_ci95": None,
        "kendall": None, "kendall_p": None, "min_p": None, "method": None, "resamples": None,
        "conclusive": False, "interval_note": None, "reason": None,
    }
    if n < MIN_ENTRIES:
        result["reason"] = (
            f"only {n} entr{'y has' if n == 1 else 'ies have'} both values; "
            f"rank correlation needs at least {MIN_ENTRIES}"
        )
        return result
    if len(set(metric)) == 1:
        result["reason"] = f"the metric is constant across the {n} entries"
        return result
    if len(set(utility)) == 1:
        result["reason"] = f"the utility Δ is constant across the {n} entries"
        return result
    result.update(permutation_test(metric, utility))
    result["spearman_ci95"], result["interval_note"] = fisher_interval(result["spearman"], n)
    result["conclusive"] = result["min_p"] < ALPHA
    if not result["conclusive"]:
        tied = len(set(metric)) < n or len(set(utility)) < n
        result["reason"] = small_n_sentence(n, result["min_p"], tied=tied)
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
                "label": column.label,
                "axis": column.axis,
                "higher_is_better": column.higher_is_better,
                "utility": f"{task}.delta_pp",
            }
            row.update(correlate([p[0] for p in pairs], [p[1] for p in pairs]))
            rho, hib = row["spearman"], column.higher_is_better
            row["agreement"] = None if rho is None or hib is None else (rho if hib else 0.0 - rho)
            rows.append(row)
    return rows
