"""``data-copying``: the C_T test for data copying (Meehan, Chaudhuri & Dasgupta 2020, "A
Non-Parametric Test to Detect Data-Copying in Generative Models"), with held-out real data.

Three sets: T = the real training set (what the generator saw), P = held-out real samples
(never seen), Q = synthetic. A generator that copies T puts its samples *closer* to T than
genuinely new samples from the same distribution are; one that underfits puts them farther.

1. ``pca_components`` (default 64, as dgm-eval): when the features have more dimensions, all
   three sets are projected on the first principal components of T (scikit-learn ``PCA`` with
   the exact ``svd_solver="full"``; dgm-eval leaves the solver to scikit-learn);
2. T is partitioned into ``cells`` cells (default 3, as dgm-eval) by k-means (scikit-learn
   ``KMeans(n_clusters=cells, n_init=10, random_state=seed)``); every sample of T, P and Q is
   assigned to its nearest centre (``predict``);
3. in cell π, with L(x) = the Euclidean distance from x to its nearest training sample *of
   that cell* (exact, :mod:`.knn`), the Mann–Whitney statistic of the generated against the
   held-out distances U = Σ_{q∈Q_π} Σ_{p∈P_π} ([L(q) > L(p)] + ½[L(q) = L(p)]) (exact
   equality; mid-ranks for ties) is z-scored under the null with the reference code's
   continuity correction: Z_U(π) = (U − (m n/2 − ½)) / √(m n (m + n + 1)/12), m = |Q_π|,
   n = |P_π| (no tie correction of the variance);
4. the cells Π_τ with more than ``min_cell_samples`` synthetic samples (τ = 20/|Q| in the
   paper and in dgm-eval: Q(π) > τ) enter C_T = Σ_{π∈Π_τ} P(π) Z_U(π) / Σ_{π∈Π_τ} P(π),
   P(π) the share of held-out samples in π.

C_T ≪ 0 (below about −3) is evidence of data copying, ≈ 0 is what a generator of new samples
from the right distribution gets, ≫ 0 means its samples are farther from the training data
than new real samples are (underfitting, a fidelity problem). It is reported on the privacy
axis, higher better, because privacy is what the test guards; read a large positive value
beside the fidelity metrics, not as extra privacy. Equal to Meehan et al.'s ``C_T`` (as copied
into dgm-eval's ``ct.py``) to 1e-6 on the same cell labels, and to the whole of dgm-eval's
``compute_CTscore`` with the same k-means seed (``tests/metrics/test_metrics_data_copying.py``).
A cell without held-out samples (the reference raises ``ValueError``) and a partition in which
no cell has enough synthetic samples (C_T = 0/0) are :class:`DataError` naming the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
from medsynbench.errors import DataError, ParameterError
from medsynbench.kinds import Metric, MetricInputs, Quantity, RunContext
from medsynbench.params import Param, at_least

from ._inputs import ArrayLike, as_features, check_dims, check_pair, resolve_device
from .knn import Points, iter_blocks

__all__ = ["DataCopyingMetric", "assign_cells", "ct_statistic", "data_copying", "project", "z_u"]


def z_u(generated: np.ndarray, heldout: np.ndarray) -> float:
    """Z-scored Mann–Whitney U of generated vs held-out nearest-training distances (step 3)."""
    m, n = len(generated), len(heldout)
    ordered = np.sort(heldout)
    below = np.searchsorted(ordered, generated, side="left")
    not_above = np.searchsorted(ordered, generated, side="right")
    u = float(below.sum() + 0.5 * (not_above - below).sum())
    return (u - (m * n / 2 - 0.5)) / float(np.sqrt(m * n * (m + n + 1) / 12))


def _nearest(points: torch.Tensor, train: torch.Tensor) -> np.ndarray:
    centre = train.mean(dim=0)
    a, b = Points.of(points, "euclidean", centre), Points.of(train, "euclidean", centre)
    out = np.empty(len(points))
    for start, stop, dist in iter_blocks(a, b):
        out[start:stop] = dist.min(dim=1).values.cpu().numpy()
    return out


def ct_statistic(train: torch.Tensor, train_cells: np.ndarray, heldout: torch.Tensor,
                 heldout_cells: np.ndarray, fake: torch.Tensor, fake_cells: np.ndarray,
                 cells: int, min_cell_samples: int) -> float:
    """C_T from features and their cell labels 0 … cells−1 (steps 3–4)."""
    scores, weights = [], []
    for cell in range(cells):
        in_train, in_held = train_cells == cell, heldout_cells == cell
        if not in_train.any() or not in_held.any():
            raise DataError(
                f"data-copying: cell {cell} of {cells} holds {int(in_train.sum())} training and "
                f"{int(in_held.sum())} held-out samples; every cell needs both — use fewer "
                "cells or more held-out images")
        in_fake = fake_cells == cell
        if int(in_fake.sum()) <= min_cell_samples:
            continue
        cell_train = train[torch.from_numpy(in_train).to(train.device)]
        generated = _nearest(fake[torch.from_numpy(in_fake).to(fake.device)], cell_train)
        held = _nearest(heldout[torch.from_numpy(in_held).to(heldout.device)], cell_train)
        scores.append(z_u(generated, held))
        weights.append(in_held.mean())
    if not scores:
        counts = np.bincount(fake_cells, minlength=cells).tolist()
        raise DataError(
            f"data-copying: no cell holds more than min_cell_samples = {min_cell_samples} "
            f"synthetic samples (per cell: {counts}); use more synthetic images, fewer cells "
            "or a smaller min_cell_samples")
    return float(np.dot(weights, scores) / np.sum(weights))


def project(train: np.ndarray, others: list[np.ndarray], pca_components: int
            ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Step 1: ``train`` and ``others`` on the first principal components of ``train``."""
    if not pca_components or train.shape[1] <= pca_components:
        return train, others
    if train.shape[0] < pca_components:
        raise DataError(f"data-copying: the training set has {train.shape[0]} samples, fewer "
                        f"than pca_components = {pca_components}; lower pca_components")
    from sklearn.decomposition import PCA

    pca = PCA(n_components=pca_components, svd_solver="full").fit(train)
    return pca.transform(train), [pca.transform(x) for x in others]


