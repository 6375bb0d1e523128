"""Pre-generated images in class folders: how most users submit a model.

Layout (one sub-folder per class, named exactly like the dataset's classes)::

    root/
      <class_name>/*.png | *.jpg | *.jpeg | *.tif | *.tiff
      ...

``fit`` validates every file against the dataset (class names, image size, channels) and decodes
the images once into its work directory, so later stages read exactly what was validated even
if the folder changes; ``sample`` draws ``counts[c]`` of them per class (all of them, in file
order, when the count equals the number available). Use :func:`write_folder` to export any
:class:`~medsynbench.ImageSet` in this layout.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import Generator, ImageSet, Param, RunContext
from medsynbench.errors import DataError, GeneratorError
from medsynbench.params import did_you_mean
from PIL import Image

from .training import check_counts

__all__ = ["IMAGE_SUFFIXES", "Folder", "write_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_MANIFEST = "folder.json"
_MODES = {1: "L", 3: "RGB"}


def write_folder(images: ImageSet, class_names: Sequence[str], root: Path) -> list[Path]:
    """Save ``images`` as ``root/<class_name>/<index>.png`` (the layout :class:`Folder` reads)."""
    written = []
    for i, (image, label) in enumerate(zip(images.images, images.labels, strict=True)):
        directory = root / class_names[int(label)]
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{i:06d}.png"
        pixels = np.asarray(image).transpose(1, 2, 0)
        Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(path)
        written.append(path)
    return written


def _fingerprint(files: Sequence[Path]) -> str:
    """Cheap identity of a file list: names, sizes and modification times."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class Folder(Generator):
    """Pre-generated synthetic images in ``root/<class_name>/`` folders, validated on fit."""

    name: ClassVar[str] = "folder"
    description: ClassVar[str] = "pre-generated images in class folders (root/<class_name>/*.png)"
    parameters: ClassVar[dict[str, Param]] = {
        "root": Param(Param.REQUIRED, str, "folder holding one sub-folder per class"),
        "resize": Param(
            False,
            bool,
            "resize images whose size differs from the dataset's (Lanczos); "
            "off by default so a size mismatch is reported rather than hidden",
        ),
        "convert_channels": Param(
            False,
            bool,
            "convert grayscale <-> RGB (and drop an alpha channel) to match the "
            "dataset; off by default so a channel mismatch is reported",
        ),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._images: ImageSet | None = None
        self._manifest: dict[str, Any] | None = None

    @property
    def root(self) -> Path:
        return Path(self.params["root"]).expanduser()

    def check(self) -> None:
        """Fail at suite validation when the folder does not exist."""
        if not self.root.is_dir():
            raise DataError(
                f"generator 'folder': root {str(self.root)!r} is not a directory; point "
                "`root` at a folder holding one sub-folder of images per class"
            )

    def _class_files(self, class_names: Sequence[str]) -> dict[str, list[Path]]:
        folders = sorted(
            p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if not folders:
            raise DataError(
                f"generator 'folder': {self.root} has no class sub-folders; expected "
                f"{', '.join(f'{self.root}/{c}/' for c in class_names)}"
            )
        for folder in folders:
            if folder.name not in class_names:
                raise DataError(
                    f"generator 'folder': {folder} is not a class of this dataset"
                    f"{did_you_mean(folder.name, class_names)} (classes: "
                    f"{', '.join(class_names)}); rename the folder to its class name"
                )
        files = {}
        for name in class_names:
            folder = self.root / name
            found = folder.iterdir() if folder.is_dir() else iter(())
            files[name] = sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)
        if not any(files.values()):
            raise DataError(
                f"generator 'folder': no images ({', '.join(IMAGE_SUFFIXES)}) under {self.root}"
            )
        return files

    def _read(self, path: Path, shape: tuple[int, int, int]) -> np.ndarray:
        channels, height, width = shape
        want = _MODES[channels]
        try:
            with Image.open(path) as opened:
                image = opened.copy()  # decodes; usable after the file is closed
        except OSError as exc:
            raise DataError(f"generator 'folder': cannot read image {path}: {exc}") from exc
        if image.mode not in ("L", "RGB", "RGBA", "LA", "P"):
            raise DataError(
                f"generator 'folder': {path} has pixel mode {image.mode!r}; save it as an "
                f"8-bit {'grayscale' if channels == 1 else 'RGB'} image"
            )
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        if image.mode != want:
            if not self.params["convert_channels"]:
                raise DataError(
                    f"generator 'folder': {path} is {image.mode} ({len(image.getbands())} "
                    f"channel(s)) but the dataset has {channels} channel(s) ({want}); save it "
                    "as "
                    + ("grayscale" if channels == 1 else "RGB")
                    + " or set convert_channels = true"
                )
            image = image.convert(want)
        if image.size != (width, height):
            if not self.params["resize"]:
                raise DataError(
                    f"generator 'folder': {path} is {image.size[0]}×{image.size[1]} but the "
                    f"dataset's images are {width}×{height}; save images at {width}×{height} "
                    "or set resize = true to resize them explicitly"
                )
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        pixels = np.asarray(image, dtype=np.uint8)
        return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)

    def fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> dict[str, Any]:
        """Validate every file against the dataset and decode the images into ``workdir``."""
        self.check()
        files = self._class_files(class_names)
        shape = train.image_shape
        images, labels = [], []
        total = sum(len(f) for f in files.values())
        with ctx.progress(f"folder: reading {total} images", total=total) as task:
            for label, name in enumerate(class_names):
                for path in files[name]:
                    images.append(self._read(path, shape))
                    labels.append(label)
                    task.advance(1)
        decoded = ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64))
        workdir.mkdir(parents=True, exist_ok=True)
        decoded.save(workdir)
        all_files = [p for name in class_names for p in files[name]]
        self._manifest = {
            "root": str(self.root.resolve()),
            "class_names": list(class_names),
            "counts": [len(files[name]) for name in class_names],
            "fingerprint": _fingerprint(all_files),
        }
        (workdir / _MANIFEST).write_text(json.dumps(self._manifest, indent=2))
        self._images = decoded
        return {
            "steps": 0,
            "train_seconds": 0.0,
            "images": total,
            "per_class": self._manifest["counts"],
        }

    def load(self, workdir: Path, ctx: RunContext) -> None:
        """Read the images :meth:`fit` decoded; warn when the source folder changed since."""
        path = workdir / _MANIFEST
        if not path.is_file():
            raise GeneratorError(
                f"generator 'folder': {path} not found; run fit() into this workdir first"
            )
        self._manifest = json.loads(path.read_text())
        self._images = ImageSet.load(workdir, mmap=True)
        root = Path(self._manifest["root"])
        if root.is_dir():
            try:
                files = self._class_files(self._manifest["class_names"])
                changed = (
                    _fingerprint([p for f in files.values() for p in f])
                    != self._manifest["fingerprint"]
                )
            except DataError:
                changed = True
            if changed:
                ctx.log(
                    f"folder: {root} changed since it was validated; using the images read "
                    "then (clear the cache to re-read the folder)"
                )

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` images of class ``c``: all of them in file order, or a seeded subset."""
        if self._images is None or self._manifest is None:
            raise GeneratorError(
                "generator 'folder': sample() called before fit() or load(); fit validates "
                "and reads the folder first"
            )
        class_names = self._manifest["class_names"]
        values = check_counts(counts, len(class_names), self.name)
        rng = np.random.default_rng(seed)
        picked = []
        for c, n in enumerate(values):
            pool = np.flatnonzero(self._images.labels == c)
            if n > len(pool):
                raise GeneratorError(
                    f"generator 'folder': {n} images of class {class_names[c]!r} requested but "
                    f"{Path(self._manifest['root']) / class_names[c]} holds {len(pool)}; add "
                    f"{n - len(pool)} more images there or lower the suite's sample count"
                )
            picked.append(pool if n == len(pool) else np.sort(rng.choice(pool, n, replace=False)))
        index = np.concatenate(picked)
        images = np.ascontiguousarray(self._images.images[index])
        return ImageSet(images, self._images.labels[index])
