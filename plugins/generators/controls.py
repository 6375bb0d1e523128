"""Known-answer controls: rows whose right verdict is known before the benchmark runs.

A metric or a utility verdict is only trusted when it gets these rows right. All of them
return (transformed) real images, so ``samples_real`` is set and their mosaics are withheld.
They are reference rows — shown beside the generators, never ranked — with ``reference``:

- ``heldout-real`` ("positive-control"): real images from a split the classifier never sees
  (``train.pool``, default ``val``). Its utility Δ is what "as good as more real data" looks
  like; a generator beating it deserves a second look.
- ``label-swap`` ("negative-control"): real training images under wrong labels — an image
  labelled ``c`` is a real image of class ``(c + 1) mod K``. Utility must drop below the
  real-only arm; a task that does not notice cannot detect harmful synthetic data.
- ``near-copy``, ``mode-collapse``, ``blur``, ``marker-inject`` ("control", for a validation
  suite): training images plus small pixel noise (privacy ≈ 0: memorisation metrics must
  fire), one image per class repeated (recall, coverage and variety at their floor), Gaussian
  blur (fidelity must drop while the labels stay right) and the burned-in "R" laterality
  marker at a class-dependent corner (the shortcut: a classifier trained with them learns the
  marker and the bias-probe task must fire).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from medsynbench import ImageSet, Param, RunContext
from medsynbench.errors import GeneratorError, ParameterError
from medsynbench.kinds import ImageSize
from medsynbench.params import in_range, nonnegative, positive
from scipy import ndimage

from ..datasets.bias import BIAS_PARAMETERS, CLASS_SLOTS, burn_marker, marker_box, marker_slot
from .baselines import _labels_for, _RealImageBaseline
from .training import check_counts

__all__ = ["Blur", "HeldoutReal", "LabelSwap", "MarkerInject", "ModeCollapse", "NearCopy"]

_FRACTION = in_range(0, 1, low_open=True)


class HeldoutReal(_RealImageBaseline):
    """Positive control: real images of each class from a split the classifier never sees.

    "Fitted on nothing": :meth:`fit` ignores the training split and copies the ``pool`` split
    of ``ctx.data`` into ``workdir``. The stored copy *is* the model, so :meth:`load` and
    :meth:`sample` work in a new process without ``ctx.data`` and the cached stage output
    does not depend on the runner keeping the splits around.
    """

    name: ClassVar[str] = "heldout-real"
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = "real images from a held-out split (positive control)"
    reference: ClassVar[str | None] = "positive-control"
    parameters: ClassVar[dict[str, Param]] = {
        "pool": Param(
            "val", str,
            "the real split the images come from; it must be held out from the classifier "
            "(not 'train', nor 'test' or a split derived from it)",
        ),
    }

    def check(self) -> None:
        """Refuse pools that the classifier trains or is evaluated on (they would leak)."""
        pool = self.params["pool"]
        if pool == "train" or pool.startswith("test"):
            raise ParameterError(
                f"generator {self.name!r}: train.pool = {pool!r} is seen by the classifier "
                "(trained on 'train', evaluated on 'test'); set train.pool to a held-out split "
                "such as 'val'"
            )

    def splits_needed(self) -> list[str]:
        """The pool split, so the runner can check it exists before any fit."""
        return [self.params["pool"]]

    def _source(self, train: ImageSet, class_names: Sequence[str], ctx: RunContext) -> ImageSet:
        pool = self.params["pool"]
        if ctx.data is None:
            raise GeneratorError(
                f"generator {self.name!r}: ctx.data is None, so the train.pool split {pool!r} "
                "cannot be read; the runner must pass the prepared splits in RunContext.data"
            )
        if pool not in ctx.data.splits:
            raise GeneratorError(
                f"generator {self.name!r}: train.pool = {pool!r} is not a split of this "
                f"dataset (available: {', '.join(ctx.data.splits)}); set train.pool to one "
                "of them that the classifier never sees, or give the dataset a validation "
                "split (e.g. n_val > 0)"
            )
        return ctx.data.splits[pool]

    def _source_name(self) -> str:
        return f"the {self.params['pool']!r} split"

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` pool images of class ``c``; warns when a class must repeat images."""
        index = self._pick(counts, np.random.default_rng(seed))
        real = self._fitted_real()
        self._warn_repeats(counts, real.counts(len(self._class_names)))
        return ImageSet(np.ascontiguousarray(real.images[index]), real.labels[index])

    def _warn_repeats(self, counts: Sequence[int], available: np.ndarray) -> None:
        # Repeats make the control look less diverse than fresh real data would: the board must
        # say so, and the runner turns warnings into flags.
        short = [
            f"class {name!r}: {int(have)} unique images for {int(n)} requested"
            for name, n, have in zip(self._class_names, counts, available, strict=True)
            if n > have
        ]
        if short:
            warnings.warn(
                f"generator {self.name!r}: {self._source_name()} is smaller than the request, "
                f"so images were repeated ({'; '.join(short)})",
                stacklevel=2,
            )


