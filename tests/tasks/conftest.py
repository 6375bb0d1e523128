"""Tiny procedural data for the task tests (fast on a 2-core CPU)."""

from __future__ import annotations

import numpy as np
import pytest
from medsynbench import DataSplits, ImageSet


def blobs(n_per_class: int, n_classes: int = 2, size: int = 16, seed: int = 0,
          channels: int = 1) -> ImageSet:
    """Class c is a bright square in a class-specific quadrant on noise: learnable in 2 epochs."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    images = rng.normal(60, 20, size=(labels.size, channels, size, size))
    half = size // 2
    for i, c in enumerate(labels):
        r, q = divmod(int(c) % 4, 2)
        images[i, :, r * half : (r + 1) * half, q * half : (q + 1) * half] += 120
    return ImageSet(np.clip(images, 0, 255).astype(np.uint8), labels)


def make_splits(n_classes: int = 2, n_train: int = 24, n_test: int = 12, size: int = 16,
                seed: int = 0, channels: int = 1) -> DataSplits:
    names = tuple(f"class{c}" for c in range(n_classes))
    return DataSplits(
        {
            "train": blobs(n_train, n_classes, size, seed, channels),
            "test": blobs(n_test, n_classes, size, seed + 1, channels),
        },
        names,
        "toy",
    )


@pytest.fixture
def splits() -> DataSplits:
    return make_splits()


@pytest.fixture
def synthetic() -> ImageSet:
    return blobs(24, 2, 16, seed=7)


@pytest.fixture
def optimizer_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every Adam step taken while the test runs (one list entry per call)."""
    import torch

    calls: list[int] = []
    original = torch.optim.Adam.step

    def counted(self: torch.optim.Adam, *args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.optim.Adam, "step", counted)
    return calls
