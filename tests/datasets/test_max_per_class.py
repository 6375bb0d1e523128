"""``max_per_class``: at most N images of each class in every split, the first N in file order,
chosen before decoding; unset it stays out of the parameters (and the protocol hash)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_fakes import write_image
from medsynbench import RunContext
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.datasets.files import first_per_class
from medsynbench.plugins.datasets.folders import ImageFolder, KaggleCXR
from medsynbench.plugins.datasets.medmnist import MedMNIST, PneumoniaMNIST
from medsynbench.registry import get_registry

# Tiny fixtures make tiny splits: that warning is expected here (and tested elsewhere).
pytestmark = [pytest.mark.filterwarnings("ignore:split .* has only"),
              pytest.mark.filterwarnings("ignore:split 'test' has .* images"),
              pytest.mark.filterwarnings("ignore:split .* lacks classes")]


def _tree(root: Path, counts: dict[str, int], offset: int = 0) -> Path:
    """``root/<class>/img_<i:02d>.png``, every image distinct (no duplicate regrouping)."""
    for k, (name, n) in enumerate(counts.items()):
        for i in range(n):
            write_image(root / name / f"img_{i:02d}.png", value=40 * k,
                        seed=offset + 1000 * k + i)
    return root


def _counts(data, n_classes: int = 2) -> dict[str, list[int]]:
    return {name: split.counts(n_classes).tolist() for name, split in data.splits.items()}


def test_first_per_class_keeps_file_order() -> None:
    labels = [1, 0, 1, 1, 0, 2, 1]
    assert first_per_class(labels, 2).tolist() == [0, 1, 2, 4, 5]
    assert first_per_class(labels, None).tolist() == list(range(7))
    assert first_per_class([], 3).tolist() == []


def test_given_split_folders_keep_the_first_files_and_decode_no_other(
        tmp_path: Path, ctx: RunContext) -> None:
    root = tmp_path / "data"
    _tree(root / "train", {"a": 7, "b": 5})
    _tree(root / "test", {"a": 4, "b": 6}, offset=100)
    # A corrupt file after the first 3 of its class: read only without the cap.
    (root / "train" / "a" / "img_99.png").write_bytes(b"not a png")
    capped = ImageFolder(root=str(root), channels=1, max_per_class=3).load(ctx)
    assert _counts(capped) == {"train": [3, 3], "test": [3, 3]}
    assert capped.train.names.tolist() == [
        "train/a/img_00.png", "train/a/img_01.png", "train/a/img_02.png",
        "train/b/img_00.png", "train/b/img_01.png", "train/b/img_02.png"]
    assert capped.info["max_per_class"] == 3
    with pytest.raises(DataError, match=r"img_99\.png"):
        ImageFolder(root=str(root), channels=1).load(RunContext(workdir=tmp_path / "w2"))
    larger = ImageFolder(root=str(root), channels=1, max_per_class=6,
                         on_error="skip").load(RunContext(workdir=tmp_path / "w3"))
    assert _counts(larger) == {"train": [6, 5], "test": [4, 6]}  # fewer than N: all kept


def test_random_split_capped_on_every_side_and_deterministic(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data", {"a": 40, "b": 30})
    params = {"root": str(root), "channels": 1, "max_per_class": 5, "val_fraction": 0.2,
              "test_fraction": 0.3}
    first = ImageFolder(**params).load(RunContext(workdir=tmp_path / "one"))
    again = ImageFolder(**params).load(RunContext(workdir=tmp_path / "two"))
    for name, split in first.splits.items():
        assert split.counts(2).max() <= 5, name
        assert split.names.tolist() == again.splits[name].names.tolist()
    assert first.train.counts(2).tolist() == [5, 5]
    # The pool is the first 3 × 5 files of each class (3 sides), nothing after them.
    used = {n for s in first.splits.values() for n in s.names.tolist()}
    assert max(int(n[-6:-4]) for n in used) < 15


def test_medmnist_keeps_the_first_images_of_each_class_in_every_split(
        tmp_path: Path, ctx: RunContext) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 12), ("val", 5), ("test", 9)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28)).astype(np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 3 == 0).astype(np.uint8)[:, None]
    np.savez(tmp_path / "pneumoniamnist.npz", **arrays)
    data = PneumoniaMNIST(root=str(tmp_path), max_per_class=2, resolution=14).load(ctx)
    assert _counts(data) == {"train": [2, 2], "val": [2, 2], "test": [2, 2]}
    assert data.info["max_per_class"] == 2
    full = PneumoniaMNIST(root=str(tmp_path)).load(RunContext(workdir=tmp_path / "full"))
    keep = first_per_class(full.train.labels, 2)
    assert keep.tolist() == [0, 1, 2, 3]  # labels 1, 0, 0, 1, ...
    np.testing.assert_array_equal(data.train.labels, full.train.labels[keep])
    unresized = PneumoniaMNIST(root=str(tmp_path), max_per_class=2).load(
        RunContext(workdir=tmp_path / "raw"))
    np.testing.assert_array_equal(unresized.train.images, full.train.images[keep])


@pytest.mark.parametrize("value", [0, -3, 2.5, "8", True])
@pytest.mark.parametrize("plugin", ["imagefolder", "lc25000", "kaggle-cxr", "medmnist"])
def test_bad_values_are_refused_naming_the_key(plugin: str, value: object) -> None:
    cls = get_registry().get("dataset", plugin)
    with pytest.raises(ParameterError) as err:
        cls.validate({"max_per_class": value}, "dataset")
    message = str(err.value)
    assert "dataset.max_per_class" in message
    assert ("at least 1" in message) if isinstance(value, int) and not isinstance(
        value, bool) else ("expects int" in message)


def test_unset_it_stays_out_of_the_parameters_and_the_hash() -> None:
    for cls in (ImageFolder, KaggleCXR, MedMNIST):
        assert "max_per_class" in cls.parameters
        assert "max_per_class" not in cls.validate({})
        assert "max_per_class" not in cls.validate({"max_per_class": None})
        assert cls.validate({"max_per_class": 4})["max_per_class"] == 4
