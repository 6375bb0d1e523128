"""The feature-extraction task: protocol, same fine-tune subset in both arms, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.errors import ParameterError, TaskError
from medsynbench.plugins.tasks.feature_extraction import FeatureExtraction, stratified_fraction

from .conftest import blobs

FAST = {"epochs": 3, "batch_size": 16, "lr": 0.01, "finetune_epochs": 5}


def test_stratified_fraction_is_per_class_and_seeded() -> None:
    labels = np.array([0] * 10 + [1] * 6)
    index = stratified_fraction(labels, 0.5, seed=1)
    assert np.bincount(labels[index]).tolist() == [5, 3]
    assert np.array_equal(index, stratified_fraction(labels, 0.5, seed=1))
    assert not np.array_equal(index, stratified_fraction(labels, 0.5, seed=2))


def test_both_arms_score_and_report_the_protocol(
    splits: DataSplits, synthetic: ImageSet, ctx: RunContext
) -> None:
    task = FeatureExtraction(**FAST)
    real = task.run_seed(splits, None, 0, ctx)
    synth = task.run_seed(splits, synthetic, 0, ctx)
    assert real["pretrain_images"] == 48.0  # baseline: pretrained on the real split
    assert synth["pretrain_images"] == 48.0  # treated: on the 48 synthetic images only
    assert real["finetune_images"] == synth["finetune_images"] == 24.0  # 50 % of 48
    # the toy classes are learnable from either source through a frozen backbone
    assert real["accuracy"] > 0.7 and synth["accuracy"] > 0.7
    for scores in (real, synth):
        assert len(scores["correct"]) == len(splits.test)
        assert sum(scores["correct"]) / len(splits.test) == scores["accuracy"]
    again = task.run_seed(splits, synthetic, 0, ctx)
    assert {k: v for k, v in again.items() if k != "train_seconds"} == {
        k: v for k, v in synth.items() if k != "train_seconds"
    }


def test_zero_selected_synthetic_cannot_pretrain(
    splits: DataSplits, synthetic: ImageSet, ctx: RunContext
) -> None:
    with pytest.raises(ParameterError, match="count: must be a positive integer"):
        FeatureExtraction(count=0, **FAST)
    with pytest.raises(TaskError, match="selects 0 synthetic images"):
        FeatureExtraction(synthetic_ratio=0.01, **FAST).run_seed(splits, synthetic, 0, ctx)


def test_synthetic_pretraining_takes_the_real_arms_steps(
    splits: DataSplits, ctx: RunContext, optimizer_steps: list[int]
) -> None:
    # 40 synthetic images per class (80) vs 48 real: pretraining takes the real arm's
    # 3 epochs × 3 batches = 9 steps in both arms (the epoch budget: 3 × 5 = 15 on 80 images);
    # fine-tuning the linear head on 24 images takes 5 epochs × 2 batches = 10 steps in each arm
    many = blobs(48, 2, 16, seed=7)
    for budget, synthetic_steps in (("steps", 9.0), ("epochs", 15.0)):
        task = FeatureExtraction(count=40, budget=budget, **FAST)
        real = task.run_seed(splits, None, 0, ctx)
        synth = task.run_seed(splits, many, 0, ctx)
        assert synth["pretrain_images"] == 80.0
        assert real["optimisation_steps"] == 9.0
        assert synth["optimisation_steps"] == synthetic_steps
    assert len(optimizer_steps) == (9 + 10) * 3 + (15 + 10)


def test_empty_synthetic_set(splits: DataSplits, ctx: RunContext) -> None:
    empty = ImageSet(np.zeros((0, 1, 16, 16), np.uint8), np.zeros(0, np.int64))
    with pytest.raises(TaskError, match="synthetic set is empty"):
        FeatureExtraction(**FAST).run_seed(splits, empty, 0, ctx)
