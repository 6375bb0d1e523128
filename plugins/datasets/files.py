"""The base of every dataset read from the user's files: root lookup, common parameters,
missing-data messages, class-folder scanning and the prepared cache.

Root lookup: the ``root`` parameter when given, else ``$MEDSYNBENCH_DATA/<default_folder>``,
else ``./data/<default_folder>``. When nothing is there, :meth:`FileDataset.check` raises a
DataError that says what to download, from where, and the layout expected under the root.

Every image read gets a name (its path relative to the root) and, after the split,
:meth:`FileDataset.finish_splits` applies the ``duplicates`` policy (see :mod:`.splits`) and
stores the duplicate report in ``info["duplicates"]``.

``max_per_class`` (:data:`MAX_PER_CLASS`, for quick runs) keeps at most N images of each class
in every split, the first N in the dataset's stable file order (:func:`first_per_class`; no
random choice), picked from the file listing before anything is decoded. Unset, it is left out
of the parameters (:meth:`FileDataset.validate`), so protocol hashes and prepared-cache keys
stay those of suites written before it existed.
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
from medsynbench.hygiene import Fingerprints, fingerprint

from .imageio import FITS, IMAGE_EXTENSIONS, ReadSpec, is_image_file, read_images
from .prepared import cached_splits, listing_digest
from .splits import (
    SPLIT_PARAMETERS,
    assert_groups_disjoint,
    dedupe_given,
    group_duplicates,
    report_duplicates,
    split_indices,
    split_set,
)

__all__ = [
    "FILE_PARAMETERS",
    "MAX_PER_CLASS",
    "FileDataset",
    "first_per_class",
    "scan_class_folders",
    "warn_small_splits",
]


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


def _per_class_cap(value: int) -> str | None:
    if value >= 1:
        return None
    return (f"must be a number of images per class, at least 1, got {value}; remove the key "
            "(or set it to nothing) to keep every image")


MAX_PER_CLASS = Param(
    None, int, "at most this many images of each class in every split, the first in the "
    "dataset's file order, chosen before decoding (None: all); for quick runs",
    nullable=True, check=_per_class_cap,
)
# Parameters added after suites were published: unset (None) they are left out of a dataset's
# ``params``, hence out of the protocol hash and the prepared-cache key, which then equal those
# from before they existed.
_UNHASHED_WHEN_UNSET = ("max_per_class",)


def first_per_class(labels: Sequence[int] | np.ndarray, limit: int | None) -> np.ndarray:
    """Sorted indices of the first ``limit`` items of each class in ``labels`` (all items when
    ``limit`` is None): the deterministic choice behind ``max_per_class``."""
    labels = np.asarray(labels, dtype=np.int64)
    if limit is None:
        return np.arange(len(labels))
    keep = [np.flatnonzero(labels == c)[:limit] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def scan_class_folders(
    directory: Path, class_names: Sequence[str] | None = None, allow_missing: bool = False
) -> tuple[list[tuple[Path, int]], tuple[str, ...], list[Path]]:
    """Image files of ``directory/<class>/``: (path, label) pairs, class names, ignored files.

    ``class_names`` fixes the classes and their order (folder names are matched
    case-insensitively); otherwise every sub-folder is a class, sorted by name. Images are
    files with an image extension or DICOM files without one (``IM0001``, a UID: recognised by
    their ``DICM`` preamble, :func:`.imageio.is_image_file`); other files (notes,
    ``.DS_Store``, CSVs) are ignored and returned separately; a class folder with no image
    raises a DataError naming it. ``allow_missing`` accepts absent
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
        readable = [is_image_file(p) for p in files]
        images = [p for p, ok in zip(files, readable, strict=True) if ok]
        ignored.extend(p for p, ok in zip(files, readable, strict=True) if not ok)
        if not images:
            raise DataError(
                f"class folder {folder} contains no images (extensions "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}, or DICOM files without one); add "
                "images or remove the folder"
            )
        items.extend((p, label) for p in images)
    return items, names, ignored


MIN_PER_CLASS = 2  # images of a class a random split needs: one on each side
SMALL_TEST = 50  # below this many test images one image moves accuracy by more than 2 pp


