"""k-NN manifold metrics: precision / recall / density / coverage and kNN privacy (F, P, F^p).

Definitions (DESIGN.md, "Metric definitions to follow exactly"). R = real reference set (N),
S = synthetic set (M), d = Euclidean distance on features or normalised Hamming distance on
code maps, r_k(i) = distance from real i to its k-th nearest *other* real point (by index: a
duplicate of i counts as a neighbour at distance 0), r_k^S(s) likewise inside S.

- precision = mean_s [∃ i: d(s, r_i) < r_k(i)]                 (Naeem et al. 2020, ``prdc``)
- recall    = mean_i [∃ s: d(r_i, s) < r_k^S(s)]
- density   = 1/(kM) Σ_s Σ_i [d(s, r_i) < r_k(i)]
- coverage  = mean_i [min_s d(r_i, s) < r_k(i)]
- InReal(s) = ∃ i: d(s, r_i) < r_k(i);   Copy(s) = ∃ i: d(s, r_i) < r_1(i)
- fidelity F = mean InReal (= precision); privacy P = 1 − mean Copy;
  fidelity_privacy F^p = mean [InReal(s) ∧ ¬Copy(s)]                        (Xing et al.)

Tie rule: every comparison is strict ``<``, with distances equal to a relative 1e-9 counted as
ties (see :mod:`.knn`). Consequences, tested: a synthetic image equal to a
real image r_i is a Copy unless r_i is itself duplicated in R (then r_1(i) = 0 and nothing is
closer than 0); with S == R (no duplicates) precision = recall = coverage = 1 and P = 0.
"""

from __future__ import annotations

import torch
from medsynbench.errors import ParameterError

from ._inputs import (
    ArrayLike,
    as_codes,
    as_features,
    check_dims,
    check_k,
    check_pair,
    resolve_device,
)
from .knn import (
    Distance,
    Points,
    any_along,
    closer_blocks,
    neighbour_distances,
    screened_sets,
)

__all__ = ["knn_privacy", "prdc", "prepare"]


def prepare(sets: dict[str, ArrayLike], distance: str, device: str) -> list[Points]:
    """Validate named sets for one distance and move them to the device (in the given order)."""
    if distance not in ("euclidean", "hamming"):
        raise ParameterError(f"distance={distance!r}: use 'euclidean' (features) or 'hamming' "
                             "(integer code maps)")
    dist: Distance = "euclidean" if distance == "euclidean" else "hamming"
    dev = resolve_device(device)
    names = list(sets)
    for other in names[1:]:
        check_pair(sets[names[0]], sets[other], (names[0], other))
    convert = as_features if dist == "euclidean" else as_codes
    tensors = [convert(x, name, dev) for name, x in sets.items()]
    what = "feature dimensions" if dist == "euclidean" else "code lengths"
    for name, t in zip(names[1:], tensors[1:], strict=True):
        check_dims(tensors[0], t, (names[0], name), what)
    centre = tensors[0].mean(dim=0) if dist == "euclidean" else None
    return screened_sets(tensors, dist, centre)


def prdc(real: ArrayLike, fake: ArrayLike, k: int = 5, *, distance: str = "euclidean",
         device: str = "auto") -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` w.r.t. ``real`` (k nearest neighbours).

    Equal to ``prdc.compute_prdc(real, fake, nearest_k=k)`` on the same features.
    """
    reals, fakes = prepare({"real": real, "fake": fake}, distance, device)
    check_k(k, len(reals), "real")
    check_k(k, len(fakes), "fake")
    real_radius = neighbour_distances(reals, k)[:, k - 1]
    fake_radius = neighbour_distances(fakes, k)[:, k - 1]
    in_some_ball = torch.empty(len(fakes), dtype=torch.bool, device=reals.device)
    balls_total = 0
    recalled = torch.zeros(len(reals), dtype=torch.bool, device=reals.device)
    covered = torch.zeros(len(reals), dtype=torch.bool, device=reals.device)
    # inside[s, i]: fake s lies in real i's ball; in_fake_ball[s, i]: real i in fake s's ball.
    # Coverage "min_s d(r_i, s) < r_k(i)" is "some fake lies inside real i's ball".
    radii = [(real_radius, 1), (fake_radius, 0)]
    for start, stop, (inside, in_fake_ball) in closer_blocks(fakes, reals, radii):
        in_some_ball[start:stop] = any_along(inside, 1)
        balls_total += int(torch.count_nonzero(inside))
        covered |= any_along(inside, 0)
        recalled |= any_along(in_fake_ball, 0)
    return {
        "precision": float(in_some_ball.double().mean()),
        "recall": float(recalled.double().mean()),
        "density": balls_total / (k * len(fakes)),
        "coverage": float(covered.double().mean()),
    }


def knn_privacy(real: ArrayLike, fake: ArrayLike, k: int = 5, *, distance: str = "euclidean",
                device: str = "auto") -> dict[str, float]:
    """Xing et al.'s kNN fidelity F, privacy P and privacy-adjusted fidelity F^p.

    ``distance="hamming"`` compares integer code maps (e.g. VQ-VAE codes) position by position.
    """
    reals, fakes = prepare({"real": real, "fake": fake}, distance, device)
    check_k(k, len(reals), "real")
    radii = neighbour_distances(reals, k)
    r_1, r_k = radii[:, 0], radii[:, k - 1]
    in_real = torch.empty(len(fakes), dtype=torch.bool, device=reals.device)
    copy = torch.empty(len(fakes), dtype=torch.bool, device=reals.device)
    for start, stop, (inside, closer_than_r1) in closer_blocks(fakes, reals, [(r_k, 1), (r_1, 1)]):
        in_real[start:stop] = any_along(inside, 1)
        copy[start:stop] = any_along(closer_than_r1, 1)
    return {
        "fidelity": float(in_real.double().mean()),
        "privacy": 1.0 - float(copy.double().mean()),
        "fidelity_privacy": float((in_real & ~copy).double().mean()),
    }