class LabelSwap(_RealImageBaseline):
    """Negative control: real training images whose label is wrong by design.

    An image labelled ``c`` is a real image of class ``(c + 1) mod K`` — a cyclic shift, so
    every class keeps its real image statistics and only the label-to-image map is broken.
    """

    name: ClassVar[str] = "label-swap"
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = "real training images of class c+1 labelled c (negative control)"
    reference: ClassVar[str | None] = "negative-control"

    def _source(self, train: ImageSet, class_names: Sequence[str], ctx: RunContext) -> ImageSet:
        if len(class_names) < 2:
            raise GeneratorError(
                f"generator {self.name!r}: swapping labels needs at least 2 classes, the "
                f"dataset has {len(class_names)} ({', '.join(class_names)}); drop label-swap "
                "from this suite"
            )
        return train

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` real images of class ``(c + 1) mod K``, labelled ``c``."""
        index = self._pick(counts, np.random.default_rng(seed), shift=1)
        real = self._fitted_real()
        return ImageSet(np.ascontiguousarray(real.images[index]), _labels_for(counts))


class NearCopy(_RealImageBaseline):
    """Training images plus small Gaussian pixel noise: memorisation a metric must catch.

    With ``sigma`` of a few grey levels every sample sits next to its training image in any
    feature space, so the privacy distance P is ≈ 0 while pixel-exact copy detectors miss it.
    """

    name: ClassVar[str] = "near-copy"
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = "training images + small Gaussian pixel noise (control)"
    reference: ClassVar[str | None] = "control"
    parameters: ClassVar[dict[str, Param]] = {
        "sigma": Param(2.0, float, "noise standard deviation in grey levels (0–255)",
                       check=positive),
    }

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` noisy copies of class-``c`` training images (deterministic for seed)."""
        rng = np.random.default_rng(seed)
        index = self._pick(counts, rng)
        real = self._fitted_real()
        images = np.asarray(real.images[index]).astype(np.float32)
        noisy = images + rng.normal(0.0, self.params["sigma"], size=images.shape)
        return ImageSet(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), real.labels[index])


class ModeCollapse(_RealImageBaseline):
    """One training image per class, repeated: recall, coverage and variety at their floor.

    The image of each class is drawn with the seed, so seeds differ but each sample set holds
    exactly one unique image per requested class.
    """

    name: ClassVar[str] = "mode-collapse"
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = "one training image per class, repeated (control)"
    reference: ClassVar[str | None] = "control"

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` copies of a single class-``c`` training image."""
        values = check_counts(counts, len(self._class_names), self.name)
        one_each = self._pick([min(n, 1) for n in values], np.random.default_rng(seed))
        real = self._fitted_real()
        index = np.repeat(one_each, [n for n in values if n])
        return ImageSet(np.ascontiguousarray(real.images[index]), real.labels[index])


