"""Shared fixtures. Tests needing ../shared/data skip cleanly when it is absent (a user's clone)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from medsynbench import DataSplits, ImageSet, RunContext

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDSYNBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (or $MEDSYNBENCH_SHARED_DATA); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    """A CPU run context with a fresh work directory."""
    return RunContext(device="cpu", seed=0, workdir=tmp_path / "work")


def make_toy_splits(n_per_class: int = 24, size: int = 16, channels: int = 1, seed: int = 0) -> DataSplits:
    """Two easily separable classes (dark vs bright noisy squares) — for core tests only."""
    rng = np.random.default_rng(seed)

    def one(n: int) -> ImageSet:
        labels = np.repeat(np.arange(2), n)
        base = np.where(labels == 0, 70, 170)[:, None, None, None]
        noise = rng.normal(0, 25, size=(2 * n, channels, size, size))
        images = np.clip(base + noise, 0, 255).astype(np.uint8)
        return ImageSet(images, labels)

    return DataSplits(
        {"train": one(n_per_class), "test": one(n_per_class // 2)},
        ("dark", "bright"),
        "toy",
    )


@pytest.fixture
def toy_splits() -> DataSplits:
    """A tiny 2-class dataset (16 px, grayscale)."""
    return make_toy_splits()
