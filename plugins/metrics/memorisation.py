"""Memorisation metrics: distance to closest record (DCR) and authenticity.

DCR (distance to closest record), with R = real training set (the generator's training data),
H = held-out real set never seen by the generator, S = synthetic set, d as in ``knn``:

- ``dcr_median`` / ``dcr_p05``: median / 5th percentile over s of DCR(s) = min_i d(s, r_i).
- ``heldout_dcr_median``: median over h of min_i d(h, r_i) — how close genuinely unseen real
  images come to the training set; a ``dcr_median`` far below it suggests memorisation.
- ``closer_to_train``: fraction of s with min_i d(s, r_i) < min_j d(s, h_j) (strict ``<``: a
  tie counts as not closer). The larger of R and H is first subsampled without replacement to
  the size of the smaller (``numpy.random.default_rng(seed)``), so a generator that merely
  matches the real distribution scores ≈ 0.5 and one that copies its training data → 1.0.
Ties are judged as in :mod:`.knn` (relative 1e-9). Percentiles use linear interpolation
(``numpy.quantile``'s default).

Authenticity (Alaa et al. 2022, "How faithful is your synthetic data?", their reference
implementation): s is *inauthentic* when it is at least as close to its nearest real image r*
as r*'s own nearest other real image is: d(s, r*) ≤ r_1(r*). If several real images tie as
nearest, s is inauthentic when any of them satisfies this. ``authenticity`` = fraction of
authentic s. An exact copy of a real image is always inauthentic (d = 0 ≤ r_1).
"""

from __future__ import annotations

import numpy as np
import torch

from ._inputs import ArrayLike, check_k
from .knn import Points, closer, iter_blocks, neighbour_distances, not_farther
from .manifold import prepare

__all__ = ["authenticity", "dcr"]


def _nearest(a: Points, b: Points) -> torch.Tensor:
    out = torch.empty(len(a), dtype=torch.float64, device=a.device)
    for start, stop, dist in iter_blocks(a, b):
        out[start:stop] = dist.min(dim=1).values
    return out


def _subset(points: Points, size: int, rng: np.random.Generator) -> Points:
    if len(points) <= size:
        return points
    index = torch.from_numpy(np.sort(rng.choice(len(points), size, replace=False)))
    return Points.of(points.data[index.to(points.device)], points.distance)


def _quantile(values: torch.Tensor, q: float) -> float:
    return float(np.quantile(values.cpu().numpy(), q))


def dcr(real: ArrayLike, fake: ArrayLike, heldout: ArrayLike, *, distance: str = "euclidean",
        seed: int = 0, device: str = "auto") -> dict[str, float]:
    """Distance to closest record of ``fake`` in ``real`` (train), against ``heldout`` real."""
    reals, fakes, held = prepare({"real": real, "fake": fake, "heldout": heldout},
                                 distance, device)
    to_train = _nearest(fakes, reals)
    heldout_to_train = _nearest(held, reals)
    rng = np.random.default_rng(seed)
    size = min(len(reals), len(held))
    train_part, held_part = _subset(reals, size, rng), _subset(held, size, rng)
    nearer_train = closer(_nearest(fakes, train_part), _nearest(fakes, held_part))
    return {
        "dcr_median": _quantile(to_train, 0.5),
        "dcr_p05": _quantile(to_train, 0.05),
        "heldout_dcr_median": _quantile(heldout_to_train, 0.5),
        "closer_to_train": float(nearer_train.double().mean()),
    }


def authenticity(real: ArrayLike, fake: ArrayLike, *, distance: str = "euclidean",
                 device: str = "auto") -> dict[str, float]:
    """Fraction of synthetic samples that are not closer to their nearest real than it is to
    its own nearest real neighbour (Alaa et al. 2022)."""
    reals, fakes = prepare({"real": real, "fake": fake}, distance, device)
    check_k(1, len(reals), "real")
    r_1 = neighbour_distances(reals, 1)[:, 0]
    inauthentic = torch.empty(len(fakes), dtype=torch.bool, device=reals.device)
    for start, stop, dist in iter_blocks(fakes, reals):
        nearest = dist.min(dim=1, keepdim=True).values
        at_nearest = not_farther(dist, nearest)
        inauthentic[start:stop] = (at_nearest & not_farther(dist, r_1[None, :])).any(dim=1)
    return {"authenticity": 1.0 - float(inauthentic.double().mean())}
