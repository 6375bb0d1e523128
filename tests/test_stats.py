"""Paired utility statistics, against hand-computed values."""

from __future__ import annotations

import pytest
from medsynbench.stats import holm, min_attainable_p, paired_comparison

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


def test_bootstrap_ci_brackets_mean_and_is_reproducible() -> None:
    deltas = [0.01, -0.02, 0.03, 0.04, 0.05, 0.06]
    res = paired_comparison(BASE6, treated(BASE6, deltas), seed=3)
    lo, hi = res["ci95_pp"]
    assert -2.0 <= lo < res["delta_pp"] < hi <= 6.0  # within [min Δ, max Δ] in points
    again = paired_comparison(BASE6, treated(BASE6, deltas), seed=3)
    assert again["ci95_pp"] == res["ci95_pp"]


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
