"""CT volumes → montages as in the CT study, HU windowing, and the ``ct-montage`` dataset.

The CT study (Nan, Felder et al.) turned each volume into 20 montages of 4 axial slices (a
2×2 grid). :func:`volume_to_montages` does exactly that: ``n × k`` axial slices evenly spaced
over the volume, consecutive groups of ``k`` tiled row-major into one montage; every montage
of a volume carries the volume's group (its patient where known) so that no patient is split
across train and test.

Slices are never repeated silently. A volume with fewer than ``n × k`` slices is refused
(``short_volumes = "error"``, the default) with the numbers to change; ``"fewer"`` makes
⌊depth / k⌋ montages of it instead and warns; ``"repeat"`` repeats slices (the behaviour of
earlier versions) and warns loudly. A volume with fewer than ``k`` slices cannot make one
montage without repeating, so only ``"repeat"`` accepts it. The data's info records, per
volume, the slices it has, the montages made, the distinct slices used and their ratio to
the tiles shown (1.0: no tile repeats a slice).

HU windowing maps ``[center − width/2, center + width/2]`` linearly onto 0–255 (values outside
the window saturate, which is what a window means); presets below. Readers: NIfTI through
nibabel (``pip install 'medsynbench[nifti]'``), DICOM through pydicom
(``pip install 'medsynbench[dicom]'``): files are grouped into series by SeriesInstanceUID,
ordered and checked as :mod:`.dicom` describes, Modality LUT applied (HU).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import DataSplits, ImageSet, Param, RunContext
from medsynbench.errors import DataError
from medsynbench.params import at_least, nonnegative
from PIL import Image

from .dicom import DicomSeries, group_series, order_series, read_series_hu
from .files import FileDataset, warn_small_splits
from .imageio import FITS, is_dicom_file, list_files, require_reader
from .splits import SPLIT_PARAMETERS, assert_groups_disjoint

__all__ = ["SHORT_VOLUMES", "WINDOWS", "CTMontage", "Volume", "montage_slices",
           "read_dicom_series", "read_nifti", "require_train_and_test", "slice_usage",
           "tile_montages", "volume_to_montages", "warn_short_volumes", "window_hu"]

WINDOWS: dict[str, tuple[float, float]] = {  # name: (center, width) in HU
    "soft-tissue": (40.0, 400.0),
    "abdomen": (60.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
# Montage datasets split by volume group (patient) and leave duplicate images to the runner's
# audit (medsynbench.hygiene.audit_prepared, a warning with names): montages of one volume are
# never copies of another patient's, so there is no ``duplicates`` policy to choose here.
MONTAGE_SPLIT_PARAMETERS = {k: v for k, v in SPLIT_PARAMETERS.items() if k != "duplicates"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")
SHORT_VOLUMES = ("error", "fewer", "repeat")


def window_hu(volume: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map Hounsfield units in the window (center, width) linearly onto uint8."""
    if width <= 0:
        raise DataError(f"HU window width must be > 0, got {width}")
    scaled = (np.asarray(volume, dtype=np.float32) - (center - width / 2.0)) / width
    return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


# --- montages --------------------------------------------------------------------------------


