"""Writers of tiny image files in the real datasets' layouts (imported by the tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, size: tuple[int, int] = (20, 20), mode: str = "L", value: int = 0,
                seed: int = 0) -> Path:
    """A small noisy image file; the format follows the suffix."""
    rng = np.random.default_rng(seed)
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "RGB":
        array = rng.integers(0, 255, size=(h, w, 3)).astype(np.uint8)
        array[..., 0] = value % 256
        Image.fromarray(array, "RGB").save(path)
    else:
        array = np.clip(rng.integers(0, 60, size=(h, w)) + value, 0, 255).astype(np.uint8)
        Image.fromarray(array, "L").save(path)
    return path


def make_class_tree(root: Path, classes: dict[str, int], size: tuple[int, int] = (20, 20),
                    mode: str = "L", suffix: str = ".png", stem: str = "img") -> Path:
    """``root/<class>/<stem>_<i><suffix>`` with ``classes[class]`` images each."""
    for k, (name, n) in enumerate(classes.items()):
        for i in range(n):
            write_image(root / name / f"{stem}_{i}{suffix}", size, mode, value=40 * k, seed=i)
    return root
