"""Fixtures for the dataset tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fakes import make_class_tree


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    """A 2-class grayscale class-folder tree (6 + 4 images, 20 px)."""
    return make_class_tree(tmp_path / "tree", {"cats": 6, "dogs": 4})
