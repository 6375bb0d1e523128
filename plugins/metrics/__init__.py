"""First-party metric plugins, listed in ``PLUGINS`` and registered by the hook below.

The computations live in plain functions (re-exported as :mod:`medsynbench.metrics`):
``frechet`` (FID, KID), ``manifold`` (PRDC, kNN privacy), ``memorisation`` (DCR,
authenticity), ``variety`` (mean-image JPEG size) on the chunked kNN engine in ``knn``;
``marker`` (burned-in marker rate, no encoder).
"""

from __future__ import annotations

from typing import Any

from medsynbench import hookimpl

from .builtin import (
    AuthenticityMetric,
    DCRMetric,
    FIDMetric,
    KIDMetric,
    KNNPrivacyMetric,
    MeanImageJPEGMetric,
    PRDCMetric,
)
from .marker import MarkerRateMetric

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
])


@hookimpl
def register_metrics(register: Any) -> None:
    """Register every first-party metric plugin."""
    for cls in PLUGINS:
        register(cls)