def montage_slices(depth: int, n_montages: int, per_montage: int = 4,
                   short_volumes: str = "error", volume: str = "volume") -> np.ndarray:
    """Slice indices (montages × per_montage) evenly spaced over ``depth`` slices.

    With ``depth >= n_montages × per_montage`` no index repeats. Shorter volumes follow
    ``short_volumes`` (see the module docstring); "error" raises a DataError naming the
    volume, its slice count and the settings to change.
    """
    if short_volumes not in SHORT_VOLUMES:
        raise DataError(f"short_volumes must be one of {', '.join(SHORT_VOLUMES)}")
    need = n_montages * per_montage
    if depth < need and short_volumes != "repeat":
        fits = depth // per_montage
        if fits == 0:
            raise DataError(
                f"volume {volume} has {depth} slice(s), fewer than one montage of "
                f"slices_per_montage = {per_montage}: a montage would repeat slices. Use "
                f"slices_per_montage = 1, drop this volume, or set short_volumes = \"repeat\""
            )
        if short_volumes == "error":
            raise DataError(
                f"volume {volume} has {depth} slices, fewer than n_montages × "
                f"slices_per_montage = {n_montages} × {per_montage} = {need}: montages would "
                f"repeat slices. Lower n_montages to {fits} (⌊{depth}/{per_montage}⌋), lower "
                f"slices_per_montage, or set short_volumes = \"fewer\" ({fits} montages for "
                f"this volume) or \"repeat\" (repeats slices)"
            )
        n_montages, need = fits, fits * per_montage
    chosen = np.round(np.linspace(0, depth - 1, need)).astype(int)
    return chosen.reshape(n_montages, per_montage)


