"""Paired statistics for downstream utility: Δ, t-interval, exact Wilcoxon, Holm, rank intervals.

A utility task runs every seed twice — once on real data (baseline arm) and once with an
entry's synthetic data (treated arm), with the same initialisation, data order and number of
optimisation steps — so the per-seed differences Δ_s = treated_s − baseline_s are paired.
:func:`paired_comparison` summarises them; :func:`holm` adjusts the p-values of one family of
comparisons; :func:`rank_intervals` gives every entry a 95% interval on its rank. These are
computed where the comparison is made — when a leaderboard is built — over exactly the entries
on that board (:mod:`medsynbench.leaderboard.verdict`), never frozen inside one run.

Honesty rules built in:

* The p-value is the **exact** two-sided Wilcoxon signed-rank test. With n non-zero
  differences the smallest p it can ever give is 2/2^n (all Δ of one sign), and Holm over m
  comparisons multiplies the smallest p by m, so a family of m entries needs 2^(n−1) > m/α:
  :func:`seeds_needed` (α = 0.05: m = 1 → 6 seeds, 2–3 → 7, 4–6 → 8, 7–12 → 9, 13–25 → 10).
  Suites that cannot reach α are refused before any work (``--allow-underpowered`` to insist).
* Zero differences carry no sign and are dropped (Wilcoxon's original ``zero_method``); the
  note counts them. Tied |Δ| get mid-ranks and the null distribution is enumerated over all
  2^n sign flips of those mid-ranks (scipy's ``method="exact"`` table assumes untied ranks
  and would be wrong), which is still an exact test.
* Confidence intervals of the mean Δ are Student-t intervals over seeds. A percentile
  bootstrap over 6–10 points is too narrow (it ignores that the spread is itself estimated:
  ~30% narrower than the t-interval at n = 6), so it is not used for intervals.
* Rank intervals resample seeds *and* test images (when per-image correctness is kept), the
  two sources of noise in a utility Δ; entries whose rank intervals overlap are ties.
* No p-value (``None``) for fewer than 2 seeds or all-zero Δ, with the reason in ``note``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "holm",
    "min_adjusted_p",
    "min_attainable_p",
    "pack_correct",
    "paired_comparison",
    "rank_intervals",
    "seeds_needed",
    "t_interval",
    "unpack_correct",
]

# Exact enumeration of 2^n sign flips stays cheap up to here (~1M permutations).
_MAX_EXACT_TIED = 20
# Differences are compared after rounding to this many decimals (scores are fractions).
_DECIMALS = 12


def min_attainable_p(n: int) -> float:
    """Smallest two-sided exact Wilcoxon p-value with ``n`` non-zero paired differences."""
    if n < 1:
        return 1.0
    return min(1.0, 2.0 / 2.0**n)


def min_adjusted_p(n: int, m: int) -> float:
    """Smallest Holm-adjusted p one of ``m`` comparisons can get with ``n`` non-zero Δ each.

    Holm's smallest adjusted p is m × the smallest raw p, i.e. m · 2/2^n (capped at 1).
    """
    return min(1.0, max(m, 1) * min_attainable_p(n))


def seeds_needed(m: int = 1, alpha: float = 0.05) -> int:
    """Fewest seeds with which a family of ``m`` exact Wilcoxon tests can reach p < alpha."""
    n = 1
    while min_adjusted_p(n, m) >= alpha:
        n += 1
    return n


def t_interval(deltas: Sequence[float] | np.ndarray, level: float = 0.95) -> list[float] | None:
    """Two-sided Student-t confidence interval of the mean of ``deltas`` (None for n < 2)."""
    from scipy import stats as sps  # imported on use: scipy.stats takes ~1 s to import

    values = np.asarray(deltas, dtype=np.float64)
    n = int(values.size)
    if n < 2:
        return None
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    mean = float(values.mean())
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)
    return [mean - half, mean + half]


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


def paired_comparison(
    baseline: Sequence[float],
    treated: Sequence[float],
    *,
    alpha: float = 0.05,
    scale: float = 100.0,
    family_size: int = 1,
) -> dict[str, Any]:
    """Compare per-seed scores of two arms run with the same seeds.

    ``baseline[i]`` and ``treated[i]`` must come from the same seed. Scores are assumed to lie
    in [0, 1]; ``scale`` (default 100) converts their difference to percentage points.

    Returns a dict with:

    * ``n`` — number of paired seeds;
    * ``delta_pp`` — mean Δ (treated − baseline) × ``scale``;
    * ``delta_rel_pct`` — 100 × mean Δ / mean baseline (None when the baseline mean is 0);
    * ``ci95_pp`` — [lo, hi] Student-t CI of the mean Δ × ``scale`` at level 1 − ``alpha``
      (None for n < 2); ``ci_simultaneous_pp`` — the same at level 1 − ``alpha``/``family_size``
      (Bonferroni: all ``family_size`` intervals of a family cover together with 1 − alpha);
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
        "ci_simultaneous_pp": None,
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
            f"least 2 seeds, and the exact Wilcoxon test needs ≥ {seeds_needed(1, alpha)} to "
            f"reach p < {alpha:g})"
        )
        out["min_attainable_p"] = 1.0
        return out

    if family_size < 1:
        raise ValueError(f"family_size must be ≥ 1, got {family_size}")
    out["ci95_pp"] = [v * scale for v in t_interval(deltas, 1 - alpha) or []]
    out["ci_simultaneous_pp"] = [
        v * scale for v in t_interval(deltas, 1 - alpha / family_size) or []
    ]
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
        needed = seeds_needed(1, alpha)
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


