"""Duplicate hygiene: the pHash against imagehash and a hand-made case, pairs, clusters, the
report, the three policies on file datasets, names, the runner's audit of any plugin."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from dataset_fakes import write_image
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench import hygiene as hy
from medsynbench.plugins.datasets.folders import ImageFolder
from medsynbench.plugins.datasets.splits import assert_groups_disjoint
from PIL import Image

pytestmark = [pytest.mark.filterwarnings("ignore:split .* has only"),
              pytest.mark.filterwarnings("ignore:split 'test' has .* images")]


def _smooth(seed: int, size: int = 48, channels: int = 1) -> np.ndarray:
    """A smooth random image (C×H×W uint8): sums of random low-frequency waves."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    image = np.zeros((size, size))
    for _ in range(6):
        fx, fy, phase = [*rng.uniform(0.5, 4, 2).tolist(), rng.uniform(0, 6)]
        image += rng.uniform(0.5, 1) * np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)
    image = (image - image.min()) / (np.ptp(image) + 1e-9) * 200 + 20
    return np.repeat(image.astype(np.uint8)[None], channels, axis=0)


# --- the hash ----------------------------------------------------------------------------------
def test_phash_equals_imagehash() -> None:
    imagehash = pytest.importorskip("imagehash")
    rng = np.random.default_rng(0)
    cases = [_smooth(1), _smooth(2, 128, 3), _smooth(3, 20),
             rng.integers(0, 256, (3, 70, 70), dtype=np.uint8),
             rng.integers(0, 256, (1, 32, 32), dtype=np.uint8),
             rng.integers(0, 256, (3, 224, 150), dtype=np.uint8)]
    for image in cases:
        pil = Image.fromarray(image[0] if len(image) == 1 else image.transpose(1, 2, 0))
        expected = int(str(imagehash.phash(pil)), 16)
        assert int(hy.phash(image[None])[0]) == expected, image.shape


def test_phash_follows_its_definition_on_a_32px_image() -> None:
    # At 32×32 the resize is the identity, so the hash is the definition written out: DCT-II
    # coefficients (u, v < 8) by the explicit double sum, bit (8u + v) = coefficient > median,
    # read as a 64-bit number with (0, 0) as the most significant bit.
    image = np.random.default_rng(7).integers(0, 256, (32, 32))
    coefficients = []
    for u in range(8):
        for v in range(8):
            total = 0.0
            for y in range(32):
                for x in range(32):
                    total += (image[y, x] * math.cos(math.pi * u * (2 * y + 1) / 64)
                              * math.cos(math.pi * v * (2 * x + 1) / 64))
            coefficients.append(total)
    median = sorted(coefficients)[31:33]
    threshold = (median[0] + median[1]) / 2
    expected = sum(1 << (63 - k) for k, c in enumerate(coefficients) if c > threshold)
    assert int(hy.phash(image.astype(np.uint8)[None, None])[0]) == expected
    assert bin(expected).count("1") == 32  # a median split: half the bits set


def test_dihedral_hashes_match_transformed_images() -> None:
    image = _smooth(5, 64)
    table = hy.phash(image[None], dihedral=True)[0]
    for k in range(4):
        rotated = np.rot90(image, k, axes=(1, 2))
        for flipped in (rotated, rotated[:, :, ::-1]):
            plain = hy.phash(np.ascontiguousarray(flipped)[None])[0]
            assert min(int(np.bitwise_count(plain ^ t)) for t in table) == 0


