"""Float32 screening with exact float64 decisions, for Euclidean k-NN metrics on the CPU.

A float64 distance matrix costs twice the time of a float32 one on a CPU (half the SIMD width),
yet almost every decision a k-NN metric makes — "is d(a, b) below this radius?", "is b among
a's k nearest?" — is far from its threshold. So the squared distances are first computed in
float32 (one SGEMM per block) *with a proven error bound*, and only the pairs the bound cannot
decide are recomputed exactly in float64 as Σ(a−b)². Every result is therefore identical to the
all-float64 computation in :mod:`.knn` (to its tie rule), never an approximation.

Error bound. The sets are translated by a common centre and divided by a common power of two
``scale`` (both exact in float64 away from under/overflow), so the largest norm is ~1. For
float32 copies a', b' of float64 vectors a, b, squared norms rounded to float32, and
d̃² = ‖b'‖² + ‖a'‖² − 2 fl(a'·b') computed by any BLAS summation order (with or without FMA):

    |d̃² − ‖a − b‖²| ≤ (d + 14)·u·(‖a‖² + ‖b‖²) + (subnormal underflow, < 1e-37),   u = 2⁻²⁴

(rounding of the inputs ≤ 4u, of the norms ≤ 1.02u, of the dot product ≤ γ_d ≈ d·u (Higham,
Accuracy and Stability, §3.1), of the two additions ≤ 6u, each times ‖a‖² + ‖b‖²). We use
twice that: ``margin = 2(d + 32)·u·(‖a‖² + ‖b‖²) + 2u·θ + 1e-30`` around a threshold θ (the
2u·θ term covers rounding θ itself to float32). A pair with |d̃² − θ| ≤ margin is recomputed.

- Threshold tests (``closer_blocks``): ``d < r·(1 − 1e-9)`` (the tie rule of :mod:`.knn`) is
  decided from d̃² against θ = (r·(1 − 1e-9))², recomputing undecided pairs exactly.
- k nearest neighbours (``neighbours``): the K = k + 4 smallest d̃² of each row (from the
  whole Gram matrix by one BLAS syrk for sets up to 8,192 points, else from strips that
  compute each pair once) are kept as candidates and recomputed exactly; the k-th exact value
  ρ_k is final when every non-candidate provably lies at or beyond it (K-th d̃² − margin ≥ ρ_k,
  or ρ_k = 0). Rows that fail the check (rare: many points within the error bound of the k-th
  neighbour, e.g. a point duplicated more than K times) are recomputed entirely in float64.

Measured on 5,000 × 5,000 pairs of d = 2048 features: ~1e-4 of the pairs needed a float64
recheck, and no row needed the fallback.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["Screened", "closer_blocks", "error_scale", "neighbours", "set_scale"]

_U = 2.0**-24  # unit round-off of float32
_FLOOR = 1e-30  # absolute slack for float32 underflow (scaled units: the largest norm is ~1)
_BLOCK_BYTES = 1 << 27  # one float32 block of squared distances (5,000 × 5,000 in one block)
_GRAM_BYTES = 1 << 28  # whole float32 Gram matrix for the k-NN of sets up to 8,192 points
_NEAR_ZERO = 1e-4  # as in .knn: relative d² below which a pair is recomputed as Σ(a−b)²
EXTRA_CANDIDATES = 4  # K = k + EXTRA_CANDIDATES screened neighbours are recomputed exactly


def error_scale(d: int) -> float:
    """c with |d̃² − d²| ≤ c·(‖a‖² + ‖b‖²) for float32 squared distances in d dimensions
    (twice the bound derived in the module docstring)."""
    return 4.0 * (d + 16) * _U


def set_scale(sq_norms: Sequence[torch.Tensor]) -> float:
    """A power of two near the largest row norm, given the sets' squared row norms."""
    largest = math.sqrt(max(float(t.max()) for t in sq_norms))
    if largest == 0.0 or not math.isfinite(largest):
        return 1.0
    return 2.0 ** math.floor(math.log2(largest))


@contextmanager
def _full_float32() -> Iterator[None]:
    """IEEE float32 matmul (no bf16/tf32 shortcuts) while screening: the error bound assumes
    it. Uses torch's per-backend setting where it exists (torch ≥ 2.9), else the global one,
    and restores the user's choice afterwards."""
    backend = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    if backend is not None and hasattr(backend, "fp32_precision"):
        previous = backend.fp32_precision
        backend.fp32_precision = "ieee"
        try:
            yield
        finally:
            backend.fp32_precision = previous
        return
    legacy = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(legacy)


