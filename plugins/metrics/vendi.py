"""``vendi``: the Vendi score of a feature set (Friedman & Dieng 2023), a variety measure.

With x̂_i = x_i / ‖x_i‖ (the cosine-similarity kernel K_ij = x̂_iᵀx̂_j, so K_ii = 1) and λ the
eigenvalues of K/n (they sum to 1), the Vendi score of order q is

    VS_1 = exp(−Σ λ log λ)            VS_q = exp(log(Σ λ^q) / (1 − q))     VS_∞ = 1 / max λ

over the positive eigenvalues only (0 log 0 = 0; rounding leaves tiny negative ones, dropped).
It is the "effective number of distinct samples": 1 when every feature vector points the same
way, n when they are mutually orthogonal. K/n = X̂X̂ᵀ/n has the same non-zero eigenvalues as
X̂ᵀX̂/n, so the smaller of the two (n×n or d×d) Gram matrices is decomposed, in float64, with a
symmetric solver. This is the ``vendi_score`` package's ``score_dual`` / ``score_K`` (with
``normalize=True``) and dgm-eval's ``compute_vendi_score`` (linear kernel on L2-normalised
features, the default there), equal to them to 1e-6 (``tests/metrics/test_metrics_vendi.py``).
A zero feature vector has no direction and is refused.

The plugin reports ``vendi`` for the synthetic set and ``real_vendi`` for the real reference
set beside it, both on the variety axis (higher: more diverse). The score grows with n, so it
compares entries with the same number of synthetic images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import torch
from medsynbench.errors import DataError, ParameterError
from medsynbench.kinds import Metric, MetricInputs, Quantity, RunContext
from medsynbench.params import Param

from ._inputs import ArrayLike, as_features, resolve_device

__all__ = ["VendiMetric", "vendi_score"]


def _order(q: float) -> str | None:
    return None if q > 0 else f"must be > 0 (1: Shannon entropy), got {q}"


def vendi_score(features: ArrayLike, *, q: float = 1.0, device: str = "auto") -> float:
    """The Vendi score of order ``q`` of N×d ``features`` with the cosine-similarity kernel."""
    if isinstance(q, bool) or not isinstance(q, (int, float)) or math.isnan(q) or q <= 0:
        raise ParameterError(f"q={q!r}: the order of the Vendi score must be a number > 0")
    x = as_features(features, "features", resolve_device(device))
    norms = torch.linalg.vector_norm(x, dim=1)
    if bool((norms == 0).any()):
        zero = int((norms == 0).sum())
        raise DataError(f"features: {zero} of {x.shape[0]} rows are all zero; the cosine "
                        "kernel of the Vendi score needs a direction for every sample")
    unit = x / norms[:, None]
    n, d = unit.shape
    gram = unit @ unit.T if n <= d else unit.T @ unit
    eigvals = torch.linalg.eigvalsh(gram / n)
    p = eigvals[eigvals > 0]
    if math.isinf(q):
        entropy = -torch.log(p.max())
    elif q == 1:
        entropy = -(p * torch.log(p)).sum()
    else:
        entropy = torch.log((p ** q).sum()) / (1 - q)
    return float(torch.exp(entropy))


class VendiMetric(Metric):
    """Vendi score (Friedman & Dieng 2023) of the synthetic and the real feature sets."""

    name = "vendi"
    version = "0.1.0"
    description = "Vendi score: exp(entropy of the eigenvalues of the cosine kernel / n)"
    input = "features"
    parameters: ClassVar[Mapping[str, Param]] = {
        "q": Param(1.0, float, "order of the Vendi score (1: Shannon entropy, the paper's "
                   "default; larger q weighs common modes more)", check=_order),
    }
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "vendi": Quantity("variety", True, "effective number of distinct synthetic samples"),
        "real_vendi": Quantity("variety", True, "the same for the real reference set"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        q = float(self.params["q"])
        return {
            "vendi": vendi_score(inputs.synthetic, q=q, device=ctx.device),
            "real_vendi": vendi_score(inputs.real, q=q, device=ctx.device),
        }
