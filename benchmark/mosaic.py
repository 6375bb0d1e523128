"""Sample mosaics: a grid of images, one row per class, saved as PNG.

The PNG is encoded in memory and written with :func:`~medsynbench.cache.write_atomic`, so a
full disk leaves no truncated mosaic and no temporary file behind.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from .cache import write_atomic

__all__ = ["mosaic", "save_mosaic"]


def mosaic(images: np.ndarray, labels: np.ndarray, per_class: int = 8, pad: int = 2) -> np.ndarray:
    """An H×W×3 uint8 grid: row c holds up to ``per_class`` images of class c (in order)."""
    classes = np.unique(labels)
    _, c, h, w = images.shape
    grid = np.full(
        (len(classes) * (h + pad) + pad, per_class * (w + pad) + pad, 3), 255, dtype=np.uint8
    )
    for row, cls in enumerate(classes):
        for col, index in enumerate(np.flatnonzero(labels == cls)[:per_class]):
            tile = np.asarray(images[index]).transpose(1, 2, 0)
            if c == 1:
                tile = np.repeat(tile, 3, axis=2)
            top, left = pad + row * (h + pad), pad + col * (w + pad)
            grid[top : top + h, left : left + w] = tile
    return grid


def save_mosaic(images: np.ndarray, labels: np.ndarray, path: Path, per_class: int = 8) -> Path:
    """Write :func:`mosaic` to ``path`` as PNG and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    png = io.BytesIO()
    Image.fromarray(mosaic(images, labels, per_class)).save(png, format="PNG")
    write_atomic(path, png.getvalue())
    return path