def test_content_hash_sees_pixels_and_shape() -> None:
    a = _smooth(1)
    stack = np.stack([a, a.copy(), a // 2 * 2 + 1])
    hashes = hy.content_hashes(stack)
    assert hashes[0] == hashes[1] != hashes[2]
    flat = np.zeros((1, 1, 4, 8), np.uint8)
    assert hy.content_hashes(flat)[0] != hy.content_hashes(flat.reshape(1, 1, 8, 4))[0]


# --- pairs, clusters and the report ------------------------------------------------------------
def _copies() -> tuple[np.ndarray, list[str]]:
    """Distinct images 0-5, with: 6 = exact copy of 0, 7 = JPEG re-encode of 1, 8 = brighter
    2, 9 = 3 rotated by 90°, 10 = exact copy of 6 (so 0, 6, 10 form one cluster)."""
    base = [_smooth(s, 64) for s in range(6)]
    buffer = io.BytesIO()
    Image.fromarray(base[1][0]).save(buffer, "JPEG", quality=75)
    jpeg = np.asarray(Image.open(buffer))[None]
    brighter = np.clip(base[2].astype(int) + 12, 0, 255).astype(np.uint8)
    rotated = np.ascontiguousarray(np.rot90(base[3], 1, axes=(1, 2)))
    images = np.stack([*base, base[0].copy(), jpeg, brighter, rotated, base[0].copy()])
    return images, [f"img{i}.png" for i in range(len(images))]


def test_pairs_and_clusters_find_exact_and_near_copies() -> None:
    images, _ = _copies()
    prints = hy.fingerprint(images)
    (ei, ej), (ni, nj) = hy.duplicate_pairs(prints)
    assert sorted(zip(ei.tolist(), ej.tolist(), strict=True)) == [(0, 6), (0, 10), (6, 10)]
    assert sorted(zip(ni.tolist(), nj.tolist(), strict=True)) == [(1, 7), (2, 8), (3, 9)]
    clusters = [c.tolist() for c in hy.duplicate_clusters(prints)]
    assert clusters == [[0, 6, 10], [1, 7], [2, 8], [3, 9]]
    # Without the 8 transforms the rotated copy is missed.
    (_, _), (ni, nj) = hy.duplicate_pairs(prints, dihedral=False)
    assert (3, 9) not in set(zip(ni.tolist(), nj.tolist(), strict=True))


def test_near_pairs_threshold_is_inclusive_and_chunked() -> None:
    hashes = np.array([0b0, 0b1, 0b111, 0b1111_1111], dtype=np.uint64)
    i, j, d = hy.near_pairs(hashes, threshold=2, dihedral=False, chunk=1)
    assert sorted(zip(i.tolist(), j.tolist(), d.tolist(), strict=True)) == [(0, 1, 1), (1, 2, 2)]


def test_report_counts_within_and_across_and_round_trips_json() -> None:
    images, names = _copies()
    train = ImageSet(images[:6], np.zeros(6, np.int64), names=names[:6])
    test = ImageSet(images[6:], np.zeros(5, np.int64), names=names[6:])
    report = hy.audit({"train": train, "test": test})
    assert report.within == {"train": {"exact": 0, "near": 0}, "test": {"exact": 1, "near": 0}}
    assert report.across == {"train~test": {"exact": 2, "near": 3}}
    assert len(report.clusters) == 4 and len(report.cross_split) == 4
    assert report.clusters[0].members == [("train", "img0.png"), ("test", "img6.png"),
                                          ("test", "img10.png")]
    data = json.loads(json.dumps(report.to_json()))
    again = hy.DuplicateReport.from_json(data)
    assert again.to_json() == report.to_json()
    assert report.summary()["exact_across"] == 2 and "cluster_list" not in report.summary()


def test_distinct_images_are_not_duplicates() -> None:
    prints = hy.fingerprint(np.stack([_smooth(s, 64) for s in range(40)]))
    assert hy.duplicate_clusters(prints) == []


def test_six_thousand_images_in_seconds() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6000, 1, 32, 32), dtype=np.uint8)
    images[5999] = images[0]
    import time

    start = time.perf_counter()
    clusters = hy.duplicate_clusters(hy.fingerprint(images))
    assert [c.tolist() for c in clusters] == [[0, 5999]]
    assert time.perf_counter() - start < 30  # ~1 s on one idle core


# --- names -------------------------------------------------------------------------------------
def test_names_are_saved_without_pickle_and_kept_by_subset_and_concat(tmp_path: Path) -> None:
    images = np.zeros((3, 1, 4, 4), np.uint8)
    data = ImageSet(images, np.arange(3), names=["a/x.png", "b/ü.png", "c"])
    data.save(tmp_path / "s")
    loaded = ImageSet.load(tmp_path / "s")
    assert loaded.names is not None and loaded.names.tolist() == ["a/x.png", "b/ü.png", "c"]
    assert np.load(tmp_path / "s" / "names.npy", allow_pickle=False).dtype.kind == "U"
    assert data.subset([2, 0]).names.tolist() == ["c", "a/x.png"]
    assert ImageSet.concat([data, data.subset([1])]).names.tolist()[-1] == "b/ü.png"
    assert ImageSet.concat([data, ImageSet(images, np.arange(3))]).names is None
    with pytest.raises(Exception, match="one name per image"):
        ImageSet(images, np.arange(3), names=["a"])


