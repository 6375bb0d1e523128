"""ct-montage on real DICOM layouts: series by UID, patient groups, slice order, refusals,
short volumes; and the montage rules themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsynbench import RunContext
from medsynbench.errors import DataError
from medsynbench.plugins.datasets.ct import CTMontage, montage_slices, volume_to_montages
from medsynbench.plugins.datasets.splits import assert_groups_disjoint

pytestmark = pytest.mark.filterwarnings("ignore:split .* has only")

AXIAL = [1, 0, 0, 0, 1, 0]
WINDOW = {"window_center": 200.0, "window_width": 1000.0}  # HU 40 + 10 i → distinct greys


def write_series(folder: Path, patient: str, depth: int, tag: str = "", gap: float = 2.5,
                 iop: list[float] | None = AXIAL, spacing: list[float] | None = None,
                 positions: list[Any] | None = None, **tags: Any) -> list[Path]:
    """One series of ``depth`` 16×16 slices, HU 40 + 10 × (position index), named in
    *reverse* position order so that file-name order is never the right one."""
    from pydicom.uid import generate_uid
    from test_dicom import write_dicom

    uid, study = generate_uid(), generate_uid()
    normal = np.cross(iop[:3], iop[3:]) if iop else np.array([0.0, 0.0, 1.0])
    paths = []
    for i in range(depth):
        extra = dict(tags)
        if iop is not None:
            extra["ImageOrientationPatient"] = iop
        position = positions[i] if positions is not None else (normal * gap * i).tolist()
        if position is not None:
            extra["ImagePositionPatient"] = position
        pixels = np.full((16, 16), 1064 + 10 * i, dtype=np.uint16)
        paths.append(write_dicom(
            folder / f"{patient}{tag}_{depth - i:03d}.dcm", pixels, RescaleSlope=1,
            RescaleIntercept=-1024, PatientID=patient, SeriesInstanceUID=uid,
            StudyInstanceUID=study, InstanceNumber=i + 1,
            PixelSpacing=spacing or [0.7, 0.7], **extra))
    return paths


def _tiles_in_order(images: np.ndarray) -> bool:
    """Every montage's 4 tiles (row-major) get brighter: slices in position order."""
    tiles = images[:, 0, ::8, ::8].reshape(len(images), 4)
    return bool(np.all(np.diff(tiles.astype(int), axis=1) > 0))


def _no_cache(ctx: RunContext) -> bool:
    prepared = Path(ctx.cache_dir or "") / "prepared"
    return not prepared.exists() or not any(prepared.rglob("*"))


@pytest.fixture
def cached_ctx(tmp_path: Path) -> RunContext:
    return RunContext(device="cpu", seed=0, workdir=tmp_path / "work", cache_dir=tmp_path / "c")


@pytest.fixture(autouse=True)
def _needs_pydicom() -> None:
    pytest.importorskip("pydicom")


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_class_folders_of_slices_group_by_series_and_patient(
        tmp_path: Path, ctx: RunContext, nested: bool) -> None:
    for cls in ("healthy", "tumour"):
        for p in range(3):
            patient = f"{cls[0]}{p}"
            for tag in ("a", "b") if p == 0 else ("a",):  # patient 0: two series
                folder = tmp_path / cls / (f"{patient}{tag}" if nested else "")
                write_series(folder, patient, 8, tag)
    data = CTMontage(root=str(tmp_path), resolution=16, n_montages=2, test_fraction=0.34,
                     val_fraction=0.0, **WINDOW).load(ctx)
    assert data.class_names == ("healthy", "tumour")
    assert data.info["volumes"] == 8 and data.info["groups"] == 6
    assert sum(len(s) for s in data.splits.values()) == 16
    assert_groups_disjoint(data.splits)  # groups are patients: both series of h0 on one side
    assert {u["ordered_by"] for u in data.info["slices_per_volume"]} == {"ImagePositionPatient"}
    assert all(_tiles_in_order(s.images) for s in data.splits.values())


