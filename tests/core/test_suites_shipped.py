"""Every suite shipped in suites/ validates: plugin names, parameters, key paths — and image sizes.

Every suite reads its data under ``$MEDSYNBENCH_DATA``; here that is a temporary folder holding
../shared/data's open sets, linked, when present, and minimal fake layouts of the others, so
validation reaches every plugin's parameter check without needing the data.

Image sizes: a generator that limits them (:meth:`Generator.image_size`) is checked against the
dataset's size at validation when the suite fixes that size (``resolution``, or a dataset that
plans its images). A shipped suite must fix it whenever one of its generators limits it, so
that ``medsynbench validate`` proves every entry can be fitted, without the data.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from medsynbench.errors import SuiteError
from medsynbench.kinds import Dataset, Generator, ImageSize, RunContext
from medsynbench.registry import PluginRegistry, get_registry
from medsynbench.suite import Suite, check_image_size, load_suite

SUITES = Path(__file__).resolve().parents[2] / "suites"
SHIPPED = sorted(SUITES.glob("*.toml"))


def _fake_home(home: Path, data: Path) -> None:
    """Fake layouts of the datasets not in ../shared/data, and a placeholder FID weight file."""
    if not (data / "chest_xray").exists():
        for split in ("train", "val", "test"):
            for cls in ("NORMAL", "PNEUMONIA"):
                (data / "chest_xray" / split / cls).mkdir(parents=True)
    if not (data / "bcss-lizard").exists():
        for cls in ("inflammatory", "necrosis", "stroma", "tumor", "fat", "gland"):
            (data / "bcss-lizard" / cls).mkdir(parents=True)
    if not (data / "CheXpert-v1.0").exists():
        (data / "CheXpert-v1.0").mkdir(parents=True)
        (data / "CheXpert-v1.0" / "train.csv").write_text(
            "Path,Sex,Age,Frontal/Lateral,AP/PA,Pleural Effusion\n"
        )
    for name in ("pneumoniamnist", "lc25000/images", "ct"):
        (data / name).mkdir(parents=True, exist_ok=True)
    hub = home / ".cache" / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    # Validation only checks that the FID Inception weights are in place; nothing loads them here.
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"placeholder")


@pytest.fixture
def shared_data_or_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$MEDSYNBENCH_DATA for validation: every folder of ../shared/data linked in when present,
    fake layouts of the rest; HOME and TORCH_HOME point into ``tmp_path``."""
    shared = Path(os.environ.get("MEDSYNBENCH_SHARED_DATA", SUITES.parents[1] / "shared" / "data"))
    data = tmp_path / "open-data"
    data.mkdir()
    if shared.is_dir():
        for folder in sorted(p for p in shared.iterdir() if p.is_dir()):
            (data / folder.name).symlink_to(folder)
    _fake_home(tmp_path, data)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / ".cache" / "torch"))
    monkeypatch.setenv("MEDSYNBENCH_DATA", str(data))
    return data


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_suite_validates(path, shared_data_or_fake):
    suite = load_suite(path, get_registry())
    assert suite.entries and suite.seeds and len(suite.hash) == 64
    assert len(suite.seeds) >= 6  # every shipped suite can reach p < 0.05 with Wilcoxon


def size_limits(suite: Suite, registry: PluginRegistry) -> dict[str, ImageSize]:
    """The image-size rule of every generator table of ``suite`` that limits the size."""
    limits = {}
    for entry in suite.entries:
        generator = registry.create("generator", entry.plugin, entry.train)
        assert isinstance(generator, Generator)
        if generator.image_size() != ImageSize():
            limits[f"{entry.where} ({entry.plugin})"] = generator.image_size()
    return limits


def unchecked_sizes(suite: Suite, registry: PluginRegistry) -> str | None:
    """Why validation cannot prove the generators' sizes (None when it can)."""
    dataset = registry.create("dataset", suite.dataset.plugin, suite.dataset.params)
    assert isinstance(dataset, Dataset)
    limits = size_limits(suite, registry)
    if not limits or dataset.planned_image_size() is not None:
        return None
    rules = "; ".join(f"{where} needs {rule.describe()}" for where, rule in limits.items())
    return (f"{suite.path.name}: the dataset's image size is only known after reading its files, "
            f"but {rules}; set [dataset] resolution so that validate checks it")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_suite_fixes_the_image_size_its_generators_need(path, shared_data_or_fake):
    registry = get_registry()
    suite = load_suite(path, registry)  # validation: the size, when fixed, suits every entry
    problem = unchecked_sizes(suite, registry)
    assert problem is None, problem


