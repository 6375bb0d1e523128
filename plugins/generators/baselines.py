"""Reference generators: the memoriser, classical augmentation and a noise floor.

These rows anchor a leaderboard. ``copy-real`` returns real training images (perfect fidelity,
zero privacy: every metric that cannot tell it from a good model is suspect), ``classical-augment``
is the flip/rotate/contrast baseline every utility table needs, and ``noise`` is a sanity floor
that any model should beat.

``copy-real`` and ``classical-augment`` are *reference rows* (``reference`` "memoriser" and
"classical"): shown beside the generators, never ranked among them. ``noise`` is an ordinary,
ranked generator: a floor is only a floor if it competes. The known-answer controls built on
:class:`_RealImageBaseline` live in :mod:`.controls`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import Generator, ImageSet, Param, RunContext
from medsynbench.errors import GeneratorError
from medsynbench.params import in_range

from .training import check_counts, require_fitted

__all__ = ["ClassicalAugment", "CopyReal", "Noise"]

_NONNEG_BELOW_ONE = in_range(0, 1, high_open=True)

_META = "baseline.json"


def _labels_for(counts: Sequence[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)


def _draw_indices(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` items of ``pool``: without replacement while possible, then another permutation."""
    rounds = [rng.permutation(pool) for _ in range(-(-n // len(pool)))] if n else []
    return np.concatenate(rounds)[:n] if rounds else np.zeros(0, dtype=np.int64)


class _RealImageBaseline(Generator):
    """Shared fit/load/pick for rows that return (transformed) real images.

    By default the images are the training split; a subclass draws from elsewhere by
    overriding :meth:`_source`, which also does its checks: it runs before anything is written,
    so a refused fit leaves ``workdir`` untouched.
    """

    baseline: ClassVar[bool] = True
    samples_real: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._real: ImageSet | None = None
        self._class_names: tuple[str, ...] = ()

    def _source(self, train: ImageSet, class_names: Sequence[str], ctx: RunContext) -> ImageSet:
        """The real images this row draws from (raise GeneratorError here to refuse a fit)."""
        return train

    def _source_name(self) -> str:
        """How error messages and warnings name the images of :meth:`_source`."""
        return "the training split"

    def fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> dict[str, Any]:
        """Store the source images in ``workdir`` (they *are* the model)."""
        source = self._source(train, class_names, ctx)
        stored = ImageSet(np.asarray(source.images), source.labels)
        workdir.mkdir(parents=True, exist_ok=True)
        stored.save(workdir)
        (workdir / _META).write_text(json.dumps({"class_names": list(class_names)}))
        self._real = stored
        self._class_names = tuple(class_names)
        return {"steps": 0, "train_seconds": 0.0, "stored_images": len(stored)}

    def load(self, workdir: Path, ctx: RunContext) -> None:
        """Read the images :meth:`fit` stored."""
        meta_path = workdir / _META
        if not meta_path.is_file():
            raise GeneratorError(
                f"generator {self.name!r}: {meta_path} not found; run fit() into this workdir first"
            )
        self._class_names = tuple(json.loads(meta_path.read_text())["class_names"])
        self._real = ImageSet.load(workdir, mmap=True)

    def _fitted_real(self) -> ImageSet:
        """The stored images; GeneratorError when neither fit() nor load() has run."""
        require_fitted(self._real, self.name)
        assert self._real is not None
        return self._real

    def _pick(self, counts: Sequence[int], rng: np.random.Generator, shift: int = 0) -> np.ndarray:
        """Indices of stored images, ``counts[c]`` for label ``c``, grouped by label.

        Label ``c`` draws from class ``(c + shift) mod K`` (``shift`` is 0 except for the
        label-swapped negative control), without replacement while the class has enough.
        """
        real = self._fitted_real()
        k = len(self._class_names)
        values = check_counts(counts, k, self.name)
        picked = []
        for c, n in enumerate(values):
            source = (c + shift) % k
            pool = np.flatnonzero(real.labels == source)
            if n and not len(pool):
                raise GeneratorError(
                    f"generator {self.name!r}: {n} images of class "
                    f"{self._class_names[source]!r} requested but {self._source_name()} has "
                    "none of that class"
                )
            picked.append(_draw_indices(pool, n, rng))
        return np.concatenate(picked).astype(np.int64)


class CopyReal(_RealImageBaseline):
    """The memoriser: returns real training images of each class (an upper bound on fidelity)."""

    name: ClassVar[str] = "copy-real"
    reference: ClassVar[str | None] = "memoriser"
    description: ClassVar[str] = "returns real training images (memorisation baseline)"

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` real images of class ``c``, without replacement while possible."""
        index = self._pick(counts, np.random.default_rng(seed))
        real = self._fitted_real()
        return ImageSet(np.ascontiguousarray(real.images[index]), real.labels[index])


class ClassicalAugment(_RealImageBaseline):
    """Real training images with random flips, 90° rotations and contrast/brightness jitter."""

    name: ClassVar[str] = "classical-augment"
    reference: ClassVar[str | None] = "classical"
    description: ClassVar[str] = "flip / 90° rotation / contrast jitter of real training images"
    parameters: ClassVar[dict[str, Param]] = {
        "flip": Param(True, bool, "random horizontal and vertical flips"),
        "rotate": Param(True, bool, "random 90° rotations (180° only for non-square images)"),
        "contrast": Param(
            0.1, float, "contrast factor drawn from [1-x, 1+x]", check=_NONNEG_BELOW_ONE
        ),
        "brightness": Param(
            0.1, float, "brightness shift drawn from [-x, x] of the full range",
            check=_NONNEG_BELOW_ONE,
        ),
    }

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` augmented real images of class ``c`` (deterministic for ``seed``)."""
        rng = np.random.default_rng(seed)
        index = self._pick(counts, rng)
        real = self._fitted_real()
        images = np.asarray(real.images[index])
        out = np.empty_like(images)
        for i, image in enumerate(images):
            out[i] = self._augment(image, rng)
        return ImageSet(out, real.labels[index])

    def _augment(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Draw every random number whatever the switches say, so that turning one transform off
        # leaves the others' draws (and thus the other images) unchanged.
        flip_h, flip_v = rng.random(2) < 0.5
        quarter_turns = int(rng.integers(4))
        contrast = 1.0 + rng.uniform(-1, 1) * self.params["contrast"]
        shift = rng.uniform(-1, 1) * self.params["brightness"] * 255.0
        x = image
        if self.params["flip"]:
            x = x[:, :, ::-1] if flip_h else x
            x = x[:, ::-1, :] if flip_v else x
        if self.params["rotate"]:
            square = x.shape[1] == x.shape[2]
            turns = quarter_turns if square else 2 * (quarter_turns % 2)
            x = np.rot90(x, k=turns, axes=(1, 2))
        values = x.astype(np.float32)
        mean = values.mean(axis=(1, 2), keepdims=True)
        values = (values - mean) * contrast + mean + shift
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)


class Noise(Generator):
    """Uniform or Gaussian noise images of the training data's shape: a sanity floor."""

    name: ClassVar[str] = "noise"
    description: ClassVar[str] = "random noise images (sanity floor)"
    parameters: ClassVar[dict[str, Param]] = {
        "distribution": Param(
            "gaussian", str,
            "'uniform' on [0, 255], or 'gaussian' with the per-class, per-channel mean and std "
            "of the training images",
            choices=("uniform", "gaussian"),
        ),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._state: dict[str, Any] | None = None

    def fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> dict[str, Any]:
        """Record the image shape and per-class, per-channel pixel statistics."""
        images = np.asarray(train.images)
        channels = images.shape[1]
        mean, std = [], []
        for c in range(len(class_names)):
            pixels = images[train.labels == c].astype(np.float64)
            if len(pixels):
                mean.append(pixels.mean(axis=(0, 2, 3)).tolist())
                std.append(pixels.std(axis=(0, 2, 3)).tolist())
            else:  # no example of this class: fall back to mid-grey, wide spread
                mean.append([127.5] * channels)
                std.append([64.0] * channels)
        self._state = {
            "class_names": list(class_names),
            "image_shape": list(train.image_shape),
            "mean": mean,
            "std": std,
        }
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / _META).write_text(json.dumps(self._state))
        return {"steps": 0, "train_seconds": 0.0}

    def load(self, workdir: Path, ctx: RunContext) -> None:
        """Read the statistics :meth:`fit` stored."""
        meta_path = workdir / _META
        if not meta_path.is_file():
            raise GeneratorError(
                f"generator {self.name!r}: {meta_path} not found; run fit() into this workdir first"
            )
        self._state = json.loads(meta_path.read_text())

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` noise images labelled ``c``."""
        require_fitted(self._state, self.name)
        assert self._state is not None
        values = check_counts(counts, len(self._state["class_names"]), self.name)
        c_, h, w = self._state["image_shape"]
        rng = np.random.default_rng(seed)
        parts = []
        for c, n in enumerate(values):
            if self.params["distribution"] == "uniform":
                x = rng.integers(0, 256, size=(n, c_, h, w), dtype=np.uint8)
            else:
                mean = np.asarray(self._state["mean"][c])[None, :, None, None]
                std = np.asarray(self._state["std"][c])[None, :, None, None]
                x = np.clip(np.rint(rng.normal(mean, std, size=(n, c_, h, w))), 0, 255)
            parts.append(x.astype(np.uint8))
        return ImageSet(np.concatenate(parts), _labels_for(values))