# --- policies on a file dataset ----------------------------------------------------------------
def _tree_with_copies(root: Path, folders: bool) -> Path:
    """Two classes of 8 distinct smooth images; a2 is copied byte for byte (a2_copy), a3
    re-encoded as JPEG (a3_jpeg), b1 brightened (b1_bright). With ``folders`` the copies are
    in test/, the originals in train/."""
    for k, cls in enumerate(("a", "b")):
        for i in range(8):
            image = _smooth(100 * k + i, 40)[0]
            folder = root / ("train" if folders else "") / cls
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{cls}{i}.png")
    held = root / ("test" if folders else "")
    (held / "a").mkdir(parents=True, exist_ok=True)
    (held / "b").mkdir(parents=True, exist_ok=True)
    source = root / ("train" if folders else "")
    (held / "a" / "a2_copy.png").write_bytes((source / "a" / "a2.png").read_bytes())
    Image.open(source / "a" / "a3.png").save(held / "a" / "a3_jpeg.jpg", quality=80)
    bright = np.clip(np.asarray(Image.open(source / "b" / "b1.png")).astype(int) + 10, 0, 255)
    Image.fromarray(bright.astype(np.uint8)).save(held / "b" / "b1_bright.png")
    if folders:
        Image.fromarray(_smooth(999, 40)[0]).save(held / "a" / "a_new.png")
        Image.fromarray(_smooth(998, 40)[0]).save(held / "b" / "b_new.png")
    return root


def _load(root: Path, ctx: RunContext, **params: object) -> DataSplits:
    return ImageFolder(root=str(root), channels=1, **params).load(ctx)


def test_group_policy_keeps_copies_on_one_side_of_a_random_split(tmp_path: Path,
                                                                  ctx: RunContext) -> None:
    root = _tree_with_copies(tmp_path, folders=False)
    for seed in range(4):
        data = _load(root, ctx, split_seed=seed, test_fraction=0.4, val_fraction=0.0)
        assert_groups_disjoint(data.splits)
        report = data.info["duplicates"]
        assert report["policy"] == "group" and report["clusters"] == 3
        assert report["exact_across"] == report["near_across"] == 0
        assert sum(len(s) for s in data.splits.values()) == 19


def test_report_policy_warns_by_name_and_changes_nothing(tmp_path: Path, ctx: RunContext) -> None:
    root = _tree_with_copies(tmp_path, folders=True)
    with pytest.warns(UserWarning, match=r"straddle splits.*\n.*train/a/a2.png"):
        data = _load(root, ctx, duplicates="report")
    assert len(data.test) == 5
    report = data.info["duplicates"]
    assert report["across"] == {"train~test": {"exact": 1, "near": 2}}


def test_group_policy_drops_held_out_copies_of_given_splits(tmp_path: Path,
                                                            ctx: RunContext) -> None:
    root = _tree_with_copies(tmp_path, folders=True)
    with pytest.warns(UserWarning, match=r"dropped 3 test image\(s\), copies of images in "
                      r"another split: test/a/a2_copy.png"):
        data = _load(root, ctx)
    assert sorted(data.test.names.tolist()) == ["test/a/a_new.png", "test/b/b_new.png"]
    assert len(data.train) == 16
    report = data.info["duplicates"]
    assert report["across"] == {} and sorted(report["removed"]["test"]) == [
        "test/a/a2_copy.png", "test/a/a3_jpeg.jpg", "test/b/b1_bright.png"]


def test_drop_policy_keeps_one_per_cluster(tmp_path: Path, ctx: RunContext) -> None:
    root = _tree_with_copies(tmp_path, folders=False)
    with pytest.warns(UserWarning, match="'drop' dropped 3 image.s. before the split, duplicates "
                      "of a kept image: a/a2_copy.png"):
        data = _load(root, ctx, duplicates="drop", test_fraction=0.4, val_fraction=0.0)
    assert sum(len(s) for s in data.splits.values()) == 16
    assert data.info["duplicates"]["clusters"] == 0
    assert data.info["duplicates"]["removed"] == {
        "all": ["a/a2_copy.png", "a/a3_jpeg.jpg", "b/b1_bright.png"]}
    assert data.train.groups is None  # nothing left to group