def tile_montages(volume: np.ndarray, slices: np.ndarray, side: int) -> np.ndarray:
    """uint8 Z×H×W slices → montages (N×1×side×side): row ``i`` of ``slices`` tiled row-major."""
    per_montage = slices.shape[1]
    grid = round(per_montage**0.5)
    if grid * grid != per_montage:
        raise DataError(f"slices per montage must be a square number, got {per_montage}")
    if side % grid:
        raise DataError(f"montage side {side} is not divisible by the grid {grid}")
    tile = side // grid
    out = np.empty((len(slices), 1, side, side), dtype=np.uint8)
    for m, row in enumerate(slices):
        for j, index in enumerate(row):
            axial = volume[index]
            if axial.shape != (tile, tile):
                axial = np.asarray(Image.fromarray(np.ascontiguousarray(axial)).resize(
                    (tile, tile), Image.Resampling.BICUBIC))
            r, c = divmod(j, grid)
            out[m, 0, r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = axial
    return out


def volume_to_montages(
    volume: np.ndarray, side: int, n_montages: int = 20, per_montage: int = 4,
    short_volumes: str = "error", name: str = "volume",
) -> np.ndarray:
    """uint8 Z×H×W axial slices → ``n_montages`` montages (N×1×side×side), 2×2 for 4 slices."""
    slices = montage_slices(len(volume), n_montages, per_montage, short_volumes, name)
    return tile_montages(volume, slices, side)


def slice_usage(name: str, depth: int, slices: np.ndarray) -> dict[str, Any]:
    """What a volume's montages show: slices available, montages, distinct slices used."""
    used = len(np.unique(slices))
    return {"volume": name, "slices": depth, "montages": len(slices), "slices_used": used,
            "unique_slice_ratio": round(used / max(slices.size, 1), 4)}


def warn_short_volumes(usage: Sequence[Mapping[str, Any]], n_montages: int, policy: str,
                       ctx: RunContext, dataset: str) -> None:
    """Warn (and log) about volumes that got fewer montages or repeated slices."""
    fewer = [u for u in usage if u["montages"] < n_montages]
    repeated = [u for u in usage if u["unique_slice_ratio"] < 1.0]
    for found, what in ((fewer, "fewer montages than n_montages"),
                        (repeated, "montages that REPEAT slices (unique-slice ratio < 1)")):
        if not found:
            continue
        examples = "; ".join(f"{u['volume']}: {u['slices']} slices → {u['montages']} montages, "
                             f"ratio {u['unique_slice_ratio']}" for u in found[:3])
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        message = (f"{dataset}: {len(found)} of {len(usage)} volumes gave {what} "
                   f"(short_volumes = \"{policy}\"): {examples}{more}")
        warnings.warn(message, UserWarning, stacklevel=3)
        ctx.log(message)


def require_train_and_test(splits: Mapping[str, ImageSet], data: ImageSet, what: str) -> None:
    """Refuse a group-aware split that left train or test empty (too few groups per class)."""
    empty = [name for name in ("train", "test") if len(splits.get(name, ())) == 0]
    if not empty:
        return
    groups = np.asarray(data.groups)
    per_class = {int(c): len(np.unique(groups[data.labels == c])) for c in np.unique(data.labels)}
    raise DataError(
        f"the group-aware split of {what} left {' and '.join(empty)} empty: "
        f"{len(np.unique(groups))} group(s) (patients or volumes), per class {per_class}. The "
        "split is stratified by class and keeps each group on one side, so a class needs 2 "
        "groups to reach both sides. With 2 groups in one class set val_fraction = 0 and "
        "test_fraction = 0.5 (one group per side); with 1 group there is no honest split — "
        "add data"
    )


# --- readers ----------------------------------------------------------------------------------


def read_nifti(path: Path) -> np.ndarray:
    """A NIfTI volume as float32 Z×H×W in HU (axial slices in radiological display)."""
    nib = require_reader("nibabel", "nifti", "reading NIfTI files")
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


def read_dicom_series(folder: Path, gap_tolerance: float = 0.1) -> np.ndarray:
    """The one DICOM series in ``folder`` as float32 Z×H×W in HU, ordered along its normal."""
    series, bad = group_series(p for p in sorted(folder.iterdir()) if p.is_file())
    if bad:
        raise DataError(f"unreadable DICOM files in {folder}:\n" + list_files(bad))
    if len(series) != 1:
        raise DataError(f"{folder} holds {len(series)} DICOM series, expected one")
    return read_series_hu(order_series(series[0], gap_tolerance, folder).files)


# --- finding volumes --------------------------------------------------------------------------


@dataclass(frozen=True)
class Volume:
    """One volume to montage: a NIfTI file, or the ordered slice files of one DICOM series."""

    name: str
    label: int
    group: str
    files: tuple[Path, ...]
    ordered_by: str = "NIfTI"

    def read(self) -> np.ndarray:
        """float32 Z×H×W in HU."""
        if _is_nifti(self.files[0]):
            return read_nifti(self.files[0])
        return read_series_hu(self.files)


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def volume_files(folder: Path, recursive: bool = True) -> list[Path]:
    """NIfTI and DICOM files under ``folder`` (hidden files and folders skipped)."""
    found = []
    for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") for p in parts) or not path.is_file():
            continue
        if _is_nifti(path) or (path.name.upper() != "DICOMDIR" and is_dicom_file(path)):
            found.append(path)
    return found


@dataclass
class _Folder:
    """A candidate class folder: its NIfTI files and its DICOM files grouped into series."""

    path: Path
    nifti: list[Path]
    series: list[DicomSeries]
    unreadable: list[tuple[Path, str]]
    nested: bool

    @property
    def is_one_series(self) -> bool:
        """Holds exactly one DICOM series, directly (the ``<root>/<series>/*.dcm`` layout)."""
        return not self.nested and not self.nifti and len(self.series) == 1


def _read_folder(path: Path) -> _Folder:
    files = volume_files(path)
    series, unreadable = group_series(p for p in files if not _is_nifti(p))
    nested = any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir())
    return _Folder(path, [p for p in files if _is_nifti(p)], series, unreadable, nested)


def find_class_folders(root: Path, class_folders: bool | None
                       ) -> tuple[list[_Folder], bool, str]:
    """The folders to read, whether they are classes (else one class 'ct') and why.

    Auto (``class_folders=None``): volume files directly under ``root`` → one class; else the
    sub-folders are classes unless every one of them holds exactly one DICOM series and
    nothing else (the older ``<root>/<series>/*.dcm`` layout).
    """
    subdirs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    if class_folders is False:
        return [_read_folder(root)], False, "one class: class_folders = false"
    if (class_folders is None and volume_files(root, False)) or not subdirs:
        return [_read_folder(root)], False, "one class: volume files directly under the root"
    folders = [_read_folder(p) for p in subdirs]
    if class_folders is None and all(f.is_one_series for f in folders):
        merged = _Folder(root, [], [s for f in folders for s in f.series],
                         [u for f in folders for u in f.unreadable], False)
        return [merged], False, ("one class: every sub-folder holds one DICOM series (set "
                                 "class_folders = true to read the sub-folders as classes)")
    return folders, True, "classes: the sub-folders of the root"


