"""Paired utility statistics, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from medsynbench.stats import (
    holm,
    min_adjusted_p,
    min_attainable_p,
    paired_comparison,
    rank_intervals,
    seeds_needed,
    t_interval,
)

BASE6 = [0.80, 0.81, 0.79, 0.80, 0.82, 0.78]


def treated(base: list[float], deltas: list[float]) -> list[float]:
    return [b + d for b, d in zip(base, deltas, strict=True)]


def test_delta_in_points_and_relative() -> None:
    # Δ = 0.02 and 0.03 → mean 0.025 = 2.5 pp; relative to mean baseline 0.8 → 3.125 %.
    res = paired_comparison([0.8, 0.8], [0.82, 0.83])
    assert res["n"] == 2
    assert res["delta_pp"] == pytest.approx(2.5)
    assert res["delta_rel_pct"] == pytest.approx(3.125)


def test_six_positive_seeds_reach_exact_minimum() -> None:
    # All 6 Δ > 0 and untied: only 2 of the 2^6 sign patterns are as extreme → p = 2/64.
    res = paired_comparison(BASE6, treated(BASE6, [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]))
    assert res["p_value"] == pytest.approx(2 / 64)
    assert res["min_attainable_p"] == pytest.approx(2 / 64)
    assert res["note"] == ""


def test_one_negative_rank() -> None:
    # Ranks 1..6, rank 2 negative → T− = 2. P(T ≤ 2) counts {}, {1}, {2} = 3/64; two-sided 6/64.
    res = paired_comparison(BASE6, treated(BASE6, [0.01, -0.02, 0.03, 0.04, 0.05, 0.06]))
    assert res["p_value"] == pytest.approx(6 / 64)


def test_five_seeds_cannot_reach_alpha_and_says_so() -> None:
    base = BASE6[:5]
    res = paired_comparison(base, treated(base, [0.01, 0.02, 0.03, 0.04, 0.05]))
    assert res["p_value"] == pytest.approx(0.0625)
    assert res["min_attainable_p"] == pytest.approx(0.0625)
    assert "cannot reach p < 0.05" in res["note"]
    assert "at least 6 seeds" in res["note"]


def test_ties_use_exact_midrank_enumeration() -> None:
    # Δ = (1, −1, 2): mid-ranks 1.5, 1.5, 3; T+ = 4.5, E[T] = 3. Over the 8 sign flips T+ is
    # 0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6 → 6 of 8 have |T − 3| ≥ 1.5 → p = 0.75.
    base = [0.5, 0.5, 0.5]
    res = paired_comparison(base, [0.51, 0.49, 0.52])
    assert res["p_value"] == pytest.approx(0.75)
    assert "mid-ranks" in res["test"]


def test_zero_differences_are_dropped_and_counted() -> None:
    base = [0.7, *BASE6]
    res = paired_comparison(base, treated(base, [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06]))
    assert res["n_zero"] == 1
    assert res["p_value"] == pytest.approx(2 / 64)
    assert "1 of 7 seeds had Δ = 0" in res["note"]


def test_zero_deltas_can_make_alpha_unreachable_with_enough_seeds() -> None:
    # 6 seeds, but 3 ties at Δ = 0 leave 3 informative ones: smallest p = 2/8 = 0.25.
    base = BASE6
    res = paired_comparison(base, treated(base, [0.0, 0.0, 0.0, 0.01, 0.02, 0.03]))
    assert res["p_value"] == pytest.approx(0.25)
    assert "cannot reach p < 0.05" in res["note"]
    assert "the Δ = 0 seeds leave too few" in res["note"]
    assert "run at least" not in res["note"]


def test_delta_is_not_rounded() -> None:
    res = paired_comparison([0.0, 0.0], [1 / 3, 1 / 3])
    assert res["delta_pp"] == pytest.approx(100 / 3, abs=1e-12)  # rounding would be off by 3e-11


def test_one_seed_gives_no_p_value_and_says_why() -> None:
    res = paired_comparison([0.8], [0.85])
    assert res["p_value"] is None
    assert res["ci95_pp"] is None
    assert res["delta_pp"] == pytest.approx(5.0)
    assert "only 1 seed" in res["note"]
    assert "≥ 6" in res["note"]


def test_all_zero_deltas_give_no_p_value() -> None:
    res = paired_comparison([0.8, 0.7, 0.9], [0.8, 0.7, 0.9])
    assert res["p_value"] is None
    assert res["delta_pp"] == 0.0
    assert "all Δ = 0" in res["note"]
    assert res["ci95_pp"] == [0.0, 0.0]


def test_ci_is_the_student_t_interval() -> None:
    # Δ (pp) = 1, −2, 3, 4, 5, 6: mean 2.8333, sd 2.9269, t(0.975, 5) = 2.570582 →
    # half-width 2.570582 × 2.9269 / √6 = 3.07158.
    deltas = [0.01, -0.02, 0.03, 0.04, 0.05, 0.06]
    res = paired_comparison(BASE6, treated(BASE6, deltas))
    assert res["ci95_pp"] == pytest.approx([2.83333 - 3.07158, 2.83333 + 3.07158], abs=1e-4)
    from scipy import stats as sps

    lo, hi = sps.t.interval(0.95, 5, loc=np.mean(deltas), scale=sps.sem(deltas))
    assert res["ci95_pp"] == pytest.approx([100 * lo, 100 * hi])


def test_simultaneous_ci_uses_bonferroni_level() -> None:
    deltas = [0.01, -0.02, 0.03, 0.04, 0.05, 0.06]
    res = paired_comparison(BASE6, treated(BASE6, deltas), family_size=4)
    from scipy import stats as sps

    lo, hi = sps.t.interval(1 - 0.05 / 4, 5, loc=np.mean(deltas), scale=sps.sem(deltas))
    assert res["ci_simultaneous_pp"] == pytest.approx([100 * lo, 100 * hi])
    assert res["ci_simultaneous_pp"][0] < res["ci95_pp"][0]


def test_t_interval_wider_than_percentile_bootstrap_on_six_points() -> None:
    # The observation: a percentile bootstrap over 6 seeds is ~30% narrower.
    deltas = np.array([0.01, -0.02, 0.03, 0.04, 0.05, 0.06])
    lo, hi = t_interval(deltas)
    rng = np.random.default_rng(0)
    means = deltas[rng.integers(0, 6, size=(20000, 6))].mean(axis=1)
    b_lo, b_hi = np.quantile(means, [0.025, 0.975])
    assert (b_hi - b_lo) < 0.8 * (hi - lo)


def test_seeds_needed_for_holm_families() -> None:
    # 2^(n−1) > m/α = 20m: m = 1 → 6, m = 2..3 → 7, m = 4..6 → 8, m = 7..12 → 9, 13..25 → 10.
    assert [seeds_needed(m) for m in (1, 2, 3, 6, 7, 12, 13, 25, 26)] == [
        6, 7, 7, 8, 9, 9, 10, 10, 11,
    ]
    assert min_adjusted_p(6, 4) == pytest.approx(0.125)  # the demo's old ceiling
    assert min_adjusted_p(6, 16) == pytest.approx(0.5)  # chexpert-xing's old ceiling
    assert min_adjusted_p(8, 4) == pytest.approx(4 / 128)


def test_rank_intervals_separate_clear_differences_and_tie_equal_ones() -> None:
    rng = np.random.default_rng(1)
    base = np.tile(rng.uniform(0.7, 0.8, size=8), (3, 1))
    noise = rng.normal(0, 0.002, size=(3, 8))
    treated_ = base + np.array([[0.10], [0.0], [0.0]]) + noise
    intervals, method = rank_intervals(base, treated_, n_boot=500)
    assert intervals[0].tolist() == [1, 1]  # +10 pp with 0.2 pp noise: always first
    assert intervals[1].tolist() == [2, 3] and intervals[2].tolist() == [2, 3]
    assert "8 seeds" in method


def test_rank_intervals_resample_test_images_and_do_not_depend_on_other_entries() -> None:
    rng = np.random.default_rng(2)
    n_seeds, n_images = 6, 50
    bc = np.tile(rng.random((1, n_seeds, n_images)) < 0.75, (3, 1, 1))
    tc = np.stack([rng.random((n_seeds, n_images)) < p for p in (0.9, 0.8, 0.6)])
    base, treat = bc.mean(axis=2), tc.mean(axis=2)
    full, method = rank_intervals(base, treat, bc, tc, n_boot=400)
    assert "50 test images" in method
    assert full[0, 0] == 1 and full[2, 1] == 3
    # the same two entries ranked alone: only their relative order matters, as in the full set
    pair, _ = rank_intervals(base[[0, 2]], treat[[0, 2]], bc[[0, 2]], tc[[0, 2]], n_boot=400)
    assert pair.tolist() == [[1, 1], [2, 2]]


def test_rank_intervals_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="E×S"):
        rank_intervals(np.zeros((2, 3)), np.zeros((2, 4)))


def test_constant_delta_ci_is_a_point() -> None:
    res = paired_comparison([0.5, 0.6, 0.7], [0.52, 0.62, 0.72])
    assert res["ci95_pp"] == pytest.approx([2.0, 2.0])


def test_relative_delta_undefined_for_zero_baseline() -> None:
    res = paired_comparison([0.0, 0.0], [0.1, 0.2])
    assert res["delta_rel_pct"] is None
    assert "baseline mean is 0" in res["note"]


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="equal length"):
        paired_comparison([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="finite"):
        paired_comparison([0.1, float("nan")], [0.1, 0.2])


def test_min_attainable_p() -> None:
    assert min_attainable_p(5) == pytest.approx(0.0625)
    assert min_attainable_p(6) == pytest.approx(0.03125)
    assert min_attainable_p(0) == 1.0


def test_holm_hand_computed() -> None:
    # m = 3: sorted 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone max → 0.06.
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])


def test_holm_caps_at_one_and_handles_empty() -> None:
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []
    assert holm([None, None]) == [None, None]
    with pytest.raises(ValueError, match="not a probability"):
        holm([1.5])
