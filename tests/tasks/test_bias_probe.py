"""The bias probe measures marker reliance; it refuses datasets without probe splits."""

from __future__ import annotations

import numpy as np
import pytest
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.errors import TaskError
from medsynbench.plugins.tasks.bias_probe import BiasProbe, MaskedBiasProbe

from .test_crop import shortcut_splits

FAST = {"epochs": 4, "batch_size": 16, "lr": 0.01}
# equal budgets: the treated arm (96 images) gets the real arm's 8 × 3 = 24 steps, the count
# it took under the old epoch budget with 4 epochs
EQUAL_STEPS = {**FAST, "epochs": 8}
CUE = 25  # brightness of the "anatomy" finding of class 1: learnable, but weaker than the marker


def radiographs(labels: np.ndarray, slots: np.ndarray, seed: int) -> np.ndarray:
    """Noise images; class 1 has a faint lower opacity; a bright marker sits in corner slots[i]."""
    rng = np.random.default_rng(seed)
    images = rng.normal(80, 20, size=(labels.size, 1, 16, 16))
    images[:, 0, 8:16, 4:12] += CUE * labels[:, None, None]
    for i, slot in enumerate(slots):
        if slot >= 0:  # slot 0: top-left, 1: top-right, -1: no marker
            left = 1 if slot == 0 else 11
            images[i, 0, 1:5, left : left + 4] = 250
    return np.clip(images, 0, 255).astype(np.uint8)


def marker_splits() -> DataSplits:
    """Every real image carries its class's marker: a perfect shortcut, as in the X-ray study."""
    train, test = np.repeat([0, 1], 24), np.repeat([0, 1], 12)
    return DataSplits(
        {
            "train": ImageSet(radiographs(train, train, 0), train),
            "test": ImageSet(radiographs(test, test, 1), test),
            "test_swapped": ImageSet(radiographs(test, 1 - test, 1), test),
            "test_nomarker": ImageSet(radiographs(test, np.full(24, -1), 1), test),
        },
        ("normal", "pneumonia"),
        "x-ray",
    )


def test_marker_reliance_is_measured(ctx: RunContext) -> None:
    scores = BiasProbe(**FAST).run_seed(marker_splits(), None, 0, ctx)
    assert scores["accuracy"] > 0.9  # the marker gives the answer on the marked test set...
    assert scores["accuracy_swapped"] < 0.1  # ...and the wrong one when swapped
    assert scores["marker_gap"] == pytest.approx(
        scores["accuracy_nomarker"] - scores["accuracy_swapped"]
    )
    assert scores["marker_gap"] > 0.3
    # "correct" is the swapped split's per-image outcomes, not the marked test's
    assert len(scores["correct"]) == 24
    assert sum(scores["correct"]) / 24 == scores["accuracy_swapped"]
    assert scores["accuracy_swapped"] != scores["accuracy"]


def test_synthetic_images_with_uninformative_markers_reduce_reliance(ctx: RunContext) -> None:
    labels = np.repeat([0, 1], 24)
    random_slots = np.random.default_rng(3).integers(0, 2, size=48)
    synthetic = ImageSet(radiographs(labels, random_slots, 9), labels)
    task = BiasProbe(**EQUAL_STEPS)
    for seed in (0, 1):
        base = task.run_seed(marker_splits(), None, seed, ctx)
        treated = task.run_seed(marker_splits(), synthetic, seed, ctx)
        assert treated["n_synthetic"] == 48.0
        assert base["optimisation_steps"] == treated["optimisation_steps"] == 24.0
        assert sum(treated["correct"]) / 24 == treated["accuracy_swapped"]
        assert treated["accuracy_swapped"] > base["accuracy_swapped"] + 0.5
        assert treated["marker_gap"] < base["marker_gap"] - 0.3


def test_missing_probe_splits_is_a_clear_error(splits: DataSplits, ctx: RunContext) -> None:
    with pytest.raises(TaskError, match=r"no split\(s\) 'test_swapped', 'test_nomarker'.*"
                       r"phantom-xray with marker_rate > 0"):
        BiasProbe(**FAST).run_seed(splits, None, 0, ctx)


# --- bias-probe-masked: real markers cannot be swapped, so the border band is masked ---------

BAND = 0.32  # 5 px of 16: covers the markers (rows/columns 1-4 and 11-14)


def test_masked_probe_measures_reliance_on_the_border(ctx: RunContext) -> None:
    data = marker_splits()
    scores = MaskedBiasProbe(**FAST, probe_border=BAND).run_seed(data, None, 0, ctx)
    assert scores["accuracy"] > 0.9  # the marked test images, as they are
    assert scores["marker_gap"] == pytest.approx(scores["accuracy"] - scores["accuracy_masked"])
    assert scores["marker_gap"] > 0.3
    # "correct" holds the masked split's per-image outcomes (behind the primary)
    assert len(scores["correct"]) == 24
    assert sum(scores["correct"]) / 24 == scores["accuracy_masked"]
    assert MaskedBiasProbe.primary == "accuracy_masked"
    assert set(MaskedBiasProbe.scores) <= set(scores) | {"correct"}


def test_masked_probe_sees_reliance_drop_with_uninformative_markers(ctx: RunContext) -> None:
    labels = np.repeat([0, 1], 24)
    random_slots = np.random.default_rng(3).integers(0, 2, size=48)
    synthetic = ImageSet(radiographs(labels, random_slots, 9), labels)
    task = MaskedBiasProbe(**EQUAL_STEPS, probe_border=BAND)
    base = [task.run_seed(marker_splits(), None, s, ctx)["accuracy_masked"] for s in range(3)]
    treated = [task.run_seed(marker_splits(), synthetic, s, ctx)["accuracy_masked"]
               for s in range(3)]
    # measured: base 0.5 on every seed (a pure shortcut), treated 0.5 / 1.0 / 1.0
    assert np.mean(treated) > np.mean(base) + 0.2


def test_masked_probe_needs_no_probe_splits(splits: DataSplits, ctx: RunContext) -> None:
    scores = MaskedBiasProbe(**FAST, probe_border=0.25).run_seed(splits, None, 0, ctx)
    assert 0.0 <= scores["accuracy_masked"] <= 1.0


def test_marks_probe_erases_the_detected_marks_only(ctx: RunContext) -> None:
    """64 px film where an "R" on class 1 is the only difference between the classes."""
    data = shortcut_splits()
    fast = {"epochs": 6, "batch_size": 16, "lr": 0.01}
    marks = MaskedBiasProbe(**fast, probe="marks").run_seed(data, None, 0, ctx)
    assert marks["accuracy"] >= 0.9 and marks["accuracy_masked"] <= 0.7
    assert marks["probe_changed"] == 0.5  # the 12 marked test images of 24
    band = MaskedBiasProbe(**fast).run_seed(data, None, 0, ctx)
    assert band["probe_changed"] == 1.0
