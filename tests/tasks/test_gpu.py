"""The CUDA path: AMP, channels-last and data on the device give sane scores (skipped on CPU)."""

from __future__ import annotations

import math

import pytest
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.plugins.tasks.augmentation import Augmentation
from medsynbench.plugins.tasks.feature_extraction import FeatureExtraction


@pytest.mark.gpu
def test_augmentation_on_cuda(splits: DataSplits, synthetic: ImageSet, ctx: RunContext) -> None:
    cuda = ctx.child(device="cuda")
    task = Augmentation(epochs=3, batch_size=16, lr=0.01)
    base = task.run_seed(splits, None, 0, cuda)
    treated = task.run_seed(splits, synthetic, 0, cuda)
    scores = [v for k, v in {**base, **treated}.items() if k != "correct"]
    assert all(math.isfinite(v) for v in scores)
    assert base["optimisation_steps"] == treated["optimisation_steps"] == 9.0
    assert base["accuracy"] > 0.8


@pytest.mark.gpu
def test_inception_feature_extraction_on_cuda(
    splits: DataSplits, synthetic: ImageSet, ctx: RunContext
) -> None:
    task = FeatureExtraction(classifier="inception_v3", epochs=1, batch_size=16, finetune_epochs=3)
    scores = task.run_seed(splits, synthetic, 0, ctx.child(device="cuda"))
    assert 0.0 <= scores["accuracy"] <= 1.0 and scores["init_pretrained"] == 0.0
