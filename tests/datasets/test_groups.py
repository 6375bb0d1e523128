"""Group-aware splits of class-folder datasets from a manifest column, a DICOM tag or a file-name
pattern; each bad input gives one clear message and leaves no prepared-cache entry."""

from __future__ import annotations

import builtins
import csv
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dataset_fakes import write_image
from medsynbench import RunContext
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.datasets.files import warn_small_splits
from medsynbench.plugins.datasets.folders import ImageFolder, KaggleCXR
from medsynbench.plugins.datasets.splits import assert_groups_disjoint

pytestmark = [pytest.mark.filterwarnings("ignore:split .* has only"),
              pytest.mark.filterwarnings("ignore:split 'test' has .* images")]


@pytest.fixture
def cached_ctx(tmp_path: Path) -> RunContext:
    return RunContext(device="cpu", seed=0, workdir=tmp_path / "work", cache_dir=tmp_path / "c")


def _cache_entries(ctx: RunContext) -> list[Path]:
    prepared = Path(ctx.cache_dir or "") / "prepared"
    return list(prepared.rglob("*")) if prepared.exists() else []


def _patients_tree(root: Path, patients: int = 6, views: int = 3) -> list[dict[str, str]]:
    """``root/<class>/img<k>.png``: each patient's views under uninformative names; returns
    manifest rows (file relative to root, patient)."""
    rows = []
    for k, cls in enumerate(("neg", "pos")):
        for patient in range(patients):
            for view in range(views):
                name = f"{cls}/img{patient * views + view}.png"
                write_image(root / name, value=90 * k, seed=1000 * k + 10 * patient + view)
                rows.append({"file": name, "patient": f"{cls}-p{patient}", "site": "x"})
    return rows


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _patient_of(data: Any, split: str) -> set[str]:
    return set(np.asarray(data[split].groups).tolist())


# --- manifest ----------------------------------------------------------------------------------
def test_manifest_column_groups_patients(tmp_path: Path, ctx: RunContext) -> None:
    _write_manifest(tmp_path / "MANIFEST.csv", _patients_tree(tmp_path))
    data = ImageFolder(root=str(tmp_path), channels=1, group_by="manifest:patient",
                       test_fraction=0.34, val_fraction=0.0).load(ctx)
    assert not _patient_of(data, "train") & _patient_of(data, "test")
    assert len(data.test) % 3 == 0 and data.info["groups_from"] == "manifest:patient"
    assert _patient_of(data, "train") <= {f"{c}-p{i}" for c in ("neg", "pos") for i in range(6)}


def test_manifest_elsewhere_with_bare_file_names(tmp_path: Path, ctx: RunContext) -> None:
    rows = _patients_tree(tmp_path / "data")
    for row in rows:  # unique bare names: neg_img0.png, pos_img0.png, ...
        old = tmp_path / "data" / row["file"]
        row["file"] = f"{old.parent.name}_{old.name}"
        old.rename(old.with_name(row["file"]))
    _write_manifest(tmp_path / "groups.csv", rows)
    data = ImageFolder(root=str(tmp_path / "data"), channels=1, group_by="manifest:patient",
                       manifest=str(tmp_path / "groups.csv"), test_fraction=0.34,
                       val_fraction=0.0).load(ctx)
    assert_groups_disjoint(data.splits)
    assert len(_patient_of(data, "train") | _patient_of(data, "test")) == 12


def test_manifest_naming_absent_files_lists_them_and_caches_nothing(
        tmp_path: Path, cached_ctx: RunContext) -> None:
    rows = _patients_tree(tmp_path)
    rows.append({"file": "neg/gone1.png", "patient": "neg-p9", "site": "x"})
    rows.append({"file": "pos/gone2.png", "patient": "pos-p9", "site": "x"})
    _write_manifest(tmp_path / "MANIFEST.csv", rows)
    with pytest.raises(DataError) as err:
        ImageFolder(root=str(tmp_path), channels=1, group_by="manifest:patient").load(cached_ctx)
    message = str(err.value)
    assert "names 2 file(s) that do not exist" in message
    assert "neg/gone1.png" in message and "pos/gone2.png" in message
    assert _cache_entries(cached_ctx) == []


def test_manifest_without_the_group_column_names_its_columns(
        tmp_path: Path, cached_ctx: RunContext) -> None:
    _write_manifest(tmp_path / "MANIFEST.csv", _patients_tree(tmp_path))
    with pytest.raises(DataError, match=r"lacks the column\(s\) subject .* it has file, "
                       "patient, site"):
        ImageFolder(root=str(tmp_path), channels=1, group_by="manifest:subject").load(cached_ctx)
    assert _cache_entries(cached_ctx) == []


def test_missing_manifest_is_named(tmp_path: Path, ctx: RunContext) -> None:
    _patients_tree(tmp_path)
    with pytest.raises(DataError, match=r"no manifest at .*nothing\.csv"):
        ImageFolder(root=str(tmp_path), channels=1, group_by="manifest:patient",
                    manifest="nothing.csv").load(ctx)


def test_bad_group_by_is_a_parameter_error(tmp_path: Path) -> None:
    _patients_tree(tmp_path)
    with pytest.raises(ParameterError, match="manifest:COLUMN, dicom:KEYWORD"):
        ImageFolder(root=str(tmp_path), group_by="patient")
    with pytest.raises(ParameterError, match="capture group"):
        ImageFolder(root=str(tmp_path), group_by="regex:img")


