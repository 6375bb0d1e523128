"""kaggle-cxr, lc25000, kather2016, bcss-lizard in their real layouts (fake files, shared data)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from dataset_fakes import make_class_tree, write_image
from medsynbench import RunContext
from medsynbench.errors import DataError
from medsynbench.plugins.datasets.folders import (
    KATHER_FOLDERS,
    LC25000,
    BcssLizard,
    KaggleCXR,
    Kather2016,
)
from medsynbench.plugins.datasets.splits import assert_groups_disjoint, split_indices

# Tiny fixtures make tiny splits: that warning is expected here (and tested on its own).
pytestmark = [pytest.mark.filterwarnings("ignore:split .* has only"),
              pytest.mark.filterwarnings("ignore:split 'test' has .* images")]


def _kaggle_tree(root: Path) -> Path:
    """The Kaggle zip layout, including its nested chest_xray/chest_xray folder."""
    base = root / "chest_xray"
    names = {"NORMAL": ["IM-0115-0001", "IM-0117-0001", "NORMAL2-IM-1427-0001"],
             "PNEUMONIA": ["person1_bacteria_1", "person1_bacteria_2", "person3_virus_5"]}
    for s, split in enumerate(("train", "val", "test")):
        for k, (cls, stems) in enumerate(names.items()):
            for i, stem in enumerate(stems[: 3 if split == "train" else 1]):
                write_image(base / split / cls / f"{stem}.jpeg", (30 + i, 24), value=60 * k,
                            seed=100 * s + 10 * k + i)  # distinct images: no duplicates
    return root


def test_kaggle_cxr_layout_groups_and_resize(tmp_path: Path, ctx: RunContext) -> None:
    data = KaggleCXR(root=str(_kaggle_tree(tmp_path)), resolution=20).load(ctx)
    assert data.class_names == ("normal", "pneumonia")
    assert data.modality == "xray"
    assert data.train.image_shape == (1, 20, 20)
    assert data.train.counts(2).tolist() == [3, 3]
    assert len(data["val"]) == 2 and len(data.test) == 2
    assert sorted(set(data.train.groups.tolist())) == [
        "IM-0115", "IM-0117", "NORMAL2-IM-1427", "person1", "person3"]


def test_kaggle_cxr_resplit_is_patient_disjoint(tmp_path: Path, ctx: RunContext) -> None:
    data = KaggleCXR(root=str(_kaggle_tree(tmp_path)), resolution=20, resplit=True,
                     test_fraction=0.4, val_fraction=0.0).load(ctx)
    assert data.info["split"]["kind"] == "random"
    assert sum(len(s) for s in data.splits.values()) == 10
    assert_groups_disjoint(data.splits)  # person1's two images stay together


def test_kaggle_cxr_missing_says_what_to_download(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        KaggleCXR(root=str(tmp_path / "absent"))
    message = str(err.value)
    assert "chest-xray-pneumonia" in message and "train/{NORMAL,PNEUMONIA}" in message


def _lc_tree(root: Path, with_manifest: bool) -> Path:
    classes = ("colon_aca", "colon_n", "lung_aca", "lung_n", "lung_scc")
    rows = []
    for k, cls in enumerate(classes):
        for tile in range(5):
            for copy in range(3):  # three rotated copies of each source tile
                name = f"{cls}{tile * 3 + copy}.jpeg"
                write_image(root / "images" / cls / name, (24, 24), "RGB", 50 * k,
                            10 * k + tile)  # copies of a tile are identical
                rows.append({"file": f"images/{cls}/{name}", "group_id": str(tile)})
    if with_manifest:
        with (root / "MANIFEST.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["file", "group_id"])
            writer.writeheader()
            writer.writerows(rows)
    return root


def test_lc25000_manifest_groups_stay_on_one_side(tmp_path: Path, ctx: RunContext) -> None:
    data = LC25000(
        root=str(_lc_tree(tmp_path, True)), test_fraction=0.4, val_fraction=0.2, resolution=24
    ).load(
        ctx
    )
    assert data.class_names[0] == "colon_aca"
    assert_groups_disjoint(data.splits)
    for split in data.splits.values():
        assert len(split) % 3 == 0  # whole tiles only
    assert data.test.counts(5).tolist() == [6] * 5


def test_lc25000_without_manifest_splits_images(tmp_path: Path, ctx: RunContext) -> None:
    data = LC25000(root=str(_lc_tree(tmp_path, False)), test_fraction=0.2, resolution=24).load(ctx)
    assert sum(len(s) for s in data.splits.values()) == 75
    # No manifest, but the copies of a tile are duplicates: the default policy groups them.
    assert_groups_disjoint(data.splits)
    assert all(len(s) % 3 == 0 for s in data.splits.values())
    assert data.info["duplicates"]["clusters"] == 25
    plain = LC25000(root=str(_lc_tree(tmp_path, False)), test_fraction=0.2, resolution=24,
                    duplicates="report")
    with pytest.warns(UserWarning, match="straddle splits"):
        leaky = plain.load(ctx)
    assert leaky.train.groups is None and leaky.info["duplicates"]["exact_across"] > 0


def test_lc25000_manifest_without_group_column(tmp_path: Path, ctx: RunContext) -> None:
    root = _lc_tree(tmp_path, False)
    (root / "MANIFEST.csv").write_text("file,label\nimages/colon_aca/x.jpeg,0\n")
    with pytest.raises(DataError, match="group_id"):
        LC25000(root=str(root)).load(ctx)


def test_kather_mapping_onto_pathology_classes(tmp_path: Path, ctx: RunContext) -> None:
    make_class_tree(tmp_path, {name: 3 for name in KATHER_FOLDERS}, (30, 30), "RGB", ".tif")
    eight = Kather2016(root=str(tmp_path), resolution=24).load(ctx)
    assert eight.n_classes == 8 and eight.train.image_shape == (3, 24, 24)
    six = Kather2016(root=str(tmp_path), classes="pathology6", resolution=30).load(ctx)
    assert six.class_names == ("inflammatory", "necrosis", "stroma", "tumor", "fat", "gland")
    assert sum(len(s) for s in six.splits.values()) == 18  # COMPLEX and EMPTY dropped
    # 01_TUMOR tiles were written with red = 0, 04_LYMPHO with red = 120.
    tumor = six.train.images[six.train.labels == 3]
    inflammatory = six.train.images[six.train.labels == 0]
    assert tumor[:, 0].mean() < 5 and abs(inflammatory[:, 0].mean() - 120) < 5


def test_bcss_lizard_class_folders_and_slide_groups(tmp_path: Path, ctx: RunContext) -> None:
    classes = ("inflammatory", "necrosis", "stroma", "tumor", "fat", "gland")
    for split, n in (("train", 2), ("val", 1), ("test", 1)):
        make_class_tree(tmp_path / split, dict.fromkeys(classes, n), (32, 32), "RGB",
                        stem=f"TCGA-{split}__0")
    data = BcssLizard(root=str(tmp_path), resolution=32).load(ctx)
    assert data.class_names == classes and len(data.train) == 12
    assert set(data.train.groups.tolist()) == {"TCGA-train"}


def test_missing_class_folder_is_named(tmp_path: Path, ctx: RunContext) -> None:
    make_class_tree(tmp_path / "train", {"tumor": 1, "fat": 1})
    with pytest.raises(DataError, match="lacks the class folder"):
        BcssLizard(root=str(tmp_path)).load(ctx)


def test_split_indices_group_aware_and_proportional() -> None:
    labels = np.repeat([0, 1], 100)
    groups = np.arange(200) // 4
    parts = split_indices(labels, {"train": 0.0, "val": 0.1, "test": 0.3}, 0, groups)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(200))
    owner = {}
    for name, idx in parts.items():
        for g in np.unique(groups[idx]):
            assert owner.setdefault(int(g), name) == name
    assert abs(len(parts["test"]) - 60) <= 8 and abs(len(parts["val"]) - 20) <= 8
    again = split_indices(labels, {"train": 0.0, "val": 0.1, "test": 0.3}, 0, groups)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


# --- the shared copies (skipped without ../shared/data) -------------------------------------

def test_shared_lc25000(shared_data: Path, ctx: RunContext) -> None:
    data = LC25000(root=str(shared_data / "lc25000"), resolution=32).load(ctx)
    assert sum(len(s) for s in data.splits.values()) == 1216
    assert_groups_disjoint(data.splits)
    assert data.train.image_shape == (3, 32, 32)


def test_shared_kather2016(shared_data: Path, ctx: RunContext) -> None:
    data = Kather2016(root=str(shared_data / "kather2016")).load(ctx)
    assert sum(len(s) for s in data.splits.values()) == 24
    assert data.train.image_shape == (3, 150, 150)
    assert np.all(sum(s.counts(8) for s in data.splits.values()) == 3)


@pytest.mark.filterwarnings("ignore:class imbalance")
def test_shared_kaggle_cxr_128px_copy(shared_data: Path, ctx: RunContext) -> None:
    """The shared 128-px Kermany copy: official counts, groups from MANIFEST.csv patient_key,
    no group and no duplicate across splits with the default policy (its 30 byte-identical
    groups all lie within one split)."""
    root = shared_data / "kermany2018_chest_xray"
    if not (root / "chest_xray" / "train").is_dir():
        pytest.skip(f"no kermany2018_chest_xray copy under {shared_data}")
    data = KaggleCXR(root=str(root)).load(ctx)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 5216, "val": 16, "test": 624}
    assert data.train.counts(2).tolist() == [1341, 3875]
    assert data.test.counts(2).tolist() == [234, 390]
    assert data.train.image_shape == (1, 128, 128)  # the copy's own size: nothing upsampled
    assert data.info["groups_from"] == "manifest:patient_key"
    assert_groups_disjoint(data.splits)
    report = data.info["duplicates"]
    assert report["policy"] == "group" and report["across"] == {}
    assert report["exact_across"] == report["near_across"] == 0
    assert report["clusters"] == 30 and report["removed"] == {}
    assert report["exact_within"] == 34  # 28 train pairs, 6 test pairs (two triplets)
    assert data.train.names[0].startswith("chest_xray/train/")
