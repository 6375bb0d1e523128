"""DICOM files: one image as the other readers give it, header tags, and CT series as volumes.

**One image** (:func:`read_dicom_image`, used by :func:`.imageio.decode_image` for ``.dcm``,
``.dicom`` and DICM-preamble files) follows the display pipeline of the standard, with
pydicom's own implementations (``pydicom.pixels``):

1. Modality LUT (``apply_modality_lut``: RescaleSlope/RescaleIntercept or a Modality LUT
   Sequence), giving e.g. Hounsfield units.
2. VOI LUT (``apply_voi_lut``: a VOI LUT Sequence, else WindowCenter/WindowWidth, first
   window), mapped from its output range onto 0–255. Without VOI tags the image is windowed
   by imageio's 16-bit rule (0.1–99.9th percentiles), except 8-bit unsigned images without a
   rescale, which are kept as stored (as an 8-bit PNG would be).
3. MONOCHROME1 (white = low values, common in radiography) is inverted so that, as in every
   other image here, 255 is bright.

RGB, YBR (converted to RGB by pydicom) and PALETTE COLOR (expanded) images give colour;
16-bit colour is percentile-windowed. A **multi-frame** file is refused rather than reduced
to one frame: a multi-frame file is a volume, a cine loop or several phases, and any single
frame chosen silently would stand for data the user never sees (``ct-montage`` reads volumes;
split the frames into files to use them as 2-D images). A file without pixel data (a
structured report, a presentation state) is refused naming the file.

**CT series** (:func:`group_series`, :func:`order_series`, :func:`read_series_hu`): files are
grouped by SeriesInstanceUID, ordered along the slice normal (the cross product of the
ImageOrientationPatient cosines) by projecting ImagePositionPatient onto it, else by
InstanceNumber, else by file name. A series is refused when its slices disagree on
orientation (direction cosines differing by more than ``ORIENTATION_TOLERANCE``), pixel
spacing (more than ``SPACING_RTOL`` relative), size, or when its gaps between consecutive
slices differ from their median by more than ``gap_tolerance`` × median (0.1 by default:
one missing slice doubles a gap; positions are often rounded to 0.01 mm) or two slices share
one position.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from medsynbench.errors import DataError

from .imageio import require_reader, to_uint8_windowed

__all__ = [
    "SERIES_TAGS",
    "DicomSeries",
    "SeriesOrder",
    "group_series",
    "order_series",
    "read_dicom_image",
    "read_header",
    "read_series_hu",
    "require_pydicom",
]

ORIENTATION_TOLERANCE = 1e-3  # direction cosines (unitless)
SPACING_RTOL = 1e-3  # pixel spacing, relative
DIRECTORY_SOP_CLASS = "1.2.840.10008.1.3.10"  # DICOMDIR: an index of files, no image
SERIES_TAGS = ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "ImageOrientationPatient",
               "ImagePositionPatient", "PixelSpacing", "Rows", "Columns", "InstanceNumber",
               "NumberOfFrames", "SOPClassUID")


def require_pydicom() -> Any:
    """The pydicom module, or one DataError naming the extra to install."""
    return require_reader("pydicom", "dicom", "reading DICOM files")


def _pixels(pydicom: Any) -> Any:
    """``pydicom.pixels`` (pydicom 3), or its predecessor module in pydicom 2.x."""
    try:
        import pydicom.pixels as pixels
    except ImportError:  # pydicom < 3
        import pydicom.pixel_data_handlers.util as pixels  # type: ignore[no-redef]
    return pixels


def _plain(value: Any) -> Any:
    """Header values as plain Python: multi-values become lists, numbers stay numbers."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        return str(value).strip() if isinstance(value, str) else value
    if isinstance(value, Iterable):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float)):
        return int(value) if isinstance(value, int) else float(value)
    return str(value)


