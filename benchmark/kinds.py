"""One base class per plugin kind, and the context every plugin method receives.

A plugin is a small class with a unique ``name``, a ``version`` (part of every cache key:
bump it when results would change), declared ``parameters`` and one or two methods::

    class MyGenerator(Generator):
        name = "my-gan"
        parameters = {"epochs": Param(10, int, "training epochs")}
        def fit(self, train, class_names, workdir, ctx): ...
        def load(self, workdir, ctx): ...
        def sample(self, counts, seed, ctx, **sample_params): ...

A generator whose architecture limits the image size (downsampling stages, a synthesis
network that doubles a 4×4 constant) says so in :meth:`Generator.image_size`, returning an
:class:`ImageSize`; the suite then refuses a dataset of the wrong size before any work::

        def image_size(self) -> ImageSize:
            return ImageSize(multiple=8, reason="codes at 1/8 of the image side")

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

from .data import DataSplits, ImageSet, SplitPlan
from .errors import GeneratorError
from .params import Param, validate_params

__all__ = [
    "KINDS",
    "Dataset",
    "Encoder",
    "Executor",
    "Generator",
    "ImageSize",
    "Metric",
    "MetricInputs",
    "Plugin",
    "ProgressTask",
    "Quantity",
    "RunContext",
    "Task",
]

KINDS = ("dataset", "generator", "encoder", "metric", "task", "executor")
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
    # Devices for data-parallel training inside one unit (``run --data-parallel N``): empty or
    # one device means train on ``device``; more, one process per device (e.g. "cuda:0",
    # "cuda:1"; "cpu" repeated trains with gloo). The utility classifiers use it.
    devices: tuple[str, ...] = ()

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

    def planned_image_size(self) -> tuple[int, int] | None:
        """(height, width) of the images :meth:`load` will return, when the parameters alone
        say; None when only the files tell (the runner then checks right after loading).

        The default reads the plan (``planned_splits``, for generated data), else the
        ``resolution`` parameter (a square side) when the dataset declares one and it is set.
        Override it when another parameter fixes the size (e.g. a native size of the files).
        """
        planner = getattr(self, "planned_splits", None)
        plan = planner() if planner is not None else None
        if isinstance(plan, SplitPlan):
            return plan.image_shape[1], plan.image_shape[2]
        side = self.params.get("resolution")
        if isinstance(side, int) and not isinstance(side, bool):
            return side, side
        return None


@dataclass(frozen=True)
class ImageSize:
    """The image sizes a generator can be fitted on (:meth:`Generator.image_size`).

    Height and width must be multiples of ``multiple`` (e.g. 8 for three stride-2 stages),
    powers of two when ``power_of_two``, equal when ``square``, and at least ``min_side``.
    ``reason`` says why (shown in messages); ``fix`` names a parameter change that would
    accept other sizes, if any. ``ImageSize()`` accepts every size.
    """

    multiple: int = 1
    power_of_two: bool = False
    square: bool = False
    min_side: int = 1
    reason: str = ""
    fix: str = ""

    def problems(self, height: int, width: int) -> list[str]:
        """What is wrong with ``height``×``width`` images (empty when they fit)."""
        found = []
        if self.square and height != width:
            found.append(f"{height}×{width} is not square")
        for side in dict.fromkeys((height, width)):
            if side < self.min_side:
                found.append(f"{side} is below {self.min_side}")
            elif self.power_of_two and side & (side - 1):
                found.append(f"{side} is not a power of two")
            elif side % self.multiple:
                found.append(f"{side} is not a multiple of {self.multiple}")
        return found

    def accepts(self, height: int, width: int) -> bool:
        """True when ``height``×``width`` images fit."""
        return not self.problems(height, width)

    def describe(self) -> str:
        """The rule in words, e.g. ``square images, sides a power of two ≥ 8 px``."""
        sides = []
        if self.power_of_two:
            sides.append("a power of two")
        if self.multiple > 1:
            sides.append(f"a multiple of {self.multiple}")
        words = " and ".join(sides)
        if self.min_side > 1:
            words = f"{words} ≥ {self.min_side} px" if words else f"at least {self.min_side} px"
        if not words:
            return "square images" if self.square else "any size"
        return ("square images, sides " if self.square else "image sides ") + words


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

    def image_size(self) -> ImageSize:
        """The image sizes this generator, with its parameters, can be fitted on (checked
        against the dataset before any work; default: any size)."""
        return ImageSize()

    def require_image_size(self, height: int, width: int) -> None:
        """Raise GeneratorError unless :meth:`image_size` accepts ``height``×``width`` (for
        ``fit``: a direct caller gets the same message the suite would give)."""
        rule = self.image_size()
        found = rule.problems(height, width)
        if found:
            why = f" ({rule.reason})" if rule.reason else ""
            fix = f"; or {rule.fix}" if rule.fix else ""
            raise GeneratorError(
                f"generator {self.name!r}: {height}×{width} images do not fit: it needs "
                f"{rule.describe()}{why}, but {'; '.join(found)}; resize the dataset "
                f"(its `resolution` parameter){fix}"
            )

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


class Executor(Plugin):
    """Builds the pending units of a run's plan (:mod:`medsynbench.plan`): in this process
    (``local``), as Ray tasks, as SLURM jobs...

    :meth:`execute` receives the plan and the runner. In this process it calls
    ``runner.build(unit)``; elsewhere it ships ``runner.job()`` — a picklable
    :class:`~medsynbench.runner.UnitJob` whose ``build(unit_id)`` runs in a worker that reads
    and writes the same cache directory. Either returns a
    :class:`~medsynbench.plan.UnitOutcome`. A unit may run only after every unit in its
    ``after``; a unit whose input failed is returned skipped (``plan.build_in_order`` does
    both for a sequence of units). The runner then reads every unit from the cache, so an
    executor never touches results.
    """

    kind: ClassVar[str] = "executor"

    def execute(self, plan: Any, runner: Any) -> dict[str, Any]:
        """Build the plan's units (all but ``prepare``); return their outcomes by unit id."""
        raise NotImplementedError
