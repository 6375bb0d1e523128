"""The augmentation task: scores, determinism, synthetic selection and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.errors import ParameterError, TaskError
from medsynbench.plugins.tasks import PLUGINS
from medsynbench.plugins.tasks.augmentation import Augmentation

FAST = {"epochs": 3, "batch_size": 16, "lr": 0.01}
TIMING = {"train_seconds"}


def without_timing(scores: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in scores.items() if k not in TIMING}


def test_registered() -> None:
    assert Augmentation in PLUGINS


def test_scores_and_counts(splits: DataSplits, synthetic: ImageSet, ctx: RunContext) -> None:
    task = Augmentation(**FAST)
    base = task.run_seed(splits, None, 0, ctx)
    treated = task.run_seed(splits, synthetic, 0, ctx)
    for scores in (base, treated):
        assert set(Augmentation.scores) <= set(scores)
        assert all(isinstance(v, float) for v in scores.values())
        assert 0.0 <= scores["accuracy"] <= 1.0
        assert scores["init_pretrained"] == 0.0
    assert base["accuracy"] > 0.8  # the quadrant task is learnable: the loop really trains
    assert base["n_synthetic"] == 0.0 and treated["n_synthetic"] == 48.0
    assert base["train_images"] == 48.0 and treated["train_images"] == 96.0


def test_cpu_determinism_for_a_seed(
    splits: DataSplits, synthetic: ImageSet, ctx: RunContext
) -> None:
    task = Augmentation(**FAST)
    first = task.run_seed(splits, synthetic, 3, ctx)
    again = task.run_seed(splits, synthetic, 3, ctx)
    other = task.run_seed(splits, synthetic, 4, ctx)
    assert without_timing(first) == without_timing(again)  # bit-identical
    assert first["final_train_loss"] != other["final_train_loss"]


def test_ratio_and_count_select_per_class(splits: DataSplits, synthetic: ImageSet) -> None:
    by_ratio = Augmentation(ratio=0.5).select_synthetic(splits, synthetic)
    assert by_ratio.counts(2).tolist() == [12, 12]
    by_count = Augmentation(count=5).select_synthetic(splits, synthetic)
    assert by_count.counts(2).tolist() == [5, 5]
    # the first images of each class, in the generator's order
    first = np.flatnonzero(synthetic.labels == 1)[:5]
    assert np.array_equal(by_count.images[5:], synthetic.images[first])


def test_ratio_beyond_sampled_is_an_error(splits: DataSplits, synthetic: ImageSet) -> None:
    with pytest.raises(TaskError, match="only 24 were sampled"):
        Augmentation(ratio=2.0).select_synthetic(splits, synthetic)


def test_ratio_and_count_together_rejected() -> None:
    with pytest.raises(ParameterError, match="either `ratio` or `count`"):
        Augmentation(ratio=1.0, count=3)


def test_synthetic_class_the_dataset_lacks(
    splits: DataSplits, synthetic: ImageSet, ctx: RunContext
) -> None:
    bad = ImageSet(synthetic.images, np.where(synthetic.labels == 1, 2, 0))
    with pytest.raises(TaskError, match=r"label\(s\) \[2\] that the dataset lacks"):
        Augmentation(**FAST).run_seed(splits, bad, 0, ctx)


def test_zero_synthetic_images(splits: DataSplits, ctx: RunContext) -> None:
    empty = ImageSet(np.zeros((0, 1, 16, 16), np.uint8), np.zeros(0, np.int64))
    with pytest.raises(TaskError, match="synthetic set is empty"):
        Augmentation(**FAST).run_seed(splits, empty, 0, ctx)


def test_wrong_image_shape(splits: DataSplits, ctx: RunContext) -> None:
    rgb = ImageSet(np.zeros((4, 3, 16, 16), np.uint8), np.array([0, 1, 0, 1]))
    with pytest.raises(TaskError, match="sample the generator at the dataset's resolution"):
        Augmentation(**FAST).run_seed(splits, rgb, 0, ctx)


def test_divergence_is_reported_not_hidden(splits: DataSplits, ctx: RunContext) -> None:
    # lr = 1e12 blows the weights up within a few steps: a TaskError, never a chance score.
    with pytest.raises(TaskError, match=r"diverged.*lr = 1e\+12"):
        Augmentation(epochs=3, batch_size=16, lr=1e12).run_seed(splits, None, 0, ctx)


def test_missing_eval_split(splits: DataSplits, ctx: RunContext) -> None:
    with pytest.raises(TaskError, match="eval_split = 'val'"):
        Augmentation(eval_split="val", **FAST).run_seed(splits, None, 0, ctx)


def test_multiclass_auc(ctx: RunContext) -> None:
    from .conftest import make_splits

    data = make_splits(n_classes=3)
    scores = Augmentation(**FAST).run_seed(data, None, 0, ctx)
    assert 0.0 <= scores["auc"] <= 1.0 and 0.0 <= scores["f1"] <= 1.0


def test_one_seed_runs_and_reports_no_p_value(
    splits: DataSplits, synthetic: ImageSet, ctx: RunContext
) -> None:
    from medsynbench.stats import paired_comparison

    task = Augmentation(**FAST)
    base = task.run_seed(splits, None, 0, ctx)
    treated = task.run_seed(splits, synthetic, 0, ctx)
    summary = paired_comparison([base["accuracy"]], [treated["accuracy"]])
    assert summary["n"] == 1 and summary["p_value"] is None
    assert summary["delta_pp"] == pytest.approx(100 * (treated["accuracy"] - base["accuracy"]))
    assert "only 1 seed: no p-value" in summary["note"]
