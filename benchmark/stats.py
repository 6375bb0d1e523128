"""Paired statistics for downstream utility: Δ, bootstrap CI, exact Wilcoxon, Holm.

A utility task runs every seed twice — once on real data (baseline arm) and once with an
entry's synthetic data (treated arm), with the same initialisation and data order — so the
per-seed differences Δ_s = treated_s − baseline_s are paired. :func:`paired_comparison`
summarises them; :func:`holm` adjusts the p-values of a suite's entries for multiplicity.

Honesty rules built in:

* The p-value is the **exact** two-sided Wilcoxon signed-rank test. With n non-zero
  differences the smallest p it can ever give is 2/2^n (all Δ of one sign): n = 5 gives
  0.0625, so at least 6 seeds are needed to reach p < 0.05. The ``note`` says so plainly.
* Zero differences carry no sign and are dropped (Wilcoxon's original ``zero_method``); the
  note counts them. Tied |Δ| get mid-ranks and the null distribution is enumerated over all
  2^n sign flips of those mid-ranks (scipy's ``method="exact"`` table assumes untied ranks
  and would be wrong), which is still an exact test.
* No p-value (``None``) for fewer than 2 seeds or all-zero Δ, with the reason in ``note``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["holm", "min_attainable_p", "paired_comparison"]

# Exact enumeration of 2^n sign flips stays cheap up to here (~1M permutations).
_MAX_EXACT_TIED = 20
# Differences are compared after rounding to this many decimals (scores are fractions).
_DECIMALS = 12


def min_attainable_p(n: int) -> float:
    """Smallest two-sided exact Wilcoxon p-value with ``n`` non-zero paired differences."""
    if n < 1:
        return 1.0
    return min(1.0, 2.0 / 2.0**n)


def _seeds_needed(alpha: float) -> int:
    """Smallest n whose exact two-sided Wilcoxon test can reach p < alpha."""
    n = 1
    while min_attainable_p(n) >= alpha:
        n += 1
    return n


def _wilcoxon_p(nonzero: np.ndarray) -> tuple[float, str]:
    """Two-sided Wilcoxon signed-rank p-value of non-zero differences, and the method used."""
    from scipy import stats as sps  # imported on use: scipy.stats takes ~1 s to import

    n = int(nonzero.size)
    abs_d = np.abs(nonzero)
    tied = np.unique(abs_d).size < n
    if not tied:
        res = sps.wilcoxon(nonzero, method="exact")
        return float(res.pvalue), "exact"
    if n <= _MAX_EXACT_TIED:
        method = sps.PermutationMethod(n_resamples=2**n)  # ≥ all sign flips → exhaustive
        res = sps.wilcoxon(nonzero, method=method)
        return float(res.pvalue), "exact (mid-ranks, all sign flips)"
    res = sps.wilcoxon(nonzero, method="approx")
    return float(res.pvalue), "normal approximation (tied |Δ|, n > 20)"


def _bootstrap_ci(deltas: np.ndarray, n_boot: int, seed: int, alpha: float) -> list[float]:
    """Percentile bootstrap CI of the mean of ``deltas`` (resampling seeds with replacement)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, deltas.size, size=(n_boot, deltas.size))
    means = deltas[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return [float(lo), float(hi)]


def paired_comparison(
    baseline: Sequence[float],
    treated: Sequence[float],
    *,
    alpha: float = 0.05,
    n_boot: int = 10000,
    seed: int = 0,
    scale: float = 100.0,
) -> dict[str, Any]:
    """Compare per-seed scores of two arms run with the same seeds.

    ``baseline[i]`` and ``treated[i]`` must come from the same seed. Scores are assumed to lie
    in [0, 1]; ``scale`` (default 100) converts their difference to percentage points.

    Returns a dict with:

    * ``n`` — number of paired seeds;
    * ``delta_pp`` — mean Δ (treated − baseline) × ``scale``;
    * ``delta_rel_pct`` — 100 × mean Δ / mean baseline (None when the baseline mean is 0);
    * ``ci95_pp`` — [lo, hi] percentile bootstrap CI of the mean Δ × ``scale`` at level
      1 − ``alpha`` (None for n < 2);
    * ``p_value`` — exact two-sided paired Wilcoxon signed-rank p (None when n < 2 or all Δ = 0);
    * ``min_attainable_p`` — the smallest p these seeds could give; ``n_zero`` — Δ = 0 dropped;
    * ``test`` — how the p-value was computed; ``note`` — plain-language caveats (may be "").
    """
    base = np.asarray(baseline, dtype=np.float64)
    treat = np.asarray(treated, dtype=np.float64)
    if base.ndim != 1 or base.shape != treat.shape:
        raise ValueError(
            f"baseline and treated must be 1-d and of equal length (one score per seed), "
            f"got shapes {base.shape} and {treat.shape}"
        )
    if not (np.all(np.isfinite(base)) and np.all(np.isfinite(treat))):
        raise ValueError("scores must be finite; a NaN score means a failed run — report it")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n = int(base.size)
    deltas = treat - base
    # For the test only, round away float noise so equal accuracy gaps (k/N − j/N) tie and
    # cancel exactly; Δ and its CI use the unrounded differences.
    ranked = np.round(deltas, _DECIMALS)
    notes: list[str] = []
    out: dict[str, Any] = {
        "n": n,
        "delta_pp": None,
        "delta_rel_pct": None,
        "ci95_pp": None,
        "p_value": None,
        "min_attainable_p": None,
        "n_zero": 0,
        "test": "wilcoxon signed-rank, two-sided",
        "note": "",
    }
    if n == 0:
        out["note"] = "no seeds: nothing to compare"
        return out

    mean_delta = float(deltas.mean())
    mean_base = float(base.mean())
    out["delta_pp"] = mean_delta * scale
    out["delta_rel_pct"] = 100.0 * mean_delta / mean_base if mean_base != 0 else None
    if mean_base == 0:
        notes.append("relative Δ undefined: the baseline mean is 0")
    if n < 2:
        out["note"] = (
            f"only {n} seed: no p-value and no confidence interval (a paired test needs at "
            f"least 2 seeds, and the exact Wilcoxon test needs ≥ {_seeds_needed(alpha)} to "
            f"reach p < {alpha:g})"
        )
        out["min_attainable_p"] = 1.0
        return out

    out["ci95_pp"] = [v * scale for v in _bootstrap_ci(deltas, n_boot, seed, alpha)]
    nonzero = ranked[ranked != 0]
    n_zero = n - int(nonzero.size)
    out["n_zero"] = n_zero
    out["min_attainable_p"] = min_attainable_p(int(nonzero.size))
    if n_zero:
        notes.append(f"{n_zero} of {n} seeds had Δ = 0 and were dropped from the Wilcoxon test")
    if nonzero.size == 0:
        notes.append("all Δ = 0: no p-value (the arms gave identical scores on every seed)")
        out["note"] = "; ".join(notes)
        return out

    p, method = _wilcoxon_p(nonzero)
    out["p_value"] = p
    out["test"] = f"wilcoxon signed-rank, two-sided, {method}"
    if out["min_attainable_p"] >= alpha:
        needed = _seeds_needed(alpha)
        remedy = (
            f"run at least {needed} seeds"
            if n < needed
            else "the Δ = 0 seeds leave too few: add seeds, or evaluate on more images so that "
            "scores tie less often"
        )
        notes.append(
            f"with {nonzero.size} non-zero paired differences the exact Wilcoxon test cannot "
            f"reach p < {alpha:g} (smallest attainable p = {out['min_attainable_p']:.4g}); "
            f"{remedy}"
        )
    out["note"] = "; ".join(notes)
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values, in the input order; ``None`` passes through.

    With m non-None p-values sorted ascending p_(1) ≤ … ≤ p_(m), the adjusted value is
    p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) · p_(j)). Rejecting where p̃ < α controls the
    family-wise error rate at α.
    """
    present = [(i, float(p)) for i, p in enumerate(p_values) if p is not None]
    for i, p in present:
        if math.isnan(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p_values[{i}] = {p} is not a probability")
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (i, p) in enumerate(sorted(present, key=lambda item: item[1])):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
