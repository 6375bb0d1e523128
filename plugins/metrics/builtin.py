"""The first-party metric plugins: thin wrappers over the functional API in this package."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from medsynbench.errors import DataError
from medsynbench.kinds import Metric, MetricInputs, Quantity, RunContext
from medsynbench.params import Param, at_least, positive_int

from .frechet import fid, kid
from .manifold import knn_privacy, prdc
from .memorisation import authenticity, dcr
from .variety import mean_image_variety

__all__ = [
    "AuthenticityMetric",
    "DCRMetric",
    "FIDMetric",
    "KIDMetric",
    "KNNPrivacyMetric",
    "MeanImageJPEGMetric",
    "PRDCMetric",
]



def _distance(inputs: MetricInputs) -> str:
    """Hamming on integer code maps, Euclidean on features."""
    return "hamming" if inputs.representation == "codes" else "euclidean"


class FIDMetric(Metric):
    """Fréchet distance between Gaussian fits of real and synthetic features (float64)."""

    name = "fid"
    version = "0.1.0"
    description = "Fréchet distance (FID) on encoder features, float64 eigenvalue form"
    input = "features"
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "fid": Quantity("fidelity", False, "Fréchet distance between feature Gaussians"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        return {"fid": fid(inputs.real, inputs.synthetic, device=ctx.device)}


class KIDMetric(Metric):
    """Unbiased polynomial-kernel MMD² over random subsets (Bińkowski et al.)."""

    name = "kid"
    version = "0.1.0"
    description = "Kernel distance (KID): unbiased MMD², cubic polynomial kernel, subsets"
    input = "features"
    parameters: ClassVar[Mapping[str, Param]] = {
        "subsets": Param(100, int, "number of random subsets", check=positive_int),
        "subset_size": Param(1000, int, "points per subset (capped at the set sizes)",
                             check=at_least(2)),
    }
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "kid_mean": Quantity("fidelity", False, "mean MMD² over subsets"),
        "kid_std": Quantity("fidelity", False, "standard deviation of MMD² over subsets"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        return kid(inputs.real, inputs.synthetic, subsets=self.params["subsets"],
                   subset_size=self.params["subset_size"], seed=ctx.seed, device=ctx.device)


class PRDCMetric(Metric):
    """Precision, recall, density and coverage with k nearest neighbours (Naeem et al.)."""

    name = "prdc"
    version = "0.1.0"
    description = "k-NN precision/recall/density/coverage (Euclidean features, Hamming codes)"
    input = "any"
    parameters: ClassVar[Mapping[str, Param]] = {
        "k": Param(5, int, "nearest neighbours (5: Naeem et al.; 3: Kynkäänniemi et al.)",
                   check=positive_int, extra={"below_reference": True}),
    }
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "precision": Quantity("fidelity", True, "synthetic inside the real k-NN manifold"),
        "recall": Quantity("variety", True, "real inside the synthetic k-NN manifold"),
        "density": Quantity("fidelity", True, "mean real k-NN balls containing a synthetic"),
        "coverage": Quantity("variety", True, "real points with a synthetic in their k-NN ball"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        return prdc(inputs.real, inputs.synthetic, self.params["k"],
                    distance=_distance(inputs), device=ctx.device)


class KNNPrivacyMetric(Metric):
    """Xing et al.'s kNN fidelity F, privacy P and privacy-adjusted fidelity F^p."""

    name = "knn-privacy"
    version = "0.1.0"
    description = "k-NN fidelity F, privacy P, F^p (Hamming on codes, Euclidean on features)"
    input = "any"
    parameters: ClassVar[Mapping[str, Param]] = {
        "k": Param(5, int, "nearest neighbours defining the real manifold", check=positive_int,
                   extra={"below_reference": True}),
    }
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "fidelity": Quantity("fidelity", True, "F: synthetic inside the real k-NN manifold"),
        "privacy": Quantity("privacy", True, "P: 1 − fraction closer to a real than its 1-NN"),
        "fidelity_privacy": Quantity("fidelity", True, "F^p: realistic and not a copy"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        return knn_privacy(inputs.real, inputs.synthetic, self.params["k"],
                           distance=_distance(inputs), device=ctx.device)


class DCRMetric(Metric):
    """Distance to closest training record, against held-out real images."""

    name = "dcr"
    version = "0.1.0"
    description = "Distance to closest record vs. held-out real (memorisation)"
    input = "any"
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "dcr_median": Quantity("privacy", True, "median distance to the closest training image"),
        "dcr_p05": Quantity("privacy", True, "5th percentile of that distance"),
        "heldout_dcr_median": Quantity("privacy", True, "the same for held-out real images"),
        "closer_to_train": Quantity("privacy", False,
                                    "fraction closer to train than to held-out (≈0.5 ideal)"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        if inputs.heldout is None:
            raise DataError("metric 'dcr' needs held-out real images (the dataset's test "
                            "split); the runner passed none")
        return dcr(inputs.real, inputs.synthetic, inputs.heldout, distance=_distance(inputs),
                   seed=ctx.seed, device=ctx.device)


class AuthenticityMetric(Metric):
    """Alaa et al. 2022 authenticity: synthetic samples that are not near-copies."""

    name = "authenticity"
    version = "0.1.0"
    description = "Authenticity (Alaa et al. 2022): fraction of non-memorised samples"
    input = "any"
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "authenticity": Quantity("privacy", True, "fraction of authentic synthetic samples"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        return authenticity(inputs.real, inputs.synthetic, distance=_distance(inputs),
                            device=ctx.device)


class MeanImageJPEGMetric(Metric):
    """Variety from the compressed size of the mean synthetic image (see ``variety``).

    ``codec = "jpeg"`` is the papers' quality-100 JPEG ("lossless JPEG", not truly lossless);
    ``codec = "png"`` a truly lossless PNG. The quantity names stay ``jpeg_bytes*`` for both so
    that boards and suites keep one vocabulary; the codec is a parameter, so it is part of the
    suite's protocol hash and results of the two codecs never share a board. The metric reports
    raw sizes only: the board derives V over exactly the entries it shows.
    """

    name = "mean-image-jpeg"
    version = "0.2.0"
    description = "Mean-image size (quality-100 JPEG or lossless PNG) and normalised variety V"
    input = "images"
    default_encoder = None
    parameters: ClassVar[Mapping[str, Param]] = {
        "codec": Param("jpeg", str, "mean-image codec: 'jpeg' (quality 100, 4:4:4, the papers' "
                       "setting) or 'png' (truly lossless, compress_level 9)",
                       choices=("jpeg", "png")),
    }
    quantities: ClassVar[Mapping[str, Quantity]] = {
        "jpeg_bytes": Quantity("variety", False, "encoded bytes of the all-class mean image"),
        "jpeg_bytes_class_mean": Quantity("variety", False,
                                          "mean over classes of the per-class mean-image bytes"),
        "real_jpeg_bytes": Quantity("variety", False, "the same for the real reference set"),
        "variety": Quantity("variety", True, "V = 1 − min-max normalised jpeg_bytes over the "
                            "board's entries", board_rule="inverse-minmax", source="jpeg_bytes"),
        "variety_class_mean": Quantity("variety", True, "V from jpeg_bytes_class_mean",
                                       board_rule="inverse-minmax",
                                       source="jpeg_bytes_class_mean"),
    }

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        codec = self.params["codec"]
        sizes = mean_image_variety(inputs.synthetic, inputs.synthetic_labels, codec=codec)
        per_class = [v for key, v in sizes.items() if key != "all"]
        real = mean_image_variety(inputs.real, inputs.real_labels, codec=codec)
        return {
            "jpeg_bytes": float(sizes["all"]),
            "jpeg_bytes_class_mean": float(np.mean(per_class)),
            "real_jpeg_bytes": float(real["all"]),
        }
