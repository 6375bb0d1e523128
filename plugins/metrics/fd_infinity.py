"""``fd-infinity``: the Fréchet distance extrapolated to infinitely many synthetic samples
(Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to find them").

FID is biased upwards by a term that shrinks like 1/N in the number N of synthetic samples, so
two generators compared at different N (or one with a larger bias constant) rank wrongly. FD∞
evaluates FID_N at ``points`` sample sizes and extrapolates the straight line FID_N = a + b/N
to 1/N = 0:

1. the real statistics (mean, N−1 covariance) come from the whole real set, once;
2. the sizes are ``numpy.linspace(min(5000, max(M // 10, 2)), M, points).astype(int32)`` for M
   synthetic samples (dgm-eval's ``compute_FD_infinity``; Chong & Forsyth used 5,000 … 50,000);
3. for each size N_j, in that order, N_j synthetic samples are drawn without replacement with
   ``rng.choice(M, N_j, replace=False)`` from one ``numpy.random.default_rng(seed)`` and
   FID_j = FID(real, those samples) (:func:`~.frechet.fid`, float64 eigenvalue form);
4. ordinary least squares of FID_j on 1/N_j; FD∞ is the intercept.

dgm-eval draws from an unseeded generator and computes each FID with scipy's ``sqrtm``; with
the same draws (the same seed given to both) the values agree to 1e-6
(``tests/metrics/test_metrics_fd_infinity.py``). The slope is reported too: it is the bias
constant, how much FID at N = 1 would exceed FD∞ (larger: the estimate needs more samples).
Subsets with fewer samples than feature dimensions make FID rank-deficient; the warning of
:func:`~.frechet.fid` is emitted once, not once per size.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
from medsynbench.errors import DataError, ParameterError
from medsynbench.kinds import Metric, MetricInputs, Quantity, RunContext
from medsynbench.params import Param

from ._inputs import (
    ArrayLike,
    MetricWarning,
    as_features,
    check_dims,
    check_pair,
    resolve_device,
    warn,
)
from .frechet import _frechet, _statistics, fid

__all__ = ["FDInfinityMetric", "fd_infinity", "fd_infinity_sizes"]


def fd_infinity_sizes(n_fake: int, points: int) -> np.ndarray:
    """The synthetic subset sizes FID is evaluated at (dgm-eval's rule, module docstring)."""
    return np.linspace(min(5000, max(n_fake // 10, 2)), n_fake, points).astype("int32")


def fd_infinity(real: ArrayLike, fake: ArrayLike, *, points: int = 15, seed: int = 0,
                device: str = "auto") -> dict[str, float]:
    """``{"fd_infinity", "fd_infinity_slope"}``: FID_N extrapolated linearly in 1/N to N = ∞."""
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise ParameterError(f"points={points!r}: a line needs at least 2 sample sizes")
    dev = resolve_device(device)
    check_pair(real, fake, ("real", "fake"))
    r = as_features(real, "real", dev)
    f = as_features(fake, "fake", dev)
    check_dims(r, f, ("real", "fake"), "feature dimensions")
    sizes = fd_infinity_sizes(f.shape[0], points)
    if len(np.unique(sizes)) < 2:
        raise DataError(f"fake has {f.shape[0]} samples: FD∞ needs at least 3 to evaluate FID "
                        "at two different sizes (and thousands for a useful extrapolation)")
    rng = np.random.default_rng(seed)
    values = np.empty(len(sizes))
    real_mu, real_sigma = _statistics(r, "real")  # once; only the lower triangle is filled
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetricWarning)
        for j, size in enumerate(sizes):
            subset = f[torch.from_numpy(rng.choice(f.shape[0], int(size), replace=False))
                       .to(f.device)]
            if min(r.shape[0], int(size)) <= r.shape[1]:  # fid's exact small-Gram route
                values[j] = fid(r, subset, device=str(dev))
            else:
                mu, sigma = _statistics(subset, "fake")
                values[j] = _frechet(real_mu, real_sigma, mu, sigma)
    if any(issubclass(w.category, MetricWarning) for w in caught):
        warn(f"FD∞: some FID_N were computed from fewer samples (smallest N = {sizes[0]}, "
             f"real {r.shape[0]}) than the {r.shape[1]} feature dimensions; the covariances "
             "are rank-deficient and the extrapolation is unreliable")
    inverse = 1.0 / sizes.astype(np.float64)
    design = np.stack([np.ones_like(inverse), inverse], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, values, rcond=None)
    return {"fd_infinity": float(intercept), "fd_infinity_slope": float(slope)}


def _points(value: int) -> str | None:
    return None if value >= 2 else f"must be ≥ 2 (a line needs two sizes), got {value}"


class FDInfinityMetric(Metric):
    """FID extrapolated to infinitely many synthetic samples (Chong & Forsyth 2020)."""

    name = "fd-infinity"
    version = "0.1.0"
    description = "FD∞: FID at several synthetic sample sizes N, linear fit in 1/N, intercept"
    input = "features"
    parameters: ClassVar[Mapping[str, Param]] = {
        "points": Param(15, int, "number of sample sizes N the line is fitted through",
                        check=_points),
    }
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "fd_infinity": Quantity("fidelity", False, "Fréchet distance extrapolated to N = ∞"),
        "fd_infinity_slope": Quantity("fidelity", False, "slope b of FID_N = FD∞ + b/N: the "
                                      "finite-sample bias constant"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        return fd_infinity(inputs.real, inputs.synthetic, points=self.params["points"],
                           seed=ctx.seed, device=ctx.device)
