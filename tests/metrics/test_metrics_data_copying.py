"""C_T data-copying test: agreement with Meehan et al.'s code (as in dgm-eval), hand-computed
Z_U, copies detected, clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from medsynbench import MetricInputs, RunContext, metrics
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.metrics.data_copying import (
    DataCopyingMetric,
    ct_statistic,
    data_copying,
    z_u,
)
from scipy.stats import mannwhitneyu
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors


# --- the reference: dgm_eval/metrics/ct.py (layer6ai-labs/dgm-eval @ d57a6d2, "Taken from
# https://github.com/casey-meehan/data-copying"), transcribed; prints dropped, the k-means
# seed made a parameter (dgm-eval leaves it unseeded).
def ref_zu(Pn: np.ndarray, Qm: np.ndarray, T: np.ndarray) -> float:
    m, n = Qm.shape[0], Pn.shape[0]
    T_NN = NearestNeighbors(n_neighbors=1).fit(T)
    LQm, _ = T_NN.kneighbors(X=Qm, n_neighbors=1)
    LPn, _ = T_NN.kneighbors(X=Pn, n_neighbors=1)
    u, _ = mannwhitneyu(LQm, LPn, alternative="less")
    mean = (n * m / 2) - 0.5
    std = np.sqrt(n * m * (n + m + 1) / 12)
    return float(np.asarray((u - mean) / std).item())


def ref_zu_cells(Pn, Pn_cells, Qm, Qm_cells, T, T_cells):  # type: ignore[no-untyped-def]
    k = len(np.unique(Pn_cells))
    zu_cells = np.zeros(k)
    for i in range(k):
        Pn_cell_i, Qm_cell_i, T_cell_i = Pn[Pn_cells == i], Qm[Qm_cells == i], T[T_cells == i]
        if len(Pn_cell_i) * len(T_cell_i) == 0:
            raise ValueError(f"Cell {i} lacks test samples and/or training samples.")
        zu_cells[i] = ref_zu(Pn_cell_i, Qm_cell_i, T_cell_i) if len(Qm_cell_i) > 0 else 0
    return zu_cells


def ref_c_t(Pn, Pn_cells, Qm, Qm_cells, T, T_cells, tau):  # type: ignore[no-untyped-def]
    m, n = Qm.shape[0], Pn.shape[0]
    k = np.max(np.unique(T_cells)) + 1
    labels, cts = np.unique(Qm_cells, return_counts=True)
    Qm_cts = np.zeros(k)
    Qm_cts[labels.astype(int)] = cts
    Pi_tau = Qm_cts / m > tau
    labels, cts = np.unique(Pn_cells, return_counts=True)
    Pn_cts = np.zeros(k)
    Pn_cts[labels.astype(int)] = cts
    Pn_of_pi = Pn_cts / n
    Zu_scores = ref_zu_cells(Pn, Pn_cells, Qm, Qm_cells, T, T_cells)
    return float(Pn_of_pi[Pi_tau].dot(Zu_scores[Pi_tau]) / np.sum(Pn_of_pi[Pi_tau]))


def ref_compute_ct_score(train_feat: np.ndarray, test_feat: np.ndarray, gen_feat: np.ndarray,
                         seed: int) -> float:
    if train_feat.shape[1] > 64:
        pca_xf = PCA(n_components=64).fit(train_feat)
        train_feat, test_feat, gen_feat = (pca_xf.transform(x)
                                           for x in (train_feat, test_feat, gen_feat))
    km_clf = KMeans(n_clusters=3, n_init=10, random_state=seed).fit(train_feat)
    T_labels = km_clf.predict(train_feat)
    Pn_labels = km_clf.predict(test_feat)
    Qm_labels = km_clf.predict(gen_feat)
    return ref_c_t(test_feat, Pn_labels, gen_feat, Qm_labels, train_feat, T_labels,
                   tau=20 / len(gen_feat))
# --- end of the reference


def three_blobs(seed: int, n: int, dim: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * dim, [6.0] + [0.0] * (dim - 1), [0.0, 6.0] + [0.0] * (dim - 2)])
    return centres[np.arange(n) % 3] + rng.normal(size=(n, dim))


def test_z_u_hand_computed() -> None:
    # generated (1, 3) vs held-out (2): U = [1 > 2] + [3 > 2] = 1; mean 2·1/2 − ½ = ½;
    # σ = √(2·1·4/12) → Z = ½ / √(2/3)
    assert z_u(np.array([1.0, 3.0]), np.array([2.0])) == pytest.approx(0.5 / math.sqrt(2 / 3))
    # one tie counts ½: U = ½, mean 0, σ = √(3/12) = ½ → Z = 1
    assert z_u(np.array([2.0]), np.array([2.0])) == pytest.approx(1.0, abs=1e-12)


def test_z_u_counts_u_as_scipy_does() -> None:
    rng = np.random.default_rng(0)
    generated = rng.integers(0, 6, 40).astype(float)  # many ties
    heldout = rng.integers(0, 6, 25).astype(float)
    u = mannwhitneyu(generated, heldout, alternative="less").statistic
    expected = (u - (40 * 25 / 2 - 0.5)) / math.sqrt(40 * 25 * 66 / 12)
    assert z_u(generated, heldout) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_ct_equals_the_reference_on_the_same_cells(seed: int) -> None:
    rng = np.random.default_rng(seed)
    train, test = three_blobs(seed, 150), three_blobs(seed + 10, 90)
    gen = np.concatenate([train[:40] + 0.01 * rng.normal(size=(40, 4)), three_blobs(seed + 20, 60)])
    cells = [rng.integers(0, 4, len(train)), rng.integers(0, 4, len(test)),
             rng.integers(0, 3, len(gen))]
    cells[2][:25] = 3  # a cell with 25 synthetic samples...
    for minimum in (0, 20, 25):  # ...in or out of Π_τ
        reference = ref_c_t(test, cells[1], gen, cells[2], train, cells[0],
                            tau=minimum / len(gen))
        ours = ct_statistic(torch.from_numpy(train), cells[0], torch.from_numpy(test), cells[1],
                            torch.from_numpy(gen), cells[2], 4, minimum)
        assert ours == pytest.approx(reference, abs=1e-6)


@pytest.mark.parametrize("dim", [4, 70])  # 70 > 64: the PCA step
def test_equals_dgm_eval_compute_ct_score(dim: int) -> None:
    train, test = three_blobs(1, 120, dim), three_blobs(2, 90, dim)
    gen = np.concatenate([train[:30], three_blobs(3, 90, dim)])
    ours = data_copying(train, gen, test, seed=5, device="cpu")["ct"]
    assert ours == pytest.approx(ref_compute_ct_score(train, test, gen, seed=5), abs=1e-6)


def test_copies_are_strongly_negative_and_new_samples_are_not() -> None:
    train, test = three_blobs(4, 150), three_blobs(5, 150)
    rng = np.random.default_rng(6)
    copies = train[rng.choice(150, 120)] + 1e-3 * rng.normal(size=(120, 4))
    assert data_copying(train, copies, test, device="cpu")["ct"] < -5
    assert abs(data_copying(train, three_blobs(7, 120), test, device="cpu")["ct"]) < 3


def test_errors_name_the_fix(ctx: RunContext) -> None:
    train, test, gen = three_blobs(8, 60), three_blobs(9, 30), three_blobs(10, 30)
    with pytest.raises(DataError, match="no cell holds more than min_cell_samples = 20"):
        data_copying(train, gen, test, device="cpu")
    with pytest.raises(DataError, match=r"cell \d of 3 holds \d+ training and 0 held-out"):
        data_copying(train, gen, np.tile([6.0, 0, 0, 0], (5, 1)), min_cell_samples=0,
                     device="cpu")
    with pytest.raises(DataError, match="feature dimensions"):
        data_copying(train, gen, test[:, :3], device="cpu")
    with pytest.raises(ParameterError, match="cells=0"):
        data_copying(train, gen, test, cells=0, device="cpu")
    with pytest.raises(ParameterError, match="cells"):
        DataCopyingMetric(cells=0)
    inputs = MetricInputs(real=train, synthetic=gen, heldout=None, real_labels=np.zeros(60),
                          synthetic_labels=np.zeros(30), class_names=("a",))
    with pytest.raises(DataError, match="needs held-out real images"):
        DataCopyingMetric().compute(inputs, ctx)


def test_plugin_equals_the_function(ctx: RunContext) -> None:
    train, test, gen = three_blobs(11, 90), three_blobs(12, 60), three_blobs(13, 90)
    inputs = MetricInputs(real=train, synthetic=gen, heldout=test, real_labels=np.zeros(90),
                          synthetic_labels=np.zeros(90), class_names=("a",))
    values = DataCopyingMetric(cells=2, min_cell_samples=10).compute(inputs, ctx)
    assert values == metrics.data_copying(train, gen, test, cells=2, min_cell_samples=10,
                                          seed=ctx.seed, device="cpu")
    assert DataCopyingMetric.quantities["ct"].axis == "privacy"
