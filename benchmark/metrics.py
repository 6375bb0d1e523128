"""Fidelity, variety and privacy metrics as plain functions, for users who already have features.

    from medsynbench import metrics
    metrics.fid(real_features, fake_features)              # float
    metrics.prdc(real_features, fake_features, k=5)        # precision/recall/density/coverage
    metrics.knn_privacy(real_codes, fake_codes, distance="hamming")

Inputs are numpy arrays or torch tensors; every function takes ``device="cpu"|"cuda"|"auto"``.
The implementations (and their exact definitions) live in :mod:`medsynbench.plugins.metrics`.
"""

from __future__ import annotations

from medsynbench.plugins.metrics._inputs import MetricWarning
from medsynbench.plugins.metrics.frechet import feature_statistics, fid, frechet_distance, kid
from medsynbench.plugins.metrics.manifold import knn_privacy, prdc
from medsynbench.plugins.metrics.memorisation import authenticity, dcr
from medsynbench.plugins.metrics.variety import (
    JPEG_SETTINGS,
    mean_image_variety,
    normalised_variety,
)

__all__ = [
    "JPEG_SETTINGS",
    "MetricWarning",
    "authenticity",
    "dcr",
    "feature_statistics",
    "fid",
    "frechet_distance",
    "kid",
    "knn_privacy",
    "mean_image_variety",
    "normalised_variety",
    "prdc",
]
