"""Variety from the compressed size of the mean image (Nan et al.; normalised as in Xing et al.).

A varied set averages to a smooth, featureless mean image that compresses well; a set of
near-identical images keeps sharp structure in its mean, which costs bytes. Exact procedure:

1. Mean image: the pixel-wise arithmetic mean over the set's uint8 N×C×H×W images, accumulated
   in float64, rounded to the nearest integer (ties to even, ``numpy.rint``) and cast to uint8.
2. Encoding with one of two codecs (:data:`CODECS`); 1 channel is saved as mode "L", 3 channels
   as "RGB", always into an in-memory buffer with nothing but the settings below (no EXIF, ICC,
   DPI or text chunks):

   - ``"jpeg"`` (default, the papers' setting): Pillow ``Image.save(buffer, format="JPEG",
     quality=100, subsampling=0, optimize=False, progressive=False)`` — 4:4:4, no chroma
     subsampling, standard Huffman tables. Pillow's libjpeg at quality 100 uses all-ones
     quantisation tables: what the papers call "lossless JPEG". It is **not** lossless (the DCT
     is still rounded, and RGB goes through YCbCr), so the size measures a slightly altered image.
   - ``"png"`` (truly lossless, as MedSynAnalyzer does): Pillow ``Image.save(buffer,
     format="PNG", compress_level=9, optimize=False)`` — 8-bit greyscale or RGB, no palette, no
     interlacing, Pillow's default per-row filter choice and zlib strategy, and only the IHDR,
     IDAT and IEND chunks. Decoding gives the mean image back exactly.

3. Size: number of bytes of the encoded file. Reported for the all-class mean and for each
   class's mean (classes without images are omitted).

The bytes — hence the sizes — are reproducible for a given Pillow and codec library: libjpeg or
libjpeg-turbo for JPEG; zlib, or zlib-ng (which recent Pillow wheels bundle, and whose deflate
output differs from zlib's) for PNG. The run manifest records these versions
(``manifest["codecs"]``). Sizes from different codec libraries are not comparable.

Normalised variety across the entries of one board: V = 1 − (s − min s)/(max s − min s), so the
entry with the smallest mean image is 1 (most varied) and the largest 0. When every entry has the
same size (or there is a single entry) no entry is less varied than another: V = 1. The board
derives V (``Quantity.board_rule = "inverse-minmax"``); :func:`normalised_variety` is that rule
as a plain function.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from medsynbench.errors import DataError, ParameterError
from medsynbench.params import did_you_mean
from PIL import Image

__all__ = [
    "CODECS",
    "JPEG_SETTINGS",
    "PNG_SETTINGS",
    "encode",
    "encoded_size",
    "jpeg_size",
    "mean_image",
    "mean_image_variety",
    "normalised_variety",
]

JPEG_SETTINGS: dict[str, object] = {
    "format": "JPEG", "quality": 100, "subsampling": 0, "optimize": False, "progressive": False,
}
PNG_SETTINGS: dict[str, object] = {"format": "PNG", "compress_level": 9, "optimize": False}
CODECS: dict[str, dict[str, object]] = {"jpeg": JPEG_SETTINGS, "png": PNG_SETTINGS}
_CHUNK = 256  # images summed at once (keeps memory flat for memory-mapped sets)


def _check_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    arr = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise DataError(f"{name}: expected uint8 images N×C×H×W with C = 1 or 3, got "
                        f"{arr.dtype} shape {arr.shape}; convert with np.clip(x, 0, 255)"
                        ".astype(np.uint8)")
    if arr.shape[0] == 0:
        raise DataError(f"{name} is empty (0 images); the mean image is undefined")
    return arr


def mean_image(images: np.ndarray) -> np.ndarray:
    """The rounded uint8 C×H×W mean of uint8 N×C×H×W images."""
    arr = _check_images(images)
    total = np.zeros(arr.shape[1:], dtype=np.float64)
    for start in range(0, arr.shape[0], _CHUNK):
        total += arr[start : start + _CHUNK].sum(axis=0, dtype=np.float64)
    mean: np.ndarray = np.clip(np.rint(total / arr.shape[0]), 0, 255).astype(np.uint8)
    return mean


def _settings(codec: str) -> dict[str, object]:
    if codec not in CODECS:
        raise ParameterError(
            f"codec {codec!r} is not one of {', '.join(CODECS)}{did_you_mean(codec, CODECS)}"
        )
    return CODECS[codec]


def encode(image: np.ndarray, codec: str = "jpeg") -> bytes:
    """A uint8 C×H×W image (C = 1 or 3) encoded with the settings of ``codec``."""
    settings = _settings(codec)
    if image.shape[0] == 1:
        pil = Image.fromarray(np.ascontiguousarray(image[0]), mode="L")
    else:
        pil = Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)), mode="RGB")
    buffer = io.BytesIO()
    pil.save(buffer, **settings)  # type: ignore[arg-type]
    return buffer.getvalue()


def encoded_size(image: np.ndarray, codec: str = "jpeg") -> int:
    """Bytes of a uint8 C×H×W image encoded with the settings of ``codec``."""
    return len(encode(image, codec))


def jpeg_size(image: np.ndarray) -> int:
    """Bytes of a uint8 C×H×W image encoded with :data:`JPEG_SETTINGS`."""
    return encoded_size(image, "jpeg")


def mean_image_variety(images: np.ndarray, labels: np.ndarray | Sequence[int],
                       class_names: Sequence[str] | None = None,
                       codec: str = "jpeg") -> dict[str, int]:
    """Encoded bytes (``codec``: "jpeg" or "png") of the all-class mean image (key ``"all"``)
    and of each class's mean image (keys are ``class_names[c]``, or ``"class_<c>"`` when no
    names are given)."""
    _settings(codec)  # an unknown codec fails before any work
    arr = _check_images(images)
    labels_arr = np.asarray(labels)
    if labels_arr.shape != (arr.shape[0],):
        raise DataError(f"labels must have shape ({arr.shape[0]},), got {labels_arr.shape}")
    sizes = {"all": encoded_size(mean_image(arr), codec)}
    for label in np.unique(labels_arr):
        c = int(label)
        if class_names is not None and not 0 <= c < len(class_names):
            raise DataError(f"label {c} has no class name (only {len(class_names)} given)")
        key = class_names[c] if class_names is not None else f"class_{c}"
        if key == "all":
            key = "class_all"
        sizes[key] = encoded_size(mean_image(arr[labels_arr == label]), codec)
    return sizes


def normalised_variety(sizes_by_entry: Mapping[str, float]) -> dict[str, float]:
    """V = 1 − (s − min)/(max − min) per entry; all 1.0 when the sizes are all equal."""
    finite = {k: float(v) for k, v in sizes_by_entry.items() if math.isfinite(float(v))}
    if not finite:
        return {}
    low, high = min(finite.values()), max(finite.values())
    if high == low:
        return dict.fromkeys(finite, 1.0)
    return {k: 1.0 - (v - low) / (high - low) for k, v in finite.items()}
