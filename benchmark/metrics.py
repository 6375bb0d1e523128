"""Fidelity, variety and privacy metrics as plain functions, for users who already have features.

    from medsynbench import metrics
    metrics.fid(real_features, fake_features)              # float
    metrics.prdc(real_features, fake_features, k=5)        # precision/recall/density/coverage
    metrics.knn_privacy(real_codes, fake_codes, distance="hamming")
    metrics.fd_infinity(real_features, fake_features)        # FD∞, extrapolated FID
    metrics.vendi_score(fake_features)                       # Vendi score
    metrics.data_copying(train_features, fake_features, heldout_features)   # C_T
    metrics.alpha_precision_recall(real_features, fake_features)
    metrics.frd(real_images, fake_images)                    # radiomics, uint8 N×C×H×W

Inputs are numpy arrays or torch tensors; every function takes ``device="cpu"|"cuda"|"auto"``.
The implementations (and their exact definitions) live in :mod:`medsynbench.plugins.metrics`.
"""

from __future__ import annotations

from medsynbench.plugins.metrics._inputs import MetricWarning
from medsynbench.plugins.metrics.alpha_precision import alpha_precision_recall
from medsynbench.plugins.metrics.data_copying import data_copying
from medsynbench.plugins.metrics.fd_infinity import fd_infinity
from medsynbench.plugins.metrics.frd import frd
from medsynbench.plugins.metrics.frechet import feature_statistics, fid, frechet_distance, kid
from medsynbench.plugins.metrics.manifold import knn_privacy, prdc
from medsynbench.plugins.metrics.memorisation import authenticity, dcr
from medsynbench.plugins.metrics.radiomics import FEATURE_NAMES as RADIOMICS_FEATURES
from medsynbench.plugins.metrics.radiomics import radiomic_features
from medsynbench.plugins.metrics.variety import (
    JPEG_SETTINGS,
    mean_image_variety,
    normalised_variety,
)
from medsynbench.plugins.metrics.vendi import vendi_score

__all__ = [
    "JPEG_SETTINGS",
    "RADIOMICS_FEATURES",
    "MetricWarning",
    "alpha_precision_recall",
    "authenticity",
    "data_copying",
    "dcr",
    "fd_infinity",
    "feature_statistics",
    "fid",
    "frd",
    "frechet_distance",
    "kid",
    "knn_privacy",
    "mean_image_variety",
    "normalised_variety",
    "prdc",
    "radiomic_features",
    "vendi_score",
]
