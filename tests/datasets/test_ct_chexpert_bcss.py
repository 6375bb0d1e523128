"""ct-montage (NIfTI, DICOM), chexpert-pe (CSV policies, A1/A2/B/C), bcss-lizard preparation."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from dataset_fakes import write_image
from medsynbench import RunContext
from medsynbench.errors import DataError
from medsynbench.plugins.datasets.bcss_prepare import prepare_bcss_lizard
from medsynbench.plugins.datasets.chexpert import CheXpertPE, read_label_csv
from medsynbench.plugins.datasets.ct import CTMontage
from medsynbench.plugins.datasets.folders import BcssLizard
from medsynbench.plugins.datasets.splits import assert_groups_disjoint
from PIL import Image

# Tiny fixtures make tiny splits: that warning is expected here (and tested on its own).
pytestmark = pytest.mark.filterwarnings("ignore:split .* has only")

# --- ct-montage -------------------------------------------------------------------------------


def _hu_volume(seed: int, depth: int = 12, side: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(40, 100, size=(side, side, depth)).astype(np.float32)


def test_ct_montage_from_nifti(tmp_path: Path, ctx: RunContext) -> None:
    nib = pytest.importorskip("nibabel")
    for cls in ("healthy", "tumour"):
        (tmp_path / cls).mkdir()
        for v in range(3):
            image = nib.Nifti1Image(_hu_volume(v), np.eye(4))
            nib.save(image, str(tmp_path / cls / f"{cls}{v}.nii.gz"))
    data = CTMontage(root=str(tmp_path), resolution=16, n_montages=3, test_fraction=0.34,
                     val_fraction=0.0).load(ctx)
    assert data.class_names == ("healthy", "tumour")
    total = sum(len(s) for s in data.splits.values())
    assert total == 6 * 3 and data.train.image_shape == (1, 16, 16)
    assert_groups_disjoint(data.splits)
    assert data.info["window_hu"] == [40.0, 400.0]
    # 12 slices, 3 montages of 4: every slice shown once.
    assert data.info["unique_slice_ratio"] == 1.0
    assert {u["slices_used"] for u in data.info["slices_per_volume"]} == {12}


def _dicom_slice(path: Path, z: int, pixels: np.ndarray) -> None:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.ImagePositionPatient = [0, 0, float(z)]
    ds.InstanceNumber = z
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def test_ct_montage_from_dicom_series_and_unreadable_file(tmp_path: Path, ctx: RunContext) -> None:
    pytest.importorskip("pydicom")
    for s in range(2):
        series = tmp_path / f"series{s}"
        series.mkdir()
        for z in (3, 1, 2, 0):  # written out of order: sorted by position on reading
            _dicom_slice(series / f"slice{z}.dcm", z, np.full((8, 8), 1024 + 40 + 100 * z))
    data = CTMontage(root=str(tmp_path), resolution=16, n_montages=1, test_fraction=0.5,
                     val_fraction=0.0).load(ctx)
    assert data.class_names == ("ct",) and sum(len(s) for s in data.splits.values()) == 2
    montage = data.train.images[0, 0]
    # HU 40, 140, 240, 340 in the 40/400 window → 128, 191, 255, 255 in slice order.
    assert [montage[0, 0], montage[0, 8], montage[8, 0], montage[8, 8]] == [128, 191, 255, 255]
    (tmp_path / "series1" / "broken.dcm").write_bytes(b"not a dicom file")
    with pytest.raises(DataError, match=r"(?s)unreadable DICOM.*broken\.dcm"):
        CTMontage(root=str(tmp_path), resolution=16).load(ctx)
    skipped = CTMontage(root=str(tmp_path), resolution=16, n_montages=1, on_error="skip",
                        test_fraction=0.5, val_fraction=0.0).load(ctx)
    assert len(skipped.info["skipped_files"]) == 1


def test_missing_reader_says_which_extra(tmp_path: Path, ctx: RunContext,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_nibabel(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "nibabel":
            raise ImportError("No module named 'nibabel'")
        return real_import(name, *args, **kwargs)

    (tmp_path / "v.nii.gz").write_bytes(b"")
    monkeypatch.setattr(builtins, "__import__", no_nibabel)
    with pytest.raises(DataError, match=r"medsynbench\[nifti\]"):
        CTMontage(root=str(tmp_path)).load(ctx)


# --- chexpert-pe ------------------------------------------------------------------------------

HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Pleural Effusion"]


def _chexpert(root: Path, n_patients: int = 60) -> Path:
    rows = []
    rng = np.random.default_rng(0)
    for p in range(n_patients):
        label = "1.0" if p % 4 else "0.0"  # 75 % effusion, as in the study
        for study in (1, 2):
            rel = f"CheXpert-v1.0-small/train/patient{p:05d}/study{study}/view1_frontal.jpg"
            write_image(root.parent / rel, (24, 20), value=int(rng.integers(0, 100)), seed=p)
            rows.append([rel, "F", "50", "Frontal", "AP", "", label])
        rows.append([f"CheXpert-v1.0-small/train/patient{p:05d}/study1/view2_lateral.jpg",
                     "F", "50", "Lateral", "", "", label])
    rows += [["CheXpert-v1.0-small/train/patient99998/study1/view1_frontal.jpg", "M", "1",
              "Frontal", "AP", "", "-1.0"],
             ["CheXpert-v1.0-small/train/patient99999/study1/view1_frontal.jpg", "M", "1",
              "Frontal", "AP", "1.0", ""]]
    root.mkdir(parents=True, exist_ok=True)
    with (root / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return root


def test_chexpert_label_policies(tmp_path: Path) -> None:
    root = _chexpert(tmp_path / "CheXpert-v1.0-small", 4)
    paths, labels = read_label_csv(root / "train.csv", "exclude", "exclude")
    assert labels == [0, 0, 1, 1, 1, 1, 1, 1]
    assert len(paths) == 8 and not any("lateral" in p for p in paths)
    _, ones = read_label_csv(root / "train.csv", "positive", "negative")
    assert len(ones) == 10 and ones[-2:] == [1, 0]
    _, zeros = read_label_csv(root / "train.csv", "negative", "exclude")
    assert zeros[-1] == 0 and len(zeros) == 9


def test_chexpert_study_splits_by_patient(tmp_path: Path, ctx: RunContext) -> None:
    root = _chexpert(tmp_path / "CheXpert-v1.0-small")
    data = CheXpertPE(root=str(root), resolution=16, sizes="proportional").load(ctx)
    assert set(data.splits) == {"train", "A2", "B", "test"}
    assert data.class_names == ("no-PE", "PE")
    assert_groups_disjoint(data.splits)
    assert sum(len(s) for s in data.splits.values()) == 120
    sizes = {k: len(v) for k, v in data.splits.items()}
    assert sizes["A2"] > sizes["train"] > sizes["B"] and sizes["test"] > sizes["B"]
    capped = CheXpertPE(root=str(root), resolution=16, scale=0.0002).load(ctx)
    assert capped.train.counts(2).tolist() == [1, 3]  # 5,127 and 15,004 × 0.0002, rounded


def test_chexpert_csv_without_label_column(tmp_path: Path, ctx: RunContext) -> None:
    (tmp_path / "train.csv").write_text("Path,Frontal/Lateral,Edema\nx.jpg,Frontal,1.0\n")
    with pytest.raises(DataError, match="no column 'Pleural Effusion'"):
        CheXpertPE(root=str(tmp_path)).load(ctx)


def test_chexpert_missing_root_names_the_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="research-use agreement"):
        CheXpertPE(root=str(tmp_path / "nothing"))


# --- bcss-lizard preparation ------------------------------------------------------------------


def test_prepare_patches_from_slides_and_masks(tmp_path: Path, ctx: RunContext) -> None:
    slides, masks = tmp_path / "images", tmp_path / "masks"
    slides.mkdir()
    masks.mkdir()
    codes = [1, 2, 3, 4, 9, 13]  # tumor, stroma, lymphocytic, necrosis, fat, normal duct
    for s in range(12):
        rgb = np.random.default_rng(s).integers(0, 255, size=(64, 96, 3)).astype(np.uint8)
        Image.fromarray(rgb).save(slides / f"TCGA-{s:02d}-DX1_xmin0_ymin0.png")
        mask = np.zeros((64, 96), dtype=np.uint8)
        mask[:32, :32] = codes[s % 6]
        mask[:32, 32:64] = codes[(s + 1) % 6]
        mask[32:, :32] = 7  # "exclude": not mapped
        Image.fromarray(mask).save(masks / f"TCGA-{s:02d}-DX1_xmin0_ymin0.png")
    out = tmp_path / "patches"
    counts = prepare_bcss_lizard(slides, masks, out, ctx, patch=32, paper_sizes=False)
    assert sum(sum(c.values()) for c in counts.values()) == 24  # 2 labelled patches per slide
    assert set(counts) == {"train", "val", "test"}
    data = BcssLizard(root=str(out), resolution=32).load(ctx)
    assert data.n_classes == 6 and data.train.image_shape == (3, 32, 32)
    assert_groups_disjoint(data.splits)


def test_prepare_requires_a_mask_per_slide(tmp_path: Path, ctx: RunContext) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "m").mkdir()
    write_image(tmp_path / "s" / "slide1.png")
    with pytest.raises(DataError, match=r"no mask .* slide1\.png"):
        prepare_bcss_lizard(tmp_path / "s", tmp_path / "m", tmp_path / "o", ctx)


def _lizard_label_file(path: Path, classes_by_quadrant: list[int]) -> None:
    """A Lizard-style .mat: nuclei instances (inst_map) with one nuclear class each."""
    from scipy.io import savemat

    inst_map = np.zeros((64, 64), dtype=np.int32)
    ids, classes = [], []
    for q, cls in enumerate(classes_by_quadrant):
        y, x = divmod(q, 2)
        for n in range(4):  # four 12×12 "nuclei" per 32 px quadrant
            instance = len(ids) + 1
            top, left = 32 * y + 16 * (n // 2), 32 * x + 16 * (n % 2)
            inst_map[top : top + 12, left : left + 12] = instance
            ids.append(instance)
            classes.append(cls)
    savemat(path, {"inst_map": inst_map, "id": np.array(ids)[:, None],
                   "class": np.array(classes)[:, None]})


def test_prepare_reads_lizard_mat_labels(tmp_path: Path, ctx: RunContext) -> None:
    slides, labels = tmp_path / "images", tmp_path / "labels"
    slides.mkdir()
    labels.mkdir()
    lizard_classes = [2, 3, 6, 1, 4, 5]  # epithelial, lymphocyte, connective, neutrophil, ...
    for s in range(12):
        rgb = np.random.default_rng(s).integers(0, 255, size=(64, 64, 3)).astype(np.uint8)
        Image.fromarray(rgb).save(slides / f"consep_{s}.png")
        quadrants = [lizard_classes[(s + q) % 6] for q in range(4)]
        _lizard_label_file(labels / f"consep_{s}.mat", quadrants)
    out = tmp_path / "patches"
    # each 32 px quadrant is 4 × 144 = 576 of 1,024 pixels nuclei of one class: fraction 0.56
    counts = prepare_bcss_lizard(slides, labels, out, ctx, patch=32, min_fraction=0.5,
                                 paper_sizes=False)
    totals = {c: sum(split[c] for split in counts.values()) for c in counts["train"]}
    assert sum(totals.values()) == 48
    # Lizard mapping: inflammatory ← neutrophil/lymphocyte/plasma/eosinophil, gland ← epithelial,
    # stroma ← connective; each class appears in 2 of 6 quadrant slots → 8 patches per slot class
    assert totals["gland"] == 8 and totals["stroma"] == 8 and totals["inflammatory"] == 32
    assert totals["tumor"] == totals["necrosis"] == totals["fat"] == 0


def test_prepare_refuses_a_mat_without_lizard_keys(tmp_path: Path, ctx: RunContext) -> None:
    from scipy.io import savemat

    (tmp_path / "s").mkdir()
    (tmp_path / "m").mkdir()
    write_image(tmp_path / "s" / "slide1.png", size=(32, 32), mode="RGB")
    savemat(tmp_path / "m" / "slide1.mat", {"something_else": np.zeros((32, 32))})
    with pytest.raises(DataError, match=r"slide1\.mat lacks inst_map, class: not a Lizard"):
        prepare_bcss_lizard(tmp_path / "s", tmp_path / "m", tmp_path / "o", ctx, patch=32)
