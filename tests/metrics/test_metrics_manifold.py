"""PRDC and kNN privacy: hand-computed cases, the ``prdc`` package, ties, Hamming, chunking."""

from __future__ import annotations

import numpy as np
import prdc as prdc_package
import pytest
import torch
from medsynbench import metrics
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.metrics import knn
from scipy.spatial.distance import cdist


def col(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)[:, None]


def brute_privacy(real: np.ndarray, fake: np.ndarray, k: int, metric: str) -> dict[str, float]:
    """The DESIGN definitions on a full scipy distance matrix (reference, tiny sets only)."""
    rr = cdist(real, real, metric=metric)
    np.fill_diagonal(rr, np.inf)
    radii = np.sort(rr, axis=1)
    fr = cdist(fake, real, metric=metric)
    in_real = (fr < radii[:, k - 1][None, :]).any(1)
    copy = (fr < radii[:, 0][None, :]).any(1)
    return {"fidelity": in_real.mean(), "privacy": 1 - copy.mean(),
            "fidelity_privacy": (in_real & ~copy).mean()}


def test_prdc_hand_computed_1d() -> None:
    # real 0, 1, 3 → r_1 = 1, 1, 2; fake 0.5, 10 → r_1^S = 9.5, 9.5
    out = metrics.prdc(col(0, 1, 3), col(0.5, 10), k=1, device="cpu")
    assert out["precision"] == 0.5  # 0.5 lies in the balls of 0 and 1; 10 in none
    assert out["density"] == 1.0  # (2 + 0) / (1·2)
    assert out["recall"] == 1.0  # every real is within 9.5 of 0.5
    assert out["coverage"] == pytest.approx(2 / 3)  # 3 is 2.5 from 0.5, its radius is 2


def test_knn_privacy_hand_computed_with_strict_tie() -> None:
    # real 0, 1, 3: r_1 = 1, 1, 2; r_2 = 3, 2, 3
    # fake 0.5: in (0.5 < 3), copy (0.5 < 1); fake 5: in (2 < 3), NOT a copy (2 < 2 is false);
    # fake 10: neither.
    out = metrics.knn_privacy(col(0, 1, 3), col(0.5, 5, 10), k=2, device="cpu")
    assert out == pytest.approx({"fidelity": 2 / 3, "privacy": 2 / 3, "fidelity_privacy": 1 / 3})


@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_equals_prdc_package(k: int) -> None:
    rng = np.random.default_rng(k)
    real = rng.normal(size=(160, 10))
    fake = rng.normal(size=(140, 10)) * 1.2 + 0.3
    ours = metrics.prdc(real, fake, k=k, device="cpu")
    theirs = prdc_package.compute_prdc(real, fake, nearest_k=k)
    for name in ("precision", "recall", "density", "coverage"):
        assert ours[name] == pytest.approx(float(theirs[name]), abs=1e-6), name


def test_knn_privacy_equals_brute_force_euclidean() -> None:
    rng = np.random.default_rng(7)
    real = rng.normal(size=(90, 6))
    fake = np.concatenate([real[:20] + 1e-3, rng.normal(size=(60, 6))])
    out = metrics.knn_privacy(real, fake, k=4, device="cpu")
    assert out == pytest.approx(brute_privacy(real, fake, 4, "euclidean"), abs=1e-12)


def test_identical_sets() -> None:
    real = np.random.default_rng(0).normal(size=(50, 8))
    out = metrics.prdc(real, real, k=5, device="cpu")
    assert out["precision"] == out["recall"] == out["coverage"] == 1.0
    # Each real's ball strictly holds itself and its k−1 nearer neighbours, not the k-th (a tie).
    assert out["density"] == 1.0
    assert metrics.knn_privacy(real, real, device="cpu") == {
        "fidelity": 1.0, "privacy": 0.0, "fidelity_privacy": 0.0}


def test_duplicated_real_images_have_exact_zero_radius() -> None:
    rng = np.random.default_rng(1)
    point = rng.normal(size=(1, 512)) * 1000  # large norms: the expansion alone would not give 0
    real = np.concatenate([point, point, rng.normal(size=(10, 512)) * 1000])
    radii = knn.neighbour_distances(knn.Points.of(torch.from_numpy(real), "euclidean"), 1)
    assert radii[0, 0].item() == 0.0 and radii[1, 0].item() == 0.0
    # A synthetic copy of the duplicated image is not "closer than r_1 = 0": not flagged...
    assert metrics.knn_privacy(real, point, k=1, device="cpu")["privacy"] == 1.0
    # ...while a copy of a unique real image is.
    assert metrics.knn_privacy(real, real[5:6], k=1, device="cpu")["privacy"] == 0.0


