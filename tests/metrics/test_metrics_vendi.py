"""Vendi score: hand-computed cases, agreement with the vendi-score package, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from medsynbench import MetricInputs, RunContext, metrics
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.metrics.vendi import VendiMetric, vendi_score
from vendi_score import vendi


def test_identical_directions_score_one_and_orthogonal_score_n() -> None:
    same = np.array([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]])  # one direction, three lengths
    assert vendi_score(same, device="cpu") == pytest.approx(1.0, abs=1e-12)
    assert vendi_score(np.eye(5) * 3, device="cpu") == pytest.approx(5.0, abs=1e-12)


def test_hand_computed_two_vectors_at_sixty_degrees() -> None:
    # cos = 1/2: K/2 = [[1/2, 1/4], [1/4, 1/2]] has eigenvalues 3/4 and 1/4.
    x = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert vendi_score(x, device="cpu") == pytest.approx(expected, abs=1e-12)
    # order 2: 1 / Σλ² = 1 / (9/16 + 1/16) = 1.6
    assert vendi_score(x, q=2, device="cpu") == pytest.approx(1.6, abs=1e-12)
    assert vendi_score(x, q=math.inf, device="cpu") == pytest.approx(4 / 3, abs=1e-12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the package's scipy.sparse.csr
@pytest.mark.parametrize("shape", [(60, 8), (12, 40)])  # n > d (d×d route) and n < d (n×n)
@pytest.mark.parametrize("q", [1.0, 0.5, 2.0])
def test_equals_the_vendi_score_package(shape: tuple[int, int], q: float) -> None:
    rng = np.random.default_rng(shape[0])
    features = rng.normal(size=shape) + 0.3 * rng.normal(size=(1, shape[1]))
    ours = vendi_score(features, q=q, device="cpu")
    assert ours == pytest.approx(vendi.score_dual(features, q=q), abs=1e-6)
    kernel = features @ features.T  # the package's n×n route with its own normalisation
    assert ours == pytest.approx(vendi.score_K(kernel, q=q, normalize=True), abs=1e-6)


def test_scale_of_each_sample_does_not_matter() -> None:
    rng = np.random.default_rng(3)
    features = rng.normal(size=(20, 6))
    scaled = features * rng.uniform(0.1, 10, size=(20, 1))
    assert vendi_score(scaled, device="cpu") == pytest.approx(vendi_score(features, device="cpu"),
                                                              abs=1e-10)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(DataError, match="1 of 3 rows are all zero"):
        vendi_score(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]), device="cpu")
    with pytest.raises(ParameterError, match="q=0"):
        vendi_score(np.eye(3), q=0, device="cpu")
    with pytest.raises(ParameterError, match="q"):
        VendiMetric(q=-1.0)


def test_plugin_reports_synthetic_and_real(ctx: RunContext) -> None:
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(30, 5)), np.repeat(rng.normal(size=(1, 5)), 20, axis=0)
    inputs = MetricInputs(real=real, synthetic=fake, heldout=None, real_labels=np.zeros(30),
                          synthetic_labels=np.zeros(20), class_names=("a",))
    values = VendiMetric().compute(inputs, ctx)
    assert values["vendi"] == pytest.approx(1.0, abs=1e-9)  # a collapsed generator
    assert values["real_vendi"] == pytest.approx(vendi.score_dual(real), abs=1e-6)
    assert values["vendi"] == metrics.vendi_score(fake, device="cpu")
    assert set(values) == set(VendiMetric.quantities)
    assert all(q.axis == "variety" and q.higher_is_better
               for q in VendiMetric.quantities.values())
