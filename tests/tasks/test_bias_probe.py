"""The bias probe measures marker reliance; it refuses datasets without probe splits."""

from __future__ import annotations

import numpy as np
import pytest
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.errors import TaskError
from medsynbench.plugins.tasks.bias_probe import BiasProbe

FAST = {"epochs": 4, "batch_size": 16, "lr": 0.01}


def marked(n: int, slots: np.ndarray, seed: int) -> np.ndarray:
    """Noise images (no class signal at all) with a bright marker in corner ``slots[i]``."""
    rng = np.random.default_rng(seed)
    images = rng.normal(80, 20, size=(n, 1, 16, 16))
    for i, slot in enumerate(slots):
        if slot >= 0:
            images[i, 0, 1:5, (1 if slot == 0 else 11):(5 if slot == 0 else 15)] = 250
    return np.clip(images, 0, 255).astype(np.uint8)


def marker_only_splits() -> DataSplits:
    """A dataset where the marker is the *only* cue: the worst case of shortcut learning."""
    train_labels = np.repeat([0, 1], 24)
    test_labels = np.repeat([0, 1], 12)
    return DataSplits(
        {
            "train": ImageSet(marked(48, train_labels, 0), train_labels),
            "test": ImageSet(marked(24, test_labels, 1), test_labels),
            "test_swapped": ImageSet(marked(24, 1 - test_labels, 1), test_labels),
            "test_nomarker": ImageSet(marked(24, np.full(24, -1), 1), test_labels),
        },
        ("normal", "pneumonia"),
        "x-ray",
    )


def test_marker_reliance_is_measured(ctx: RunContext) -> None:
    data = marker_only_splits()
    scores = BiasProbe(**FAST).run_seed(data, None, 0, ctx)
    assert scores["accuracy"] > 0.9  # the marker gives the answer on the marked test set...
    assert scores["accuracy_swapped"] < 0.1  # ...and the wrong one when swapped
    assert scores["marker_gap"] == pytest.approx(
        scores["accuracy_nomarker"] - scores["accuracy_swapped"]
    )
    assert scores["marker_gap"] > 0.3


def test_synthetic_images_without_marker_reduce_reliance(ctx: RunContext) -> None:
    data = marker_only_splits()
    labels = np.repeat([0, 1], 24)
    # "synthetic" images with markers on the wrong side half the time: the shortcut weakens
    slots = np.where(np.arange(48) % 2 == 0, labels, 1 - labels)
    synthetic = ImageSet(marked(48, slots, 9), labels)
    task = BiasProbe(**FAST)
    base = task.run_seed(data, None, 0, ctx)
    treated = task.run_seed(data, synthetic, 0, ctx)
    assert treated["n_synthetic"] == 48.0
    assert treated["marker_gap"] < base["marker_gap"]


def test_missing_probe_splits_is_a_clear_error(splits: DataSplits, ctx: RunContext) -> None:
    with pytest.raises(TaskError, match=r"no split\(s\) 'test_swapped', 'test_nomarker'.*"
                       r"phantom-xray with marker_rate > 0"):
        BiasProbe(**FAST).run_seed(splits, None, 0, ctx)