# Today's (issue #15) suites/pneumoniamnist-lite.toml, frozen here: 28 px PneumoniaMNIST (no
# `resolution`) with VQ-VAE-2 and StyleGAN2, which cannot be fitted on 28 px images.
PNEUMONIAMNIST_28 = """
[suite]
name = "pneumoniamnist-lite"
seeds = [0, 1, 2, 3, 4, 5, 6, 7]

[dataset]
plugin = "pneumoniamnist"
root = "{root}"
{resolution}

[[generators]]
plugin = "copy-real"

[[generators]]
plugin = "classical-augment"

[[generators]]
plugin = "vqvae2"
train = {{ preset = "tiny" }}

[[generators]]
plugin = "heldout-real"
train = {{ pool = "val" }}

[[generators]]
plugin = "stylegan2"
train = {{ preset = "tiny" }}
sample = {{ truncation = [0.6, 1.0] }}

[[metrics]]
plugin = "mean-image-jpeg"

[[tasks]]
plugin = "augmentation"
classifier = "small-cnn"
epochs = 6
"""


def _pneumoniamnist_28(folder: Path) -> Path:
    """A tiny PneumoniaMNIST file with the real one's keys and 28 px images."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.array([[0], [1]] * 3, dtype=np.uint8)
    folder.mkdir()
    np.savez(folder / "pneumoniamnist.npz", **arrays)
    return folder


def test_todays_pneumoniamnist_lite_fails_the_size_check(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDSYNBENCH_CACHE", raising=False)
    registry = get_registry()
    root = _pneumoniamnist_28(tmp_path / "pneumoniamnist")
    path = tmp_path / "today.toml"

    def write(resolution: str) -> Path:
        path.write_text(PNEUMONIAMNIST_28.format(root=root, resolution=resolution))
        return path

    # As shipped today (no resolution): the dataset plans its 28 px from `size`, so validate
    # refuses it, naming both entries at once.
    with pytest.raises(SuiteError) as planned:
        load_suite(write(""), registry)
    assert [line.split(":")[0] for line in planned.value.problems] == [
        "generators[2]", "generators[4]"]
    # Data whose size is only known once read meets the runner's check after preparing it,
    # which refuses it before any fit.
    suite = load_suite(write("resolution = 32"), registry)
    dataset = registry.create("dataset", "pneumoniamnist", {"root": str(root)})
    data = dataset.load(RunContext(workdir=tmp_path / "work"))
    assert data.image_shape == (1, 28, 28)
    with pytest.raises(SuiteError) as refused:
        check_image_size(suite, registry, data.image_shape)
    lines = refused.value.problems
    assert len(lines) == 2
    assert lines[0].startswith("generators[2]: generator 'vqvae2' cannot be fitted on the "
                               "dataset's 28×28 images")
    assert "28 is not a multiple of 8" in lines[0]
    assert lines[1].startswith("generators[4]: generator 'stylegan2'")
    assert "28 is not a power of two" in lines[1]
    assert all("set dataset.resolution = 32 or 16" in line for line in lines)

    # With the size in the suite, validate itself refuses it, listing both entries at once.
    with pytest.raises(SuiteError) as invalid:
        load_suite(write("resolution = 28"), registry)
    assert [line.split(":")[0] for line in invalid.value.problems] == [
        "generators[2]", "generators[4]"]
    assert "2 problems" in str(invalid.value)

    # The fix the message names validates, and the prepared data passes the runner's check.
    fixed = load_suite(write("resolution = 32"), registry)
    assert unchecked_sizes(fixed, registry) is None
    resized = registry.create("dataset", "pneumoniamnist", fixed.dataset.params)
    with pytest.warns(UserWarning, match="upsampled"):
        data = resized.load(RunContext(workdir=tmp_path / "work32"))
    assert data.image_shape == (1, 32, 32)
    check_image_size(fixed, registry, data.image_shape)
