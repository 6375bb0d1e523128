"""Helpers for testing plugins (MedSynBench's own tests and third-party plugin authors')."""

from __future__ import annotations

import numpy as np

from .data import DataSplits, ImageSet

__all__ = ["make_toy_splits"]


def make_toy_splits(
    n_per_class: int = 24, size: int = 16, channels: int = 1, seed: int = 0
) -> DataSplits:
    """Two easily separable classes (dark vs bright noisy squares), ``train`` and ``test``."""
    rng = np.random.default_rng(seed)

    def one(n: int) -> ImageSet:
        labels = np.repeat(np.arange(2), n)
        base = np.where(labels == 0, 70, 170)[:, None, None, None]
        noise = rng.normal(0, 25, size=(2 * n, channels, size, size))
        images = np.clip(base + noise, 0, 255).astype(np.uint8)
        return ImageSet(images, labels)

    return DataSplits(
        {"train": one(n_per_class), "test": one(max(n_per_class // 2, 1))},
        ("dark", "bright"),
        "toy",
    )