def test_oblique_series_ordered_along_its_normal(tmp_path: Path, ctx: RunContext) -> None:
    sagittal = [0, 1, 0, 0, 0, -1]  # normal (−1, 0, 0): z is the same on every slice
    for cls in ("a", "b"):
        for p in range(2):
            write_series(tmp_path / cls, f"{cls}{p}", 4, iop=sagittal)
    data = CTMontage(root=str(tmp_path), resolution=16, n_montages=1, test_fraction=0.5,
                     val_fraction=0.0, **WINDOW).load(ctx)
    assert all(_tiles_in_order(s.images) for s in data.splits.values())


def test_instance_number_orders_slices_without_positions(tmp_path: Path,
                                                         ctx: RunContext) -> None:
    for cls in ("a", "b"):
        for p in range(2):
            write_series(tmp_path / cls, f"{cls}{p}", 4, iop=None, positions=[None] * 4)
    data = CTMontage(root=str(tmp_path), resolution=16, n_montages=1, test_fraction=0.5,
                     val_fraction=0.0, **WINDOW).load(ctx)
    assert {u["ordered_by"] for u in data.info["slices_per_volume"]} == {"InstanceNumber"}
    assert all(_tiles_in_order(s.images) for s in data.splits.values())


def _break(kind: str, files: list[Path]) -> str:
    """Make one series inconsistent; return the message expected."""
    from pydicom import dcmread

    if kind == "gap":  # a missing slice doubles one gap
        files[3].unlink()
        return r"irregular slice spacing: gap 5 mm .* median 2\.5 mm"
    ds = dcmread(files[2])
    if kind == "orientation":
        ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
        expected = rf"mixed orientations \(e\.g\. {files[2].name} differ"
    elif kind == "spacing":
        ds.PixelSpacing = [0.9, 0.9]
        expected = r"mixed pixel spacing"
    else:  # two slices at one position
        ds.ImagePositionPatient = [0, 0, 2.5]
        expected = r"slices share one position"
    ds.save_as(files[2])
    return expected


@pytest.mark.parametrize("kind", ["orientation", "spacing", "gap", "duplicate"])
def test_inconsistent_series_refused_naming_it(tmp_path: Path, cached_ctx: RunContext,
                                               kind: str) -> None:
    write_series(tmp_path / "a", "a0", 8)
    write_series(tmp_path / "a", "a1", 8)
    write_series(tmp_path / "b", "b0", 8)
    bad = write_series(tmp_path / "b", "b1", 8)
    expected = _break(kind, bad)
    uid = str(__import__("pydicom").dcmread(bad[0]).SeriesInstanceUID)
    with pytest.raises(DataError, match=rf"(?s)series {uid} \(\d files, e\.g\. b/b1_.*{expected}"):
        CTMontage(root=str(tmp_path), resolution=16, n_montages=1).load(cached_ctx)
    assert _no_cache(cached_ctx)
    skipped = CTMontage(root=str(tmp_path), resolution=16, n_montages=1, on_error="skip",
                        test_fraction=0.5, val_fraction=0.0).load(cached_ctx)
    assert skipped.info["volumes"] == 3 and uid in skipped.info["skipped_files"][0]


def test_gap_tolerance_accepts_a_designed_irregular_spacing(tmp_path: Path,
                                                            ctx: RunContext) -> None:
    for cls in ("a", "b"):
        for p in range(2):
            files = write_series(tmp_path / cls, f"{cls}{p}", 6)
            files[3].unlink()  # slices at 0, 2.5, 5, 10, 12.5: gaps 2.5, 2.5, 5, 2.5
    with pytest.raises(DataError, match="irregular slice spacing"):
        CTMontage(root=str(tmp_path), resolution=16, n_montages=1).load(ctx)
    data = CTMontage(root=str(tmp_path), resolution=16, n_montages=1, gap_tolerance=1.0,
                     test_fraction=0.5, val_fraction=0.0).load(ctx)
    assert data.info["volumes"] == 4


