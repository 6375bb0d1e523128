"""The augmentation task: scores, determinism, equal budgets, synthetic selection, bad input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.errors import ParameterError, TaskError
from medsynbench.plugins.tasks import PLUGINS
from medsynbench.plugins.tasks.augmentation import Augmentation

FAST = {"epochs": 3, "batch_size": 16, "lr": 0.01}
TIMING = {"train_seconds"}


def without_timing(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in scores.items() if k not in TIMING}


def floats(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in scores.items() if k != "correct"}


def test_registered() -> None:
    assert Augmentation in PLUGINS


def test_scores_and_counts(splits: DataSplits, synthetic: ImageSet, ctx: RunContext) -> None:
    task = Augmentation(**FAST)
    base = task.run_seed(splits, None, 0, ctx)
    treated = task.run_seed(splits, synthetic, 0, ctx)
    for scores in (base, treated):
        assert set(Augmentation.scores) <= set(scores)
        assert all(isinstance(v, float) for v in floats(scores).values())
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


def test_synthetic_ratio_and_count_select_per_class(
    splits: DataSplits, synthetic: ImageSet
) -> None:
    by_default = Augmentation().select_synthetic(splits, synthetic)
    assert by_default.counts(2).tolist() == [24, 24]  # synthetic_ratio 1.0 × 24 real per class
    by_ratio = Augmentation(synthetic_ratio=0.5).select_synthetic(splits, synthetic)
    assert by_ratio.counts(2).tolist() == [12, 12]
    by_count = Augmentation(synthetic_ratio=0.5, count=5).select_synthetic(splits, synthetic)
    assert by_count.counts(2).tolist() == [5, 5]  # count overrides synthetic_ratio
    # the first images of each class, in the generator's order
    first = np.flatnonzero(synthetic.labels == 1)[:5]
    assert np.array_equal(by_count.images[5:], synthetic.images[first])


def test_synthetic_counts_follow_the_real_counts() -> None:
    assert Augmentation().synthetic_counts([24, 30]) == [24, 30]
    # 0.5 × 25 = 12.5 and 0.5 × 3 = 1.5 round up (Python's round would give 12 and 2)
    assert Augmentation(synthetic_ratio=0.5).synthetic_counts([25, 3]) == [13, 2]
    assert Augmentation(synthetic_ratio=0.1).synthetic_counts([25, 3]) == [3, 0]
    assert Augmentation(count=7).synthetic_counts([25, 3]) == [7, 7]


def test_synthetic_ratio_beyond_sampled_is_an_error(
    splits: DataSplits, synthetic: ImageSet
) -> None:
    with pytest.raises(TaskError, match=r"only 24 were sampled.*at least 48.*`synthetic_ratio`"):
        Augmentation(synthetic_ratio=2.0).select_synthetic(splits, synthetic)
    with pytest.raises(TaskError, match=r"count = 30 asks for 30.*lower the task's `count`"):
        Augmentation(count=30).select_synthetic(splits, synthetic)


def test_synthetic_ratio_selecting_nothing_is_an_error(
    splits: DataSplits, synthetic: ImageSet
) -> None:
    # 0.01 × 24 rounds to 0 in both classes: the treated arm would silently be the baseline
    with pytest.raises(TaskError, match="selects 0 synthetic images"):
        Augmentation(synthetic_ratio=0.01).select_synthetic(splits, synthetic)


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, math.nan, math.inf])
def test_synthetic_ratio_must_be_finite_and_positive(bad: float) -> None:
    # non-finite floats are refused for every float parameter (medsynbench.params), the rest
    # by the task's own check
    message = (
        r"synthetic_ratio: .*expects a finite number, got (nan|inf); give a finite value"
        if not math.isfinite(bad)
        else r"synthetic_ratio: must be a finite number > 0.*`count`"
    )
    with pytest.raises(ParameterError, match=message):
        Augmentation(synthetic_ratio=bad)


def test_count_must_be_positive_and_ratio_is_gone() -> None:
    with pytest.raises(ParameterError, match=r"count: must be a positive integer, got 0"):
        Augmentation(count=0)
    with pytest.raises(ParameterError, match=r"ratio: unknown parameter"):
        Augmentation(ratio=1.0)


def test_both_arms_take_the_real_arms_steps(
    splits: DataSplits, synthetic: ImageSet, ctx: RunContext, optimizer_steps: list[int]
) -> None:
    # 48 real images at batch 16 → 3 steps per pass × 3 epochs = 9 steps in the real-only arm;
    # real + synthetic (96 images) takes the same 9 steps: 1.5 passes over its set
    task = Augmentation(**FAST)
    base = task.run_seed(splits, None, 0, ctx)
    assert len(optimizer_steps) == 9 and base["optimisation_steps"] == 9.0
    treated = task.run_seed(splits, synthetic, 0, ctx)
    assert len(optimizer_steps) == 18 and treated["optimisation_steps"] == 9.0
    assert treated["train_images"] == 96.0


def test_epochs_budget_keeps_the_epoch_protocol(
    splits: DataSplits, synthetic: ImageSet, ctx: RunContext, optimizer_steps: list[int]
) -> None:
    task = Augmentation(budget="epochs", **FAST)
    base = task.run_seed(splits, None, 0, ctx)
    treated = task.run_seed(splits, synthetic, 0, ctx)
    assert base["optimisation_steps"] == 9.0  # 3 epochs × ceil(48 / 16)
    assert treated["optimisation_steps"] == 18.0  # 3 epochs × ceil(96 / 16)
    assert len(optimizer_steps) == 27


def test_cosine_schedule_spans_the_shared_budget(
    splits: DataSplits, synthetic: ImageSet, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedules: list[torch.optim.lr_scheduler.CosineAnnealingLR] = []
    original = torch.optim.lr_scheduler.CosineAnnealingLR

    class Recorded(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            schedules.append(self)

    monkeypatch.setattr(torch.optim.lr_scheduler, "CosineAnnealingLR", Recorded)
    task = Augmentation(**FAST)
    task.run_seed(splits, None, 0, ctx)
    task.run_seed(splits, synthetic, 0, ctx)
    assert [s.T_max for s in schedules] == [9, 9]
    for schedule in schedules:  # both decayed to 0 by their last step
        assert schedule.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


def test_baseline_arm_is_the_same_under_both_budgets(splits: DataSplits, ctx: RunContext) -> None:
    # "steps" equals the real-only arm's own epochs: same permutations, same schedule
    by_steps = Augmentation(**FAST).run_seed(splits, None, 2, ctx)
    by_epochs = Augmentation(budget="epochs", **FAST).run_seed(splits, None, 2, ctx)
    assert without_timing(by_steps) == without_timing(by_epochs)


def test_correct_is_the_accuracy_per_test_image(
    splits: DataSplits, synthetic: ImageSet, ctx: RunContext
) -> None:
    # the toy task is learned perfectly, so mislabelling 4 test images makes exactly those
    # 4 predictions "wrong": accuracy 20 / 24 and the zeros where the labels were flipped
    flipped = [0, 5, 13, 20]
    labels = np.array(splits.test.labels)
    labels[flipped] = 1 - labels[flipped]
    data = DataSplits(
        {"train": splits.train, "test": ImageSet(splits.test.images, labels)},
        splits.class_names, "toy",
    )
    expected = [0 if i in flipped else 1 for i in range(24)]
    task = Augmentation(**FAST)
    for scores in (task.run_seed(data, None, 1, ctx), task.run_seed(data, synthetic, 1, ctx)):
        assert scores["correct"] == expected
        assert all(type(v) is int for v in scores["correct"])
        assert scores["accuracy"] == sum(expected) / 24 == 20 / 24


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