class CTMontage(FileDataset):
    """CT volumes (NIfTI or DICOM series) in class folders → 20 montages of 4 slices each."""

    name: ClassVar[str] = "ct-montage"
    version: ClassVar[str] = "0.2.0"  # DICOM series by UID, patient groups, short volumes
    modality: ClassVar[str] = "ct"
    channels: ClassVar[int] = 1
    citation: ClassVar[str] = (
        "Montage protocol of Nan, Felder et al., The Beauty or the Beast: Which Aspect of "
        "Synthetic Medical Images Deserves Our Focus? (cite your CT source as well)."
    )
    license: ClassVar[str] = "as per your CT data"
    default_folder: ClassVar[str] = "ct"
    download: ClassVar[str] = (
        "your CT volumes (e.g. a TCIA collection) as NIfTI (.nii/.nii.gz) or DICOM slices "
        "(one file per slice, any folder structure: series are found by SeriesInstanceUID)."
    )
    layout: ClassVar[str] = (
        "  <root>/<class>/*.dcm   (slices of many series mixed: grouped by SeriesInstanceUID)\n"
        "  or <root>/<class>/<series or patient folders>/.../*.dcm\n"
        "  or <root>/<class>/<volume>.nii.gz\n"
        "  (volumes directly under <root>, or one series per sub-folder: one class 'ct'; set\n"
        "  class_folders = true / false to decide instead)"
    )
    classes_from: str = ""
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
                            check=at_least(1)),
        "slices_per_montage": Param(4, int, "axial slices per montage (a square number)",
                                    choices=(1, 4, 9, 16)),
        "short_volumes": Param("error", str, "volumes with fewer than n_montages × "
                               "slices_per_montage slices: error, fewer (⌊depth/k⌋ montages, "
                               "warned) or repeat (repeats slices, warned)",
                               choices=SHORT_VOLUMES),
        "class_folders": Param(None, bool, "sub-folders of root are classes (None: decide "
                               "from the layout)", nullable=True),
        "gap_tolerance": Param(0.1, float, "DICOM slice gaps may differ from their median by "
                               "this fraction of it (+0.01 mm; 1.0 accepts doubled gaps)",
                               check=nonnegative),
        "fit": Param("stretch", str, "unused for volumes (slices are resized)", choices=FITS),
        "on_error": Param("fail", str, "unreadable files or inconsistent series: fail or skip",
                          choices=("fail", "skip")),
        **MONTAGE_SPLIT_PARAMETERS,
    }

    def window(self) -> tuple[float, float]:
        center, width = WINDOWS[self.params["window"]]
        if self.params.get("window_center") is not None:
            center = float(self.params["window_center"])
        if self.params.get("window_width") is not None:
            width = float(self.params["window_width"])
        return center, width

    def _fail_or_skip(self, problem: str, skipped: list[str], entries: Sequence[str]) -> None:
        if self.params["on_error"] != "skip":
            raise DataError(problem)
        skipped.extend(entries)

    def scan(self) -> tuple[list[Volume], tuple[str, ...], list[str]]:
        """Volumes with labels and groups, class names, and skipped files/series (reasons).

        How the classes were found is in :attr:`classes_from` afterwards.
        """
        root = self.root
        folders, are_classes, self.classes_from = find_class_folders(
            root, self.params["class_folders"])
        names = tuple(f.path.name for f in folders) if are_classes else ("ct",)
        volumes: list[Volume] = []
        skipped: list[str] = []
        for label, folder in enumerate(folders):
            if folder.unreadable:
                self._fail_or_skip(f"unreadable DICOM files under {folder.path}:\n"
                                   + list_files(folder.unreadable), skipped,
                                   [str(p) for p, _ in folder.unreadable])
            if not folder.nifti and not folder.series:
                raise DataError(f"{'class folder ' if are_classes else ''}{folder.path} holds "
                                f"no NIfTI volumes or DICOM series\n{self.layout}")
            volumes += [Volume(str(p.relative_to(root)), label, _volume_id(p), (p,))
                        for p in folder.nifti]
            volumes += self._series_volumes(folder.series, label, skipped)
        return volumes, names, skipped

    def _series_volumes(self, series_list: Sequence[DicomSeries], label: int,
                        skipped: list[str]) -> list[Volume]:
        """Ordered, checked DICOM series as volumes, named by folder (and patient and UID
        when one folder holds several series)."""
        root = self.root
        per_folder = Counter(series.files[0].parent for series in series_list)
        volumes = []
        for series in series_list:
            try:
                order = order_series(series, self.params["gap_tolerance"], root)
            except DataError as exc:
                self._fail_or_skip(str(exc), skipped, [f"{series.describe(root)}: {exc}"])
                continue
            folder = series.files[0].parent
            name = folder.relative_to(root).as_posix()
            if per_folder[folder] > 1:
                patient = series.headers[0].get("PatientID")
                name = "/".join([name, *([str(patient)] if patient else []), series.uid])
            volumes.append(Volume(name, label, series.group, tuple(order.files),
                                  order.ordered_by))
        return volumes

    def load(self, ctx: RunContext) -> DataSplits:
        """Find, read, window and montage every volume, then split by patient (group)."""
        sources = volume_files(self.root)

        def build() -> DataSplits:
            volumes, class_names, skipped = self.scan()
            ctx.log(f"{self.name}: {self.classes_from}")
            center, width = self.window()
            n, k = self.params["n_montages"], self.params["slices_per_montage"]
            policy = self.params["short_volumes"]
            montages, labels, groups, usage = [], [], [], []
            with ctx.progress(f"{self.name}: volumes", total=len(volumes)) as task:
                for volume in volumes:
                    try:
                        hu = volume.read()
                    except DataError as exc:
                        if "not installed" in str(exc):
                            raise
                        self._fail_or_skip(str(exc), skipped, [f"{volume.name}: {exc}"])
                        task.advance(1)
                        continue
                    slices = montage_slices(len(hu), n, k, policy, volume.name)
                    montages.append(tile_montages(window_hu(hu, center, width), slices,
                                                  self.params["resolution"]))
                    usage.append({**slice_usage(volume.name, len(hu), slices),
                                  "group": volume.group, "ordered_by": volume.ordered_by})
                    labels += [volume.label] * len(slices)
                    groups += [volume.group] * len(slices)
                    task.advance(1)
            if not montages:
                raise DataError(f"no CT volume under {self.root} could be read")
            warn_short_volumes(usage, n, policy, ctx, self.name)
            data = ImageSet(np.concatenate(montages), np.asarray(labels), np.asarray(groups))
            splits = self.split_random(data)
            assert_groups_disjoint(splits)
            require_train_and_test(splits, data, f"{self.name} at {self.root}")
            warn_small_splits(splits, len(class_names), ctx)
            tiles = sum(u["montages"] for u in usage) * k
            info = {"window_hu": [center, width], "skipped_files": skipped,
                    "classes_from": self.classes_from,
                    "volumes": len(usage), "groups": len(set(groups)), "slices_per_volume": usage,
                    "unique_slice_ratio": round(sum(u["slices_used"] for u in usage)
                                                / max(tiles, 1), 4),
                    **self.describe()}
            return DataSplits(splits, class_names, self.modality, info)

        return self.prepare(ctx, sources, build)


def _volume_id(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
