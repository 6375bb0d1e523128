"""CT volumes → montages as in the CT study, HU windowing, and the ``ct-montage`` dataset.

The CT study (Nan, Felder et al.) turned each volume into 20 montages of 4 axial slices (a
2×2 grid). :func:`volume_to_montages` does exactly that: 80 axial slices evenly spaced over
the volume (repeated when it has fewer), consecutive groups of 4 tiled row-major into one
montage; every montage of a volume carries the volume's id as its group so that no volume is
split across train and test.

HU windowing maps ``[center − width/2, center + width/2]`` linearly onto 0–255 (values outside
the window saturate, which is what a window means); presets below. Readers: NIfTI through
nibabel (``pip install medsynbench[nifti]``), DICOM series through pydicom
(``pip install medsynbench[dicom]``), with RescaleSlope/RescaleIntercept applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import DataSplits, ImageSet, Param, RunContext
from medsynbench.errors import DataError
from PIL import Image

from .files import FileDataset, warn_small_splits
from .imageio import FITS
from .splits import SPLIT_PARAMETERS, assert_groups_disjoint

__all__ = ["WINDOWS", "CTMontage", "read_dicom_series", "read_nifti", "volume_to_montages",
           "window_hu"]

WINDOWS: dict[str, tuple[float, float]] = {  # name: (center, width) in HU
    "soft-tissue": (40.0, 400.0),
    "abdomen": (60.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def window_hu(volume: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map Hounsfield units in the window (center, width) linearly onto uint8."""
    if width <= 0:
        raise DataError(f"HU window width must be > 0, got {width}")
    scaled = (np.asarray(volume, dtype=np.float32) - (center - width / 2.0)) / width
    return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def volume_to_montages(
    volume: np.ndarray, side: int, n_montages: int = 20, per_montage: int = 4
) -> np.ndarray:
    """uint8 Z×H×W axial slices → ``n_montages`` montages (N×1×side×side), 2×2 for 4 slices."""
    grid = round(per_montage**0.5)
    if grid * grid != per_montage:
        raise DataError(f"slices per montage must be a square number, got {per_montage}")
    if side % grid:
        raise DataError(f"montage side {side} is not divisible by the grid {grid}")
    tile = side // grid
    depth = volume.shape[0]
    chosen = np.round(np.linspace(0, depth - 1, n_montages * per_montage)).astype(int)
    out = np.empty((n_montages, 1, side, side), dtype=np.uint8)
    for m in range(n_montages):
        for j in range(per_montage):
            axial = volume[chosen[m * per_montage + j]]
            if axial.shape != (tile, tile):
                axial = np.asarray(Image.fromarray(np.ascontiguousarray(axial)).resize(
                    (tile, tile), Image.Resampling.BICUBIC))
            r, c = divmod(j, grid)
            out[m, 0, r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = axial
    return out


def _require(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise DataError(
            f"reading these CT files needs {module}, which is not installed: "
            f"pip install 'medsynbench[{extra}]' (or pip install {module})"
        ) from exc


def read_nifti(path: Path) -> np.ndarray:
    """A NIfTI volume as float32 Z×H×W in HU (axial slices in radiological display)."""
    nib = _require("nibabel", "nifti")
    try:
        data = np.asarray(nib.load(str(path)).get_fdata(dtype=np.float32))
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise DataError(f"cannot read NIfTI file {path}: {type(exc).__name__}: {exc}") from exc
    if data.ndim == 4:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"{path} is not a 3D volume (shape {data.shape})")
    # (x, y, z) → (z, rows, cols): row = anterior→posterior, col = patient right→left.
    return np.ascontiguousarray(np.flip(np.transpose(data, (2, 1, 0)), axis=1))


def read_dicom_series(folder: Path) -> np.ndarray:
    """A DICOM series (one folder) as float32 Z×H×W in HU, ordered along the patient axis."""
    pydicom = _require("pydicom", "dicom")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    slices: list[tuple[float, np.ndarray]] = []
    bad: list[str] = []
    for path in files:
        try:
            ds = pydicom.dcmread(str(path))
            pixels = ds.pixel_array.astype(np.float32)
        except Exception as exc:  # InvalidDicomError, missing pixel data, bad transfer syntax
            bad.append(f"  {path}: {type(exc).__name__}: {exc}")
            continue
        slope = float(getattr(ds, "RescaleSlope", 1.0))
        intercept = float(getattr(ds, "RescaleIntercept", 0.0))
        position = getattr(ds, "ImagePositionPatient", None)
        order = float(position[2]) if position is not None else float(
            getattr(ds, "InstanceNumber", len(slices)))
        slices.append((order, pixels * slope + intercept))
    if bad:
        raise DataError(f"unreadable DICOM files in series {folder}:\n" + "\n".join(bad[:10]))
    if not slices:
        raise DataError(f"DICOM series folder {folder} holds no files")
    shapes = {s.shape for _, s in slices}
    if len(shapes) > 1:
        raise DataError(f"DICOM series {folder} mixes slice sizes {sorted(shapes)}")
    slices.sort(key=lambda item: item[0])
    return np.stack([s for _, s in slices])


def find_volumes(folder: Path) -> list[Path]:
    """NIfTI files and DICOM series folders (folders holding files) directly under ``folder``."""
    found = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        is_nifti = child.is_file() and child.name.lower().endswith(NIFTI_SUFFIXES)
        is_series = child.is_dir() and any(p.is_file() for p in child.iterdir())
        if is_nifti or is_series:
            found.append(child)
    return found


def _volume_id(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


class CTMontage(FileDataset):
    """CT volumes (NIfTI or DICOM series) in class folders → 20 montages of 4 slices each."""

    name: ClassVar[str] = "ct-montage"
    modality: ClassVar[str] = "ct"
    channels: ClassVar[int] = 1
    citation: ClassVar[str] = (
        "Montage protocol of Nan, Felder et al., The Beauty or the Beast: Which Aspect of "
        "Synthetic Medical Images Deserves Our Focus? (cite your CT source as well)."
    )
    license: ClassVar[str] = "as per your CT data"
    default_folder: ClassVar[str] = "ct"
    download: ClassVar[str] = (
        "your CT volumes (e.g. a TCIA collection) as NIfTI (.nii/.nii.gz) or one folder of "
        "DICOM files per series."
    )
    layout: ClassVar[str] = (
        "  <root>/<class>/<volume>.nii.gz   or   <root>/<class>/<series>/*.dcm\n"
        "  (or the volumes directly under <root>: one class 'ct')"
    )
    parameters: ClassVar[dict[str, Param]] = {
        "root": Param(None, str, "folder of class folders of volumes", nullable=True),
        "resolution": Param(256, int, "montage side (the study used 256/512/1024)",
                            check=lambda v: None if v >= 16 and v % 2 == 0 else "even, >= 16"),
        "window": Param("soft-tissue", str, "HU window preset", choices=tuple(WINDOWS)),
        "window_center": Param(None, float, "HU window center (overrides the preset)",
                               nullable=True),
        "window_width": Param(None, float, "HU window width (overrides the preset)",
                              nullable=True),
        "n_montages": Param(20, int, "montages per volume",
                            check=lambda v: None if v >= 1 else "must be >= 1"),
        "slices_per_montage": Param(4, int, "axial slices per montage (a square number)",
                                    choices=(1, 4, 9, 16)),
        "fit": Param("stretch", str, "unused for volumes (slices are resized)", choices=FITS),
        "on_error": Param("fail", str, "unreadable volumes: fail or skip",
                          choices=("fail", "skip")),
        **SPLIT_PARAMETERS,
    }

    def window(self) -> tuple[float, float]:
        center, width = WINDOWS[self.params["window"]]
        if self.params.get("window_center") is not None:
            center = float(self.params["window_center"])
        if self.params.get("window_width") is not None:
            width = float(self.params["window_width"])
        return center, width

    def scan(self) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
        root = self.root
        direct = [p for p in find_volumes(root) if p.is_file() or not _is_class_dir(p)]
        classes = [p for p in sorted(root.iterdir()) if p.is_dir() and _is_class_dir(p)]
        if classes:
            items = [(v, k) for k, c in enumerate(classes) for v in find_volumes(c)]
            empty = [c for c in classes if not find_volumes(c)]
            if empty:
                raise DataError(f"class folder {empty[0]} holds no NIfTI files or DICOM series")
            return items, tuple(c.name for c in classes)
        if not direct:
            raise DataError(f"{root} holds no NIfTI volumes or DICOM series\n{self.layout}")
        return [(v, 0) for v in direct], ("ct",)

    def read_volume(self, path: Path) -> np.ndarray:
        return read_nifti(path) if path.is_file() else read_dicom_series(path)

    def load(self, ctx: RunContext) -> DataSplits:
        """Read, window and montage every volume, then split by volume."""
        items, class_names = self.scan()
        sources = [f for p, _ in items for f in ([p] if p.is_file() else sorted(p.iterdir()))]

        def build() -> DataSplits:
            center, width = self.window()
            montages, labels, groups, skipped = [], [], [], []
            with ctx.progress(f"{self.name}: volumes", total=len(items)) as task:
                for path, label in items:
                    try:
                        volume = window_hu(self.read_volume(path), center, width)
                    except DataError as exc:
                        if self.params["on_error"] != "skip" or "not installed" in str(exc):
                            raise
                        skipped.append(str(path))
                        task.advance(1)
                        continue
                    stack = volume_to_montages(volume, self.params["resolution"],
                                               self.params["n_montages"],
                                               self.params["slices_per_montage"])
                    montages.append(stack)
                    labels += [label] * len(stack)
                    groups += [_volume_id(path)] * len(stack)
                    task.advance(1)
            if not montages:
                raise DataError(f"no CT volume under {self.root} could be read")
            data = ImageSet(np.concatenate(montages), np.asarray(labels), np.asarray(groups))
            splits = self.split_random(data)
            assert_groups_disjoint(splits)
            warn_small_splits(splits, len(class_names), ctx)
            info = {"window_hu": [center, width], "skipped_files": skipped,
                    "volumes": len(items) - len(skipped), **self.describe()}
            return DataSplits(splits, class_names, self.modality, info)

        return self.prepare(ctx, sources, build)


def _is_class_dir(folder: Path) -> bool:
    """A class folder holds volumes (NIfTI files or series folders), not DICOM slices."""
    return any(
        (p.is_file() and p.name.lower().endswith(NIFTI_SUFFIXES)) or p.is_dir()
        for p in folder.iterdir()
    )

