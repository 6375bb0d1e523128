"""Protocol hash and plugin versions: one truth about which results compare.

Plugin versions of the dataset, encoders, metrics and tasks belong to the protocol (a change
in how a metric or task computes makes results incomparable); generator versions belong to the
entries (the full ``hash``). Machine-local paths stay out of both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from medsynbench.registry import PluginRegistry
from medsynbench.suite import Suite, load_suite

SUITE = """
[suite]
name = "hash-check"
seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
device = "cpu"

[dataset]
plugin = "phantom-xray"
resolution = 32
n_train = 10
n_val = 0
n_test = 10

[[generators]]
plugin = "copy-real"

[[generators]]
plugin = "noise"

[[encoders]]
plugin = "efficientnet-lite0"

[[metrics]]
plugin = "fid"

[[metrics]]
plugin = "mean-image-jpeg"
codec = "{codec}"

[[tasks]]
plugin = "augmentation"
classifier = "resnet18"
weights = "{weights}"

[output]
dir = "{out}"
"""


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    registry = PluginRegistry()
    registry.load_entry_points()
    return registry


def load(tmp_path: Path, registry: PluginRegistry, codec: str = "jpeg",
         weights: str = "/data/a/resnet18.pth", out: str = "out") -> Suite:
    path = tmp_path / f"{out}.toml"
    path.write_text(SUITE.format(codec=codec, weights=weights, out=tmp_path / out))
    return load_suite(path, registry)


def test_protocol_is_the_canonical_document_without_entries(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    suite = load(tmp_path, registry)
    protocol = suite.protocol()
    assert set(protocol) == {"name", "version", "seeds", "dataset", "encoders", "metrics",
                             "tasks"}
    assert protocol == {k: v for k, v in suite.canonical().items() if k != "entries"}
    metric_cls = registry.get("metric", "mean-image-jpeg")
    assert ["mean-image-jpeg", "mean-image-jpeg", metric_cls.version, None,
            {"codec": "jpeg"}] in protocol["metrics"]
    assert protocol["dataset"][1] == registry.get("dataset", "phantom-xray").version
    assert suite.plugin_versions["generator:copy-real"] == registry.get(
        "generator", "copy-real").version


def test_bumping_a_metric_version_changes_the_protocol_hash(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = load(tmp_path, registry)
    monkeypatch.setattr(registry.get("metric", "mean-image-jpeg"), "version", "99.0.0")
    after = load(tmp_path, registry)
    assert after.protocol_hash != before.protocol_hash and after.hash != before.hash
    changed = [k for k in before.protocol() if before.protocol()[k] != after.protocol()[k]]
    assert changed == ["metrics"]  # the leaderboard can name what differs


@pytest.mark.parametrize("kind, plugin, field", [
    ("dataset", "phantom-xray", "dataset"),
    ("encoder", "efficientnet-lite0", "encoders"),
    ("task", "augmentation", "tasks"),
])
def test_dataset_encoder_and_task_versions_are_protocol(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch,
    kind: str, plugin: str, field: str,
) -> None:
    before = load(tmp_path, registry)
    monkeypatch.setattr(registry.get(kind, plugin), "version", "99.0.0")
    after = load(tmp_path, registry)
    assert after.protocol_hash != before.protocol_hash
    assert [k for k in before.protocol() if before.protocol()[k] != after.protocol()[k]] == [
        field]


def test_bumping_a_generator_version_changes_hash_not_protocol_hash(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = load(tmp_path, registry)
    monkeypatch.setattr(registry.get("generator", "noise"), "version", "99.0.0")
    after = load(tmp_path, registry)
    assert after.hash != before.hash
    assert after.protocol_hash == before.protocol_hash


def test_metric_parameters_are_protocol(tmp_path: Path, registry: PluginRegistry) -> None:
    jpeg, png = load(tmp_path, registry), load(tmp_path, registry, codec="png")
    assert jpeg.protocol_hash != png.protocol_hash


def test_machine_local_keys_stay_out_of_both_hashes(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    here = load(tmp_path, registry, weights="/data/a/resnet18.pth", out="a")
    there = load(tmp_path, registry, weights="/mnt/b/resnet18.pth", out="b")
    assert here.tasks[0].params["weights"] != there.tasks[0].params["weights"]
    assert here.output_dir != there.output_dir
    assert (here.hash, here.protocol_hash) == (there.hash, there.protocol_hash)
    assert "weights" not in here.protocol()["tasks"][0][-1]
