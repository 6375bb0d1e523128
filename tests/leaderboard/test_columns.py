"""Board labels: tasks described by their plugin (a renamed task keeps its meaning, with the
settings that set it apart), marker-rate and bias-probe-masked quantities named."""

from __future__ import annotations

from typing import Any

from leaderboard_fixtures import make_results
from medsynbench.leaderboard.columns import (
    QUANTITIES,
    TASK_SCORES,
    TASKS,
    Column,
    describe_column,
    describe_task,
    metric_columns,
    quantity,
    suite_tasks,
    task_settings,
)
from medsynbench.plugins.metrics.marker import MarkerRateMetric
from medsynbench.plugins.tasks.bias_probe import BiasProbe, MaskedBiasProbe
from medsynbench.registry import get_registry

# The xray-kermany-lite tasks as results.json records them (suite.protocol.tasks rows).
COMMON = {"classifier": "small-cnn", "image_size": 64, "epochs": 3, "synthetic_ratio": 0.5}
PROTOCOL_TASKS = [
    ["augmentation", "augmentation", "1.0.0", COMMON],
    ["bias-probe-masked", "bias-probe-masked", "1.0.0",
     {**COMMON, "probe": "band", "probe_border": 0.17}],
    ["augmentation-cropped", "augmentation", "1.0.0", {**COMMON, "crop_border": 0.17}],
]


def _suite(tasks: list[list[Any]] = PROTOCOL_TASKS) -> dict[str, Any]:
    return make_results([], protocol={"name": "x", "tasks": tasks})["suite"]


def test_every_shipped_task_plugin_has_a_description() -> None:
    registry = get_registry()
    shipped = {name for name in registry.names("task")  # not the test kits other tests install
               if registry.get("task", name).__module__.startswith("medsynbench.plugins")}
    assert shipped and shipped <= set(TASKS)


def test_suite_tasks_read_the_protocol_and_tolerate_old_results() -> None:
    tasks = suite_tasks(_suite())
    assert {n: t.plugin for n, t in tasks.items()} == {
        "augmentation": "augmentation", "bias-probe-masked": "bias-probe-masked",
        "augmentation-cropped": "augmentation"}
    assert suite_tasks(None) == {} and suite_tasks({"name": "old"}) == {}
    assert suite_tasks({"protocol": {"tasks": [["only-a-name"], 3, None]}}) == {}


def test_a_renamed_task_is_described_by_its_plugin_with_its_defining_setting() -> None:
    suite = _suite()
    plain = describe_task("augmentation", "accuracy", suite)
    assert plain == TASKS["augmentation"].format(primary="accuracy")  # nothing to add
    cropped = describe_task("augmentation-cropped", "accuracy", suite)
    assert cropped.startswith(plain)
    assert cropped.endswith("(plugin augmentation, crop_border 0.17: that fraction cut off "
                            "every border of every image, resized back)")
    assert task_settings("augmentation-cropped", suite_tasks(suite)) == ["crop_border 0.17"]
    assert task_settings("augmentation", suite_tasks(suite)) == []


def test_bias_probe_masked_gets_its_own_text_and_probe() -> None:
    text = describe_task("bias-probe-masked", "accuracy_masked", _suite())
    assert text.startswith("accuracy_masked (the evaluation images with their real markers "
                           "taken away) of a classifier trained with the synthetic images")
    assert "probe band: how the markers are taken away" in text
    assert "probe_border 0.17" in text
    assert "minus real only" not in text  # not the generic fallback


def test_same_plugin_tasks_differing_in_any_parameter_show_it() -> None:
    tasks = [["aug-a", "augmentation", "1", {**COMMON, "epochs": 3}],
             ["aug-b", "augmentation", "1", {**COMMON, "epochs": 10}]]
    assert describe_task("aug-b", "accuracy", _suite(tasks)).endswith(
        "(plugin augmentation, epochs 10)")
    assert task_settings("aug-a", suite_tasks(_suite(tasks))) == ["epochs 3"]


def test_without_a_protocol_the_name_is_taken_for_the_plugin() -> None:
    assert describe_task("bias-probe", "accuracy_swapped") == TASKS["bias-probe"].format(
        primary="accuracy_swapped")
    assert describe_task("augmentation-cropped", "accuracy", {"name": "old"}) == (
        "accuracy with the synthetic images of the entry minus real only")


def test_every_first_party_metric_quantity_has_a_label() -> None:
    from medsynbench.plugins.metrics import PLUGINS

    missing = [f"{cls.name}.{q}" for cls in PLUGINS for q in cls.quantities
               if f"{cls.name}.{q}" not in QUANTITIES]
    assert missing == [], f"add these to leaderboard.columns.QUANTITIES and docs: {missing}"


def test_marker_rate_quantities_have_labels_including_per_class_keys() -> None:
    declared = set(MarkerRateMetric.quantities)
    assert {f"marker-rate.{q}" for q in declared} <= set(QUANTITIES)
    per_class = quantity("marker-rate.marker_rate[PNEUMONIA]")
    assert per_class is not None and per_class.label == "marker rate PNEUMONIA"
    assert per_class.definition.endswith("among the images of class PNEUMONIA")
    real = quantity("marker-rate.real_marker_rate[normal]")
    assert real is not None and real.name == "real marker rate, class normal"
    assert quantity("marker-rate.unknown[normal]") is None and quantity("fid.fid[") is None
    assert quantity("marker-rate.marker_rate_excess") == QUANTITIES[
        "marker-rate.marker_rate_excess"]


def test_metric_columns_and_legend_use_the_labels() -> None:
    record = {"axis": "fidelity", "higher_is_better": False, "value": 0.5}
    entry = {"name": "vqvae2", "metrics": {
        "marker-rate.marker_rate": record, "marker-rate.marker_rate[normal]": record,
        "marker-rate.marker_rate_excess": record}}
    labels = {c.key: c.label for c in metric_columns([entry])}
    assert labels == {"marker-rate.marker_rate": "marker rate",
                      "marker-rate.marker_rate[normal]": "marker rate normal",
                      "marker-rate.marker_rate_excess": "marker excess"}
    name, definition = describe_column(
        Column("marker-rate.marker_rate[normal]", "metric", "fidelity", "marker rate normal"))
    assert name == "marker rate, class normal" and "border band" in definition


def test_task_scores_named_for_both_bias_probes() -> None:
    for cls in (BiasProbe, MaskedBiasProbe):
        for score in (cls.primary, "marker_gap"):
            assert score in cls.scores
            assert f"{cls.name}.{score}" in TASK_SCORES
    assert "taken away" in TASK_SCORES["bias-probe-masked.accuracy_masked"].definition
    assert "accuracy as is" in TASK_SCORES["bias-probe-masked.marker_gap"].definition