def assign_cells(train: np.ndarray, others: list[np.ndarray], cells: int, seed: int
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Step 2: k-means cell labels of ``train`` and of each of ``others``."""
    from sklearn.cluster import KMeans

    if train.shape[0] < cells:
        raise DataError(f"data-copying: {cells} cells need at least {cells} training samples, "
                        f"got {train.shape[0]}")
    kmeans = KMeans(n_clusters=cells, n_init=10, random_state=seed).fit(train)
    return kmeans.predict(train), [kmeans.predict(x) for x in others]


def data_copying(real: ArrayLike, fake: ArrayLike, heldout: ArrayLike, *, cells: int = 3,
                 min_cell_samples: int = 20, pca_components: int = 64, seed: int = 0,
                 device: str = "auto") -> dict[str, float]:
    """``{"ct"}``: Meehan et al.'s C_T of ``fake`` against training ``real`` and ``heldout``."""
    for name, value, low in (("cells", cells, 1), ("min_cell_samples", min_cell_samples, 0),
                             ("pca_components", pca_components, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ParameterError(f"{name}={value!r}: must be an integer ≥ {low}")
    dev = resolve_device(device)
    sets = {"real": real, "fake": fake, "heldout": heldout}
    for other in ("fake", "heldout"):
        check_pair(real, sets[other], ("real", other))
    train, gen, held = (as_features(x, name, dev) for name, x in sets.items())
    check_dims(train, gen, ("real", "fake"), "feature dimensions")
    check_dims(train, held, ("real", "heldout"), "feature dimensions")
    train_np, (held_np, gen_np) = project(
        train.cpu().numpy(), [held.cpu().numpy(), gen.cpu().numpy()], pca_components)
    train_cells, (held_cells, fake_cells) = assign_cells(train_np, [held_np, gen_np], cells, seed)
    # distances are measured in the projected space, as in the reference
    train, held, gen = (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(dev)
                        for x in (train_np, held_np, gen_np))
    return {"ct": ct_statistic(train, train_cells, held, held_cells, gen, fake_cells, cells,
                               min_cell_samples)}


class DataCopyingMetric(Metric):
    """Meehan et al.'s C_T data-copying test against held-out real images."""

    name = "data-copying"
    version = "0.1.0"
    description = ("C_T data-copying test (Meehan et al. 2020): per-cell z-scored Mann–Whitney "
                   "U of synthetic vs held-out distances to the training set")
    input = "features"
    parameters: ClassVar[Mapping[str, Param]] = {
        "cells": Param(3, int, "k-means cells on the training features (dgm-eval: 3)",
                       check=at_least(1)),
        "min_cell_samples": Param(20, int, "a cell enters C_T with more synthetic samples "
                                  "than this (τ·|Q| in the paper: 20)",
                                  check=at_least(0)),
        "pca_components": Param(64, int, "project features with more dimensions on this many "
                                "principal components of the training set (0: never)",
                                check=at_least(0)),
    }
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "ct": Quantity("privacy", True, "C_T z-score: ≪ 0 copies training images, ≈ 0 "
                       "ideal, ≫ 0 underfits"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        if inputs.heldout is None:
            raise DataError("metric 'data-copying' needs held-out real images (the dataset's "
                            "test split); the runner passed none")
        return data_copying(inputs.real, inputs.synthetic, inputs.heldout,
                            cells=self.params["cells"],
                            min_cell_samples=self.params["min_cell_samples"],
                            pca_components=self.params["pca_components"], seed=ctx.seed,
                            device=ctx.device)
