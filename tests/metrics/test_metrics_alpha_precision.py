"""α-precision / β-recall: agreement with synthcity's AlphaPrecision (naive variant), a
hand-computed case, declared axes."""

from __future__ import annotations

import numpy as np
import pytest
from medsynbench import MetricInputs, RunContext, metrics
from medsynbench.errors import DataError
from medsynbench.plugins.metrics.alpha_precision import (
    ALPHAS,
    AlphaPrecisionMetric,
    alpha_precision_curves,
    alpha_precision_recall,
)
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import MinMaxScaler


def synthcity_naive(x: np.ndarray, x_syn: np.ndarray) -> tuple[list[float], list[float],
                                                               float, float]:
    """synthcity 0.2.12 ``AlphaPrecision.metrics`` (synthcity/metrics/eval_statistical.py)
    with ``emb_center=None``, on the inputs its ``_evaluate`` gives it for the ``*_naive``
    outputs (``MinMaxScaler`` fitted on the real data). Transcribed; authenticity dropped."""
    scaler = MinMaxScaler().fit(x)
    X, X_syn = scaler.transform(x), scaler.transform(x_syn)
    emb_center = np.mean(X, axis=0)
    alphas = np.linspace(0, 1, 30)
    Radii = np.quantile(np.sqrt(np.sum((X - emb_center) ** 2, axis=1)), alphas)
    synth_center = np.mean(X_syn, axis=0)
    alpha_precision_curve, beta_coverage_curve = [], []
    synth_to_center = np.sqrt(np.sum((X_syn - emb_center) ** 2, axis=1))
    real_to_real, _ = NearestNeighbors(n_neighbors=2, p=2).fit(X).kneighbors(X)
    real_to_synth, real_to_synth_args = NearestNeighbors(n_neighbors=1, p=2).fit(
        X_syn).kneighbors(X)
    real_to_real = real_to_real[:, 1].squeeze()
    real_to_synth = real_to_synth.squeeze()
    real_to_synth_args = real_to_synth_args.squeeze()
    real_synth_closest = X_syn[real_to_synth_args]
    real_synth_closest_d = np.sqrt(np.sum((real_synth_closest - synth_center) ** 2, axis=1))
    closest_synth_Radii = np.quantile(real_synth_closest_d, alphas)
    for k in range(len(Radii)):
        alpha_precision_curve.append(np.mean(synth_to_center <= Radii[k]))
        beta_coverage_curve.append(np.mean((real_to_synth <= real_to_real)
                                           * (real_synth_closest_d <= closest_synth_Radii[k])))
    delta_precision = 1 - np.sum(np.abs(alphas - np.array(alpha_precision_curve))) / np.sum(alphas)
    delta_coverage = 1 - np.sum(np.abs(alphas - np.array(beta_coverage_curve))) / np.sum(alphas)
    return alpha_precision_curve, beta_coverage_curve, delta_precision, delta_coverage


@pytest.mark.parametrize("seed, n, dim, shift", [(0, 80, 4, 0.0), (1, 120, 10, 0.5),
                                                 (2, 50, 3, 2.0)])
def test_equals_synthcity_naive(seed: int, n: int, dim: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, dim)) * rng.uniform(0.5, 5, size=dim) + rng.normal(size=dim)
    fake = rng.normal(size=(n, dim)) * rng.uniform(0.5, 5, size=dim) + shift
    fake[: n // 10] = real[: n // 10]  # some exact copies: distance-0 ties
    precision, recall, delta_p, delta_r = synthcity_naive(real, fake)
    curves = alpha_precision_curves(real, fake, device="cpu")
    np.testing.assert_allclose(curves["alpha_precision"], precision, atol=1e-12)
    np.testing.assert_allclose(curves["beta_recall"], recall, atol=1e-12)
    ours = alpha_precision_recall(real, fake, device="cpu")
    assert ours["alpha_precision"] == pytest.approx(delta_p, abs=1e-6)
    assert ours["beta_recall"] == pytest.approx(delta_r, abs=1e-6)


def test_hand_computed_copy_of_four_points() -> None:
    # Real 0, 1, 3, 4 → scaled 0, 1/4, 3/4, 1 (exact in binary); centre 1/2; radii 1/2, 1/4,
    # 1/4, 1/2. np.quantile of (1/4, 1/4, 1/2, 1/2) at α is 1/4 for 3α ≤ 1, then rises,
    # reaching 1/2 only at 3α = 2: half the points are inside below α = 2/3, all from there on.
    real = np.array([[0.0], [1.0], [3.0], [4.0]])
    expected_curve = np.where(ALPHAS >= 2 / 3, 1.0, 0.5)
    # A perfect copy: every real's nearest synthetic is itself and both centres coincide,
    # so β-recall's curve is the same.
    curves = alpha_precision_curves(real, real.copy(), device="cpu")
    np.testing.assert_array_equal(curves["alpha_precision"], expected_curve)
    np.testing.assert_array_equal(curves["beta_recall"], expected_curve)
    alphas = np.arange(30) / 29
    area = sum(abs(a - 0.5) for a in alphas[:20]) + sum(1 - a for a in alphas[20:])
    expected = 1 - area / alphas.sum()
    out = alpha_precision_recall(real, real, device="cpu")
    assert out == pytest.approx({"alpha_precision": expected, "beta_recall": expected},
                                abs=1e-12)


def test_far_away_synthetic_set_scores_low() -> None:
    rng = np.random.default_rng(4)
    real = rng.normal(size=(60, 3))
    far = rng.normal(size=(60, 3)) + 50
    out = alpha_precision_recall(real, far, device="cpu")
    # nothing inside any real support: the curve is 0, area Σα / Σα → 0; β-recall also 0
    assert out["alpha_precision"] == pytest.approx(0.0, abs=1e-12)
    assert out["beta_recall"] == pytest.approx(0.0, abs=1e-12)


def test_unequal_sizes_and_bad_input(ctx: RunContext) -> None:
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(40, 4)), rng.normal(size=(25, 4))
    inputs = MetricInputs(real=real, synthetic=fake, heldout=None, real_labels=np.zeros(40),
                          synthetic_labels=np.zeros(25), class_names=("a",))
    values = AlphaPrecisionMetric().compute(inputs, ctx)
    assert values == metrics.alpha_precision_recall(real, fake, device="cpu")
    assert 0 <= values["alpha_precision"] <= 1 and 0 <= values["beta_recall"] <= 1
    with pytest.raises(DataError, match="real has 1 samples"):
        alpha_precision_recall(real[:1], fake, device="cpu")
    with pytest.raises(DataError, match="NaN"):
        alpha_precision_recall(real, np.full((3, 4), np.nan), device="cpu")
    quantities = AlphaPrecisionMetric.quantities
    assert (quantities["alpha_precision"].axis, quantities["beta_recall"].axis) == (
        "fidelity", "variety")
    assert all(q.higher_is_better for q in quantities.values())
