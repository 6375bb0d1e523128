"""DCR and authenticity: hand-computed cases, ties, copy-real behaviour, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from medsynbench import metrics
from medsynbench.errors import DataError
from medsynbench.plugins.metrics import knn


def col(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)[:, None]


def test_dcr_hand_computed() -> None:
    # train 0, 10; held-out 20, 30; fake 1, 29
    out = metrics.dcr(col(0, 10), col(1, 29), col(20, 30), device="cpu")
    assert out["dcr_median"] == pytest.approx(10.0)  # DCRs 1 and 19
    assert out["dcr_p05"] == pytest.approx(1.9)  # 1 + 0.05·(19 − 1)
    assert out["heldout_dcr_median"] == pytest.approx(15.0)  # 20 → 10, 30 → 20
    assert out["closer_to_train"] == 0.5  # 1 is nearer train, 29 nearer held-out


def test_dcr_balances_train_and_heldout_sizes() -> None:
    rng = np.random.default_rng(0)
    train, heldout = rng.normal(size=(400, 4)), rng.normal(size=(100, 4))
    fresh = rng.normal(size=(300, 4))  # same distribution, not memorised
    assert metrics.dcr(train, fresh, heldout, device="cpu")["closer_to_train"] == (
        pytest.approx(0.5, abs=0.1))
    copies = metrics.dcr(train, train[:300], heldout, device="cpu")
    assert copies["dcr_median"] == 0.0
    # Only copies of the training images kept in the size-balanced subset are surely nearer.
    assert copies["closer_to_train"] > 0.4


def test_dcr_copies_of_balanced_train_are_all_closer() -> None:
    rng = np.random.default_rng(1)
    train, heldout = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    out = metrics.dcr(train, train, heldout, device="cpu")
    assert out["closer_to_train"] == 1.0 and out["dcr_p05"] == 0.0


def test_authenticity_hand_computed() -> None:
    # real 0, 1, 5: r_1 = 1, 1, 4. fake 0.2 (0.2 ≤ 1: inauthentic), 3.5 (1.5 ≤ 4: inauthentic),
    # 9 (4 ≤ 4, a tie: inauthentic), 20 (15 > 4: authentic).
    out = metrics.authenticity(col(0, 1, 5), col(0.2, 3.5, 9, 20), device="cpu")
    assert out["authenticity"] == pytest.approx(0.25)


def test_authenticity_tied_nearest_reals() -> None:
    # real 0, 0.5, 4, 7: r_1 = 0.5, 0.5, 3, 3. fake 2.25 is 1.75 from both 0.5 and 4;
    # 1.75 > r_1(0.5) but 1.75 ≤ r_1(4) → inauthentic.
    assert metrics.authenticity(col(0, 0.5, 4, 7), col(2.25), device="cpu") == {
        "authenticity": 0.0}


def test_copy_real_is_fully_inauthentic_and_not_private(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    rng = np.random.default_rng(2)
    real = 1000.0 + rng.normal(size=(120, 64)).astype(np.float32)  # large common offset
    fake = real[rng.permutation(120)]
    monkeypatch.setitem(knn._ROWS_BUDGET, "cpu", 8 * 120 * 13)  # odd block size
    assert metrics.authenticity(real, fake, device="cpu") == {"authenticity": 0.0}
    assert metrics.knn_privacy(real, fake, device="cpu")["privacy"] == 0.0
    out = metrics.prdc(real, fake, device="cpu")
    assert out == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def test_bad_input_is_refused() -> None:
    x = np.random.default_rng(3).normal(size=(10, 3))
    with pytest.raises(DataError, match="heldout is empty"):
        metrics.dcr(x, x, x[:0], device="cpu")
    with pytest.raises(DataError, match="mismatched feature dimensions: real has 3 but heldout"):
        metrics.dcr(x, x, np.ones((4, 2)), device="cpu")
    with pytest.raises(DataError, match="real has 1 samples"):
        metrics.authenticity(x[:1], x, device="cpu")
    with pytest.raises(DataError, match="NaN or inf"):
        metrics.authenticity(x, np.full((2, 3), np.nan), device="cpu")
