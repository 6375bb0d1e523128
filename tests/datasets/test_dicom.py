"""DICOM as an image (imagefolder and decode_image): LUTs, windows, MONOCHROME1, colour, errors.

The DICOM files are made here with pydicom (16×16, explicit VR little endian); ``write_dicom``
is also used by test_ct_montage.py.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dataset_fakes import write_image
from medsynbench import RunContext
from medsynbench.errors import DataError
from medsynbench.plugins.datasets.folders import ImageFolder
from medsynbench.plugins.datasets.imageio import (
    ReadSpec,
    decode_image,
    is_image_file,
    to_uint8_windowed,
)

pydicom = pytest.importorskip("pydicom")
from medsynbench.plugins.datasets.dicom import read_dicom_image, read_header  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:split .* has only")

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def write_dicom(path: Path, pixels: np.ndarray | None, photometric: str = "MONOCHROME2",
                **tags: Any) -> Path:
    """A small DICOM file: ``pixels`` (H×W, H×W×3 or F×H×W; None: no pixel data) and tags."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = tags.pop("SOPClassUID", CT_IMAGE)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if pixels is not None:
        colour = photometric in ("RGB", "YBR_FULL")
        frames = pixels.shape[0] if pixels.ndim == 3 and not colour else 1
        ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
        bits = pixels.dtype.itemsize * 8
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
        ds.PixelRepresentation = int(np.issubdtype(pixels.dtype, np.signedinteger))
        ds.SamplesPerPixel = 3 if colour else 1
        if colour:
            ds.PlanarConfiguration = 0
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.PhotometricInterpretation = photometric
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)
    return path


def _ramp(dtype: Any = np.uint16, values: tuple[int, ...] = (0, 50, 100, 150, 200, 300)) -> Any:
    row = np.array(values, dtype=dtype)
    return np.tile(np.resize(row, 16), (16, 1))


def _cache_entries(ctx: RunContext) -> list[Path]:
    prepared = Path(ctx.cache_dir or "") / "prepared"
    return [p for p in prepared.rglob("*")] if prepared.exists() else []


@pytest.fixture
def cached_ctx(tmp_path: Path) -> RunContext:
    return RunContext(device="cpu", seed=0, workdir=tmp_path / "work", cache_dir=tmp_path / "c")


# --- pixel rules ------------------------------------------------------------------------------


def test_window_from_voi_tags_and_monochrome1_inverted(tmp_path: Path) -> None:
    # LINEAR window (center 100.5, width 201) over unsigned 16 bits: x ≤ 0 → 0, x > 200 → max,
    # between ((x − 100) / 200 + 0.5) of the output range → 0, 64, 128, 191, 255, 255.
    pixels = _ramp()
    m2 = write_dicom(tmp_path / "m2.dcm", pixels, WindowCenter=100.5, WindowWidth=201)
    m1 = write_dicom(tmp_path / "m1.dcm", pixels, "MONOCHROME1", WindowCenter=100.5,
                     WindowWidth=201)
    assert read_dicom_image(m2)[0, :6].tolist() == [0, 64, 128, 191, 255, 255]
    assert read_dicom_image(m1)[0, :6].tolist() == [255, 191, 127, 64, 0, 0]