def test_single_slice_series_refused_for_4_slice_montages(tmp_path: Path,
                                                          cached_ctx: RunContext) -> None:
    for cls in ("a", "b"):
        for p in range(3):
            write_series(tmp_path / cls, f"{cls}{p}", 1)
    for policy in ("error", "fewer"):
        with pytest.raises(DataError, match=r"volume a/a0/\S* has 1 slice\(s\), fewer than one "
                           r"montage of slices_per_montage = 4"):
            CTMontage(root=str(tmp_path), resolution=16, short_volumes=policy).load(cached_ctx)
    assert _no_cache(cached_ctx)
    single = CTMontage(root=str(tmp_path), resolution=16, n_montages=1, slices_per_montage=1,
                       test_fraction=0.34, val_fraction=0.0).load(cached_ctx)
    assert sum(len(s) for s in single.splits.values()) == 6


def test_short_volumes_error_fewer_or_repeat(tmp_path: Path, ctx: RunContext) -> None:
    for cls in ("a", "b"):
        for p in range(2):
            write_series(tmp_path / cls, f"{cls}{p}", 6)
    common: dict[str, Any] = {"root": str(tmp_path), "resolution": 16, "test_fraction": 0.5,
                              "val_fraction": 0.0}
    with pytest.raises(DataError, match=r"has 6 slices, fewer than n_montages × "
                       r"slices_per_montage = 20 × 4 = 80.*Lower n_montages to 1 \(⌊6/4⌋\)"):
        CTMontage(**common).load(ctx)
    with pytest.warns(UserWarning, match="4 of 4 volumes gave fewer montages"):
        fewer = CTMontage(short_volumes="fewer", **common).load(ctx)
    assert sum(len(s) for s in fewer.splits.values()) == 4
    assert fewer.info["unique_slice_ratio"] == 1.0
    with pytest.warns(UserWarning, match="REPEAT slices"):
        repeat = CTMontage(short_volumes="repeat", **common).load(ctx)
    assert sum(len(s) for s in repeat.splits.values()) == 80
    assert repeat.info["unique_slice_ratio"] == round(6 / 80, 4)
    assert {u["slices_used"] for u in repeat.info["slices_per_volume"]} == {6}


def test_one_series_per_folder_is_one_class_unless_told(tmp_path: Path, ctx: RunContext) -> None:
    for name in ("s0", "s1", "s2", "s3"):
        write_series(tmp_path / name, name, 4)
    common: dict[str, Any] = {"root": str(tmp_path), "resolution": 16, "n_montages": 1,
                              "test_fraction": 0.5, "val_fraction": 0.0}
    data = CTMontage(**common).load(ctx)
    assert data.class_names == ("ct",) and "class_folders = true" in data.info["classes_from"]
    _, forced, _ = CTMontage(class_folders=True, **common).scan()
    assert forced == ("s0", "s1", "s2", "s3")


def test_two_patients_need_one_per_side(tmp_path: Path, ctx: RunContext) -> None:
    for patient in ("p0", "p1"):  # one series per folder: one class 'ct'
        write_series(tmp_path / patient, patient, 4)
    with pytest.raises(DataError, match=r"(?s)left test empty: 2 group\(s\) \(patients or "
                       r"volumes\), per class \{0: 2\}.*test_fraction = 0\.5"):
        CTMontage(root=str(tmp_path), resolution=16, n_montages=1).load(ctx)
    data = CTMontage(root=str(tmp_path), resolution=16, n_montages=1, val_fraction=0.0,
                     test_fraction=0.5).load(ctx)
    assert {len(np.unique(s.groups)) for s in data.splits.values()} == {1}
    assert set(data.splits) == {"train", "test"}


