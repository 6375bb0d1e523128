"""The CPU float32 screening (plugins/metrics/screen.py) gives exactly the float64 results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from medsynbench import metrics
from medsynbench.plugins.metrics import knn, screen
from medsynbench.plugins.metrics.manifold import prepare


def all_metrics(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, Any]:
    return {
        "prdc": metrics.prdc(real, fake, k=k, device="cpu"),
        "privacy": metrics.knn_privacy(real, fake, k=k, device="cpu"),
        "authenticity": metrics.authenticity(real, fake, device="cpu"),
    }


def float64_only(monkeypatch: pytest.MonkeyPatch, fn: Callable[[], Any]) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(knn, "SCREEN_DEVICES", set())
        return fn()


def count_rechecks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the number of pairs of every exact float64 recheck call."""
    calls: list[int] = []
    original = screen._pair_distances

    def counting(a: Any, rows: torch.Tensor, b: Any, cols: torch.Tensor) -> torch.Tensor:
        calls.append(rows.shape[0])
        return original(a, rows, b, cols)

    monkeypatch.setattr(screen, "_pair_distances", counting)
    return calls


def tie_heavy_sets(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Integer lattice points in 6 of 40 dimensions (many exactly equal distances), duplicated
    reals, copies of reals among the fakes, and near-duplicates 1e-7 apart."""
    real = np.zeros((150, 40))
    real[:, :6] = rng.integers(0, 3, size=(150, 6))
    real[140:] = real[:10]  # duplicated real images
    fake = np.zeros((120, 40))
    fake[:, :6] = rng.integers(0, 3, size=(120, 6))
    fake[:20] = real[20:40]  # copies
    fake[20:30] = real[40:50] + 1e-7 * rng.normal(size=(10, 40))  # near-copies
    return real, fake


@pytest.fixture(params=["gram", "strips"])
def knn_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with k-NN candidates from the whole Gram matrix and from strips."""
    if request.param == "strips":
        monkeypatch.setattr(screen, "_GRAM_BYTES", 0)
    return str(request.param)


@pytest.mark.parametrize("case", ["gaussian", "ties"])
def test_screened_results_equal_float64(case: str, knn_path: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    if case == "gaussian":
        real, fake = rng.normal(size=(300, 64)), rng.normal(size=(250, 64)) + 0.1
    else:
        real, fake = tie_heavy_sets(rng)
    assert all_metrics(real, fake) == float64_only(monkeypatch, lambda: all_metrics(real, fake))


def test_screened_neighbours_equal_float64(knn_path: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real, fake = tie_heavy_sets(np.random.default_rng(12))
    screened = prepare({"real": real, "fake": fake}, "euclidean", "cpu")[0]
    assert screened.screened is not None
    plain = float64_only(monkeypatch, lambda: prepare({"real": real}, "euclidean", "cpu")[0])
    assert plain.screened is None
    ours, reference = knn.neighbour_distances(screened, 5), knn.neighbour_distances(plain, 5)
    assert torch.equal(ours == 0, reference == 0)  # duplicates: exactly 0 in both
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=0)


def test_every_pair_undecided_still_exact(knn_path: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A huge error bound sends every pair to the float64 recheck and every k-NN row to the
    float64 fallback: the results must not change."""
    real, fake = tie_heavy_sets(np.random.default_rng(13))
    expected = all_metrics(real, fake)
    monkeypatch.setattr(screen, "error_scale", lambda d: 10.0)
    calls = count_rechecks(monkeypatch)
    assert all_metrics(real, fake) == expected
    assert max(calls) == 120 * 150  # a whole fake × real block was rechecked


def test_fallback_rows_and_small_blocks(knn_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No spare candidates (ties at the k-th neighbour force the float64 row fallback) and
    blocks of a few rows give the same results."""
    real, fake = tie_heavy_sets(np.random.default_rng(14))
    expected = all_metrics(real, fake)
    monkeypatch.setattr(screen, "EXTRA_CANDIDATES", 0)
    monkeypatch.setattr(screen, "_BLOCK_BYTES", 4 * 150 * 7)
    assert all_metrics(real, fake) == expected


def test_typical_features_need_few_rechecks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The screening does its job: on continuous features well under 1% of pairs are
    recomputed in float64."""
    rng = np.random.default_rng(15)
    real, fake = rng.normal(size=(400, 256)), rng.normal(size=(400, 256)) + 0.05
    rechecked = count_rechecks(monkeypatch)
    metrics.prdc(real, fake, k=5, device="cpu")
    candidates = 2 * 400 * (5 + screen.EXTRA_CANDIDATES)  # neighbour candidates, both sets
    assert sum(rechecked) - candidates < 0.01 * 400 * 400


@pytest.mark.parametrize("factor", [1e-30, 1e30])
def test_extreme_feature_scales(factor: float) -> None:
    """Common power-of-two scaling keeps float32 away from underflow and overflow."""
    rng = np.random.default_rng(16)
    real, fake = rng.normal(size=(120, 32)), rng.normal(size=(100, 32)) + 0.2
    assert all_metrics(real * factor, fake * factor) == all_metrics(real, fake)


def test_reduced_float32_matmul_precision_is_overridden_and_restored() -> None:
    """A user's bf16/tf32 float32-matmul setting (legacy or per-backend API) does not reach the
    screening, and is still in place afterwards."""
    rng = np.random.default_rng(17)
    real, fake = rng.normal(size=(200, 48)), rng.normal(size=(150, 48))
    expected = all_metrics(real, fake)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        assert all_metrics(real, fake) == expected
        assert torch.get_float32_matmul_precision() == "medium"
        backend = getattr(torch.backends.mkldnn, "matmul", None)
        if backend is not None and hasattr(backend, "fp32_precision"):  # torch ≥ 2.9
            backend.fp32_precision = "bf16"
            assert all_metrics(real, fake) == expected
            assert backend.fp32_precision == "bf16"
    finally:
        torch.set_float32_matmul_precision(previous)


def test_all_identical_points() -> None:
    x = np.ones((20, 8))
    out = metrics.prdc(x, x, k=3, device="cpu")
    # every radius is 0 and nothing is closer than 0
    assert out == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
