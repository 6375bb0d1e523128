"""medmnist / pneumoniamnist / pathmnist: npz layouts, sizes, bad files, the shared copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from medsynbench import RunContext
from medsynbench.errors import DataError
from medsynbench.plugins.datasets.medmnist import MedMNIST, PathMNIST, PneumoniaMNIST


def _npz(path: Path, size: int = 28, rgb: bool = False, n: int = 6, n_classes: int = 2,
         drop: str | None = None, label_columns: int = 1) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        shape = (n, size, size, 3) if rgb else (n, size, size)
        arrays[f"{split}_images"] = rng.integers(0, 255, shape).astype(np.uint8)
        labels = np.arange(n * label_columns).reshape(n, label_columns) % n_classes
        arrays[f"{split}_labels"] = labels.astype(np.uint8)
    arrays.pop(drop, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def test_flag_lookup_and_gray_channels(tmp_path: Path, ctx: RunContext) -> None:
    _npz(tmp_path / "pneumoniamnist.npz")
    data = PneumoniaMNIST(root=str(tmp_path)).load(ctx)
    assert data.class_names == ("normal", "pneumonia")
    assert data.train.image_shape == (1, 28, 28) and set(data.splits) == {"train", "val", "test"}
    assert data.modality == "xray"


def test_medmnist_plus_size_and_rgb(tmp_path: Path, ctx: RunContext) -> None:
    _npz(tmp_path / "pathmnist_64.npz", size=64, rgb=True, n_classes=9, n=9)
    data = PathMNIST(root=str(tmp_path), size=64).load(ctx)
    assert data.train.image_shape == (3, 64, 64) and data.n_classes == 9
    generic = MedMNIST(root=str(tmp_path), flag="pathmnist", size=64, resolution=32).load(ctx)
    assert generic.train.image_shape == (3, 32, 32)


def test_explicit_file_and_upsampling_warning(tmp_path: Path, ctx: RunContext) -> None:
    path = _npz(tmp_path / "anything.npz", n_classes=3)
    with pytest.warns(UserWarning, match="larger than the source"):
        data = MedMNIST(file=str(path), resolution=56).load(ctx)
    assert data.class_names == ("class_0", "class_1", "class_2")
    assert data.train.image_shape == (1, 56, 56)


def test_missing_key_and_multilabel(tmp_path: Path, ctx: RunContext) -> None:
    path = _npz(tmp_path / "bad.npz", drop="test_labels")
    with pytest.raises(DataError, match=r"lacks the key.*test_labels"):
        MedMNIST(file=str(path)).load(ctx)
    multi = _npz(tmp_path / "chestmnist.npz", label_columns=14)
    with pytest.raises(DataError, match=r"multi-label.*label_column"):
        MedMNIST(file=str(multi)).load(ctx)
    data = MedMNIST(file=str(multi), label_column=3).load(ctx)
    assert data.n_classes == 2


def test_missing_file_lists_what_is_there(tmp_path: Path) -> None:
    _npz(tmp_path / "dermamnist.npz")
    with pytest.raises(DataError, match=r"no pathmnist.npz.*dermamnist.npz"):
        PathMNIST(root=str(tmp_path)).npz_path()
    with pytest.raises(DataError, match="needs flag"):
        MedMNIST(root=str(tmp_path))
    with pytest.raises(DataError, match="zenodo"):
        PneumoniaMNIST(root=str(tmp_path / "absent"))


def test_shared_pneumoniamnist(shared_data: Path, ctx: RunContext) -> None:
    data = PneumoniaMNIST(root=str(shared_data / "pneumoniamnist")).load(ctx)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 4708, "val": 524, "test": 624}
    assert data.train.counts(2).tolist() == [1214, 3494]
    assert data.test.counts(2).tolist() == [234, 390]



def test_planned_image_size_from_resolution_or_size_unless_a_file_is_given(
        tmp_path: Path) -> None:
    other = _npz(tmp_path / "other.npz", size=64)
    plan: list[tuple[dict[str, object], tuple[int, int] | None]] = [
        ({}, (28, 28)),
        ({"size": 64}, (64, 64)),
        ({"size": 64, "resolution": 32}, (32, 32)),
        ({"file": str(other)}, None),  # an explicit file may hold any size
        ({"file": str(other), "resolution": 48}, (48, 48)),
    ]
    for given, expected in plan:
        dataset = MedMNIST(root=str(tmp_path), flag="pathmnist", **given)
        assert dataset.planned_image_size() == expected, given