def test_runner_audit_covers_a_procedural_dataset() -> None:
    image = _smooth(3)[None]
    data = DataSplits({"train": ImageSet(np.concatenate([image, _smooth(4)[None]]),
                                         np.array([0, 1])),
                       "test": ImageSet(image.copy(), np.array([0]))}, ("a", "b"), "xray")
    with pytest.warns(UserWarning, match=r"1 cluster\(s\) .* straddle splits.*\n.*train\[0\]"):
        summary = hy.audit_prepared(data)
    assert summary["exact_across"] == 1 and summary["policy"] == "report"
    clean = DataSplits({"train": ImageSet(image, np.array([0])),
                        "test": ImageSet(_smooth(4)[None], np.array([0]))}, ("a",), "xray")
    assert hy.audit_prepared(clean)["clusters"] == 0


def test_probe_views_of_a_split_are_not_leaks_but_their_copies_of_train_are() -> None:
    a, b = _smooth(3)[None], _smooth(4)[None]
    splits = {"train": ImageSet(a, np.array([0])), "test": ImageSet(b, np.array([0])),
              "test_nomarker": ImageSet(b.copy(), np.array([0]))}  # a view of test, made so
    assert hy.audit(splits).totals()["exact_across"] == 0
    splits["test_swapped"] = ImageSet(a.copy(), np.array([0]))  # but a copy of a train image
    assert hy.audit(splits).totals()["exact_across"] == 1


def test_phantom_dataset_has_no_duplicates(ctx: RunContext) -> None:
    from medsynbench.plugins.datasets.phantom_xray import PhantomXray

    data = PhantomXray(n_train=60, n_test=30, n_val=0, resolution=64).load(ctx)
    summary = hy.audit_prepared(data)
    assert summary["clusters"] == 0, summary


def test_write_image_fixture_copies_are_found(tmp_path: Path, ctx: RunContext) -> None:
    # The shared fixture writer draws noise from the seed: two files with one seed are copies.
    for cls, value in (("a", 0), ("b", 100)):
        for i in range(3):
            write_image(tmp_path / cls / f"{i}.png", value=value, seed=10 * value + i)
    write_image(tmp_path / "a" / "copy.png", value=0, seed=0)
    data = _load(tmp_path, ctx, test_fraction=0.4, val_fraction=0.0)
    assert data.info["duplicates"]["clusters"] == 1
    assert_groups_disjoint(data.splits)


def test_chexpert_drops_held_out_copies_of_train_images(tmp_path: Path, ctx: RunContext) -> None:
    import csv

    from medsynbench.plugins.datasets.chexpert import LABEL_COLUMN, CheXpertPE

    root = tmp_path / "CheXpert-v1.0-small"
    rows = []
    for p in range(40):
        rel = f"CheXpert-v1.0-small/train/patient{p:05d}/study1/view1_frontal.jpg"
        (tmp_path / rel).parent.mkdir(parents=True)
        Image.fromarray(_smooth(p, 32)[0]).save(tmp_path / rel)
        rows.append([rel, "Frontal", "1.0" if p % 4 else "0.0"])
    with (root / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Path", "Frontal/Lateral", LABEL_COLUMN])
        writer.writerows(rows)
    plain = CheXpertPE(root=str(root), resolution=32, sizes="proportional").load(ctx)
    assert plain.info["duplicates"]["clusters"] == 0
    train_name, test_name = plain.train.names[0], plain.test.names[0]
    (root / test_name).write_bytes((root / train_name).read_bytes())
    with pytest.warns(UserWarning, match=f"dropped 1 test image.*{test_name}"):
        data = CheXpertPE(root=str(root), resolution=32, sizes="proportional").load(ctx)
    assert len(data.test) == len(plain.test) - 1 and test_name not in data.test.names
    assert data.info["duplicates"]["removed"] == {"test": [test_name]}
