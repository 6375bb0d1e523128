"""Shared fixtures. Tests needing ../shared/data skip cleanly when it is absent (a user's clone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from medsynbench import DataSplits, RunContext
from medsynbench.testing import make_toy_splits

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


@pytest.fixture
def toy_splits() -> DataSplits:
    """A tiny 2-class dataset (16 px, grayscale)."""
    return make_toy_splits()
