"""Variety from the JPEG size of the mean image (Nan et al.; normalised as in Xing et al.).

A varied set averages to a smooth, featureless mean image that compresses well; a set of
near-identical images keeps sharp structure in its mean, which costs bytes. Exact procedure:

1. Mean image: the pixel-wise arithmetic mean over the set's uint8 N×C×H×W images, accumulated
   in float64, rounded to the nearest integer (ties to even, ``numpy.rint``) and cast to uint8.
2. Encoding: Pillow ``Image.save(buffer, format="JPEG", quality=100, subsampling=0,
   optimize=False, progressive=False)`` — 1 channel as mode "L", 3 channels as "RGB" (4:4:4, no
   chroma subsampling, standard Huffman tables, no EXIF/ICC). Pillow's libjpeg at quality 100
   uses all-ones quantisation tables: the paper's "lossless JPEG".
3. Size: number of bytes of the encoded file. Reported for the all-class mean and for each
   class's mean (classes without images are omitted).

Normalised variety across the entries of one suite: V = 1 − (s − min s)/(max s − min s), so the
entry with the smallest mean-image JPEG is 1 (most varied) and the largest 0. When every entry
has the same size (or there is a single entry) no entry is less varied than another: V = 1.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from medsynbench.errors import DataError
from PIL import Image

__all__ = ["JPEG_SETTINGS", "jpeg_size", "mean_image", "mean_image_variety", "normalised_variety"]

JPEG_SETTINGS: dict[str, object] = {
    "format": "JPEG", "quality": 100, "subsampling": 0, "optimize": False, "progressive": False,
}
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


def jpeg_size(image: np.ndarray) -> int:
    """Bytes of a uint8 C×H×W image encoded with :data:`JPEG_SETTINGS`."""
    if image.shape[0] == 1:
        pil = Image.fromarray(np.ascontiguousarray(image[0]), mode="L")
    else:
        pil = Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)), mode="RGB")
    buffer = io.BytesIO()
    pil.save(buffer, **JPEG_SETTINGS)  # type: ignore[arg-type]
    return len(buffer.getvalue())


def mean_image_variety(images: np.ndarray, labels: np.ndarray | Sequence[int],
                       class_names: Sequence[str] | None = None) -> dict[str, int]:
    """JPEG bytes of the all-class mean image (key ``"all"``) and of each class's mean image
    (keys are ``class_names[c]``, or ``"class_<c>"`` when no names are given)."""
    arr = _check_images(images)
    labels_arr = np.asarray(labels)
    if labels_arr.shape != (arr.shape[0],):
        raise DataError(f"labels must have shape ({arr.shape[0]},), got {labels_arr.shape}")
    sizes = {"all": jpeg_size(mean_image(arr))}
    for label in np.unique(labels_arr):
        c = int(label)
        if class_names is not None and not 0 <= c < len(class_names):
            raise DataError(f"label {c} has no class name (only {len(class_names)} given)")
        key = class_names[c] if class_names is not None else f"class_{c}"
        if key == "all":
            key = "class_all"
        sizes[key] = jpeg_size(mean_image(arr[labels_arr == label]))
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
