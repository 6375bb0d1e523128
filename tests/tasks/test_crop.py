"""crop_border on the classifier tasks: the cropped re-evaluation (Nan et al., Table IV)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.errors import ParameterError
from medsynbench.plugins.datasets.bias import burn_marker, crop_border
from medsynbench.plugins.tasks.augmentation import Augmentation
from medsynbench.plugins.tasks.bias_probe import BiasProbe, MaskedBiasProbe
from medsynbench.plugins.tasks.feature_extraction import FeatureExtraction
from medsynbench.registry import PluginRegistry
from medsynbench.suite import load_suite

FAST = {"epochs": 6, "batch_size": 16, "lr": 0.01}


def marked(labels: np.ndarray, seed: int, side: int = 64) -> np.ndarray:
    """Noise film; class 1 carries an "R" in the top-left corner, class 0 none: the marker is
    the only difference between the classes."""
    rng = np.random.default_rng(seed)
    images = np.clip(rng.normal(70, 12, size=(labels.size, 1, side, side)), 0, 255)
    slots = ["top-left" if c == 1 else None for c in labels]
    return burn_marker(images.astype(np.uint8), slots)


def shortcut_splits() -> DataSplits:
    train, test = np.repeat([0, 1], 16), np.repeat([0, 1], 12)
    return DataSplits({"train": ImageSet(marked(train, 0), train),
                       "test": ImageSet(marked(test, 1), test)}, ("normal", "pneumonia"), "x-ray")


@pytest.mark.parametrize("task", [Augmentation, FeatureExtraction, BiasProbe, MaskedBiasProbe])
def test_crop_border_stays_out_of_the_parameters_at_zero(task: type) -> None:
    """Protocol hashes of suites written before crop_border existed stay the same."""
    assert "crop_border" in task.parameters
    assert "crop_border" not in task().params
    assert "crop_border" not in task(crop_border=0).params
    assert task(crop_border=0.17).params["crop_border"] == 0.17


def test_bad_crop_is_refused() -> None:
    with pytest.raises(ParameterError, match=r"crop_border.*\[0, 0.5\)"):
        Augmentation(crop_border=0.5)


class _Spy(Augmentation):
    """Records what run_arm receives instead of training."""

    name: ClassVar[str] = "spy"
    seen: list[tuple[DataSplits, ImageSet | None]]

    def run_arm(self, data: DataSplits, synthetic: ImageSet | None, seed: int,
                ctx: RunContext) -> dict[str, Any]:
        self.seen = [*getattr(self, "seen", []), (data, synthetic)]
        return {}


def test_every_image_the_classifier_sees_is_cropped(ctx: RunContext) -> None:
    data = shortcut_splits()
    synthetic = ImageSet(marked(np.array([0, 1, 1]), 9), np.array([0, 1, 1]))
    spy = _Spy(crop_border=0.17)
    spy.run_seed(data, None, 0, ctx)
    spy.run_seed(data, synthetic, 0, ctx)
    (base, none), (treated, cropped_synthetic) = spy.seen
    assert none is None and cropped_synthetic is not None
    for name in ("train", "test"):
        np.testing.assert_array_equal(treated[name].images, crop_border(data[name].images, 0.17))
    np.testing.assert_array_equal(cropped_synthetic.images, crop_border(synthetic.images, 0.17))
    assert base is treated  # cropped once per dataset, reused by every arm and seed
    uncropped = _Spy()
    uncropped.run_seed(data, synthetic, 0, ctx)
    assert uncropped.seen[0][0] is data and uncropped.seen[0][1] is synthetic


def test_the_crop_takes_the_marker_shortcut_away(ctx: RunContext) -> None:
    data = shortcut_splits()
    as_is = Augmentation(**FAST).run_seed(data, None, 0, ctx)
    cropped = Augmentation(**FAST, crop_border=0.17).run_seed(data, None, 0, ctx)
    assert as_is["accuracy"] >= 0.9  # the marker is all there is to learn...
    assert cropped["accuracy"] <= 0.7  # ...and the crop removed it (64 px: 11 px cut)


SUITE = """
[suite]
name = "crop-twice"
seeds = [0, 1, 2, 3, 4, 5, 6, 7]

[dataset]
plugin = "phantom-xray"
resolution = 64
n_train = 10
n_val = 0
n_test = 10

[[generators]]
plugin = "noise"

[[tasks]]
plugin = "augmentation"
{extra}

[output]
dir = "{out}"
"""
CROPPED = '[[tasks]]\nplugin = "augmentation"\nname = "augmentation-cropped"\ncrop_border = 0.17'


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    registry = PluginRegistry()
    registry.load_entry_points()
    return registry


def test_a_suite_lists_the_task_as_is_and_cropped(tmp_path: Path,
                                                  registry: PluginRegistry) -> None:
    def load(extra: str, stem: str) -> Any:
        path = tmp_path / f"{stem}.toml"
        path.write_text(SUITE.format(extra=extra, out=tmp_path / stem))
        return load_suite(path, registry)

    plain, zero, both = load("", "a"), load("crop_border = 0", "b"), load(CROPPED, "c")
    assert plain.protocol_hash == zero.protocol_hash  # an explicit 0 is the old protocol
    assert [t.name for t in both.tasks] == ["augmentation", "augmentation-cropped"]
    assert both.tasks[1].params["crop_border"] == 0.17
    assert both.protocol_hash != plain.protocol_hash
