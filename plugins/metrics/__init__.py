"""First-party metric plugins, listed in ``PLUGINS`` and registered by the hook below.

The computations live in plain functions (re-exported as :mod:`medsynbench.metrics`):
``frechet`` (FID, KID), ``manifold`` (PRDC, kNN privacy), ``memorisation`` (DCR,
authenticity), ``variety`` (mean-image JPEG size) on the chunked kNN engine in ``knn``;
``marker`` (burned-in marker rate, no encoder); the metrics peers report: ``fd_infinity``
(FD∞), ``vendi`` (Vendi score), ``data_copying`` (Meehan et al.'s C_T), ``alpha_precision``
(α-precision / β-recall) and ``frd`` (Fréchet Radiomic Distance on the features of
``radiomics``, no encoder).
"""

from __future__ import annotations

from typing import Any

from medsynbench import hookimpl

from .alpha_precision import AlphaPrecisionMetric
from .builtin import (
    AuthenticityMetric,
    DCRMetric,
    FIDMetric,
    KIDMetric,
    KNNPrivacyMetric,
    MeanImageJPEGMetric,
    PRDCMetric,
)
from .data_copying import DataCopyingMetric
from .fd_infinity import FDInfinityMetric
from .frd import FRDMetric
from .marker import MarkerRateMetric
from .vendi import VendiMetric

PLUGINS: list[type] = []
PLUGINS.extend([
    FIDMetric,
    KIDMetric,
    PRDCMetric,
    KNNPrivacyMetric,
    DCRMetric,
    AuthenticityMetric,
    MeanImageJPEGMetric,
    MarkerRateMetric,
    FDInfinityMetric,
    VendiMetric,
    DataCopyingMetric,
    AlphaPrecisionMetric,
    FRDMetric,
])


@hookimpl
def register_metrics(register: Any) -> None:
    """Register every first-party metric plugin."""
    for cls in PLUGINS:
        register(cls)
