"""FID and KID: hand-computed cases, agreement with scipy / an independent slow KID, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from medsynbench import metrics
from medsynbench.errors import DataError, ParameterError


def scipy_frechet(real: np.ndarray, fake: np.ndarray) -> float:
    """The classic pytorch-fid formula with scipy's sqrtm (reference only, small d)."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def slow_kid(real: np.ndarray, fake: np.ndarray, subsets: int, size: int, seed: int
             ) -> tuple[float, float]:
    """Unbiased MMD² with explicit double loops over pairs (independent of the fast code)."""
    rng = np.random.default_rng(seed)
    m = min(size, len(real), len(fake))
    d = real.shape[1]

    def kernel(a: np.ndarray, b: np.ndarray) -> float:
        return float((a @ b / d + 1) ** 3)

    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        xx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
        yy = sum(kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
        xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(m))
        values.append(xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / (m * m))
    return float(np.mean(values)), float(np.std(values))


def test_fid_hand_computed_1d() -> None:
    # real: mean 1, var 2; fake: mean 3, var 8 → (1−3)² + 2 + 8 − 2·√16 = 6
    assert metrics.fid(np.array([[0.0], [2.0]]), np.array([[1.0], [5.0]]), device="cpu") == (
        pytest.approx(6.0, abs=1e-12))


def test_fid_hand_computed_diagonal_2d() -> None:
    real = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])  # mean (1,1), cov 4/3·I
    fake = real * 3 + 1  # mean (4,4), cov 12·I
    # ‖μ‖² = 18; traces 8/3 + 24; 2·tr√(Σ1Σ2) = 2·2·√16 = 16
    expected = 18 + 8 / 3 + 24 - 16
    assert metrics.fid(real, fake, device="cpu") == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("dim", [3, 8, 16])
def test_fid_equals_scipy_sqrtm(dim: int) -> None:
    rng = np.random.default_rng(dim)
    mixing = rng.normal(size=(dim, dim))
    real = rng.normal(size=(120, dim)) @ mixing
    fake = rng.normal(size=(150, dim)) @ (mixing + 0.3 * rng.normal(size=(dim, dim))) + 0.5
    assert metrics.fid(real, fake, device="cpu") == pytest.approx(scipy_frechet(real, fake),
                                                                  abs=1e-6)


@pytest.mark.parametrize("constant", [0.0, 0.7])  # 0.0: exactly singular; 0.7: ~1e-31 pivot
def test_fid_singular_real_covariance(constant: float) -> None:
    # A dead (constant) feature dimension makes Σ_real singular. 0.0: Cholesky fails and the
    # symmetric square root is used; 0.7: rounding leaves a ~1e-31 pivot, Cholesky succeeds.
    # Reference: Σ √λ over numpy's (non-symmetric) eigenvalues of Σ1Σ2.
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(60, 5)), rng.normal(size=(70, 5)) * 1.5
    real[:, 2] = constant
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    eig = np.linalg.eigvals(s1 @ s2).real.clip(min=0)
    diff = real.mean(0) - fake.mean(0)
    expected = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(eig).sum()
    assert metrics.fid(real, fake, device="cpu") == pytest.approx(expected, abs=1e-6)


def test_fid_identical_sets_is_zero_and_float32_promoted() -> None:
    real = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
    assert abs(metrics.fid(real, real, device="cpu")) < 1e-9
    assert metrics.fid(real, real.astype(np.float64), device="cpu") == pytest.approx(0, abs=1e-9)


def test_fid_accepts_torch_tensors() -> None:
    real = torch.randn(50, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    value = metrics.fid(real, real + 1, device="cpu")
    assert value == pytest.approx(4.0, abs=1e-9)  # a pure shift by 1 in 4 dimensions


def test_fid_warns_when_rank_deficient() -> None:
    rng = np.random.default_rng(1)
    with pytest.warns(metrics.MetricWarning, match="rank-deficient"):
        value = metrics.fid(rng.normal(size=(10, 20)), rng.normal(size=(30, 20)), device="cpu")
    assert np.isfinite(value)


def test_frechet_distance_from_statistics_matches_fid() -> None:
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(40, 5)), rng.normal(size=(40, 5)) + 1
    stats = [(x.mean(0), np.cov(x, rowvar=False)) for x in (real, fake)]
    direct = metrics.frechet_distance(*stats[0], *stats[1], device="cpu")
    assert direct == pytest.approx(metrics.fid(real, fake, device="cpu"), abs=1e-10)
    with pytest.raises(DataError, match="statistics do not match"):
        metrics.frechet_distance(stats[0][0], stats[0][1], stats[1][0][:4], stats[1][1])


