"""First-party task plugins: every class listed in ``PLUGINS`` is registered by the hook."""

from __future__ import annotations

from typing import Any

from medsynbench import hookimpl

from .augmentation import Augmentation
from .bias_probe import BiasProbe, MaskedBiasProbe
from .cross_task_svm import CrossTaskSVM
from .feature_extraction import FeatureExtraction

PLUGINS: list[type] = [Augmentation, FeatureExtraction, CrossTaskSVM, BiasProbe, MaskedBiasProbe]


@hookimpl
def register_tasks(register: Any) -> None:
    """Register every first-party task plugin."""
    for cls in PLUGINS:
        register(cls)
