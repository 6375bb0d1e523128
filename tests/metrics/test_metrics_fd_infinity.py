"""FD∞: agreement with dgm-eval's compute_FD_infinity (same draws), a hand-computed line, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
from medsynbench import MetricInputs, RunContext, metrics
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.metrics.fd_infinity import (
    FDInfinityMetric,
    fd_infinity,
    fd_infinity_sizes,
)
from sklearn.linear_model import LinearRegression


def dgm_eval_fd_infinity(reps1: np.ndarray, reps2: np.ndarray, num_points: int,
                         rng: np.random.Generator) -> float:
    """dgm-eval's ``compute_FD_infinity`` (dgm_eval/metrics/fd.py, layer6ai-labs/dgm-eval @
    d57a6d2), transcribed with its unseeded ``default_rng()`` replaced by ``rng`` and the
    progress bar dropped."""
    def statistics(reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.atleast_1d(np.mean(reps, axis=0)), np.atleast_2d(np.cov(reps, rowvar=False))

    def fd(mu1: np.ndarray, mu2: np.ndarray, sigma1: np.ndarray, sigma2: np.ndarray) -> float:
        diff = mu1 - mu2
        covmean = np.real(scipy.linalg.sqrtm(sigma1.dot(sigma2)))  # disp=False: deprecated
        return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2)
                     - 2 * np.trace(covmean))

    fds = []
    fd_batches = np.linspace(min(5000, max(len(reps2) // 10, 2)), len(reps2),
                             num_points).astype("int32")
    mu1, sigma1 = statistics(reps1)
    for fd_batch_size in fd_batches:
        fd_activations = rng.choice(reps2, fd_batch_size, replace=False)
        mu2, sigma2 = statistics(fd_activations)
        fds.append(fd(mu1, mu2, sigma1, sigma2))
    reg = LinearRegression().fit(1 / fd_batches.reshape(-1, 1), np.array(fds).reshape(-1, 1))
    return float(reg.predict(np.array([[0]]))[0, 0])


def sets(seed: int, n_real: int = 200, n_fake: int = 300, dim: int = 6
         ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim))
    return rng.normal(size=(n_real, dim)) @ mixing, rng.normal(size=(n_fake, dim)) @ mixing + 0.4


@pytest.mark.parametrize("seed, points", [(0, 15), (1, 5), (2, 3)])
def test_equals_dgm_eval_with_the_same_draws(seed: int, points: int) -> None:
    real, fake = sets(seed)
    ours = fd_infinity(real, fake, points=points, seed=seed, device="cpu")
    reference = dgm_eval_fd_infinity(real, fake, points, np.random.default_rng(seed))
    assert ours["fd_infinity"] == pytest.approx(reference, abs=1e-6)


def test_two_points_is_the_line_through_them() -> None:
    real, fake = sets(3, n_fake=100)
    sizes = fd_infinity_sizes(100, 2)
    assert sizes.tolist() == [10, 100]
    rng = np.random.default_rng(7)
    values = [metrics.fid(real, fake[rng.choice(100, int(n), replace=False)], device="cpu")
              for n in sizes]
    # FID = a + b/N through (1/10, F1) and (1/100, F2): b = (F1 − F2)/(1/10 − 1/100)
    slope = (values[0] - values[1]) / (1 / 10 - 1 / 100)
    intercept = values[1] - slope / 100
    out = fd_infinity(real, fake, points=2, seed=7, device="cpu")
    assert out["fd_infinity"] == pytest.approx(intercept, abs=1e-9)
    assert out["fd_infinity_slope"] == pytest.approx(slope, abs=1e-7)


def test_small_subsets_use_the_rank_deficient_route_and_warn_once() -> None:
    real, fake = sets(4, n_real=40, n_fake=60, dim=12)  # smallest N = 6 < d = 12
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = fd_infinity(real, fake, points=4, seed=0, device="cpu")
    fd_warnings = [w for w in caught if "FD∞" in str(w.message)]
    assert len(fd_warnings) == 1 and "rank-deficient" in str(fd_warnings[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = dgm_eval_fd_infinity(real, fake, 4, np.random.default_rng(0))
    assert ours["fd_infinity"] == pytest.approx(reference, abs=1e-6)


def test_bad_inputs_are_refused() -> None:
    real, fake = sets(5)
    with pytest.raises(ParameterError, match="points=1"):
        fd_infinity(real, fake, points=1, device="cpu")
    with pytest.raises(DataError, match="fake has 2 samples"):
        fd_infinity(real, fake[:2], device="cpu")
    with pytest.raises(DataError, match="feature dimensions"):
        fd_infinity(real, fake[:, :3], device="cpu")
    with pytest.raises(ParameterError, match="points"):
        FDInfinityMetric(points=1)


def test_plugin_uses_the_run_seed(ctx: RunContext) -> None:
    real, fake = sets(6)
    inputs = MetricInputs(real=real, synthetic=fake, heldout=None, real_labels=np.zeros(200),
                          synthetic_labels=np.zeros(300), class_names=("a",))
    values = FDInfinityMetric(points=4).compute(inputs, ctx)
    assert values == metrics.fd_infinity(real, fake, points=4, seed=ctx.seed, device="cpu")
    assert FDInfinityMetric.quantities["fd_infinity"].axis == "fidelity"
    assert not FDInfinityMetric.quantities["fd_infinity"].higher_is_better
