"""One base class per plugin kind, and the context every plugin method receives.

A plugin is a small class with a unique ``name``, a ``version`` (part of every cache key:
bump it when results would change), declared ``parameters`` and one or two methods::

    class MyGenerator(Generator):
        name = "my-gan"
        parameters = {"epochs": Param(10, int, "training epochs")}
        def fit(self, train, class_names, workdir, ctx): ...
        def load(self, workdir, ctx): ...
        def sample(self, counts, seed, ctx, **sample_params): ...

Plugins are registered through pluggy hooks (see :mod:`medsynbench.hookspecs`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from .data import DataSplits, ImageSet
from .params import Param, validate_params

__all__ = [
    "KINDS",
    "Dataset",
    "Encoder",
    "Generator",
    "Metric",
    "MetricInputs",
    "Plugin",
    "ProgressTask",
    "Quantity",
    "RunContext",
    "Task",
]

KINDS = ("dataset", "generator", "encoder", "metric", "task")
Axis = Literal["fidelity", "variety", "privacy", "efficiency", "utility"]
log = logging.getLogger("medsynbench")


class ProgressTask(Protocol):
    """What ``ctx.progress(...)`` yields: call ``advance(n)`` as work completes."""

    def advance(self, n: float = 1) -> None: ...
    def update(self, **fields: Any) -> None: ...


class _SilentTask:
    def advance(self, n: float = 1) -> None:
        pass

    def update(self, **fields: Any) -> None:
        pass


def _silent_progress(description: str, total: float | None = None) -> AbstractContextManager[Any]:
    return nullcontext(_SilentTask())


@dataclass
class RunContext:
    """Everything a plugin method may need from the runner.

    ``workdir`` is the stage's own directory: files written there become the cached stage
    output. It persists across a killed run (it is only renamed into place when the stage
    completes), so long fits can save periodic checkpoints there and resume from them.
    ``seed`` is derived deterministically from the suite seed, the stage and the entry.
    ``progress(description, total)`` is a context manager yielding a :class:`ProgressTask`.
    """

    device: str = "cpu"
    seed: int = 0
    workdir: Path = field(default_factory=Path.cwd)
    progress: Callable[..., AbstractContextManager[Any]] = _silent_progress
    log: Callable[[str], None] = log.info
    registry: Any = None  # medsynbench.registry.PluginRegistry; Any avoids an import cycle
    cache_dir: Path | None = None
    # The prepared real splits (read-only). Generators that draw from a split other than the
    # one they are fitted on (the ``heldout-real`` positive control) read it here.
    data: DataSplits | None = None

    def child(self, **changes: Any) -> RunContext:
        """A copy with some fields replaced."""
        values = {**self.__dict__, **changes}
        return RunContext(**values)


class Plugin:
    """Base of every plugin. Subclasses set ``name`` and declare ``parameters``."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = ""
    parameters: ClassVar[Mapping[str, Param]] = {}
    # For "family:argument" names such as "timm:resnet50": the argument is passed as the
    # parameter named here.
    name_argument: ClassVar[str | None] = None
    # Filled in by the registry: the distribution that registered this class.
    distribution: ClassVar[str] = ""
    distribution_version: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = self.validate(params)
        self.check()

    @classmethod
    def validate(cls, params: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """Return ``params`` completed with defaults; raise ParameterError when invalid."""
        return validate_params(
            f"{cls.kind} {cls.name!r}", cls.parameters, params, where or cls.name
        )

    def check(self) -> None:
        """Cross-parameter checks run before any work (raise ParameterError/DataError)."""

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name} {self.params}>"


class Dataset(Plugin):
    """Provides named splits of real images. ``check`` must fail fast when files are missing,
    naming exactly what to download and where to put it."""

    kind: ClassVar[str] = "dataset"
    modality: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    license: ClassVar[str] = ""

    def load(self, ctx: RunContext) -> DataSplits:
        """Read (or generate) the dataset and return its splits."""
        raise NotImplementedError