def test_missing_pydicom_names_the_extra_and_caches_nothing(
        tmp_path: Path, cached_ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    for cls in ("a", "b"):
        write_series(tmp_path / cls, f"{cls}0", 4)
    real_import = builtins.__import__

    def no_pydicom(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "pydicom":
            raise ImportError("No module named 'pydicom'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pydicom)
    with pytest.raises(DataError, match=r"needs pydicom.*pip install 'medsynbench\[dicom\]'"):
        CTMontage(root=str(tmp_path), resolution=16, n_montages=1).load(cached_ctx)
    assert _no_cache(cached_ctx)


# --- the montage rules ------------------------------------------------------------------------


def test_montage_slices_never_repeat_when_the_volume_is_deep_enough() -> None:
    for depth in (4, 5, 79, 80, 81, 300):
        for n, k in ((1, 4), (7, 4), (20, 4)):
            if depth >= n * k:
                chosen = montage_slices(depth, n, k)
                assert len(np.unique(chosen)) == n * k and chosen[-1, -1] == depth - 1


def test_volume_to_montages_refuses_or_repeats_short_volumes() -> None:
    volume = np.repeat(np.arange(10, dtype=np.uint8)[:, None, None], 8, axis=1).repeat(8, axis=2)
    with pytest.raises(DataError, match=r"volume v has 10 slices.*n_montages to 2"):
        volume_to_montages(volume, side=16, name="v")
    assert volume_to_montages(volume, 16, short_volumes="fewer").shape == (2, 1, 16, 16)
    repeated = volume_to_montages(volume, 16, short_volumes="repeat")
    assert repeated.shape == (20, 1, 16, 16) and repeated[-1, 0, 8, 8] == 9


# --- lung-pet-ct-dx ---------------------------------------------------------------------------


def _fake_lung_pet(root: Path) -> Path:
    """Two patients, one 8-slice series each (files named out of instance order); patient
    A has tumour boxes on instances 1–2."""
    from PIL import Image

    rows = ["file,patient_id,series_uid,instance_number,tumour_bbox"]
    for patient in ("A", "B"):
        for instance in range(1, 9):
            rel = f"slices/{patient}/s1/x{9 - instance}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((32, 32), 20 * instance, dtype=np.uint8)).save(root / rel)
            box = "1 2 3 4" if patient == "A" and instance <= 2 else ""
            rows.append(f"{rel},{patient},1.2.{patient},{instance},{box}")
    (root / "MANIFEST.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.filterwarnings("ignore:split 'test' lacks classes")
def test_lung_pet_ct_dx_labels_montages_by_boxes_one_patient_per_side(
        tmp_path: Path, cached_ctx: RunContext) -> None:
    from medsynbench.plugins.datasets.lungpet import LungPetCTDx

    root = _fake_lung_pet(tmp_path / "lung")
    data = LungPetCTDx(root=str(root), resolution=16, n_montages=2).load(cached_ctx)
    assert set(data.splits) == {"train", "test"}
    assert {len(np.unique(s.groups)) for s in data.splits.values()} == {1}
    by_patient = {str(s.groups[0]): s.labels.tolist() for s in data.splits.values()}
    assert by_patient == {"A": [1, 0], "B": [0, 0]}  # montages: instances 1–4 | 5–8
    # instance order, not file-name order: each montage's tiles get brighter
    assert all(_tiles_in_order(s.images) for s in data.splits.values())
    (root / "MANIFEST.csv").unlink()
    with pytest.raises(DataError, match=r"lacks MANIFEST\.csv"):
        LungPetCTDx(root=str(root)).load(cached_ctx)


def test_lung_pet_ct_dx_shared_copy(shared_data: Path, ctx: RunContext) -> None:
    from medsynbench.plugins.datasets.lungpet import LungPetCTDx

    root = str(shared_data / "lung_pet_ct_dx")
    data = LungPetCTDx(root=root, resolution=64).load(ctx)  # the smoke-suite size
    assert data.train.image_shape == (1, 64, 64) and set(data.splits) == {"train", "test"}
    assert sorted(data.info["patients_per_split"].values()) == ["test", "train"]
    assert sum(len(s) for s in data.splits.values()) == 4 * 7
    assert data.info["unique_slice_ratio"] == 1.0
    assert all((s.counts(2) > 0).all() for s in data.splits.values())
    with pytest.raises(DataError, match=r"has 30 slices.*Lower n_montages to 7"):
        LungPetCTDx(root=root, resolution=64, n_montages=16).load(ctx)
    with pytest.warns(UserWarning, match="2 of 4 volumes gave fewer montages"):
        fewer = LungPetCTDx(root=root, resolution=64, n_montages=16,
                            short_volumes="fewer").load(ctx)
    assert sum(len(s) for s in fewer.splits.values()) == 16 + 16 + 7 + 7