def test_kid_hand_computed() -> None:
    # k(x, y) = (xy + 1)³ in 1-D. Real {0, 1}: off-diagonal k = 1 → 2/2 = 1.
    # Fake {1, 2}: k = 27 → 54/2 = 27. Cross: 1 + 1 + 8 + 27 = 37 → 2·37/4 = 18.5.
    out = metrics.kid(np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]]), subsets=3,
                      subset_size=2, device="cpu")
    assert out["kid_mean"] == pytest.approx(1 + 27 - 18.5, abs=1e-12)
    assert out["kid_std"] == pytest.approx(0.0, abs=1e-12)


def test_kid_equals_independent_slow_version() -> None:
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(30, 5)), rng.normal(size=(25, 5)) * 1.3 + 0.2
    fast = metrics.kid(real, fake, subsets=7, subset_size=12, seed=5, device="cpu")
    mean, std = slow_kid(real, fake, subsets=7, size=12, seed=5)
    assert fast["kid_mean"] == pytest.approx(mean, abs=1e-9)
    assert fast["kid_std"] == pytest.approx(std, abs=1e-9)


def test_kid_identical_distribution_near_zero_and_unbiased() -> None:
    rng = np.random.default_rng(4)
    out = metrics.kid(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)), subsets=20,
                      subset_size=200, device="cpu")
    assert abs(out["kid_mean"]) < 3 * out["kid_std"] + 1e-3


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_refused(bad: float) -> None:
    real = np.zeros((5, 3))
    real[2, 1] = bad
    for fn in (metrics.fid, metrics.kid):
        with pytest.raises(DataError, match="NaN or inf"):
            fn(real, np.ones((5, 3)), device="cpu")


def test_bad_shapes_and_dtypes_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="mismatched feature dimensions"):
        metrics.fid(rng.normal(size=(5, 3)), rng.normal(size=(5, 4)), device="cpu")
    with pytest.raises(DataError, match="empty"):
        metrics.fid(np.zeros((0, 3)), rng.normal(size=(5, 3)), device="cpu")
    with pytest.raises(DataError, match="mixed dtypes"):
        metrics.fid(rng.normal(size=(5, 3)), np.ones((5, 3), dtype=np.int64), device="cpu")
    with pytest.raises(DataError, match="2-D"):
        metrics.fid(rng.normal(size=(5, 3, 2)), rng.normal(size=(5, 3, 2)), device="cpu")
    with pytest.raises(DataError, match="at least 2"):
        metrics.fid(rng.normal(size=(1, 3)), rng.normal(size=(5, 3)), device="cpu")
    with pytest.raises(DataError, match="not numeric"):
        metrics.fid(np.array([["a"]]), np.array([["b"]]), device="cpu")


def test_bad_arguments_are_refused() -> None:
    x = np.random.default_rng(0).normal(size=(6, 2))
    with pytest.raises(ParameterError, match="subsets"):
        metrics.kid(x, x, subsets=0, device="cpu")
    with pytest.raises(ParameterError, match="subset_size"):
        metrics.kid(x, x, subset_size=1, device="cpu")
    with pytest.raises(ParameterError, match="not a device"):
        metrics.fid(x, x, device="tpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA is not available"):
            metrics.fid(x, x, device="cuda")


@pytest.mark.gpu
def test_gpu_equals_cpu() -> None:
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(300, 12)), rng.normal(size=(200, 12)) + 0.1
    assert metrics.fid(real, fake, device="cuda") == pytest.approx(
        metrics.fid(real, fake, device="cpu"), abs=1e-8)
    assert metrics.kid(real, fake, subsets=5, device="cuda")["kid_mean"] == pytest.approx(
        metrics.kid(real, fake, subsets=5, device="cpu")["kid_mean"], abs=1e-10)


def test_rank_deficient_gram_route_equals_the_eigenvalue_form() -> None:
    # N, M < d: fid() takes tr √(Σr Σf) from the singular values of A Bᵀ; the statistics route
    # (frechet_distance on numpy covariances) takes it from a d×d eigendecomposition.
    import warnings

    from medsynbench.plugins.metrics.frechet import fid, frechet_distance

    rng = np.random.default_rng(3)
    real = rng.normal(size=(40, 96))
    for fake in (rng.normal(0.3, 1.2, size=(50, 96)), real.copy(), np.repeat(real[:2], 20, 0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = fid(real, fake, device="cpu")
        reference = frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0),
                                     np.cov(fake, rowvar=False), device="cpu")
        assert ours == pytest.approx(reference, rel=1e-7, abs=1e-4)  # eigen route: ±3e-6 noise
    with pytest.warns(UserWarning, match="rank-deficient"):
        copy = fid(real, real.copy(), device="cpu")
    assert abs(copy) < 1e-9  # a copy is 0, not −1e-5