class Generator(Plugin):
    """Fits on a training split and samples labelled synthetic images.

    ``parameters`` are the suite's ``train`` table, ``sample_parameters`` its ``sample`` table.
    ``fit`` writes everything ``load`` needs into ``workdir`` and returns a small dict of
    training facts (steps, losses) stored in the results.
    """

    kind: ClassVar[str] = "generator"
    sample_parameters: ClassVar[Mapping[str, Param]] = {}
    # A reference row — shown beside the generators on every board, never ranked among them.
    # ``reference`` says which: "memoriser" (copy-real), "classical" (classical augmentation:
    # every generator's Δ is also reported against it), "positive-control" (held-out real),
    # "negative-control" (label-swapped real) or "control" (any other known-answer row).
    reference: ClassVar[str | None] = None
    baseline: ClassVar[bool] = False  # True exactly when ``reference`` is set
    samples_real: ClassVar[bool] = False  # its samples are (transformed) real images: never shown

    def splits_needed(self) -> list[str]:
        """Real splits this generator reads besides its fit split (checked before any fit)."""
        return []

    def fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> Mapping[str, Any]:
        """Train on ``train`` and save a checkpoint into ``workdir``."""
        raise NotImplementedError

    def load(self, workdir: Path, ctx: RunContext) -> None:
        """Restore the state written by :meth:`fit` (called before ``sample`` in a new process)."""
        raise NotImplementedError

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """Return ``counts[c]`` images of each class ``c``; deterministic for a seed."""
        raise NotImplementedError

    @classmethod
    def validate_sample(cls, params: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """Validate a ``sample`` table (one expanded value per sweepable parameter)."""
        return validate_params(
            f"generator {cls.name!r}", cls.sample_parameters, params, where or cls.name
        )

    def efficiency(
        self, ctx: RunContext, image_shape: tuple[int, int, int]
    ) -> dict[str, float | None]:
        """Optional: e.g. ``peak_gpu_memory_mb_8`` (None on CPU) and ``seconds_per_1000``."""
        return {}


class Encoder(Plugin):
    """Maps uint8 images to features (N×d float32) or codes (N×L integers)."""

    kind: ClassVar[str] = "encoder"
    output: ClassVar[Literal["features", "codes"]] = "features"
    needs_fit: ClassVar[bool] = False  # True: fitted on the real training split first

    def fit(self, train: ImageSet, workdir: Path, ctx: RunContext) -> None:
        """Fit on real training images (only when ``needs_fit``)."""

    def load(self, workdir: Path, ctx: RunContext) -> None:
        """Restore what :meth:`fit` saved (only when ``needs_fit``)."""

    def encode(self, images: np.ndarray, ctx: RunContext) -> np.ndarray:
        """Encode uint8 N×C×H×W images."""
        raise NotImplementedError

    def flags(self) -> list[str]:
        """Caveats attached to every result using this encoder (e.g. random weights)."""
        return []


@dataclass(frozen=True)
class Quantity:
    """One number a metric reports: its axis and which direction is better.

    A quantity with ``board_rule`` is not computed by the metric: the leaderboard derives it
    from the quantity named ``source`` over exactly the entries on the board (so it never
    depends on which entries happened to run together). Rules: ``"inverse-minmax"``,
    V = 1 − (s − min s)/(max s − min s) (Xing et al.'s normalised variety; all 1 when equal).
    """

    axis: Axis
    higher_is_better: bool
    help: str = ""
    board_rule: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class MetricInputs:
    """What a metric sees: representations (features, codes or images) of the real reference
    set (the split the generator was fitted on), the synthetic set and held-out real images."""

    real: np.ndarray
    synthetic: np.ndarray
    heldout: np.ndarray | None
    real_labels: np.ndarray
    synthetic_labels: np.ndarray
    class_names: tuple[str, ...]
    # What the arrays hold: encoder features (N×d float), encoder codes (N×L int) or raw
    # uint8 images (N×C×H×W) for metrics whose ``input`` is "images".
    representation: Literal["features", "codes", "images"] = "features"
    encoder: str | None = None


class Metric(Plugin):
    """Computes named quantities from real and synthetic representations.

    ``input`` says what the runner must feed: "features" or "codes" (from the metric's
    encoder; "any" accepts both, e.g. kNN privacy in Euclidean or Hamming space) or "images"
    (no encoder). The runner refuses a metric/encoder pairing whose output does not match.
    """

    kind: ClassVar[str] = "metric"
    input: ClassVar[Literal["features", "codes", "any", "images"]] = "features"
    quantities: ClassVar[Mapping[str, Quantity]] = {}
    default_encoder: ClassVar[str | None] = "efficientnet-lite0"

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        """Return a value for (a subset of) :attr:`quantities`."""
        raise NotImplementedError



class Task(Plugin):
    """A downstream-utility protocol, run once per seed with and without synthetic data.

    ``run_seed(data, None, seed)`` is the baseline arm (real data only, or whatever the task
    compares against); ``run_seed(data, synthetic, seed)`` the arm with an entry's synthetic
    images. The same seed must give the same initialisation and data order in both arms.
    Scores are a flat dict; ``primary`` names the one that Δ and the p-value are about.
    When the primary score is an accuracy, the dict may also hold ``"correct"``: a list of
    0/1, one per evaluation image in the split's order (1 = that image was classified
    correctly). The leaderboard then resamples test images as well as seeds for its rank
    intervals; the runner stores it packed, apart from the scores.
    """

    kind: ClassVar[str] = "task"
    primary: ClassVar[str] = "accuracy"
    scores: ClassVar[Mapping[str, str]] = {"accuracy": "fraction of correct test predictions"}

    def run_seed(
        self, data: DataSplits, synthetic: ImageSet | None, seed: int, ctx: RunContext
    ) -> dict[str, Any]:
        """Run one seed of one arm and return its scores (floats, plus optional ``correct``)."""
        raise NotImplementedError

    def synthetic_counts(self, train_counts: Sequence[int]) -> list[int] | None:
        """Synthetic images per class this task adds, given the real training counts per class
        (None: whatever was sampled). The runner samples at least this many."""
        return None

    def check_synthetic(self, data: DataSplits, synthetic: ImageSet) -> None:
        """Raise TaskError when a synthetic set cannot be used (wrong shape, empty...)."""