def test_duplicated_reals_1d_hand_computed() -> None:
    # real 0, 0, 5, 9 (k=1): r_1 = 0, 0, 4, 4. fake 0 is a copy of a duplicated image (0 < 0
    # is false); fake 6 is within 4 of 5 (in, and a copy: 1 < 4).
    out = metrics.knn_privacy(col(0, 0, 5, 9), col(0, 6), k=1, device="cpu")
    assert out == pytest.approx({"fidelity": 0.5, "privacy": 0.5, "fidelity_privacy": 0.0})


def test_hamming_hand_computed() -> None:
    real = np.array([[0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1]])  # pairwise .5, 1, .5 → r_1 = .5
    fake = np.array([[0, 0, 0, 1], [1, 1, 0, 0]])  # d = (.25, .25, .75) and (.5, 1, .5)
    out = metrics.knn_privacy(real, fake, k=1, distance="hamming", device="cpu")
    assert out == pytest.approx({"fidelity": 0.5, "privacy": 0.5, "fidelity_privacy": 0.0})


def test_hamming_equals_brute_force_and_accepts_code_maps() -> None:
    rng = np.random.default_rng(2)
    real = rng.integers(0, 4, size=(70, 4, 4))
    fake = np.concatenate([real[:10], rng.integers(0, 4, size=(40, 4, 4))])
    out = metrics.knn_privacy(real, fake, k=3, distance="hamming", device="cpu")
    expected = brute_privacy(real.reshape(70, -1), fake.reshape(50, -1), 3, "hamming")
    assert out == pytest.approx(expected, abs=1e-12)


def test_small_blocks_give_identical_results(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(97, 5)), rng.normal(size=(83, 5))
    codes_r, codes_f = rng.integers(0, 3, size=(97, 12)), rng.integers(0, 3, size=(83, 12))
    big = (metrics.prdc(real, fake, device="cpu"),
           metrics.knn_privacy(codes_r, codes_f, distance="hamming", device="cpu"))
    monkeypatch.setitem(knn._ROWS_BUDGET, "cpu", 8 * 97 * 7)  # 7 rows per block
    monkeypatch.setitem(knn._HAMMING_BUDGET, "cpu", 4 * 12 * 5)  # 5 code rows per kernel
    small = (metrics.prdc(real, fake, device="cpu"),
             metrics.knn_privacy(codes_r, codes_f, distance="hamming", device="cpu"))
    assert big == small


def test_bad_input_is_refused() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(10, 3))
    with pytest.raises(DataError, match=r"k\+1 = 6"):
        metrics.prdc(x[:5], x, k=5, device="cpu")
    with pytest.raises(DataError, match="fake has 3 samples"):
        metrics.prdc(x, x[:3], k=5, device="cpu")
    with pytest.raises(ParameterError, match="positive integer"):
        metrics.knn_privacy(x, x, k=0, device="cpu")
    with pytest.raises(ParameterError, match="'euclidean'"):
        metrics.knn_privacy(x, x, distance="cosine", device="cpu")
    with pytest.raises(DataError, match="NaN or inf"):
        metrics.prdc(np.where(x > 2, np.nan, x), x, device="cpu")
    with pytest.raises(DataError, match="mismatched feature dimensions"):
        metrics.prdc(x, rng.normal(size=(10, 4)), device="cpu")
    with pytest.raises(DataError, match="empty"):
        metrics.knn_privacy(x, x[:0], device="cpu")
    with pytest.raises(DataError, match="mixed dtypes"):
        metrics.knn_privacy(x, np.ones((10, 3), dtype=np.int32), device="cpu")
    codes = rng.integers(0, 8, size=(10, 16))
    with pytest.raises(DataError, match="mismatched code lengths"):
        metrics.knn_privacy(codes, codes[:, :12], distance="hamming", device="cpu")
    with pytest.raises(DataError, match="integer codes"):
        metrics.knn_privacy(x, x, distance="hamming", device="cpu")
    with pytest.raises(DataError, match=r"codes must lie in"):
        metrics.knn_privacy(codes * 2**22, codes, distance="hamming", device="cpu")


@pytest.mark.gpu
def test_gpu_equals_cpu() -> None:
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(500, 16)), rng.normal(size=(400, 16)) + 0.2
    assert metrics.prdc(real, fake, device="cuda") == metrics.prdc(real, fake, device="cpu")
    codes_r, codes_f = rng.integers(0, 5, size=(300, 64)), rng.integers(0, 5, size=(200, 64))
    assert metrics.knn_privacy(codes_r, codes_f, distance="hamming", device="cuda") == (
        metrics.knn_privacy(codes_r, codes_f, distance="hamming", device="cpu"))
