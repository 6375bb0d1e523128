"""Tasks on the real first-party phantom (through the registry): the bias probe's intended use."""

from __future__ import annotations

import pytest
from medsynbench import RunContext
from medsynbench.errors import TaskError
from medsynbench.plugins.tasks.bias_probe import BiasProbe
from medsynbench.registry import get_registry

SMALL = {"resolution": 32, "n_train": 40, "n_val": 0, "n_test": 20}


def test_bias_probe_on_marked_phantom(ctx: RunContext) -> None:
    registry = get_registry()
    dataset = registry.create("dataset", "phantom-xray", {**SMALL, "marker_rate": 1.0})
    data = dataset.load(ctx)
    scores = BiasProbe(epochs=4, batch_size=16, lr=0.01).run_seed(data, None, 0, ctx)
    # the phantom's marker is a perfect shortcut, its anatomy subtle: reliance must show
    assert scores["marker_gap"] > 0.2
    assert scores["accuracy_swapped"] < scores["accuracy_nomarker"]


def test_bias_probe_refuses_unmarked_phantom(ctx: RunContext) -> None:
    data = get_registry().create("dataset", "phantom-xray", SMALL).load(ctx)
    with pytest.raises(TaskError, match="marker_rate > 0"):
        BiasProbe().run_seed(data, None, 0, ctx)
