"""The cross-task SVM: a second dataset D with other classes, size and channels is allowed."""

from __future__ import annotations

from typing import ClassVar

import pytest
from medsynbench import Dataset, DataSplits, ImageSet, Param, RunContext
from medsynbench.errors import ParameterError, TaskError, UnknownPluginError
from medsynbench.plugins.tasks.cross_task_svm import CrossTaskSVM
from medsynbench.registry import PluginRegistry

from .conftest import make_splits

FAST = {"epochs": 3, "batch_size": 16, "lr": 0.01}


class QuadrantsRGB(Dataset):
    """Dataset D for the tests: 3 classes, RGB, 24 px (the suite's data: 2 classes, gray, 16 px)."""

    name: ClassVar[str] = "test-quadrants-rgb"
    parameters: ClassVar[dict[str, Param]] = {
        "n": Param(16, int, "train images per class"),
        "n_test": Param(8, int, "test images per class"),
    }

    def load(self, ctx: RunContext) -> DataSplits:
        return make_splits(n_classes=3, n_train=self.params["n"], n_test=self.params["n_test"],
                           size=24, seed=5, channels=3)


@pytest.fixture
def registry_ctx(ctx: RunContext) -> RunContext:
    registry = PluginRegistry()
    registry.register("dataset", QuadrantsRGB, "tests")
    return ctx.child(registry=registry)


def test_dataset_with_different_classes_is_allowed(
    splits: DataSplits, synthetic: ImageSet, registry_ctx: RunContext
) -> None:
    task = CrossTaskSVM(dataset={"plugin": "test-quadrants-rgb", "n": 12}, **FAST)
    base = task.run_seed(splits, None, 0, registry_ctx)
    treated = task.run_seed(splits, synthetic, 0, registry_ctx)
    for scores in (base, treated):
        assert 0.0 <= scores["accuracy"] <= 1.0 and 0.0 <= scores["auc"] <= 1.0
        assert scores["d_train_images"] == 36.0  # 3 classes × 12: D's own label set
    assert treated["n_synthetic"] == 48.0
    assert base["source_accuracy"] > 0.7  # the classifier itself learned the suite's task
    # features of a network that learned "bright quadrant" separate D's quadrant classes
    assert base["accuracy"] > 1 / 3


def test_equal_steps_and_correct_on_d(
    splits: DataSplits, synthetic: ImageSet, registry_ctx: RunContext
) -> None:
    # D's test split has 3 × 5 = 15 images (the suite's has 24): "correct" is about D's
    task = CrossTaskSVM(dataset={"plugin": "test-quadrants-rgb", "n": 12, "n_test": 5}, **FAST)
    base = task.run_seed(splits, None, 0, registry_ctx)
    treated = task.run_seed(splits, synthetic, 0, registry_ctx)
    # 3 epochs × ceil(48 / 16) = 9 steps, also for the 96 real + synthetic images
    assert base["optimisation_steps"] == treated["optimisation_steps"] == 9.0
    for scores in (base, treated):
        assert len(scores["correct"]) == 15
        assert sum(scores["correct"]) / 15 == scores["accuracy"]


def test_dataset_table_needs_a_plugin() -> None:
    with pytest.raises(ParameterError, match="table with a `plugin` name"):
        CrossTaskSVM(dataset={"root": "x"})


def test_unknown_dataset_plugin(splits: DataSplits, registry_ctx: RunContext) -> None:
    task = CrossTaskSVM(dataset={"plugin": "test-quadrants"}, **FAST)
    with pytest.raises(UnknownPluginError, match="did you mean"):
        task.run_seed(splits, None, 0, registry_ctx)


def test_missing_split_of_d(splits: DataSplits, registry_ctx: RunContext) -> None:
    task = CrossTaskSVM(dataset={"plugin": "test-quadrants-rgb"}, d_test_split="val", **FAST)
    with pytest.raises(TaskError, match="has no split 'val'"):
        task.run_seed(splits, None, 0, registry_ctx)
