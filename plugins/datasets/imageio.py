"""Reading image files into uint8 C×H×W arrays, the same way for every file-based dataset.

Conversion rules (documented once, used everywhere):

* **Channels**: grayscale datasets stay 1 channel, colour datasets 3. Palette ("P") images are
  expanded through their palette; the alpha channel of RGBA/LA images is dropped (tiles and
  radiographs carry no meaning in alpha).
* **16-bit / float images** (PIL modes ``I;16``, ``I``, ``F``) are *windowed*, not clipped: each
  image is mapped linearly from its 0.1–99.9th percentile range onto 0–255, so a 12-bit
  radiograph stored in 16 bits does not turn white and a stray hot pixel does not flatten it.
* **Resize**: Pillow's bicubic filter, which is antialiased when downscaling (its support widens
  by the reduction factor), to a square ``size``. ``fit`` decides non-square sources:
  ``stretch`` (ignore aspect), ``crop`` (centre square crop first) or ``pad`` (black padding).
  Upscaling is allowed but reported, since it invents no detail.
* **DICOM** (``.dcm``, ``.dicom``, or any file with the ``DICM`` preamble) goes through
  :mod:`.dicom`: Modality LUT, then the file's VOI LUT or window (else the 16-bit rule above),
  MONOCHROME1 inverted; multi-frame files and files without pixel data are unreadable files.
  Reading them needs pydicom (``pip install 'medsynbench[dicom]'``).
* **Unreadable files** (truncated, corrupt, not an image) fail the whole read with a list of
  the files, unless ``on_error="skip"``, which drops and counts them.

Decoding runs on a thread pool (Pillow releases the GIL while decoding and resizing) with
one worker per core and a progress bar.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from medsynbench import RunContext
from medsynbench.errors import DataError
from PIL import Image, UnidentifiedImageError

__all__ = [
    "DICOM_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "PIXEL_EXTENSIONS",
    "ReadResult",
    "ReadSpec",
    "decode_image",
    "has_dicom_preamble",
    "is_dicom_file",
    "is_image_file",
    "list_files",
    "read_images",
    "require_reader",
    "to_uint8_windowed",
]

PIXEL_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"})
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
IMAGE_EXTENSIONS = PIXEL_EXTENSIONS | DICOM_EXTENSIONS
FITS = ("stretch", "crop", "pad")


@dataclass(frozen=True)
class ReadSpec:
    """How to turn files into arrays: channels (1 or 3), square ``size`` (None: keep) and fit."""

    channels: int
    size: int | None
    fit: str = "stretch"


@dataclass
class ReadResult:
    """Images of the files that were read, and what happened to the others."""

    images: np.ndarray
    kept: list[int]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    upsampled: int = 0


def require_reader(module: str, extra: str, what: str) -> Any:
    """Import an optional reader (pydicom, nibabel) or raise one DataError naming the extra."""
    try:
        # __import__ rather than importlib: a test (or a user's shim) patching the builtin is
        # honoured, and only top-level modules are asked for here.
        return __import__(module)
    except ImportError as exc:
        raise DataError(
            f"{what} needs {module}, which is not installed: "
            f"pip install 'medsynbench[{extra}]' (or pip install {module})"
        ) from exc


def has_dicom_preamble(path: Path) -> bool:
    """Whether the file carries DICOM's 128-byte preamble and ``DICM`` magic (any name)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def is_dicom_file(path: Path) -> bool:
    """A DICOM extension, or no known image extension and the DICM preamble."""
    suffix = Path(path).suffix.lower()
    if suffix in DICOM_EXTENSIONS:
        return True
    return suffix not in PIXEL_EXTENSIONS and has_dicom_preamble(Path(path))


