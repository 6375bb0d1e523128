"""Chunked exact nearest-neighbour distances on CPU or GPU (torch), Euclidean or Hamming.

No N×M distance matrix is ever resident: distances are produced one block of rows at a time
(a few hundred MB at most) and reduced immediately by the caller.

Euclidean distances are computed in float64 as ‖a‖² + ‖b‖² − 2a·b (one matmul per block), on
sets first translated by a common centre (the first set's mean) to keep norms small. The
expansion cancels badly for near-identical vectors, so every pair whose squared distance falls
below 1e-4 × (largest squared norm of the two sets) is recomputed directly as Σ(a−b)²:
identical vectors get distance exactly 0, and every other distance keeps a relative error of
order 1e-13 (the worst-case bound at d = 2048 is ~1e-9).

Tie rule. The metrics compare distances with a strict ``<``; two distances that agree to a
relative 1e-9 (far below the precision of float32 encoder features) are treated as *equal*, so
``d < r`` is evaluated as ``d < r·(1 − 1e-9)`` (:func:`closer`). This makes every result
independent of block size, device and BLAS summation order — without it, whether a copy of a
real image lies "inside" another real's k-NN ball (an exact tie) would depend on rounding.

On the CPU (:data:`SCREEN_DEVICES`) Euclidean work is first screened in float32 with a proven
error bound and only undecidable pairs are recomputed this way (:mod:`.screen`): same results,
about twice the speed.

Hamming distances are normalised (fraction of differing positions) on integer code maps. The
count of differing positions is ``torch.cdist(p=0)`` on the codes held as float32 (integers
below 2^24 are exact, so the counts are exact): one fused kernel per block, no N×M×L
comparison tensor. Column chunks are sized to stay in the GPU's L2 cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import torch

from . import screen

__all__ = [
    "SCREEN_DEVICES",
    "TIE_RTOL",
    "Distance",
    "Points",
    "any_along",
    "block_distances",
    "closer",
    "closer_blocks",
    "iter_blocks",
    "neighbour_distances",
    "not_farther",
]

Distance = Literal["euclidean", "hamming"]

# Bytes one block of distances (rows × M float64) may take, and the bytes of code rows one
# Hamming kernel reads per operand (kept well inside the L2 cache on the GPU).
_ROWS_BUDGET = {"cuda": 1 << 30, "cpu": 1 << 27}
_HAMMING_BUDGET = {"cuda": 1 << 24, "cpu": 1 << 22}
_NEAR_ZERO = 1e-4  # relative squared distance below which a pair is recomputed directly
TIE_RTOL = 1e-9  # distances equal to this relative tolerance are ties
# Devices on which Euclidean k-NN work is screened in float32 with exact float64 decisions
# (:mod:`.screen`): on a CPU float32 is twice as fast; on CUDA float64 is already fast enough.
SCREEN_DEVICES = {"cpu"}


def closer(dist: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """``dist < radius`` with ties (relative 1e-9) counted as *not* closer."""
    return dist < radius * (1.0 - TIE_RTOL)


def any_along(mask: torch.Tensor, dim: int) -> torch.Tensor:
    """``mask.any(dim)`` for a boolean matrix, as a max over its bytes (10-30× faster on the
    CPU than torch's ``any``)."""
    return mask.view(torch.uint8).amax(dim=dim).bool()


def not_farther(dist: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """``dist <= radius`` with ties (relative 1e-9) counted as equal."""
    return dist <= radius * (1.0 + TIE_RTOL)


@dataclass(frozen=True)
class Points:
    """A validated set on its device: float64 features, or integer codes held as float32."""

    data: torch.Tensor
    distance: Distance
    sq_norms: torch.Tensor | None = None
    screened: screen.Screened | None = None

    @classmethod
    def of(cls, data: torch.Tensor, distance: Distance, centre: torch.Tensor | None = None
           ) -> Points:
        """Wrap a validated tensor (translated by ``centre`` for Euclidean distance, which does
        not change distances but reduces cancellation) and precompute squared norms."""
        if distance != "euclidean":
            return cls(data, distance, None)
        if centre is not None:
            data = data - centre
        return cls(data, distance, torch.linalg.vector_norm(data, dim=1).square_())

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def device(self) -> torch.device:
        return self.data.device


def _euclidean(a: Points, start: int, stop: int, b: Points) -> torch.Tensor:
    assert a.sq_norms is not None and b.sq_norms is not None
    rows = a.data[start:stop]
    rows_sq = a.sq_norms[start:stop]
    d2 = torch.addmm(b.sq_norms[None, :], rows, b.data.T, beta=1.0, alpha=-2.0)
    d2 += rows_sq[:, None]
    d2.clamp_(min=0.0)
    tol = _NEAR_ZERO * float(rows_sq.max() + b.sq_norms.max())
    near = (d2 <= tol).nonzero()
    if near.shape[0]:
        # Exact Σ(a−b)² for near-duplicates, in batches bounded by the row budget.
        step = max(1, _ROWS_BUDGET[a.device.type] // (8 * rows.shape[1]))
        for i in range(0, near.shape[0], step):
            r, c = near[i : i + step, 0], near[i : i + step, 1]
            diff = rows[r] - b.data[c]
            d2[r, c] = (diff * diff).sum(dim=1)
    return d2.sqrt_()


def _hamming(a: Points, start: int, stop: int, b: Points) -> torch.Tensor:
    rows = a.data[start:stop]
    n_pos = rows.shape[1]
    out = torch.empty(rows.shape[0], len(b), dtype=torch.float64, device=rows.device)
    step = max(1, _HAMMING_BUDGET[a.device.type] // (4 * n_pos))
    for j in range(0, len(b), step):
        out[:, j : j + step] = torch.cdist(rows, b.data[j : j + step], p=0)
    return out.div_(n_pos)


def block_distances(a: Points, start: int, stop: int, b: Points) -> torch.Tensor:
    """Distances from rows ``start:stop`` of ``a`` to every point of ``b`` (float64)."""
    if a.distance == "euclidean":
        return _euclidean(a, start, stop, b)
    return _hamming(a, start, stop, b)


def _distances_from(x: Points, rows: torch.Tensor) -> torch.Tensor:
    """float64 distances from the given rows of ``x`` to all of ``x``."""
    sub = Points(x.data[rows], x.distance, None if x.sq_norms is None else x.sq_norms[rows])
    return block_distances(sub, 0, len(sub), x)


def row_step(a: Points, b: Points, max_rows: int | None = None) -> int:
    """How many rows of ``a`` one block may hold, given the device's memory budget."""
    budget = _ROWS_BUDGET[a.device.type]
    rows = max(1, budget // (8 * max(1, len(b))))
    if a.distance == "hamming":
        rows = min(rows, max(1, _HAMMING_BUDGET[a.device.type] // (4 * a.data.shape[1])))
    return min(rows, max_rows or rows, len(a))


def iter_blocks(a: Points, b: Points, max_rows: int | None = None
                ) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(start, stop, D)`` with ``D[i, j] = d(a[start + i], b[j])``."""
    step = row_step(a, b, max_rows)
    for start in range(0, len(a), step):
        stop = min(start + step, len(a))
        yield start, stop, block_distances(a, start, stop, b)


def screened_sets(tensors: list[torch.Tensor], distance: Distance, centre: torch.Tensor | None
                  ) -> list[Points]:
    """Points for sets compared with each other: translated by a common ``centre``, and — for
    Euclidean distance on a :data:`SCREEN_DEVICES` device — with float32 copies at a common
    scale."""
    points = [Points.of(t, distance, centre) for t in tensors]
    if distance != "euclidean" or tensors[0].device.type not in SCREEN_DEVICES:
        return points
    norms = [p.sq_norms for p in points if p.sq_norms is not None]
    scale = screen.set_scale(norms)
    return [replace(p, screened=screen.Screened(p.data, sq, scale))
            for p, sq in zip(points, norms, strict=True)]


def closer_blocks(a: Points, b: Points, radii: list[tuple[torch.Tensor, int]]
                  ) -> Iterator[tuple[int, int, list[torch.Tensor]]]:
    """Blocks of rows of ``a`` with, for each ``(radius, axis)``, the mask
    ``closer(d(a_i, b_j), radius)``, the radius indexed by a's row (axis 0) or b's column
    (axis 1). Screened in float32 where possible, always with exact float64 decisions."""
    if a.screened is not None and b.screened is not None:
        yield from screen.closer_blocks(a.screened, b.screened, radii, TIE_RTOL)
        return
    for start, stop, dist in iter_blocks(a, b):
        yield start, stop, [closer(dist, r[start:stop, None] if axis == 0 else r[None, :])
                            for r, axis in radii]


def _merge_smallest(best: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """The k smallest of each row of ``best`` (N×k, sorted) together with ``candidates``."""
    k = best.shape[1]
    return torch.topk(torch.cat([best, candidates], dim=1), k, dim=1, largest=False,
                      sorted=True).values


def neighbour_distances(x: Points, k: int, max_rows: int | None = None) -> torch.Tensor:
    """N×k sorted distances from each point to its 1st … k-th nearest *other* point.

    "Other" is by index: a point's own zero distance is excluded, but a duplicate of it counts
    (so a duplicated image has r_1 = 0). Each pair is computed once: a strip of rows
    ``start:stop`` is compared with points ``start:N`` only, and the strip's columns update
    the neighbours of the later points.
    """
    if x.screened is not None:
        return screen.neighbours(x.screened, k, lambda rows: _distances_from(x, rows), max_rows)
    n = len(x)
    best = torch.full((n, k), float("inf"), dtype=torch.float64, device=x.device)
    # At least ~8 strips, so that skipping the pairs below the diagonal saves ~45% of the work.
    step = min(row_step(x, x, max_rows), max(256, -(-n // 8)))
    for start in range(0, n, step):
        stop = min(start + step, n)
        tail = Points(x.data[start:], x.distance,
                      None if x.sq_norms is None else x.sq_norms[start:])
        block = block_distances(x, start, stop, tail)  # block[r, c] = d(x[start+r], x[start+c])
        rows = torch.arange(stop - start, device=x.device)
        block[rows, rows] = float("inf")
        smallest = torch.topk(block, min(k, block.shape[1]), dim=1, largest=False).values
        best[start:stop] = _merge_smallest(best[start:stop], smallest)
        if stop < n:
            later = block[:, stop - start :]
            smallest = torch.topk(later, min(k, later.shape[0]), dim=0, largest=False).values
            best[stop:] = _merge_smallest(best[stop:], smallest.T)
    return best
