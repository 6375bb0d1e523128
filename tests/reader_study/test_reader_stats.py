"""The reader study's statistics against hand-computed and reference values."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
from medsynbench.reader_study.layout import answer_token, fnv1a, reader_order
from medsynbench.reader_study.stats import (
    LADDER_MS,
    Staircase,
    cohen_kappa,
    d_prime,
    fleiss_kappa,
    wilson,
)
from sklearn.metrics import cohen_kappa_score

# Fleiss (1971) as worked in most textbooks: 10 subjects, 14 raters, 5 categories; κ = 0.210
# (P̄ = 0.378, P̄e = 0.213).
FLEISS_TABLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_wilson_matches_the_hand_computed_interval() -> None:
    # 8 of 10: centre (0.8 + z²/20)/(1 + z²/10) = 0.71674, half-width 0.22658
    low, high = wilson(8, 10)  # type: ignore[misc]
    assert low == pytest.approx(0.49016, abs=1e-5) and high == pytest.approx(0.94332, abs=1e-5)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == pytest.approx(1.0)  # type: ignore[index]
    assert wilson(0, 0) is None


def test_d_prime_uses_the_log_linear_correction() -> None:
    z = NormalDist().inv_cdf
    assert d_prime(8, 10, 2, 10) == pytest.approx(z(8.5 / 11) - z(2.5 / 11))
    perfect = d_prime(10, 10, 0, 10)
    assert perfect == pytest.approx(2 * z(10.5 / 11)) and np.isfinite(perfect)
    assert d_prime(5, 10, 5, 10) == pytest.approx(0.0)
    assert d_prime(3, 0, 1, 4) is None


def test_cohen_kappa_equals_sklearn() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        first = list(rng.choice(["real", "fake"], size=15))
        second = [a if rng.random() < 0.7 else ("fake" if a == "real" else "real") for a in first]
        kappa, reason = cohen_kappa(first, second)
        assert reason is None and kappa == pytest.approx(cohen_kappa_score(first, second))
    # by hand: 4 items, agree on 3; marginals 2/2 and 3/1 → pe = 0.5, κ = (0.75 − 0.5)/0.5
    assert cohen_kappa(["f", "f", "r", "r"], ["f", "f", "r", "f"])[0] == pytest.approx(0.5)
    kappa, reason = cohen_kappa(["f", "f"], ["f", "f"])
    assert kappa is None and "κ undefined" in str(reason)


def test_fleiss_kappa_reproduces_the_textbook_example() -> None:
    kappa, reason = fleiss_kappa(FLEISS_TABLE)
    assert reason is None and kappa == pytest.approx(0.20993, abs=5e-5)
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]])[0] == pytest.approx(1.0)
    assert fleiss_kappa([[2, 1], [2, 0]])[0] is None  # unequal readers per item
    assert fleiss_kappa([[3, 0], [3, 0]])[0] is None  # everyone said the same


def test_staircase_is_three_down_one_up_and_averages_reversals() -> None:
    stair = Staircase()
    shown = []
    for correct in [1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0]:
        shown.append(stair.exposure_ms)
        stair.answer(bool(correct))
    # 500 ×3 → 350 ×3 → 250 (wrong: reversal at 250) → 350 ×3 (reversal at 350) → 250 (wrong)
    assert shown == [500, 500, 500, 350, 350, 350, 250, 350, 350, 350, 250]
    assert stair.reversals == [250, 350, 250]
    assert stair.threshold() == (pytest.approx(850 / 3), None)
    fresh = Staircase()
    fresh.answer(False)
    assert fresh.threshold()[0] is None and "needs at least 2" in str(fresh.threshold()[1])
    top = Staircase(rung=0)
    top.answer(False)
    assert top.exposure_ms == LADDER_MS[0]  # clamped at the longest exposure


def test_fnv1a_and_reader_order() -> None:
    assert fnv1a("") == 0x811C9DC5 and fnv1a("a") == 0xE40C292C
    assert fnv1a("foobar") == 0xBF9CF968  # the published FNV-1a 32-bit test vectors
    ids = [f"t{i:02d}" for i in range(30)]
    first = reader_order("abc", "R1", ids)
    assert sorted(first) == ids and first != ids
    assert reader_order("abc", "R1", ids) == first
    assert reader_order("abc", "R2", ids) != first
    assert answer_token("s", "t", "real") != answer_token("s", "t", "fake")