def is_image_file(path: Path) -> bool:
    """What a folder scanner should read: an image extension, or a DICOM without one
    (PACS exports name files by UID or ``IM0001``)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS or has_dicom_preamble(Path(path))


def to_uint8_windowed(
    values: np.ndarray, low_pct: float = 0.1, high_pct: float = 99.9
) -> np.ndarray:
    """Map any numeric array linearly from its percentile window onto uint8 0–255."""
    data = np.asarray(values, dtype=np.float64)
    lo, hi = np.percentile(data, [low_pct, high_pct])
    if hi <= lo:
        hi = lo + 1.0
    return np.clip(np.round((data - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        img = Image.fromarray(to_uint8_windowed(np.asarray(img)), mode="L")
    elif img.mode == "P":
        img = img.convert("RGBA")
    target = "L" if channels == 1 else "RGB"
    if img.mode == target:
        return img
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGB" if img.mode != "LA" else "L")  # drop alpha
    return img.convert(target)


def _fit_square(img: Image.Image, fit: str) -> Image.Image:
    w, h = img.size
    if w == h or fit == "stretch":
        return img
    side = min(w, h) if fit == "crop" else max(w, h)
    if fit == "crop":
        left, top = (w - side) // 2, (h - side) // 2
        return img.crop((left, top, left + side, top + side))
    canvas = Image.new(img.mode, (side, side), 0)
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def decode_image(path: Path, spec: ReadSpec) -> tuple[np.ndarray, bool]:
    """Read one file as uint8 C×H×W; also return whether it had to be upsampled.

    Raises OSError/ValueError (with Pillow's or the DICOM reader's reason) when the file
    cannot be decoded.
    """
    if is_dicom_file(path):
        # Imported here: dicom.py builds on this module (windowing rule, require_reader).
        from .dicom import read_dicom_image

        img = _to_mode(Image.fromarray(read_dicom_image(path)), spec.channels)
    else:
        with Image.open(path) as opened:
            opened.load()  # force full decoding: truncated files fail here, not later
            img = _to_mode(opened, spec.channels)
    upsampled = False
    if spec.size is not None:
        img = _fit_square(img, spec.fit)
        upsampled = spec.size > min(img.size)
        if img.size != (spec.size, spec.size):
            img = img.resize((spec.size, spec.size), Image.Resampling.BICUBIC)
    array = np.asarray(img, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return np.ascontiguousarray(array), upsampled


def _safe_decode(path: Path, spec: ReadSpec) -> tuple[np.ndarray | None, bool, str]:
    try:
        array, upsampled = decode_image(path, spec)
        return array, upsampled, ""
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        return None, False, f"{type(exc).__name__}: {exc}"


def list_files(files: Sequence[tuple[Path, str]], limit: int = 10) -> str:
    """``  path: reason`` lines for at most ``limit`` files, then how many more."""
    lines = [f"  {path}: {reason}" for path, reason in files[:limit]]
    if len(files) > limit:
        lines.append(f"  ... and {len(files) - limit} more")
    return "\n".join(lines)


def read_images(
    paths: Sequence[Path],
    spec: ReadSpec,
    ctx: RunContext,
    description: str = "reading images",
    on_error: str = "fail",
    workers: int | None = None,
) -> ReadResult:
    """Decode ``paths`` in parallel into one uint8 N×C×S×S array (see module rules).

    With ``spec.size=None`` every image must already share one size; otherwise a DataError
    lists the sizes found and asks for a ``resolution``.
    """
    workers = workers or min(32, os.cpu_count() or 1)
    if any(Path(p).suffix.lower() in DICOM_EXTENSIONS for p in paths):
        require_reader("pydicom", "dicom", "reading DICOM files")  # once, before the pool
    arrays: list[np.ndarray | None] = [None] * len(paths)
    skipped: list[tuple[Path, str]] = []
    upsampled = 0
    with ctx.progress(description, total=len(paths)) as task, ThreadPoolExecutor(workers) as pool:
        for i, (array, up, reason) in enumerate(pool.map(lambda p: _safe_decode(p, spec), paths)):
            if array is None:
                skipped.append((Path(paths[i]), reason))
            arrays[i] = array
            upsampled += int(up)
            task.advance(1)
    if skipped and on_error != "skip":
        raise DataError(
            f"{len(skipped)} of {len(paths)} image files could not be read:\n"
            f"{list_files(skipped)}\n"
            "Replace or delete them, or set on_error = \"skip\" to drop and count them."
        )
    kept = [i for i, a in enumerate(arrays) if a is not None]
    shapes = {arrays[i].shape for i in kept}  # type: ignore[union-attr]
    if len(shapes) > 1:
        examples: dict[tuple[int, ...], Path] = {}
        for i in kept:
            examples.setdefault(arrays[i].shape, paths[i])  # type: ignore[union-attr]
        listing = "; ".join(f"{s[2]}×{s[1]} e.g. {p}" for s, p in list(examples.items())[:5])
        raise DataError(
            f"images have different sizes ({listing}); set the dataset's `resolution` "
            "parameter to resize them to one square size"
        )
    if not kept:
        size = spec.size or 1
        images = np.zeros((0, spec.channels, size, size), dtype=np.uint8)
    else:
        images = np.stack([arrays[i] for i in kept])  # type: ignore[misc]
    return ReadResult(images, kept, skipped, upsampled)