def read_header(path: Path, keywords: Sequence[str]) -> dict[str, Any]:
    """Tags ``keywords`` of one DICOM file, without reading its pixels (absent tags: None).

    Raises ValueError naming the reason when the file is not DICOM.
    """
    pydicom = require_pydicom()
    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=list(keywords))
    except Exception as exc:  # InvalidDicomError, truncated headers, bad tags
        raise ValueError(f"not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    meta = getattr(ds, "file_meta", None)
    if meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == DIRECTORY_SOP_CLASS:
        raise ValueError("a DICOMDIR (an index of other files), not an image")
    return {k: _plain(ds.get(k)) for k in keywords}


def _dataset_with_pixels(path: Path) -> tuple[Any, np.ndarray]:
    pydicom = require_pydicom()
    try:
        ds = pydicom.dcmread(str(path))
    except Exception as exc:
        raise ValueError(f"not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        kind = getattr(ds.get("SOPClassUID"), "name", None) or ds.get("SOPClassUID", "unknown")
        raise ValueError(f"DICOM file without pixel data (SOP class {kind}): not an image")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ValueError(
            f"multi-frame DICOM ({frames} frames: a volume, cine loop or several phases); "
            "one image per file is read — split the frames into files, or read volumes "
            "with ct-montage after converting them (e.g. dcm2niix to NIfTI)"
        )
    try:
        return ds, np.asarray(ds.pixel_array)
    except Exception as exc:  # missing decoder plugin for a compressed transfer syntax, ...
        raise ValueError(f"cannot decode DICOM pixels ({type(exc).__name__}: {exc})") from exc


def _voi_range(pixels: Any, ds: Any) -> tuple[float, float]:
    """The output range of the VOI transform, found by running it on extreme inputs (so the
    range rules stay pydicom's: windowing saturates there, a LUT gives its end entries)."""
    voi = ds.get("VOILUTSequence")
    if voi and voi[0].get("LUTDescriptor") is not None:
        entries, first = int(voi[0].LUTDescriptor[0] or 2**16), int(voi[0].LUTDescriptor[1])
        table = pixels.apply_voi_lut(np.arange(first, first + entries, dtype=np.int64), ds)
        return float(np.min(table)), float(np.max(table))
    with np.errstate(over="ignore"):  # a SIGMOID window's exp() at the extremes
        probe = pixels.apply_voi_lut(np.array([-1e12, 1e12]), ds)
    return float(np.min(probe)), float(np.max(probe))


def _has_voi(ds: Any) -> bool:
    voi = ds.get("VOILUTSequence")
    windowed = ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None
    return bool(voi and voi[0].get("LUTDescriptor") is not None) or windowed


def _monochrome_to_uint8(ds: Any, stored: np.ndarray) -> np.ndarray:
    pixels = _pixels(require_pydicom())
    values = pixels.apply_modality_lut(stored, ds)
    if _has_voi(ds):
        lo, hi = _voi_range(pixels, ds)
        shown = np.asarray(pixels.apply_voi_lut(values, ds), dtype=np.float64)
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        out = np.clip(np.round((shown - lo) * scale), 0, 255).astype(np.uint8)
    elif stored.dtype == np.uint8 and np.array_equal(values, stored):  # 8-bit, identity LUT
        out = stored
    else:
        out = to_uint8_windowed(values)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        out = 255 - out
    return out


def read_dicom_image(path: Path) -> np.ndarray:
    """One DICOM image as uint8 H×W (monochrome) or H×W×3 (colour); see the module rules.

    Raises ValueError naming the reason (no pixel data, multi-frame, not DICOM); a missing
    pydicom raises DataError.
    """
    ds, stored = _dataset_with_pixels(path)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if photometric.startswith("MONOCHROME"):
        if stored.ndim != 2:
            raise ValueError(f"monochrome DICOM with pixel array shape {stored.shape}")
        return _monochrome_to_uint8(ds, stored)
    if photometric == "PALETTE COLOR":
        stored = _pixels(require_pydicom()).apply_color_lut(stored, ds)
    if stored.ndim != 3 or stored.shape[-1] != 3:
        raise ValueError(f"{photometric} DICOM with pixel array shape {stored.shape}")
    return stored if stored.dtype == np.uint8 else to_uint8_windowed(stored)


# --- CT series ---------------------------------------------------------------------------------


@dataclass
class DicomSeries:
    """The files of one series (one SeriesInstanceUID) and their headers."""

    uid: str
    files: list[Path]
    headers: list[dict[str, Any]]

    @property
    def group(self) -> str:
        """PatientID, else StudyInstanceUID, else the series UID: what must not be split."""
        first = self.headers[0]
        return str(first.get("PatientID") or first.get("StudyInstanceUID") or self.uid)

    def describe(self, root: Path | None = None, limit: int = 3) -> str:
        """'series UID (N files, e.g. a.dcm, b.dcm)' for messages."""
        names = [str(p.relative_to(root)) if root else str(p) for p in self.files[:limit]]
        more = ", ..." if len(self.files) > limit else ""
        return f"series {self.uid} ({len(self.files)} files, e.g. {', '.join(names)}{more})"


@dataclass
class SeriesOrder:
    """Slice files in volume order, how the order was found, and the slice gap (mm)."""

    files: list[Path]
    ordered_by: str
    gap_mm: float | None = None
    notes: list[str] = field(default_factory=list)


def group_series(files: Iterable[Path]) -> tuple[list[DicomSeries], list[tuple[Path, str]]]:
    """Group DICOM files by SeriesInstanceUID (files lacking it: by folder).

    Returns the series (in the order of their first files) and the files that could not be
    used, with reasons.
    """
    by_uid: dict[str, DicomSeries] = {}
    bad: list[tuple[Path, str]] = []
    for path in sorted(files):
        try:
            header = read_header(path, SERIES_TAGS)
        except ValueError as exc:
            bad.append((path, str(exc)))
            continue
        if header["Rows"] is None:
            bad.append((path, "DICOM file without an image (no Rows/Columns)"))
            continue
        uid = header["SeriesInstanceUID"] or f"folder:{path.parent}"
        series = by_uid.setdefault(uid, DicomSeries(uid, [], []))
        series.files.append(path)
        series.headers.append(header)
    return sorted(by_uid.values(), key=lambda series: series.files[0]), bad


def _all_close(values: list[Any], rtol: float, atol: float) -> bool:
    """Whether every value (a list of numbers; None counts as different) matches the first."""
    if any(v is None or len(v) != len(values[0]) for v in values):
        return False
    array = np.asarray(values, dtype=float)
    return bool(np.allclose(array, array[0], rtol=rtol, atol=atol))


def _refuse(series: DicomSeries, root: Path | None, problem: str, fix: str) -> DataError:
    return DataError(f"{series.describe(root)}: {problem}; {fix}")


def _check_consistent(series: DicomSeries, root: Path | None) -> np.ndarray | None:
    """Check one size, spacing and orientation; return the slice normal (None: unknown)."""
    heads = series.headers
    frames = {int(h["NumberOfFrames"] or 1) for h in heads}
    if max(frames) > 1:
        raise _refuse(series, root, f"multi-frame files ({max(frames)} frames)",
                      "convert the series to NIfTI (e.g. dcm2niix) and read that")
    sizes = defaultdict(list)
    for h, p in zip(heads, series.files, strict=True):
        sizes[(h["Rows"], h["Columns"])].append(p.name)
    if len(sizes) > 1:
        listing = "; ".join(f"{r}×{c}: {', '.join(n[:3])}" for (r, c), n in sizes.items())
        raise _refuse(series, root, f"mixed slice sizes ({listing})",
                      "remove the slices that do not belong to the volume")
    spacings = [h["PixelSpacing"] for h in heads]
    if any(s is not None for s in spacings) and not _all_close(spacings, SPACING_RTOL, 0.0):
        found = sorted({str(s) for s in spacings})
        raise _refuse(series, root, f"mixed pixel spacing ({', '.join(found[:4])})",
                      "a volume needs one pixel spacing: remove or resample the odd slices")
    cosines = [h["ImageOrientationPatient"] for h in heads]
    if all(c is None for c in cosines):
        return None
    if any(c is None or len(c) != 6 for c in cosines) or not _all_close(
            cosines, 0.0, ORIENTATION_TOLERANCE):
        odd = [p.name for c, p in zip(cosines, series.files, strict=True) if c != cosines[0]]
        raise _refuse(series, root, f"mixed orientations (e.g. {', '.join(odd[:3])} differ "
                      f"from {series.files[0].name})",
                      "a volume needs one orientation: remove localizers or other planes")
    row, col = np.asarray(cosines[0][:3], dtype=float), np.asarray(cosines[0][3:], dtype=float)
    return np.cross(row, col)


def order_series(series: DicomSeries, gap_tolerance: float = 0.1,
                 root: Path | None = None) -> SeriesOrder:
    """Order a series' slices along its normal and check it is one regular volume.

    Raises DataError naming the series and its files when it is not (see the module rules).
    """
    normal = _check_consistent(series, root)
    heads, files = series.headers, series.files
    positions = [h["ImagePositionPatient"] for h in heads]
    if all(p is not None and len(p) == 3 for p in positions):
        axis = normal if normal is not None else np.array([0.0, 0.0, 1.0])
        depth = np.asarray(positions, dtype=float) @ axis
        order = np.argsort(depth, kind="stable")
        ordered = [files[i] for i in order]
        if len(files) < 2:
            return SeriesOrder(ordered, "ImagePositionPatient")
        gaps = np.diff(depth[order])
        median = float(np.median(gaps))
        if gaps.min() <= 1e-6:
            same = [files[order[i]].name for i in np.flatnonzero(gaps <= 1e-6)[:2]]
            raise _refuse(series, root, f"slices share one position (e.g. {', '.join(same)} "
                          "and the next)", "remove duplicated slices or repeated acquisitions")
        worst = float(np.max(np.abs(gaps - median)))
        if worst > gap_tolerance * median + 0.01:
            i = int(np.argmax(np.abs(gaps - median)))
            raise _refuse(
                series, root,
                f"irregular slice spacing: gap {gaps[i]:.3g} mm between "
                f"{files[order[i]].name} and {files[order[i + 1]].name}, median {median:.3g} mm "
                f"(tolerance ±{gap_tolerance:.0%} + 0.01 mm) — missing slices?",
                "complete the series, or raise gap_tolerance if the spacing varies by design")
        return SeriesOrder(ordered, "ImagePositionPatient", median)
    numbers = [h["InstanceNumber"] for h in heads]
    if all(n is not None for n in numbers):
        order = np.argsort(np.asarray(numbers, dtype=float), kind="stable")
        return SeriesOrder([files[i] for i in order], "InstanceNumber",
                           notes=["no ImagePositionPatient: spacing not checked"])
    return SeriesOrder(sorted(files), "file name",
                       notes=["no ImagePositionPatient or InstanceNumber: spacing not checked"])


def read_series_hu(files: Sequence[Path]) -> np.ndarray:
    """Ordered slice files as float32 Z×H×W after the Modality LUT (HU for CT).

    Raises DataError listing the files that cannot be read.
    """
    pixels = _pixels(require_pydicom())
    slices, bad = [], []
    for path in files:
        try:
            ds, stored = _dataset_with_pixels(path)
            slices.append(np.asarray(pixels.apply_modality_lut(stored, ds), dtype=np.float32))
        except ValueError as exc:
            bad.append(f"  {path}: {exc}")
    if bad:
        raise DataError("unreadable DICOM files in a series:\n" + "\n".join(bad[:10]))
    if {s.shape for s in slices} != {slices[0].shape}:
        raise DataError(f"DICOM slices of {files[0].parent} decode to different shapes")
    return np.stack(slices)