def test_voi_lut_sequence_mapped_from_its_output_range(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.add_new("LUTDescriptor", "US", [4, 0, 8])  # 4 entries from stored value 0, 8 bits
    item.add_new("LUTData", "OW", np.array([0, 10, 20, 30], dtype="<u2").tobytes())
    path = write_dicom(tmp_path / "lut.dcm", _ramp(np.uint16, (0, 1, 2, 3, 9)),
                       VOILUTSequence=[item])
    # LUT outputs 0, 10, 20, 30 (values past the table: its last entry) span 0–255.
    assert read_dicom_image(path)[0, :5].tolist() == [0, 85, 170, 255, 255]


def test_signed_ct_rescaled_then_windowed(tmp_path: Path) -> None:
    # Stored int16 + intercept −1024 → HU −160, 0, 40, 240; soft-tissue window 40/400:
    # −160 is the window's floor (0), 0 HU ≈ 0.40 × 255 = 102, 40 HU ≈ 128, 240 HU → 255.
    stored = _ramp(np.int16, (864, 1024, 1064, 1264))
    path = write_dicom(tmp_path / "ct.dcm", stored, RescaleSlope=1, RescaleIntercept=-1024,
                       WindowCenter=40, WindowWidth=400)
    assert read_dicom_image(path)[0, :4].tolist() == [0, 102, 128, 255]


def test_without_window_16_bit_uses_the_percentile_rule_and_8_bit_is_kept(
        tmp_path: Path) -> None:
    pixels = _ramp(np.uint16, (0, 1000, 2000, 4095))
    path = write_dicom(tmp_path / "raw16.dcm", pixels)
    assert np.array_equal(read_dicom_image(path), to_uint8_windowed(pixels))
    eight = _ramp(np.uint8, (3, 7, 200))
    assert np.array_equal(read_dicom_image(write_dicom(tmp_path / "raw8.dcm", eight)), eight)


def test_rgb_dicom_gives_colour(tmp_path: Path) -> None:
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 30
    image, _ = decode_image(write_dicom(tmp_path / "rgb.dcm", rgb, "RGB"), ReadSpec(3, None))
    assert image.shape == (3, 16, 16) and image[:, 0, 0].tolist() == [200, 0, 30]


def test_extensionless_dicom_is_found_by_its_preamble(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "IM0001", _ramp(np.uint8, (9,)))
    (tmp_path / "notes.txt").write_text("not an image")
    assert is_image_file(path) and not is_image_file(tmp_path / "notes.txt")
    image, _ = decode_image(path, ReadSpec(1, 8))
    assert image.shape == (1, 8, 8) and int(image.max()) == 9


def test_read_header_reads_tags_without_pixels(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "h.dcm", _ramp(), PatientID="P7",
                       ImagePositionPatient=[0, 0, 2.5], PixelSpacing=[0.5, 0.5])
    header = read_header(path, ["PatientID", "ImagePositionPatient", "PixelSpacing", "Rows",
                                "SeriesInstanceUID"])
    assert header == {"PatientID": "P7", "ImagePositionPatient": [0.0, 0.0, 2.5],
                      "PixelSpacing": [0.5, 0.5], "Rows": 16, "SeriesInstanceUID": None}


# --- imagefolder ------------------------------------------------------------------------------


def test_imagefolder_reads_dicom_class_folders_and_mixed_folders(tmp_path: Path,
                                                                 ctx: RunContext) -> None:
    for cls, value in (("a", 40), ("b", 200)):
        for i in range(4):
            write_dicom(tmp_path / cls / f"{i}.dcm", _ramp(np.uint8, (value,)))
    write_image(tmp_path / "b" / "extra.png", (16, 16), value=200)
    data = ImageFolder(root=str(tmp_path), channels=1, resolution=16, test_fraction=0.5,
                       val_fraction=0.0).load(ctx)
    assert data.class_names == ("a", "b")
    assert sum(len(s) for s in data.splits.values()) == 9  # 8 DICOMs + the PNG
    assert data.info["skipped_files"] == []


def test_imagefolder_picks_up_extensionless_dicoms_and_ignores_other_files(
        tmp_path: Path, ctx: RunContext) -> None:
    # PACS exports: IM0001-style names and bare UIDs, no extension; a note and a CSV beside.
    uid = "1.2.826.0.1.3680043.8.498.{}"
    rng = np.random.default_rng(0)

    def pixels(value: int) -> Any:  # distinct noise: no duplicate clusters to regroup
        return (rng.integers(0, 50, (16, 16)) + value).astype(np.uint8)

    for cls, value in (("a", 40), ("b", 200)):
        for i in range(3):
            write_dicom(tmp_path / cls / f"IM{i + 1:04d}", pixels(value))
        write_dicom(tmp_path / cls / uid.format(value), pixels(value))
        (tmp_path / cls / "README").write_text("exported from PACS")
        (tmp_path / cls / "labels.csv").write_text("file,label\n")
    data = ImageFolder(root=str(tmp_path), channels=1, resolution=16, test_fraction=0.5,
                       val_fraction=0.0).load(ctx)
    assert data.class_names == ("a", "b")
    assert sum(len(s) for s in data.splits.values()) == 8  # 4 DICOMs per class, no note/CSV
    assert data.info["ignored_files"] == 4
    names = sorted(n for s in data.splits.values() for n in s.names.tolist())
    assert names[:4] == ["a/1.2.826.0.1.3680043.8.498.40", "a/IM0001", "a/IM0002", "a/IM0003"]
    assert all(s.images[s.labels == 1].min() >= 200 for s in data.splits.values())
    assert ".dcm" in ImageFolder.layout


def test_dicom_without_pixels_and_multiframe_are_named_and_nothing_is_cached(
        tmp_path: Path, cached_ctx: RunContext) -> None:
    for i in range(3):
        write_dicom(tmp_path / "a" / f"{i}.dcm", _ramp(np.uint8, (10,)))
        write_dicom(tmp_path / "b" / f"{i}.dcm", _ramp(np.uint8, (90,)))
    write_dicom(tmp_path / "a" / "report.dcm", None, SOPClassUID="1.2.840.10008.5.1.4.1.1.88.11")
    write_dicom(tmp_path / "b" / "cine.dcm", np.zeros((3, 16, 16), dtype=np.uint8))
    with pytest.raises(DataError) as err:
        ImageFolder(root=str(tmp_path), channels=1, resolution=16).load(cached_ctx)
    message = str(err.value)
    assert "2 of 8 image files could not be read" in message
    assert "report.dcm: ValueError: DICOM file without pixel data" in message
    assert "cine.dcm: ValueError: multi-frame DICOM (3 frames" in message
    assert _cache_entries(cached_ctx) == []
    skipped = ImageFolder(root=str(tmp_path), channels=1, resolution=16, on_error="skip",
                          test_fraction=0.5, val_fraction=0.0).load(cached_ctx)
    assert sorted(Path(p).name for p in skipped.info["skipped_files"]) == ["cine.dcm",
                                                                          "report.dcm"]


def test_missing_pydicom_names_the_extra(tmp_path: Path, cached_ctx: RunContext,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in ("a", "b"):
        write_dicom(tmp_path / cls / "0.dcm", _ramp(np.uint8, (10,)))
    real_import = builtins.__import__

    def no_pydicom(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pydicom" or name.startswith("pydicom."):
            raise ImportError("No module named 'pydicom'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pydicom)
    with pytest.raises(DataError, match=r"needs pydicom.*pip install 'medsynbench\[dicom\]'"):
        ImageFolder(root=str(tmp_path), channels=1, resolution=16).load(cached_ctx)
    assert _cache_entries(cached_ctx) == []