def _ranks_desc(values: np.ndarray) -> np.ndarray:
    """Competition ranks (1 = largest) along axis 0; equal values share the better rank."""
    # rank of x = 1 + number of strictly larger values in its column
    ranks: np.ndarray = 1 + (values[None, :, :] > values[:, None, :]).sum(axis=1)
    return ranks


def rank_intervals(
    baseline: np.ndarray,
    treated: np.ndarray,
    baseline_correct: np.ndarray | None = None,
    treated_correct: np.ndarray | None = None,
    *,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, str]:
    """A ``level`` interval on each entry's rank by mean Δ (rank 1 = largest Δ).

    ``baseline`` and ``treated`` are E×S per-seed scores (entry, seed); seeds are paired across
    entries (the same seed means the same initialisation and data order in every arm). Each
    bootstrap replicate draws S seeds with replacement — the same draw for every entry — and,
    when ``baseline_correct``/``treated_correct`` (E×S×N, 1 = test image n classified correctly)
    are given, N test images with replacement — again shared, since every arm is scored on the
    same images — recomputes every entry's mean Δ and ranks the entries. The interval is
    [the ``(1 − level)/2`` quantile (rounded down), the ``(1 + level)/2`` quantile (rounded up)]
    of each entry's ranks. The replicates depend only on (S, N, n_boot, seed), so an entry's
    Δ replicates do not depend on which other entries are ranked with it.

    Returns (E×2 integer array of [best, worst] rank, a description of the method).
    """
    base = np.asarray(baseline, dtype=np.float64)
    treat = np.asarray(treated, dtype=np.float64)
    if base.ndim != 2 or base.shape != treat.shape:
        raise ValueError(f"baseline and treated must be E×S, got {base.shape} and {treat.shape}")
    n_entries, n_seeds = base.shape
    if n_entries == 0:
        return np.zeros((0, 2), dtype=np.int64), "no entries"
    if n_entries == 1:
        return np.ones((1, 2), dtype=np.int64), "a single entry"
    rng = np.random.default_rng(seed)
    seed_draws = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot)  # B×S
    if baseline_correct is not None and treated_correct is not None:
        bc = np.asarray(baseline_correct, dtype=np.float32)
        tc = np.asarray(treated_correct, dtype=np.float32)
        if bc.shape != tc.shape or bc.shape[:2] != base.shape:
            raise ValueError(f"correct arrays must be E×S×N, got {bc.shape} and {tc.shape}")
        n_images = bc.shape[2]
        image_rng = np.random.default_rng([seed, 1])
        deltas = np.empty((n_entries, n_boot))
        diff = (tc - bc).reshape(n_entries * n_seeds, n_images)
        for start in range(0, n_boot, 250):  # image weights B×N in blocks: bounded memory
            stop = min(start + 250, n_boot)
            weights = image_rng.multinomial(
                n_images, np.full(n_images, 1 / n_images), size=stop - start
            ).astype(np.float32)  # b×N
            per_seed = (diff @ weights.T).astype(np.float64) / n_images  # (E·S)×b
            per_seed = per_seed.reshape(n_entries, n_seeds, stop - start)
            deltas[:, start:stop] = np.einsum("esb,bs->eb", per_seed, seed_draws[start:stop])
        deltas /= n_seeds
        method = (
            f"{n_boot} bootstrap replicates resampling {n_seeds} seeds and {n_images} test images"
        )
    else:
        deltas = (treat - base) @ seed_draws.T / n_seeds  # E×B
        method = f"{n_boot} bootstrap replicates resampling {n_seeds} seeds (test images fixed)"
    ranks = _ranks_desc(np.round(deltas, 12))  # E×B
    tail = (1 - level) / 2
    low = np.quantile(ranks, tail, axis=1, method="lower")
    high = np.quantile(ranks, 1 - tail, axis=1, method="higher")
    return np.stack([low, high], axis=1).astype(np.int64), method


def pack_correct(correct: Sequence[int] | np.ndarray) -> str:
    """Per-image 0/1 correctness as base64 of packed bits (what results.json stores)."""
    import base64

    bits = np.asarray(correct)
    if bits.ndim != 1 or not np.isin(bits, (0, 1)).all():
        raise ValueError("correct must be a 1-d sequence of 0/1 values")
    return base64.b64encode(np.packbits(bits.astype(np.uint8)).tobytes()).decode("ascii")


def unpack_correct(packed: str, n: int) -> np.ndarray:
    """Inverse of :func:`pack_correct` for ``n`` images (bool array)."""
    import base64

    raw = np.frombuffer(base64.b64decode(packed.encode("ascii"), validate=True), dtype=np.uint8)
    bits = np.unpackbits(raw)
    if bits.size < n or bits.size - n >= 8:
        raise ValueError(f"packed correctness holds {bits.size} bits, not {n} images")
    return bits[:n].astype(bool)
