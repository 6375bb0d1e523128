"""imagefolder and the shared file reading: layouts, splits, and every bad input of issue 3."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_fakes import make_class_tree, write_image
from medsynbench import RunContext
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.datasets.folders import ImageFolder
from PIL import Image

# Tiny fixtures make tiny splits: that warning is expected here (and tested on its own).
pytestmark = [pytest.mark.filterwarnings("ignore:split .* has only"),
              pytest.mark.filterwarnings("ignore:split 'test' has .* images"),
              pytest.mark.filterwarnings("ignore:.*duplicate images straddle splits")]


def _load(root: Path, ctx: RunContext, **params):
    return ImageFolder(root=str(root), **params).load(ctx)


def _distinct_tree(root: Path, classes: dict[str, int], offset: int, mode: str = "L") -> Path:
    """Like make_class_tree, but no image is a copy of another (in this tree or one made with
    another ``offset``): distinct noise per class and image."""
    for k, (name, n) in enumerate(classes.items()):
        for i in range(n):
            write_image(root / name / f"img_{i}.png", mode=mode, value=40 * k,
                        seed=offset + 100 * k + i)
    return root


def test_class_folders_are_split_stratified(class_tree: Path, ctx: RunContext) -> None:
    data = _load(class_tree, ctx, channels=1, test_fraction=0.5, val_fraction=0.0)
    assert data.class_names == ("cats", "dogs")
    assert data.train.images.shape[1:] == (1, 20, 20)
    assert data.train.counts(2).tolist() == [3, 2]
    assert data.test.counts(2).tolist() == [3, 2]
    assert data.info["split"]["kind"] == "random"


def test_split_folders_are_kept(tmp_path: Path, ctx: RunContext) -> None:
    _distinct_tree(tmp_path / "train", {"a": 3, "b": 3}, 0, mode="RGB")
    _distinct_tree(tmp_path / "test", {"a": 2, "b": 1}, 1000, mode="RGB")
    _distinct_tree(tmp_path / "val", {"a": 1, "b": 1}, 2000, mode="RGB")
    data = _load(tmp_path, ctx)
    assert set(data.splits) == {"train", "val", "test"}
    assert data.test.counts(2).tolist() == [2, 1]
    assert data.train.images.shape[1] == 3


def test_group_regex_keeps_groups_on_one_side(tmp_path: Path, ctx: RunContext) -> None:
    for cls, value in (("neg", 0), ("pos", 90)):
        for patient in range(6):
            for view in range(3):
                write_image(tmp_path / cls / f"p{cls}{patient}_v{view}.png", value=value,
                            seed=patient * 3 + view)
    data = _load(tmp_path, ctx, channels=1, group_regex=r"^(p\w+?)_v", test_fraction=0.34)
    train_groups = set(data.train.groups.tolist())
    test_groups = set(data.test.groups.tolist())
    assert train_groups and test_groups and not train_groups & test_groups
    assert len(data.test) % 3 == 0


def test_missing_root_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no data at"):
        ImageFolder(root=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="needs root"):
        ImageFolder()


def test_bad_group_regex_is_a_parameter_error(class_tree: Path) -> None:
    with pytest.raises(ParameterError, match="group_regex"):
        ImageFolder(root=str(class_tree), group_regex="no_group")


# --- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_files_fail_listing_them_or_are_skipped(
    class_tree: Path, ctx: RunContext, suffix: str
) -> None:


    good = write_image(class_tree / "cats" / f"full{suffix}", (64, 64), "RGB", seed=3)
    broken = class_tree / "cats" / f"broken{suffix}"
    broken.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DataError, match=r"1 of 12 image files could not be read:\n.*broken"):
        _load(class_tree, ctx, channels=1, resolution=20)
    data = _load(class_tree, ctx, channels=1, resolution=20, on_error="skip")
    assert sum(len(s) for s in data.splits.values()) == 11
    assert data.info["skipped_files"] == [str(broken)]


def test_sixteen_bit_png_is_windowed_not_clipped(tmp_path: Path, ctx: RunContext) -> None:
    ramp = np.linspace(1000, 4000, 20 * 20).reshape(20, 20).astype(np.uint16)  # 12-bit data
    for cls in ("a", "b"):
        for i in range(2):
            path = tmp_path / cls / f"x{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(ramp).save(path)
            assert Image.open(path).mode.startswith("I")
    data = _load(tmp_path, ctx, channels=1, test_fraction=0.5, val_fraction=0.0,
                 duplicates="report")  # four copies of one ramp
    image = data.train.images[0, 0]
    assert image.min() <= 1 and image.max() >= 254  # full range used...
    assert len(np.unique(image)) > 200  # ...and the ramp kept, not saturated at 255


def test_rgba_and_palette_images(tmp_path: Path, ctx: RunContext) -> None:
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # fully transparent red: alpha is dropped
    (tmp_path / "a").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a" / "rgba.png")
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a" / "rgba2.png")
    palette = Image.fromarray(np.full((20, 20, 3), (10, 220, 30), np.uint8)).convert(
        "P", palette=Image.Palette.ADAPTIVE
    )
    palette.save(tmp_path / "b" / "pal.png")
    palette.save(tmp_path / "b" / "pal2.png")
    data = _load(tmp_path, ctx, channels=3, test_fraction=0.5, val_fraction=0.0,
                 duplicates="report")  # two copies per class
    both = np.concatenate([data.train.images, data.test.images])
    labels = np.concatenate([data.train.labels, data.test.labels])
    assert both.shape[1] == 3
    assert np.all(both[labels == 0][:, 0] == 200) and np.all(both[labels == 0][:, 1] == 0)
    green = both[labels == 1]
    assert abs(int(green[:, 1].mean()) - 220) <= 2 and green[:, 0].mean() < 20


def test_mixed_sizes_need_a_resolution(class_tree: Path, ctx: RunContext) -> None:
    write_image(class_tree / "dogs" / "big.png", (40, 30))
    with pytest.raises(DataError, match=r"different sizes.*resolution"):
        _load(class_tree, ctx, channels=1)
    data = _load(class_tree, ctx, channels=1, resolution=16)
    assert data.train.image_shape == (1, 16, 16)


def test_non_square_fit_modes(tmp_path: Path, ctx: RunContext) -> None:
    make_class_tree(tmp_path, {"a": 2, "b": 2}, size=(40, 20))
    for fit in ("stretch", "crop", "pad"):
        data = _load(tmp_path, ctx, channels=1, resolution=16, fit=fit, test_fraction=0.5,
                     val_fraction=0.0, duplicates="report")
        assert data.train.image_shape == (1, 16, 16)
    padded = _load(tmp_path, ctx, channels=1, resolution=16, fit="pad", test_fraction=0.5,
                   val_fraction=0.0, duplicates="report")
    assert padded.train.images[:, 0, 0, :].max() == 0  # black bars above the image


def test_empty_class_folder_is_named(class_tree: Path) -> None:
    (class_tree / "birds").mkdir()
    (class_tree / "birds" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"class folder .*birds contains no images"):
        ImageFolder(root=str(class_tree)).load(RunContext())


def test_non_image_files_are_ignored(class_tree: Path, ctx: RunContext) -> None:
    (class_tree / "cats" / "README.txt").write_text("notes")
    (class_tree / "cats" / ".DS_Store").write_bytes(b"\0\1")
    (class_tree / "dogs" / "labels.csv").write_text("a,b\n")
    data = _load(class_tree, ctx, channels=1)
    assert sum(len(s) for s in data.splits.values()) == 10
    assert data.info["ignored_files"] == 2  # dot files are not even counted


def test_split_with_one_image_warns(tmp_path: Path, ctx: RunContext) -> None:
    _distinct_tree(tmp_path / "train", {"a": 2, "b": 2}, 0)
    _distinct_tree(tmp_path / "test", {"a": 1}, 1000)
    with pytest.warns(UserWarning, match="'test' has only 1 image"):
        data = _load(tmp_path, ctx, channels=1)
    assert len(data.test) == 1


def test_resolution_above_source_warns(class_tree: Path, ctx: RunContext) -> None:
    with pytest.warns(UserWarning, match="smaller than the requested resolution 64"):
        data = _load(class_tree, ctx, channels=1, resolution=64)
    assert data.train.image_shape == (1, 64, 64)
    assert data.info["upsampled"] == 10


def test_prepared_cache_is_reused_and_keyed_by_files(class_tree: Path, tmp_path: Path) -> None:
    ctx = RunContext(cache_dir=tmp_path / "cache")
    first = _load(class_tree, ctx, channels=1)
    entries = list((tmp_path / "cache" / "prepared" / "imagefolder").iterdir())
    assert len(entries) == 1 and (entries[0] / "COMPLETE").exists()
    again = _load(class_tree, ctx, channels=1)
    assert isinstance(again.train.images, np.memmap)
    np.testing.assert_array_equal(first.train.images, again.train.images)
    write_image(class_tree / "dogs" / "new.png")
    _load(class_tree, ctx, channels=1)
    assert len(list((tmp_path / "cache" / "prepared" / "imagefolder").iterdir())) == 2