class Blur(_RealImageBaseline):
    """Gaussian-blurred training images: right labels and layout, lost fine detail.

    Fidelity and precision metrics must drop; utility usually drops less, which is the point
    of showing both.
    """

    name: ClassVar[str] = "blur"
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = "Gaussian-blurred training images (control)"
    reference: ClassVar[str | None] = "control"
    parameters: ClassVar[dict[str, Param]] = {
        "sigma": Param(2.0, float, "blur standard deviation in pixels", check=positive),
    }

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` blurred class-``c`` training images (deterministic for ``seed``)."""
        index = self._pick(counts, np.random.default_rng(seed))
        real = self._fitted_real()
        images = np.asarray(real.images[index]).astype(np.float32)
        sigma = self.params["sigma"]
        # Sigma 0 on the image and channel axes: blur within each image plane only.
        blurred = ndimage.gaussian_filter(images, sigma=(0, 0, sigma, sigma), mode="reflect")
        return ImageSet(np.clip(np.rint(blurred), 0, 255).astype(np.uint8), real.labels[index])


class MarkerInject(_RealImageBaseline):
    """Training images with the "R" laterality marker burned in where the class says.

    Markers follow :func:`plugins.datasets.bias.marker_slot` (the X-ray study's layout): in
    ``position`` mode class ``c`` gets corner ``CLASS_SLOTS[c]``; in ``presence`` mode only
    abnormal classes (label > 0) are marked. A classifier trained with these images learns the
    shortcut, so the bias-probe task must report it.
    """

    name: ClassVar[str] = "marker-inject"
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = "training images with a class-dependent 'R' marker (control)"
    reference: ClassVar[str | None] = "control"
    parameters: ClassVar[dict[str, Param]] = {
        "rate": Param(1.0, float, "fraction of images that carry their class's marker",
                      check=_FRACTION),
        "marker_mode": BIAS_PARAMETERS["marker_mode"],
        "jitter": Param(1, int, "largest random marker offset in pixels (0: fixed position)",
                        check=nonnegative),
    }

    def image_size(self) -> ImageSize:
        """Position markers need corners far enough apart: 12 px for 2 classes (the least any
        class count needs; 16 px for 3 or 4 classes, checked at fit once the classes are
        known). Presence markers fit any size."""
        if self.params["marker_mode"] != "position":
            return ImageSize()
        return ImageSize(min_side=12, reason="class markers in separate corners; 16 px with "
                         "3 or 4 classes", fix="set train.marker_mode = 'presence'")

    def _source(self, train: ImageSet, class_names: Sequence[str], ctx: RunContext) -> ImageSet:
        k = len(class_names)
        if self.params["marker_mode"] == "position" and k > len(CLASS_SLOTS):
            raise GeneratorError(
                f"generator {self.name!r}: position markers have {len(CLASS_SLOTS)} corners "
                f"but the dataset has {k} classes; set train.marker_mode = 'presence'"
            )
        if self.params["marker_mode"] == "position":
            _check_distinct_corners(train.image_shape, k, self.name)
        return train

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` class-``c`` training images, each marked with probability ``rate``."""
        rng = np.random.default_rng(seed)
        index = self._pick(counts, rng)
        real = self._fitted_real()
        labels = real.labels[index]
        k, mode = len(self._class_names), self.params["marker_mode"]
        carries = rng.random(len(index)) < self.params["rate"]
        spread = self.params["jitter"]
        jitter = rng.integers(-spread, spread + 1, size=(len(index), 2))
        slots = [marker_slot(int(c), k, mode, False) if marked else None
                 for c, marked in zip(labels, carries, strict=True)]
        return ImageSet(burn_marker(np.asarray(real.images[index]), slots, jitter=jitter), labels)


def _check_distinct_corners(shape: tuple[int, int, int], n_slots: int, name: str) -> None:
    """GeneratorError when the markers of the first ``n_slots`` corners would overlap."""
    side = min(shape[1], shape[2])
    boxes = [marker_box(side, slot) for slot in CLASS_SLOTS[:n_slots]]
    for i, (t1, l1, h1, w1) in enumerate(boxes):
        for t2, l2, h2, w2 in boxes[i + 1:]:
            if t1 < t2 + h2 and t2 < t1 + h1 and l1 < l2 + w2 and l2 < l1 + w1:
                raise GeneratorError(
                    f"generator {name!r}: {side} px images are too small for markers in "
                    f"separate corners; use images of at least 16 px"
                )
