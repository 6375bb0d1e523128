"""The base of every dataset read from the user's files: root lookup, common parameters,
missing-data messages, class-folder scanning and the prepared cache.

Root lookup: the ``root`` parameter when given, else ``$MEDSYNBENCH_DATA/<default_folder>``,
else ``./data/<default_folder>``. When nothing is there, :meth:`FileDataset.check` raises a
DataError that says what to download, from where, and the layout expected under the root.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import Dataset, DataSplits, ImageSet, Param, RunContext
from medsynbench.errors import DataError

from .imageio import FITS, IMAGE_EXTENSIONS, ReadSpec, read_images
from .prepared import cached_splits, listing_digest
from .splits import SPLIT_PARAMETERS, split_set

__all__ = ["FILE_PARAMETERS", "FileDataset", "scan_class_folders", "warn_small_splits"]


def _resolution(value: int) -> str | None:
    return None if 8 <= value <= 4096 else f"must be between 8 and 4096 pixels, got {value}"


FILE_PARAMETERS: dict[str, Param] = {
    "root": Param(None, str, "folder holding the dataset (see `medsynbench data info NAME`)",
                  nullable=True),
    "resolution": Param(None, int, "square side to resize to (None: the dataset's default)",
                        nullable=True, check=_resolution),
    "fit": Param("stretch", str, "non-square images: stretch, crop (centre) or pad", choices=FITS),
    "on_error": Param("fail", str, "unreadable files: fail (list them) or skip (drop and count)",
                      choices=("fail", "skip")),
}


def scan_class_folders(
    directory: Path, class_names: Sequence[str] | None = None, allow_missing: bool = False
) -> tuple[list[tuple[Path, int]], tuple[str, ...], list[Path]]:
    """Image files of ``directory/<class>/``: (path, label) pairs, class names, ignored files.

    ``class_names`` fixes the classes and their order (folder names are matched
    case-insensitively); otherwise every sub-folder is a class, sorted by name. Files without
    an image extension (notes, ``.DS_Store``, CSVs) are ignored and returned separately; a
    class folder with no image raises a DataError naming it. ``allow_missing`` accepts absent
    class folders (a val split without one class).
    """
    if not directory.is_dir():
        raise DataError(f"expected a folder of class folders at {directory}, found nothing")
    folders = {p.name.lower(): p for p in sorted(directory.iterdir()) if p.is_dir()}
    folders = {k: v for k, v in folders.items() if not k.startswith((".", "__"))}
    if class_names is None:
        names = tuple(folders[k].name for k in sorted(folders))
    else:
        missing = [c for c in class_names if c.lower() not in folders]
        if missing and not allow_missing:
            raise DataError(
                f"{directory} lacks the class folder(s) {', '.join(missing)}; expected "
                f"{', '.join(class_names)} (found: {', '.join(sorted(folders)) or 'none'})"
            )
        names = tuple(class_names)
    if not names:
        raise DataError(f"{directory} contains no class folders")
    items: list[tuple[Path, int]] = []
    ignored: list[Path] = []
    for label, name in enumerate(names):
        if name.lower() not in folders:
            continue
        folder = folders[name.lower()]
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        ignored.extend(p for p in files if p.suffix.lower() not in IMAGE_EXTENSIONS)
        if not images:
            raise DataError(
                f"class folder {folder} contains no images (extensions "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}); add images or remove the folder"
            )
        items.extend((p, label) for p in images)
    return items, names, ignored


def warn_small_splits(splits: Mapping[str, ImageSet], n_classes: int, ctx: RunContext) -> None:
    """Warn about splits with fewer than 2 images, or classes absent from a split."""
    for name, split in splits.items():
        counts = split.counts(n_classes)
        if len(split) < 2:
            message = f"split {name!r} has only {len(split)} image(s): scores on it are noise"
        elif (counts == 0).any() and name in ("train", "test"):
            message = f"split {name!r} lacks classes {np.flatnonzero(counts == 0).tolist()}"
        else:
            continue
        warnings.warn(message, UserWarning, stacklevel=3)
        ctx.log(message)


class FileDataset(Dataset):
    """A dataset read from files under a root folder (subclasses fill the class attributes)."""

    default_folder: ClassVar[str] = ""
    # What to download and from where; the expected layout is appended by missing_message.
    download: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    channels: ClassVar[int] = 3
    default_resolution: ClassVar[int | None] = None
    parameters: ClassVar[dict[str, Param]] = {**FILE_PARAMETERS, **SPLIT_PARAMETERS}

    # --- root and messages -------------------------------------------------------------
    def candidate_roots(self) -> list[Path]:
        """Where the data is looked for, in order."""
        if self.params.get("root"):
            return [Path(self.params["root"]).expanduser()]
        env = os.environ.get("MEDSYNBENCH_DATA")
        roots = [Path(env).expanduser() / self.default_folder] if env else []
        return [*roots, Path("data") / self.default_folder]

    @property
    def root(self) -> Path:
        """The first candidate root that exists (or the first candidate when none does)."""
        candidates = self.candidate_roots()
        return next((p for p in candidates if p.exists()), candidates[0])

    def missing_message(self, looked: Iterable[Path]) -> str:
        """The DataError text for absent data: where we looked, what to get, where to put it."""
        where = ", ".join(str(p) for p in looked)
        return (
            f"dataset {self.name!r}: no data at {where}.\n"
            f"Download: {self.download}\n"
            f"Put it so that the root folder looks like:\n{self.layout}\n"
            f"then set root = \"<that folder>\" in the suite's [dataset] table (for "
            f"`medsynbench data info {self.name}`: --root <that folder>), or export "
            f"MEDSYNBENCH_DATA=<parent folder> so that $MEDSYNBENCH_DATA/{self.default_folder} "
            f"is it (the shipped suites read root = \"${{MEDSYNBENCH_DATA}}/...\")."
        )

    def check(self) -> None:
        """Fail fast, before any work, when the root folder is absent."""
        if not self.root.exists():
            raise DataError(self.missing_message(self.candidate_roots()))

    # --- reading -------------------------------------------------------------------------
    @property
    def resolution(self) -> int | None:
        return self.params.get("resolution") or self.default_resolution

    def read_spec(self) -> ReadSpec:
        channels = self.params.get("channels") or self.channels
        return ReadSpec(channels, self.resolution, self.params.get("fit", "stretch"))

    def read(
        self, paths: Sequence[Path], labels: Sequence[int], ctx: RunContext, what: str,
        groups: Sequence[Any] | None = None,
    ) -> tuple[ImageSet, dict[str, Any]]:
        """Decode files into an ImageSet; unreadable and upsampled counts go into the info."""
        result = read_images(
            paths, self.read_spec(), ctx, f"{self.name}: {what}",
            on_error=self.params.get("on_error", "fail"),
        )
        if result.upsampled:
            message = (
                f"{self.name} {what}: {result.upsampled} of {len(paths)} images are smaller than "
                f"the requested resolution {self.resolution} and were upsampled"
            )
            warnings.warn(message, UserWarning, stacklevel=2)
            ctx.log(message)
        kept = np.asarray(result.kept, dtype=np.int64)
        label_array = np.asarray(labels, dtype=np.int64)[kept]
        group_array = None if groups is None else np.asarray(groups)[kept]
        info = {"skipped_files": [str(p) for p, _ in result.skipped],
                "upsampled": result.upsampled}
        return ImageSet(result.images, label_array, group_array), info

    def split_random(self, data: ImageSet) -> dict[str, ImageSet]:
        """train/val/test by the split parameters (group-aware when the set has groups)."""
        fractions = {"train": 0.0, "val": self.params["val_fraction"],
                     "test": self.params["test_fraction"]}
        return split_set(data, fractions, self.params["split_seed"], self.params["group_split"])

    def prepare(self, ctx: RunContext, sources: Iterable[Path], build: Any) -> DataSplits:
        """Run ``build()`` through the prepared cache keyed by ``sources`` and parameters."""
        digest = listing_digest(sources, self.root)
        return cached_splits(ctx, self.name, self.version, self.params, digest, build)

    def describe(self) -> dict[str, Any]:
        """Static facts for `data info` and results: modality, citation, license, root."""
        return {"modality": self.modality, "citation": self.citation, "license": self.license,
                "root": str(self.root)}