def warn_small_splits(splits: Mapping[str, ImageSet], n_classes: int, ctx: RunContext) -> None:
    """Warn about splits with fewer than 2 images, classes absent from a split, and a test
    split so small (< 50 images) that one image moves accuracy by more than 2 pp."""
    for name, split in splits.items():
        counts = split.counts(n_classes)
        messages = []
        if len(split) < 2:
            messages.append(f"split {name!r} has only {len(split)} image(s): scores on it are "
                            "noise")
        elif (counts == 0).any() and name in ("train", "test"):
            messages.append(f"split {name!r} lacks classes "
                            f"{np.flatnonzero(counts == 0).tolist()}")
        if name == "test" and 0 < len(split) < SMALL_TEST:
            messages.append(
                f"split 'test' has {len(split)} images: one image moves accuracy by "
                f"{100 / len(split):.1f} pp (resolution), more than 2 pp; accuracy differences "
                f"below that are noise — use at least {SMALL_TEST} test images"
            )
        for message in messages:
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

    @classmethod
    def validate(cls, params: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """The declared parameters, less those of ``_UNHASHED_WHEN_UNSET`` left unset."""
        resolved: dict[str, Any] = super().validate(params, where)
        for key in _UNHASHED_WHEN_UNSET:
            if key in resolved and resolved[key] is None:
                del resolved[key]
        return resolved

    @property
    def max_per_class(self) -> int | None:
        """The ``max_per_class`` cap (None: every image)."""
        value = self.params.get("max_per_class")
        return None if value is None else int(value)

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
        """Decode files into an ImageSet named by :meth:`image_name`; unreadable and upsampled
        counts go into the info."""
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
        names = np.asarray([self.image_name(paths[i]) for i in kept.tolist()], dtype=str)
        info = {"skipped_files": [str(p) for p, _ in result.skipped],
                "upsampled": result.upsampled}
        return ImageSet(result.images, label_array, group_array, names), info

    def image_name(self, path: Path) -> str:
        """A file's name in reports: its path relative to the root (else as given)."""
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return Path(path).as_posix()

    def finish_splits(
        self, sets: Mapping[str, ImageSet], class_names: Sequence[str], ctx: RunContext
    ) -> tuple[dict[str, ImageSet], dict[str, Any]]:
        """Apply the ``duplicates`` policy, split ``{"all": set}`` randomly (group-aware), check
        class sizes, audit and warn; returns the splits and info entries (split, duplicates)."""
        policy = self.params.get("duplicates", "group")
        n_classes = len(class_names)
        info: dict[str, Any] = {}
        if "all" in sets:
            data = sets["all"]
            prints = fingerprint(np.asarray(data.images))
            grouped, prints, dropped = group_duplicates(
                data, prints, policy, bool(self.params.get("group_split", True)))
            self.check_class_sizes(grouped, class_names)
            use_groups = bool(self.params.get("group_split", True)) or grouped.groups is not (
                data.groups)
            removed = {"all": dropped} if dropped else {}
            out, out_prints = self._split_random(grouped, prints, use_groups)
            if self.max_per_class is not None:  # the pool held more: see ClassFolderDataset.load
                keep = {k: first_per_class(v.labels, self.max_per_class) for k, v in out.items()}
                out = {k: v.subset(keep[k]) for k, v in out.items()}
                out_prints = {k: v.subset(keep[k]) for k, v in out_prints.items()}
            if use_groups:
                assert_groups_disjoint(out)
            info["split"] = {"kind": "random", "seed": self.params["split_seed"],
                             "group_aware": use_groups}
        else:
            given = {s: fingerprint(np.asarray(d.images)) for s, d in sets.items()}
            out, out_prints, removed = dedupe_given(sets, given, policy)
            info["split"] = {"kind": "folders"}
        report = report_duplicates(out, policy, removed, ctx.log, self.name, out_prints)
        info["duplicates"] = report.to_json()
        warn_small_splits(out, n_classes, ctx)
        return out, info

    def split_random(self, data: ImageSet) -> dict[str, ImageSet]:
        """train/val/test by the split parameters (group-aware when the set has groups), with
        no duplicate policy: :meth:`finish_splits` adds it (and the audit)."""
        fractions = {"train": 0.0, "val": self.params["val_fraction"],
                     "test": self.params["test_fraction"]}
        return split_set(data, fractions, self.params["split_seed"], self.params["group_split"])

    def _split_random(
        self, data: ImageSet, prints: Fingerprints, use_groups: bool
    ) -> tuple[dict[str, ImageSet], dict[str, Fingerprints]]:
        fractions = {"train": 0.0, "val": self.params["val_fraction"],
                     "test": self.params["test_fraction"]}
        groups = np.asarray(data.groups) if use_groups and data.groups is not None else None
        index = split_indices(data.labels, fractions, self.params["split_seed"], groups)
        index = {k: v for k, v in index.items() if len(v) or k != "val"}
        return ({k: data.subset(v) for k, v in index.items()},
                {k: prints.subset(v) for k, v in index.items()})

    def check_class_sizes(self, data: ImageSet, class_names: Sequence[str]) -> None:
        """A random split needs 2 images of every class (one for train, one for test): else
        one DataError naming the classes (raised before anything is cached)."""
        counts = data.counts(len(class_names))
        short = [f"{name!r} has {int(n)}" for name, n in zip(class_names, counts, strict=True)
                 if n < MIN_PER_CLASS]
        if short:
            raise DataError(
                f"dataset {self.name!r}: a random split needs at least {MIN_PER_CLASS} images "
                f"of every class (one for train, one for test); {', '.join(short)} image(s). Add "
                "images of those classes or remove their folders; nothing was prepared"
            )

    def prepare(self, ctx: RunContext, sources: Iterable[Path], build: Any) -> DataSplits:
        """Run ``build()`` through the prepared cache keyed by ``sources`` and parameters."""
        digest = listing_digest(sources, self.root)
        return cached_splits(ctx, self.name, self.version, self.params, digest, build)

    def describe(self) -> dict[str, Any]:
        """Static facts for `data info` and results: modality, citation, license, root."""
        return {"modality": self.modality, "citation": self.citation, "license": self.license,
                "root": str(self.root)}
