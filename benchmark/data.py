"""The data that flows between stages: image sets and a dataset's named splits.

Images are always ``uint8`` arrays of shape N×C×H×W (C = 1 or 3), labels ``int64`` of shape N.
Optional ``groups`` hold a group id per image (patient, slide, source tile): splits must keep a
group on one side only. Optional ``names`` name each image (its source file relative to the
dataset root, or a generated id) so that reports such as the duplicate audit can point at files.
Sets are saved as plain ``.npy`` files (names as a unicode array, no pickle) and loaded
memory-mapped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import DataError

__all__ = ["DataSplits", "ImageSet", "SplitPlan", "format_bytes", "memory_bytes"]


@dataclass(frozen=True)
class ImageSet:
    """A set of uint8 images (N×C×H×W) with int64 labels, optional group ids and names."""

    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray | None = None
    names: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise DataError(
                f"images must be uint8 N×C×H×W, got {self.images.dtype} shape {self.images.shape}"
            )
        if self.images.shape[1] not in (1, 3):
            raise DataError(f"images must have 1 or 3 channels, got {self.images.shape[1]}")
        labels = np.asarray(self.labels)
        if labels.shape != (self.images.shape[0],):
            raise DataError(f"labels must have shape ({self.images.shape[0]},), got {labels.shape}")
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))
        if self.groups is not None and np.asarray(self.groups).shape != labels.shape:
            raise DataError("groups must have one id per image")
        if self.names is not None:
            names = np.asarray(self.names, dtype=str)
            if names.shape != labels.shape:
                raise DataError("names must have one name per image")
            object.__setattr__(self, "names", names)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def counts(self, n_classes: int) -> np.ndarray:
        """Number of images per class, length ``n_classes``."""
        return np.bincount(self.labels, minlength=n_classes)[:n_classes]

    def subset(self, index: np.ndarray | Sequence[int]) -> ImageSet:
        """The images at ``index`` (an integer or boolean index), as a new in-memory set."""
        idx = np.asarray(index)
        groups = None if self.groups is None else np.asarray(self.groups)[idx]
        names = None if self.names is None else self.names[idx]
        return ImageSet(np.ascontiguousarray(self.images[idx]), self.labels[idx], groups, names)

    @staticmethod
    def concat(sets: Sequence[ImageSet]) -> ImageSet:
        """Concatenate sets of equal image shape (groups and names are kept if all have them)."""
        if not sets:
            raise DataError("cannot concatenate zero image sets")
        shapes = {s.image_shape for s in sets}
        if len(shapes) > 1:
            raise DataError(f"cannot concatenate image sets of different shapes {sorted(shapes)}")
        groups = None
        if all(s.groups is not None for s in sets):
            groups = np.concatenate([np.asarray(s.groups) for s in sets])
        names = None
        if all(s.names is not None for s in sets):
            names = np.concatenate([np.asarray(s.names) for s in sets])
        return ImageSet(
            np.concatenate([s.images for s in sets]),
            np.concatenate([s.labels for s in sets]),
            groups,
            names,
        )

    def save(self, directory: Path) -> None:
        """Write ``images.npy``, ``labels.npy`` (and ``groups.npy``, ``names.npy``)."""
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "images.npy", np.ascontiguousarray(self.images))
        np.save(directory / "labels.npy", self.labels)
        if self.groups is not None:
            np.save(directory / "groups.npy", np.asarray(self.groups))
        if self.names is not None:
            np.save(directory / "names.npy", np.asarray(self.names, dtype=str), allow_pickle=False)

    @classmethod
    def load(cls, directory: Path, mmap: bool = True) -> ImageSet:
        """Read a set written by :meth:`save`; images are memory-mapped by default."""
        mode: Literal["r"] | None = "r" if mmap else None
        groups_path = directory / "groups.npy"
        groups = np.load(groups_path, allow_pickle=False) if groups_path.exists() else None
        names_path = directory / "names.npy"
        names = np.load(names_path, allow_pickle=False) if names_path.exists() else None
        return cls(
            np.load(directory / "images.npy", mmap_mode=mode, allow_pickle=False),
            np.load(directory / "labels.npy", allow_pickle=False),
            groups,
            names,
        )


@dataclass(frozen=True)
class DataSplits:
    """A prepared dataset: named splits, class names, modality and provenance.

    Conventions: ``train`` is what generators are fitted on and classifiers trained on;
    ``test`` is held-out real data (utility evaluation, DCR/authenticity reference); ``val``
    is optional. Datasets may add more named splits (e.g. ``A2``, ``B``, ``C`` of CheXpert).
    """

    splits: Mapping[str, ImageSet]
    class_names: tuple[str, ...]
    modality: str
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for required in ("train", "test"):
            if required not in self.splits:
                raise DataError(f"a dataset must provide a {required!r} split")
        shapes = {s.image_shape for s in self.splits.values()}
        if len(shapes) != 1:
            raise DataError(f"all splits must share one image shape, got {sorted(shapes)}")
        for name, split in self.splits.items():
            if len(split) and int(split.labels.max()) >= len(self.class_names):
                raise DataError(
                    f"split {name!r} has label {int(split.labels.max())} but only "
                    f"{len(self.class_names)} class names"
                )

    def __getitem__(self, name: str) -> ImageSet:
        if name not in self.splits:
            raise DataError(f"no split {name!r}; available: {', '.join(self.splits)}")
        return self.splits[name]

    @property
    def train(self) -> ImageSet:
        return self.splits["train"]

    @property
    def test(self) -> ImageSet:
        return self.splits["test"]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return next(iter(self.splits.values())).image_shape

    def save(self, directory: Path) -> None:
        """Write every split into ``directory/<split>/`` plus ``dataset.json``."""
        for name, split in self.splits.items():
            split.save(directory / name)
        meta = {
            "splits": list(self.splits),
            "class_names": list(self.class_names),
            "modality": self.modality,
            "info": dict(self.info),
        }
        (directory / "dataset.json").write_text(json.dumps(meta, indent=2, default=str))

    @classmethod
    def load(cls, directory: Path) -> DataSplits:
        """Read splits written by :meth:`save` (memory-mapped)."""
        meta = json.loads((directory / "dataset.json").read_text())
        splits = {name: ImageSet.load(directory / name) for name in meta["splits"]}
        return cls(splits, tuple(meta["class_names"]), meta["modality"], meta["info"])


def memory_bytes() -> int | None:
    """Physical memory of this machine in bytes (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """1536 → '1.5 KiB'; binary units up to EiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"


@dataclass(frozen=True)
class SplitPlan:
    """What a dataset knows from its parameters alone, before it reads or draws an image.

    ``per_class`` holds the images per class of every split the dataset will provide (a split
    at 0 that ``optional`` lists, such as ``val``, is simply absent); ``keys`` names the
    parameter that sets each count, so that :meth:`problems` can say which key to change.
    The suite checks a plan at load time (``medsynbench validate``); datasets whose counts are
    only known after reading files return no plan and are checked when loaded.
    """

    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    per_class: Mapping[str, int]
    keys: Mapping[str, str] = field(default_factory=dict)
    optional: frozenset[str] = frozenset({"val"})

    @property
    def splits(self) -> list[str]:
        """Names of the splits the dataset will provide."""
        return [s for s, n in self.per_class.items() if n > 0 or s not in self.optional]

    def size(self, split: str) -> int:
        """Images in ``split`` (all classes)."""
        return self.per_class.get(split, 0) * len(self.class_names)

    def nbytes(self) -> int:
        """Bytes of every split as uint8 N×C×H×W: a lower bound on the memory loading needs."""
        c, h, w = self.image_shape
        return sum(self.size(s) for s in self.splits) * c * h * w

    def problems(self, memory: int | None = None) -> list[tuple[str, str]]:
        """(parameter key, message) for every count that cannot work: a classifier needs two
        classes, two training images per class and a test image per class; and the splits
        must fit in ``memory`` bytes (default: this machine's physical memory)."""
        found: list[tuple[str, str]] = []
        if len(self.class_names) < 2:
            found.append(("classes", f"{len(self.class_names)} class: a classifier and the "
                          "per-class metrics need at least 2 classes"))
        for split, least in (("train", 2), ("test", 1)):
            n = self.per_class.get(split, 0)
            if n < least:
                key = self.keys.get(split, split)
                found.append((key, f"{n} {split} image(s) per class; the {split} split needs at "
                              f"least {least} per class — set {key} ≥ {least}"))
        memory = memory_bytes() if memory is None else memory
        need = self.nbytes()
        if memory is not None and need > memory:
            split = max(self.splits, key=self.size)
            key = self.keys.get(split, split)
            c, h, w = self.image_shape
            total = sum(self.size(s) for s in self.splits)
            found.append((key, f"{total:,} images of {c}×{h}×{w} need at least "
                          f"{format_bytes(need)} of memory as uint8, but this machine has "
                          f"{format_bytes(memory)}; lower {key} (now {self.per_class[split]:,} "
                          "per class)"))
        return found
