"""Helpers for testing plugins (MedSynBench's own tests and third-party plugin authors')."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from .data import DataSplits, ImageSet
from .registry import PluginRegistry

__all__ = ["SMOKE_VALUES", "make_toy_splits", "scale_suite"]


def make_toy_splits(
    n_per_class: int = 24, size: int = 16, channels: int = 1, seed: int = 0
) -> DataSplits:
    """Two easily separable classes (dark vs bright noisy squares), ``train`` and ``test``."""
    rng = np.random.default_rng(seed)

    def one(n: int) -> ImageSet:
        labels = np.repeat(np.arange(2), n)
        base = np.where(labels == 0, 70, 170)[:, None, None, None]
        noise = rng.normal(0, 25, size=(2 * n, channels, size, size))
        images = np.clip(base + noise, 0, 255).astype(np.uint8)
        return ImageSet(images, labels)

    return DataSplits(
        {"train": one(n_per_class), "test": one(max(n_per_class // 2, 1))},
        ("dark", "bright"),
        "toy",
    )


# Parameters that only set how long something trains: wherever a plugin declares one (train,
# sample or plugin table), :func:`scale_suite` sets it to this value.
SMOKE_VALUES: Mapping[str, Any] = {
    "vq_steps": 4, "prior_steps": 4, "ae_steps": 4, "unet_steps": 4,  # vqvae2, ldm
    "kimg": 0.016,  # stylegan2: two steps of the tiny preset's batch of 8
    "steps": 4,  # vqvae-codes encoder
    "ddim_steps": 2,
    "epochs": 1, "finetune_epochs": 1,  # tasks
}
# Time caps are moot once the steps are few; dropped so they cannot cut a smoke fit short.
_DROPPED = ("max_train_seconds",)


def scale_suite(
    raw: Mapping[str, Any], registry: PluginRegistry, seeds: int = 2, per_class: int = 16,
    encoder_resolution: int = 64,
) -> dict[str, Any]:
    """A copy of a suite document (:func:`medsynbench.suite.read_suite_file`) small enough to
    run end to end on a CPU in about a minute, for :func:`medsynbench.suite.build_suite` with
    ``allow_underpowered``: the first ``seeds`` seeds and one CPU thread; generators on their
    ``tiny`` preset where they have one; every :data:`SMOKE_VALUES` parameter a plugin
    declares set to its value; encoders' ``resolution`` at most ``encoder_resolution``; at most
    ``per_class`` images per class where the dataset declares ``max_per_class`` — and then
    every entry without a ``count`` samples ``per_class`` images per class, so that k-NN
    metrics see enough synthetic images whatever the tasks' ``synthetic_ratio`` (0.1 × 16
    real images would leave 2 per class); no ``[[checks]]`` (their answers are the full
    suite's) and no ``[output]``.

    What stays: the dataset and its image size, every entry, encoder, metric and task, and
    every other parameter. A preset can change a generator's architecture (ldm's ``tiny``
    UNet has one level fewer than ``paper``), so the full suite's image sizes are proven by
    validating it, not by running the copy.
    """
    scaled = copy.deepcopy(dict(raw))
    scaled.pop("checks", None)
    scaled.pop("output", None)
    meta = scaled.get("suite", {})
    if isinstance(meta.get("seeds"), list):
        meta["seeds"] = meta["seeds"][:seeds]
    # Small networks on a shared CPU: one thread is several times faster than two waiting on
    # each other (a PixelCNN prior sampled 9× faster on the busy 2-core development VM).
    meta["cpu_threads"] = 1
    dataset = scaled.get("dataset", {})
    capped = "max_per_class" in _declared(registry, "dataset", dataset.get("plugin"))
    if capped:
        dataset["max_per_class"] = min(dataset.get("max_per_class", per_class), per_class)
    for table in scaled.get("generators", []):
        if capped:
            table.setdefault("count", per_class)
        plugin = table.get("plugin")
        declared = _declared(registry, "generator", plugin)
        train = table.setdefault("train", {})
        preset = declared.get("preset")
        if preset is not None and preset.choices and "tiny" in preset.choices:
            train["preset"] = "tiny"
        _shorten(train, declared)
        cls = _class(registry, "generator", plugin)
        if cls is not None:
            _shorten(table.setdefault("sample", {}), getattr(cls, "sample_parameters", {}))
    for table in scaled.get("encoders", []):
        declared = _declared(registry, "encoder", table.get("plugin"))
        _shorten(table, declared)
        resolution = declared.get("resolution")
        current = table.get("resolution", resolution.default if resolution else None)
        if isinstance(current, int) and current > encoder_resolution:
            table["resolution"] = encoder_resolution
    for table in scaled.get("tasks", []):
        _shorten(table, _declared(registry, "task", table.get("plugin")))
    return scaled


def _class(registry: PluginRegistry, kind: str, plugin: Any) -> Any:
    """The plugin class, or None when the name is not a registered plugin (validation says)."""
    if not isinstance(plugin, str) or plugin not in registry.names(kind):
        return None
    return registry.get(kind, plugin)


def _declared(registry: PluginRegistry, kind: str, plugin: Any) -> Mapping[str, Any]:
    cls = _class(registry, kind, plugin)
    return cls.parameters if cls is not None else {}


def _shorten(table: dict[str, Any], declared: Mapping[str, Any]) -> None:
    """Set the training-length parameters ``declared`` has (a swept list is left alone)."""
    for key, value in SMOKE_VALUES.items():
        if key in declared and not isinstance(table.get(key), list):
            table[key] = value
    for key in _DROPPED:
        table.pop(key, None)
