"""MedSynBench: is this synthetic medical image data useful?

The core ("spine") lives here: plugin kinds and registry, suites, the cached runner, results
and the CLI. First-party plugins live in :mod:`medsynbench.plugins`.
"""

from __future__ import annotations

from .data import DataSplits, ImageSet
from .errors import MedSynBenchError
from .hookspecs import hookimpl
from .kinds import (
    Dataset,
    Encoder,
    Executor,
    Generator,
    ImageSize,
    Metric,
    MetricInputs,
    Quantity,
    RunContext,
    Task,
)
from .params import Param

__version__ = "0.1.0"

__all__ = [
    "DataSplits",
    "Dataset",
    "Encoder",
    "Executor",
    "Generator",
    "ImageSet",
    "ImageSize",
    "MedSynBenchError",
    "Metric",
    "MetricInputs",
    "Param",
    "Quantity",
    "RunContext",
    "Task",
    "__version__",
    "hookimpl",
]