# --- file-name pattern -------------------------------------------------------------------------
def test_regex_group_by_and_the_group_regex_alias(tmp_path: Path, ctx: RunContext) -> None:
    for cls, value in (("neg", 0), ("pos", 90)):
        for patient in range(6):
            for view in range(3):
                write_image(tmp_path / cls / f"p{cls}{patient}_v{view}.png", value=value,
                            seed=(value + patient) * 3 + view)
    for params in ({"group_by": r"regex:^(p\w+?)_v"}, {"group_regex": r"^(p\w+?)_v"}):
        data = ImageFolder(root=str(tmp_path), channels=1, test_fraction=0.34,
                           val_fraction=0.0, **params).load(ctx)
        assert_groups_disjoint(data.splits)
        assert len(data.test) % 3 == 0 and "pneg0" in _patient_of(data, "train") | _patient_of(
            data, "test")


# --- DICOM -------------------------------------------------------------------------------------
def _dicom(path: Path, seed: int, **tags: Any) -> None:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # secondary capture
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    pixels = np.random.default_rng(seed).integers(0, 255, (16, 16)).astype(np.uint8)
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = pixels.tobytes()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)


def _dicom_tree(root: Path) -> None:
    for k, cls in enumerate(("a", "b")):
        for patient in range(5):
            for view in range(2):
                _dicom(root / cls / f"{patient}_{view}.dcm", 100 * k + 10 * patient + view,
                       PatientID=f"{cls}{patient}", StudyInstanceUID=f"1.2.{k}.{patient}")


def test_dicom_patient_id_and_study_groups(tmp_path: Path, ctx: RunContext) -> None:
    _dicom_tree(tmp_path)
    for tag, expected in (("PatientID", "a0"), ("StudyInstanceUID", "1.2.0.0")):
        data = ImageFolder(root=str(tmp_path), channels=1, group_by=f"dicom:{tag}",
                           test_fraction=0.4, val_fraction=0.0).load(ctx)
        assert_groups_disjoint(data.splits)
        assert len(data.test) % 2 == 0
        assert expected in _patient_of(data, "train") | _patient_of(data, "test")


def test_dicom_tag_missing_in_some_files_lists_them(tmp_path: Path,
                                                     cached_ctx: RunContext) -> None:
    _dicom_tree(tmp_path)
    _dicom(tmp_path / "a" / "anonymous.dcm", 999)
    write_image(tmp_path / "b" / "photo.png", seed=77)
    with pytest.raises(DataError) as err:
        ImageFolder(root=str(tmp_path), channels=1, group_by="dicom:PatientID").load(cached_ctx)
    message = str(err.value)
    assert "needs the tag in every file; 2 of 22 lack it" in message
    assert "a/anonymous.dcm: no PatientID tag" in message and "b/photo.png: not a readable DICOM" \
        in message
    assert _cache_entries(cached_ctx) == []


def test_dicom_groups_without_pydicom_name_the_extra(
        tmp_path: Path, cached_ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    _dicom_tree(tmp_path)
    real_import = builtins.__import__

    def no_pydicom(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pydicom" or name.startswith("pydicom."):
            raise ImportError("No module named 'pydicom'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pydicom)
    with pytest.raises(DataError, match=r"pip install 'medsynbench\[dicom\]'"):
        ImageFolder(root=str(tmp_path), channels=1, group_by="dicom:PatientID").load(cached_ctx)
    assert _cache_entries(cached_ctx) == []


# --- split sizes -------------------------------------------------------------------------------
def test_class_too_small_for_the_split_is_one_error_and_caches_nothing(
        tmp_path: Path, cached_ctx: RunContext) -> None:
    for i in range(5):
        write_image(tmp_path / "common" / f"{i}.png", seed=i)
    write_image(tmp_path / "rare" / "only.png", value=80, seed=50)
    with pytest.raises(DataError, match=r"at least 2 images of every class .* 'rare' has 1"):
        ImageFolder(root=str(tmp_path), channels=1).load(cached_ctx)
    assert _cache_entries(cached_ctx) == []


def test_small_test_split_warns_with_its_resolution(ctx: RunContext) -> None:
    from medsynbench import ImageSet

    def images(n: int) -> ImageSet:
        return ImageSet(np.zeros((n, 1, 4, 4), np.uint8), np.arange(n) % 2)

    with pytest.warns(UserWarning, match=r"'test' has 40 images: one image moves accuracy by "
                      r"2.5 pp"):
        warn_small_splits({"train": images(10), "test": images(40)}, 2, ctx)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_small_splits({"train": images(10), "test": images(50)}, 2, ctx)
    assert not caught  # 50 images: one image is exactly 2 pp


# --- given split folders -----------------------------------------------------------------------
def test_groups_across_given_folders_are_warned_by_name(tmp_path: Path, ctx: RunContext) -> None:
    base = tmp_path / "chest_xray"
    stems = {"NORMAL": ["IM-0001-0001", "IM-0002-0001"], "PNEUMONIA": ["person7_virus_1",
                                                                       "person8_virus_2"]}
    for s, split in enumerate(("train", "test")):
        for k, (cls, names) in enumerate(stems.items()):
            for i, stem in enumerate(names):
                write_image(base / split / cls / f"{stem}{'-x' if s else ''}.jpeg", value=60 * k,
                            seed=100 * s + 10 * k + i)
    with pytest.warns(UserWarning, match=r"4 group\(s\) .* appear in more than one of the given "
                      r"split folders, e.g. IM-0001 \(train/test\)"):
        KaggleCXR(root=str(tmp_path), resolution=16).load(ctx)
