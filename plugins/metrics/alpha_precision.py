"""``alpha-precision``: integrated α-precision and β-recall (Alaa et al. 2022, "How Faithful
is your Synthetic Data? Sample-level Metrics for Evaluating and Auditing Generative Models").

The paper embeds both sets with a one-class network trained on the real data and measures,
for α, β ∈ [0, 1], the share of synthetic samples inside the real set's minimum-volume α-
support (α-precision) and the share of real samples whose nearest synthetic sample is inside
the synthetic set's β-support and inside the real sample's own nearest-neighbour ball
(β-recall). The scalar summaries are the areas between each curve and the diagonal.

This is the variant without a trained embedding that synthcity (``AlphaPrecision``, its
``*_naive`` outputs, version 0.2.12) and the SIM Toolkit report — the one-class network is
replaced by the features themselves. Exactly:

1. every feature is min-max scaled with the **real** set's minimum and range (a constant real
   feature: range 1), as synthcity's ``MinMaxScaler().fit(real)``;
2. the real centre c_R is the mean of the scaled real features, the synthetic centre c_S the
   mean of the scaled synthetic ones; the α-support is the ball around c_R whose radius is the
   α-quantile (numpy's linear interpolation) of the real distances ‖r − c_R‖, at the 30 levels
   α_j = ``numpy.linspace(0, 1, 30)``;
3. α-precision curve: P_j = mean_s [‖s − c_R‖ ≤ R_j];
4. β-recall curve: for each real r, s*(r) its nearest synthetic sample and nn(r) the distance to
   its nearest *other* real sample; with ρ_j the α_j-quantile of ‖s*(r) − c_S‖ over r,
   B_j = mean_r [d(r, s*(r)) ≤ nn(r) ∧ ‖s*(r) − c_S‖ ≤ ρ_j];
5. ``alpha_precision`` = 1 − Σ_j |α_j − P_j| / Σ_j α_j and ``beta_recall`` likewise with B_j
   (synthcity's ``delta_precision_alpha_naive`` and ``delta_coverage_beta_naive``).

Both are in [0, 1] with 1 ideal: a synthetic set distributed like the real one puts α of its
mass in every real α-support. Differences from synthcity, none of which changes a value on its
inputs: synthcity refuses sets of unequal size (the formulas above do not need it); nearest
neighbours are exact Euclidean distances from :mod:`.knn` (ties within a relative 1e-9 count
as equal; with several nearest synthetic samples at one distance the lowest index is s*, as
in scikit-learn). Equal to synthcity's ``AlphaPrecision.metrics`` on min-max scaled inputs to
1e-6 (``tests/metrics/test_metrics_alpha_precision.py``). synthcity's authenticity is not
repeated here: the ``authenticity`` metric reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
from medsynbench.kinds import Metric, MetricInputs, Quantity, RunContext

from ._inputs import ArrayLike, check_k
from .knn import Points, iter_blocks, neighbour_distances
from .manifold import prepare

__all__ = ["ALPHAS", "AlphaPrecisionMetric", "alpha_precision_curves", "alpha_precision_recall"]

ALPHAS = np.linspace(0, 1, 30)


def _scaled(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    low = real.min(dim=0).values
    span = real.max(dim=0).values - low
    span = torch.where(span == 0, torch.ones_like(span), span)
    return (real - low) / span, (fake - low) / span


def _nearest_with_index(a: Points, b: Points) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance from each point of ``a`` to its nearest in ``b``, and that point's index."""
    distances, indices = [], []
    for _, _, dist in iter_blocks(a, b):
        best = dist.min(dim=1)
        distances.append(best.values)
        indices.append(best.indices)
    return torch.cat(distances), torch.cat(indices)


def alpha_precision_curves(real: ArrayLike, fake: ArrayLike, *, device: str = "auto"
                           ) -> dict[str, np.ndarray]:
    """The α levels and the α-precision and β-recall curves (module docstring, steps 1–4)."""
    reals, fakes = prepare({"real": real, "fake": fake}, "euclidean", device)
    check_k(1, len(reals), "real")
    # prepare() translated both sets by the real mean; min-max scaling removes the shift.
    real_x, fake_x = _scaled(reals.data, fakes.data)
    scaled = prepare({"real": real_x, "fake": fake_x}, "euclidean", device)
    real_nn = neighbour_distances(scaled[0], 1)[:, 0]
    to_fake, nearest_fake = _nearest_with_index(scaled[0], scaled[1])
    real_centre, fake_centre = real_x.mean(dim=0), fake_x.mean(dim=0)
    real_radius = torch.linalg.vector_norm(real_x - real_centre, dim=1).cpu().numpy()
    fake_to_real_centre = torch.linalg.vector_norm(fake_x - real_centre, dim=1).cpu().numpy()
    nearest_to_fake_centre = torch.linalg.vector_norm(
        fake_x[nearest_fake] - fake_centre, dim=1).cpu().numpy()
    # not_farther with the 1e-9 tie rule of .knn
    inside_ball = (to_fake <= real_nn * (1 + 1e-9)).cpu().numpy()
    radii = np.quantile(real_radius, ALPHAS)
    fake_radii = np.quantile(nearest_to_fake_centre, ALPHAS)
    precision = (fake_to_real_centre[None, :] <= radii[:, None]).mean(axis=1)
    recall = (inside_ball[None, :]
              & (nearest_to_fake_centre[None, :] <= fake_radii[:, None])).mean(axis=1)
    return {"alphas": ALPHAS.copy(), "alpha_precision": precision, "beta_recall": recall}


def alpha_precision_recall(real: ArrayLike, fake: ArrayLike, *, device: str = "auto"
                           ) -> dict[str, float]:
    """``{"alpha_precision", "beta_recall"}``: integrated curves (module docstring, step 5)."""
    curves = alpha_precision_curves(real, fake, device=device)
    total = float(ALPHAS.sum())
    return {
        key: 1.0 - float(np.abs(ALPHAS - curves[key]).sum()) / total
        for key in ("alpha_precision", "beta_recall")
    }


class AlphaPrecisionMetric(Metric):
    """Integrated α-precision and β-recall (Alaa et al. 2022), synthcity's embedding-free form."""

    name = "alpha-precision"
    version = "0.1.0"
    description = ("integrated α-precision / β-recall (Alaa et al. 2022) on min-max scaled "
                   "features, centred on the real mean (synthcity's naive variant)")
    input = "features"
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "alpha_precision": Quantity("fidelity", True, "1 − area between the α-precision "
                                    "curve and the diagonal"),
        "beta_recall": Quantity("variety", True, "1 − area between the β-recall curve and "
                                "the diagonal"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        return alpha_precision_recall(inputs.real, inputs.synthetic, device=ctx.device)