class Screened:
    """A float64 set (centred, unscaled) with its float32 copy divided by ``scale``."""

    def __init__(self, data: torch.Tensor, sq_norms: torch.Tensor, scale: float) -> None:
        self.data, self.sq_norms, self.scale = data, sq_norms, scale
        n, d = data.shape
        # ‖a/scale‖² rounded to float32: within 3u of ‖a'‖² for the float32 copy a'.
        self.sq32 = (sq_norms * (1.0 / scale**2)).to(torch.float32)
        # Augmented rows [a', 1, ‖a'‖²] and [−2b', ‖b'‖², 1] (zero-padded to a multiple of 16
        # columns): one SGEMM gives ‖a'‖² + ‖b'‖² − 2a'·b' with no elementwise pass.
        width = -(-(d + 2) // 16) * 16
        self.left = torch.empty((n, width), dtype=torch.float32, device=data.device)
        self.right = torch.empty_like(self.left)
        if 2.0**-20 <= scale <= 2.0**20:  # no float32 overflow/underflow before scaling
            self.left[:, :d].copy_(data).mul_(1.0 / scale)  # power of two: exact; fast
        else:
            self.left[:, :d].copy_(data * (1.0 / scale))
        torch.mul(self.left[:, :d], -2.0, out=self.right[:, :d])
        self.left[:, d:], self.right[:, d:] = 0.0, 0.0
        self.left[:, d], self.left[:, d + 1] = 1.0, self.sq32
        self.right[:, d], self.right[:, d + 1] = self.sq32, 1.0
        self.c = error_scale(int(d))

    def squared(self, start: int, stop: int, other: Screened, lo: int = 0) -> torch.Tensor:
        """float32 d̃² (scaled units; may be slightly negative) from rows start:stop to
        ``other``'s rows lo:."""
        with _full_float32():
            return self.left[start:stop] @ other.right[lo:].T


def _pair_distances(a: Screened, rows: torch.Tensor, b: Screened, cols: torch.Tensor
                    ) -> torch.Tensor:
    """float64 ‖a[rows] − b[cols]‖ for 1-D index tensors of equal length (unique pairs).

    As the float64 path of :mod:`.knn`: ‖a‖² + ‖b‖² − 2a·b, the dot products by one sampled
    matmul (SDDMM: only the requested pairs, no gathered copies), and Σ(a−b)² directly for
    near-duplicate pairs (d² ≤ 1e-4·(‖a‖² + ‖b‖²)), where the expansion would cancel.
    """
    n_a, n_b = a.data.shape[0], b.data.shape[0]
    order = torch.argsort(rows * n_b + cols)
    r, c = rows[order], cols[order]
    crow = torch.zeros(n_a + 1, dtype=torch.int64, device=r.device)
    crow[1:] = torch.bincount(r, minlength=n_a).cumsum(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*", category=UserWarning)
        pattern = torch.sparse_csr_tensor(crow, c, torch.zeros(r.shape[0], dtype=a.data.dtype),
                                          size=(n_a, n_b))
        dots = torch.sparse.sampled_addmm(pattern, a.data, b.data.T, beta=0.0).values()
    norms = a.sq_norms[r] + b.sq_norms[c]
    d2 = (norms - 2 * dots).clamp_(min=0.0)
    near = (d2 <= _NEAR_ZERO * norms).nonzero()[:, 0]
    if near.shape[0]:
        d2[near] = (a.data[r[near]] - b.data[c[near]]).square_().sum(dim=1)
    out = torch.empty_like(d2)
    out[order] = d2.sqrt_()
    return out


def closer_blocks(a: Screened, b: Screened, radii: Sequence[tuple[torch.Tensor, int]],
                  tie_rtol: float) -> Iterator[tuple[int, int, list[torch.Tensor]]]:
    """Blocks of rows of ``a``: for each ``(radius, axis)`` the exact mask
    ``d(a_i, b_j) < radius·(1 − tie_rtol)``, the radius indexed by a's row (axis 0) or b's
    column (axis 1)."""
    step = max(1, min(a.data.shape[0], _BLOCK_BYTES // (4 * max(1, b.data.shape[0]))))
    for start in range(0, a.data.shape[0], step):
        stop = min(start + step, a.data.shape[0])
        d2 = a.squared(start, stop, b)
        # The margin is bounded along one axis by the other axis' largest norm, so that the
        # undecided band is two comparisons against vectors (slightly wider than needed).
        a_sq, b_sq = a.sq32[start:stop].double(), b.sq32.double()
        masks = []
        for radius, axis in radii:
            limit = radius[start:stop] if axis == 0 else radius
            theta = (limit * ((1.0 - tie_rtol) / a.scale)) ** 2
            other_sq = float(b_sq.max()) if axis == 0 else float(a_sq.max())
            margin = a.c * ((a_sq if axis == 0 else b_sq) + other_sq) + 2 * _U * theta + _FLOOR
            shape = (-1, 1) if axis == 0 else (1, -1)
            lo, hi = ((theta - margin).to(torch.float32).view(shape),
                      (theta + margin).to(torch.float32).view(shape))
            mask = d2 < theta.to(torch.float32).view(shape)
            undecided = ((d2 >= lo).logical_and_(d2 <= hi)).nonzero()
            if undecided.shape[0]:
                r, c = undecided[:, 0], undecided[:, 1]
                exact = _pair_distances(a, r + start, b, c)
                mask[r, c] = exact < limit[r if axis == 0 else c] * (1.0 - tie_rtol)
            masks.append(mask)
        yield start, stop, masks


def _merge(values: torch.Tensor, index: torch.Tensor, new_values: torch.Tensor,
           new_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    v = torch.cat([values, new_values], dim=1)
    i = torch.cat([index, new_index], dim=1)
    best, where = torch.topk(v, values.shape[1], dim=1, largest=False, sorted=True)
    return best, torch.gather(i, 1, where)


def _candidates_gram(x: Screened, cand: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``cand`` smallest d̃² of each row, and their columns, from the whole Gram matrix:
    one BLAS syrk (numpy uses it for ``a @ a.T``: half the flops, and far better threaded than
    a triangle of thin strips)."""
    d = x.data.shape[1]
    a = np.ascontiguousarray(x.left[:, :d].numpy())
    d2 = torch.from_numpy(a @ a.T)  # symmetric; float32 rounding covered by the same bound
    d2.mul_(-2.0).add_(x.sq32[None, :]).add_(x.sq32[:, None])
    d2.fill_diagonal_(float("inf"))
    values, index = torch.topk(d2, cand, dim=1, largest=False, sorted=True)
    return values, index


def _candidates_strips(x: Screened, cand: int, max_rows: int | None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """As :func:`_candidates_gram`, by strips that compute each pair once (any N)."""
    n = x.data.shape[0]
    values = torch.full((n, cand), float("inf"), dtype=torch.float32, device=x.data.device)
    index = torch.zeros((n, cand), dtype=torch.int64, device=x.data.device)
    step = min(max(1, _BLOCK_BYTES // (4 * n)), max(256, -(-n // 8)), max_rows or n)
    for start in range(0, n, step):  # each pair once: strip start:stop against points start:
        stop = min(start + step, n)
        block = x.squared(start, stop, x, lo=start)
        rows = torch.arange(stop - start, device=block.device)
        block[rows, rows] = float("inf")
        v, i = torch.topk(block, min(cand, block.shape[1]), dim=1, largest=False)
        values[start:stop], index[start:stop] = _merge(values[start:stop], index[start:stop],
                                                       v, i + start)
        if stop < n:
            later = block[:, stop - start :]
            v, i = torch.topk(later, min(cand, later.shape[0]), dim=0, largest=False)
            values[stop:], index[stop:] = _merge(values[stop:], index[stop:], v.T,
                                                 i.T + start)
    return values, index


def neighbours(x: Screened, k: int, exact_rows: Callable[[torch.Tensor], torch.Tensor],
               max_rows: int | None = None) -> torch.Tensor:
    """N×k sorted exact distances to the 1st … k-th nearest *other* point (as
    :func:`.knn.neighbour_distances`, whose float64 result this equals).

    ``exact_rows(rows)`` returns the float64 distances from the given rows to every point; it
    is called only for the rare rows the screening cannot settle.
    """
    n = x.data.shape[0]
    cand = min(n - 1, k + EXTRA_CANDIDATES)
    if max_rows is None and 4 * n * n <= _GRAM_BYTES and x.data.device.type == "cpu":
        values, index = _candidates_gram(x, cand)
    else:
        values, index = _candidates_strips(x, cand, max_rows)
    rows = torch.arange(n, device=x.data.device).repeat_interleave(cand)
    exact = _pair_distances(x, rows, x, index.reshape(-1)).reshape(n, cand)
    exact = torch.sort(exact, dim=1).values
    rho = exact[:, k - 1]
    # Every non-candidate j has d̃²_ij ≥ values[i, -1], so its exact d² ≥ values[i, -1] − margin.
    margin = x.c * (x.sq32.double() + float(x.sq32.max())) + _FLOOR
    bound = ((values[:, -1].double() - margin).clamp(min=0).sqrt() * x.scale)
    settled = (rho == 0) | (bound >= rho) | (cand == n - 1)  # all points are candidates
    redo = (~settled).nonzero()[:, 0]
    per_block = max(1, _BLOCK_BYTES // (8 * n))
    for first in range(0, redo.shape[0], per_block):  # rare: exact rows in float64
        chunk = redo[first : first + per_block]
        d = exact_rows(chunk)
        d[torch.arange(chunk.shape[0], device=d.device), chunk] = float("inf")
        exact[chunk, :k] = torch.topk(d, k, dim=1, largest=False, sorted=True).values
    return exact[:, :k].contiguous()
