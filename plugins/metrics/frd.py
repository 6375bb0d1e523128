"""``frd``: Fréchet Radiomic Distance — the Fréchet distance of radiomics features, no weights.

FRD (Osuala et al. 2024; Konz, Osuala et al. 2026, "Fréchet Radiomic Distance (FRD): A Versatile
Metric for Comparing Medical Imaging Datasets", reference code ``frd-score``) replaces the
ImageNet network of FID with hand-defined radiomics features, the one medical feature space
that needs no downloaded weights. Here:

1. every image gets the 70 features of :mod:`.radiomics` (first order, GLCM, GLRLM, GLSZM on
   the whole image; pyradiomics formulas computed in numpy, because pyradiomics does not
   install everywhere) — FRD v1 also uses GLDM/NGTDM, shape and LoG/wavelet-filtered images,
   so values are not comparable with ``frd-score``'s, only with each other;
2. features are z-scored with the **real** set's mean and population standard deviation
   (``frd-score`` v1's default ``norm_ref = "d1"``, ``numpy.nanstd``); a feature constant over
   the real set is set to 0 in both sets (``frd-score``'s ``handle_std_zero``), so it adds
   nothing;
3. ``frd`` = the Fréchet distance of the two z-scored sets (:func:`~.frechet.fid`, float64,
   N−1 covariances). ``frd-score`` v1 reports log(``frd``) by default; the plain squared
   distance is reported here because it is 0 for identical sets, not −∞.

Lower is better (fidelity axis). With fewer images than 70 features the covariances are
rank-deficient and :func:`~.frechet.fid` warns. Real features are computed once per process
for a given real set (keyed by a digest of its pixels and the bin width), not once per entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from medsynbench.kinds import Metric, MetricInputs, Quantity, RunContext
from medsynbench.params import Param, in_range

from .frechet import fid
from .radiomics import FEATURE_NAMES, radiomic_features

__all__ = ["FRDMetric", "frd", "standardise"]

_real_cache: dict[tuple[str, float], np.ndarray] = {}


def standardise(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both feature tables z-scored by the real mean and std (step 2); a feature constant over
    the real set is 0 in both."""
    mean, std = real.mean(axis=0), real.std(axis=0)
    constant = std == 0
    scale = np.where(constant, 1.0, std)
    real_z, fake_z = (real - mean) / scale, (fake - mean) / scale
    real_z[:, constant] = 0.0
    fake_z[:, constant] = 0.0
    return real_z, fake_z


def _real_features(images: np.ndarray, bin_width: float) -> np.ndarray:
    digest = hashlib.sha256(np.ascontiguousarray(images).data).hexdigest()
    key = (f"{digest}:{images.shape}", bin_width)
    if key not in _real_cache:
        _real_cache.clear()  # one real set at a time: a run compares entries with one set
        _real_cache[key] = radiomic_features(images, bin_width)
    return _real_cache[key]


def frd(real_images: np.ndarray, fake_images: np.ndarray, *, bin_width: float = 8.0,
        device: str = "auto") -> dict[str, float]:
    """``{"frd"}`` of uint8 N×C×H×W real and synthetic image sets (module docstring)."""
    real = _real_features(real_images, bin_width)
    fake = radiomic_features(fake_images, bin_width)
    real_z, fake_z = standardise(real, fake)
    return {"frd": fid(real_z, fake_z, device=device)}


_bin_width = in_range(0, 255, low_open=True)


class FRDMetric(Metric):
    """Fréchet distance of z-scored radiomics features (FRD), computed from the images."""

    name = "frd"
    version = "0.1.0"
    description = (f"Fréchet Radiomic Distance on {len(FEATURE_NAMES)} radiomics features "
                   "(first order, GLCM, GLRLM, GLSZM), z-scored on the real set; no weights")
    input = "images"
    default_encoder = None
    parameters: ClassVar[Mapping[str, Param]] = {
        "bin_width": Param(8.0, float, "grey-level bin width for the texture matrices "
                           "(8 on uint8: at most 32 levels)", check=_bin_width),
    }
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "frd": Quantity("fidelity", False, "Fréchet distance of real-z-scored radiomics "
                        "features"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        return frd(inputs.real, inputs.synthetic, bin_width=float(self.params["bin_width"]),
                   device=ctx.device)
