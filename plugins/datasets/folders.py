"""Datasets stored as class folders: ``imagefolder``, ``kaggle-cxr``, ``kather2016``,
``lc25000`` and ``bcss-lizard``.

A root either holds split folders (``train/``, ``val/``, ``test/``, each with one folder per
class; the split is then kept as given) or class folders directly (then a seeded, stratified,
group-aware split is made with ``val_fraction``/``test_fraction``).

Group ids (patient, slide, source tile) come from ``group_by``:

* ``manifest:COLUMN`` — a CSV (``manifest``, default ``<root>/MANIFEST.csv``) with a ``file``
  column (path relative to the root, or a bare file name) and the group column;
* ``dicom:KEYWORD`` — a DICOM header tag such as ``PatientID`` or ``StudyInstanceUID``, read
  without pixels (needs pydicom);
* ``regex:PATTERN`` — group 1 of a regular expression searched in the file stem
  (``group_regex`` of ``imagefolder`` is an alias).

Without ``group_by`` each dataset uses its own rule (kaggle-cxr: the manifest's
``patient_key`` when there is one, else the file-name pattern; lc25000: the manifest's
``group_id``; bcss-lizard: the slide in the file name). Groups are resolved before any image is
decoded, so a bad manifest or tag fails at once and caches nothing. Given split folders are
kept, but groups that straddle them are warned about (``resplit = true`` re-splits by group).

``max_per_class = N`` picks files before decoding, in scan order (class folders sorted, files
sorted by path): given split folders keep the first N files of each class each; a random split
reads the first N × (number of splits it makes) files of each class, splits them, and keeps the
first N of each class on every side.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import DataSplits, ImageSet, Param, RunContext
from medsynbench.errors import DataError
from PIL import Image

from .bias import BIAS_PARAMETERS, apply_bias
from .files import (
    FILE_PARAMETERS,
    MAX_PER_CLASS,
    FileDataset,
    first_per_class,
    scan_class_folders,
)
from .splits import (
    GROUP_PARAMETERS,
    SPLIT_PARAMETERS,
    check_regex,
    dicom_groups,
    manifest_groups,
    regex_groups,
)

__all__ = ["LC25000", "BcssLizard", "ClassFolderDataset", "ImageFolder", "KaggleCXR", "Kather2016"]

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}
PATHOLOGY_CLASSES = ("inflammatory", "necrosis", "stroma", "tumor", "fat", "gland")


RESPLIT = Param(False, bool, "merge the given split folders and re-split randomly "
                "(group-aware) with val_fraction/test_fraction")
FOLDER_PARAMETERS: dict[str, Param] = {
    **FILE_PARAMETERS, **SPLIT_PARAMETERS, "resplit": RESPLIT, **GROUP_PARAMETERS,
    "max_per_class": MAX_PER_CLASS}


class ClassFolderDataset(FileDataset):
    """Class folders, optionally under split folders; see the module docstring."""

    # 0.2.0: duplicates policy (default group), group_by, image names.
    version: ClassVar[str] = "0.2.0"
    parameters: ClassVar[dict[str, Param]] = FOLDER_PARAMETERS
    class_names_fixed: ClassVar[tuple[str, ...] | None] = None
    group_pattern: ClassVar[str | None] = None  # regex on the file stem; group 1 = group id

    def data_root(self) -> Path:
        """The folder holding split or class folders (subclasses may look one level deeper)."""
        return self.root

    def split_dirs(self, base: Path) -> dict[str, Path]:
        """Split folders under ``base`` by canonical split name (empty: class folders only)."""
        found: dict[str, Path] = {}
        for child in sorted(base.iterdir()):
            canonical = SPLIT_ALIASES.get(child.name.lower())
            if child.is_dir() and canonical and canonical not in found:
                found[canonical] = child
        if found and "train" not in found:
            raise DataError(f"{base} has split folders {sorted(found)} but no train/ folder")
        return found

    def group_rule(self) -> str | None:
        """``group_by``, else ``group_regex`` (alias), else :meth:`default_group_rule`."""
        if self.params.get("group_by"):
            return str(self.params["group_by"])
        if self.params.get("group_regex"):
            return f"regex:{self.params['group_regex']}"
        return self.default_group_rule()

    def default_group_rule(self) -> str | None:
        """The dataset's own rule: its file-name pattern, if any."""
        return f"regex:{self.group_pattern}" if self.group_pattern else None

    def manifest_path(self) -> Path:
        """The manifest CSV: ``manifest`` (relative to the root, or absolute) or MANIFEST.csv."""
        given = self.params.get("manifest")
        if not given:
            return self.root / "MANIFEST.csv"
        path = Path(given).expanduser()
        return path if path.is_absolute() else self.root / path

    def resolve_groups(self, files: Sequence[Path], ctx: RunContext) -> list[str] | None:
        """Group id of every file by :meth:`group_rule` (None: no groups), before decoding."""
        rule = self.group_rule()
        if rule is None:
            return None
        kind, _, what = rule.partition(":")
        if kind == "regex":
            return regex_groups(what, files)
        if kind == "dicom":
            return dicom_groups(what, files, self.image_name, f"dataset {self.name!r}")
        found = manifest_groups(self.manifest_path(), self.root, what, files,
                                f"dataset {self.name!r}")
        absent = [f for f in files if f not in found]
        if absent:
            ctx.log(f"{self.name}: {len(absent)} file(s) are not in the manifest; each is "
                    f"its own group, e.g. {self.image_name(absent[0])}")
        return [found.get(f, f"file:{self.image_name(f)}") for f in files]

    def label_map(self, folder_names: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
        """Output class names and folder-label → output-label (-1: drop). Identity here."""
        return tuple(folder_names), np.arange(len(folder_names))

    def scan(self) -> tuple[dict[str, list[tuple[Path, int]]], tuple[str, ...], list[Path]]:
        """Files per split ("all" when there are no split folders), folder names, ignored files."""
        base = self.data_root()
        dirs = self.split_dirs(base)
        if not dirs:
            items, names, ignored = scan_class_folders(base, self.class_names_fixed)
            return {"all": items}, names, ignored
        items, names, ignored = scan_class_folders(dirs["train"], self.class_names_fixed)
        per_split = {"train": items}
        for split, folder in dirs.items():
            if split != "train":
                per_split[split], _, more = scan_class_folders(folder, names, allow_missing=True)
                ignored += more
        if self.params.get("resplit"):
            return {"all": [item for items in per_split.values() for item in items]}, names, ignored
        return per_split, names, ignored

    def load(self, ctx: RunContext) -> DataSplits:
        """Scan, resolve groups, read (through the prepared cache), apply the duplicates
        policy and split."""
        per_split, folder_names, ignored = self.scan()
        class_names, mapping = self.label_map(folder_names)
        if ignored:
            ctx.log(f"{self.name}: ignored {len(ignored)} non-image files, e.g. {ignored[0]}")
        kept = {split: [(p, int(mapping[c])) for p, c in items if mapping[c] >= 0]
                for split, items in per_split.items()}
        if self.max_per_class is not None:
            kept = {split: self._first_files(items, split) for split, items in kept.items()}
        groups = {split: self.resolve_groups([p for p, _ in items], ctx)
                  for split, items in kept.items()}
        if "all" not in kept:
            self.warn_groups_across(kept, groups, ctx)
        # Every listed file, not only those kept: which are the first N depends on them all.
        sources = [p for items in per_split.values() for p, _ in items]
        rule = self.group_rule()
        if rule and rule.startswith("manifest:"):
            sources.append(self.manifest_path())  # an edited manifest is a new preparation

        def build() -> DataSplits:
            sets: dict[str, ImageSet] = {}
            info: dict[str, Any] = {"skipped_files": [], "upsampled": 0,
                                    "ignored_files": len(ignored), "groups_from": rule,
                                    **self.describe()}
            if self.max_per_class is not None:
                info["max_per_class"] = self.max_per_class
            for split, items in kept.items():
                data, read_info = self.read(
                    [p for p, _ in items], [c for _, c in items], ctx, split, groups[split])
                info["skipped_files"] += read_info["skipped_files"]
                info["upsampled"] += read_info["upsampled"]
                if len(data) or split in ("train", "test", "all"):
                    sets[split] = data  # an empty val/extra split folder is dropped
            sets, split_info = self.finish_splits(sets, class_names, ctx)
            info.update(split_info)
            return DataSplits(sets, class_names, self.modality, info)

        return self.prepare(ctx, sources, build)

    def _first_files(self, items: list[tuple[Path, int]], split: str) -> list[tuple[Path, int]]:
        """The first ``max_per_class`` files of each class (a random split's pool: that many
        per side it makes, cut to the cap per side after the split, in finish_splits)."""
        limit = self.max_per_class
        assert limit is not None
        if split == "all":
            sides = 1 + (self.params["val_fraction"] > 0) + (self.params["test_fraction"] > 0)
            limit *= sides
        index = first_per_class([c for _, c in items], limit)
        return [items[i] for i in index.tolist()]

    def warn_groups_across(
        self, kept: dict[str, list[tuple[Path, int]]], groups: dict[str, list[str] | None],
        ctx: RunContext,
    ) -> None:
        """Given split folders are kept: warn, naming them, about groups found in two splits."""
        seen: dict[str, str] = {}
        across: dict[str, list[str]] = {}
        for split in kept:
            for group in dict.fromkeys(groups[split] or []):
                if group in seen and seen[group] != split:
                    across.setdefault(group, [seen[group]]).append(split)
                seen.setdefault(group, split)
        if across:
            examples = ", ".join(f"{g} ({'/'.join(s)})" for g, s in list(across.items())[:5])
            message = (f"{self.name}: {len(across)} group(s) ({self.group_rule()}) appear in more "
                       f"than one of the given split folders, e.g. {examples}: near-copies of "
                       "one patient/slide leak across the split; set resplit = true to re-split "
                       "by group")
            warnings.warn(message, UserWarning, stacklevel=3)
            ctx.log(message)


class ImageFolder(ClassFolderDataset):
    """Any folder of class folders (optionally under train/val/test folders)."""

    name: ClassVar[str] = "imagefolder"
    modality: ClassVar[str] = "unspecified"
    citation: ClassVar[str] = "Your own data: cite its source."
    license: ClassVar[str] = "as per your data"
    default_folder: ClassVar[str] = "imagefolder"
    download: ClassVar[str] = "nothing: point `root` at your own images."
    layout: ClassVar[str] = (
        "  <root>/<class>/<image files>                   (split randomly), or\n"
        "  <root>/{train,val,test}/<class>/<image files>  (split kept as given)\n"
        "  image files: .png .jpg .tif ... and DICOM .dcm (or DICOM files without an\n"
        "  extension, e.g. IM0001 or a UID, recognised by their DICM preamble)"
    )
    parameters: ClassVar[dict[str, Param]] = {
        **FOLDER_PARAMETERS,
        "channels": Param(3, int, "1: grayscale, 3: RGB", choices=(1, 3)),
        "group_regex": Param(None, str, "regex on file names; group 1 is the group id "
                             "(e.g. '^(patient\\d+)_'); alias of group_by = regex:...",
                             nullable=True, check=check_regex),
        "modality": Param("unspecified", str, "modality recorded with the data"),
    }

    def check(self) -> None:
        if not self.params.get("root"):
            raise DataError(
                "dataset 'imagefolder' needs root = \"<folder>\": a folder of class folders "
                "(<root>/<class>/*.png) or of split folders (<root>/train/<class>/*.png)"
            )
        super().check()

    def load(self, ctx: RunContext) -> DataSplits:
        data = super().load(ctx)
        return DataSplits(data.splits, data.class_names, self.params["modality"], data.info)


class KaggleCXR(ClassFolderDataset):
    """Pediatric chest X-ray pneumonia (Kermany et al.; Kaggle 'chest-xray-pneumonia').

    Reads the Kaggle layout (``chest_xray/chest_xray/{train,val,test}/...`` JPEGs) and the
    shared 128-px PNG copy (``chest_xray/{train,val,test}/...`` plus ``MANIFEST.csv``).
    Groups: with a manifest that has ``patient_key`` (class:subtype:patient, e.g.
    ``PNEUMONIA:bacteria:person1``) that column, because 170 ``personN`` numbers occur in both
    train and test — always as bacteria in one and virus in the other, two independently
    numbered series — so grouping by ``patient_id`` alone would call the official split
    leaky; with ``patient_key`` it is patient-disjoint. ``group_by = "manifest:patient_id"``
    takes the cautious reading. Without a manifest: the patient number in the file name.
    Resolution: 512 by default, or the files' own side when they are square and smaller
    (the 128-px copy), so nothing is upsampled unless asked.
    """

    name: ClassVar[str] = "kaggle-cxr"
    modality: ClassVar[str] = "xray"
    channels: ClassVar[int] = 1
    default_resolution: ClassVar[int | None] = 512
    citation: ClassVar[str] = (
        "Kermany DS et al. Identifying Medical Diagnoses and Treatable Diseases by Image-Based "
        "Deep Learning. Cell 172(5):1122-1131, 2018. doi:10.17632/rscbjbr9sj.2"
    )
    license: ClassVar[str] = "CC BY 4.0"
    default_folder: ClassVar[str] = "chest_xray"
    download: ClassVar[str] = (
        "Kaggle 'paultimothymooney/chest-xray-pneumonia' (archive.zip, 1.2 GB) or Mendeley Data "
        "doi:10.17632/rscbjbr9sj.2 (ChestXRay2017.zip); unzip it."
    )
    layout: ClassVar[str] = (
        "  <root>/train/{NORMAL,PNEUMONIA}/*.jpeg   (5,216 images)\n"
        "  <root>/val/{NORMAL,PNEUMONIA}/*.jpeg     (16)\n"
        "  <root>/test/{NORMAL,PNEUMONIA}/*.jpeg    (624)"
    )
    class_names_fixed: ClassVar[tuple[str, ...] | None] = ("NORMAL", "PNEUMONIA")
    parameters: ClassVar[dict[str, Param]] = {**FOLDER_PARAMETERS, **BIAS_PARAMETERS}
    # person123_bacteria_456 / IM-0115-0001 / NORMAL2-IM-1427-0001: the patient number.
    group_pattern: ClassVar[str | None] = r"^(person\d+|(?:NORMAL2-)?IM-\d+)"

    def default_group_rule(self) -> str | None:
        manifest = self.manifest_path()
        if manifest.is_file():
            with manifest.open(newline="") as handle:
                columns = next(csv.reader(handle), [])
            if "file" in columns and "patient_key" in columns:
                return "manifest:patient_key"
        return super().default_group_rule()

    @property
    def resolution(self) -> int | None:
        if self.params.get("resolution"):
            return int(self.params["resolution"])
        side = getattr(self, "_source_side", None)
        return side if side and side < 512 else 512

    def scan(self) -> tuple[dict[str, list[tuple[Path, int]]], tuple[str, ...], list[Path]]:
        found = super().scan()
        first = next((p for items in found[0].values() for p, _ in items), None)
        if first is not None and not self.params.get("resolution"):
            try:
                with Image.open(first) as img:
                    self._source_side = img.size[0] if img.size[0] == img.size[1] else None
            except OSError:
                self._source_side = None
        return found

    def data_root(self) -> Path:
        # The Kaggle zip nests chest_xray/chest_xray/ (and a __MACOSX copy).
        for candidate in (self.root / "chest_xray", self.root):
            if (candidate / "train").is_dir():
                return candidate
        return self.root

    def label_map(self, folder_names: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
        return ("normal", "pneumonia"), np.arange(2)

    def load(self, ctx: RunContext) -> DataSplits:
        """The official split, with marker injection / border crop when asked."""
        return apply_bias(super().load(ctx), self.params, self.params["split_seed"])


# Kather 2016 folder → pathology-study class. COMPLEX (mixed stroma/tumour) and EMPTY (no
# tissue) have no counterpart and are dropped; DEBRIS (necrosis, haemorrhage, mucus) stands
# for necrosis, LYMPHO for inflammatory, MUCOSA (normal mucosal glands) for gland.
KATHER_FOLDERS = ("01_TUMOR", "02_STROMA", "03_COMPLEX", "04_LYMPHO", "05_DEBRIS", "06_MUCOSA",
                  "07_ADIPOSE", "08_EMPTY")
KATHER_TO_PATHOLOGY = {"01_TUMOR": "tumor", "02_STROMA": "stroma", "04_LYMPHO": "inflammatory",
                       "05_DEBRIS": "necrosis", "06_MUCOSA": "gland", "07_ADIPOSE": "fat"}


class Kather2016(ClassFolderDataset):
    """Colorectal cancer H&E texture tiles, 8 classes (Kather et al. 2016)."""

    name: ClassVar[str] = "kather2016"
    modality: ClassVar[str] = "pathology"
    default_resolution: ClassVar[int | None] = 150
    citation: ClassVar[str] = (
        "Kather JN et al. Multi-class texture analysis in colorectal cancer histology. "
        "Scientific Reports 6:27988, 2016. doi:10.1038/srep27988; data doi:10.5281/zenodo.53169"
    )
    license: ClassVar[str] = "CC BY 4.0"
    default_folder: ClassVar[str] = "kather2016"
    download: ClassVar[str] = (
        "Zenodo record 53169, Kather_texture_2016_image_tiles_5000.zip (5,000 TIF tiles, "
        "150×150); unzip it."
    )
    layout: ClassVar[str] = "  <root>/{01_TUMOR,02_STROMA,...,08_EMPTY}/*.tif   (625 per class)"
    class_names_fixed: ClassVar[tuple[str, ...] | None] = KATHER_FOLDERS
    parameters: ClassVar[dict[str, Param]] = {
        **FOLDER_PARAMETERS,
        "classes": Param("kather8", str, "kather8: the 8 folders; pathology6: mapped onto the "
                         "pathology study's classes (COMPLEX, EMPTY dropped)",
                         choices=("kather8", "pathology6")),
    }

    def data_root(self) -> Path:
        for candidate in (self.root, self.root / "Kather_texture_2016_image_tiles_5000",
                          self.root / "tiles_150px_png"):
            if (candidate / "01_TUMOR").is_dir():
                return candidate
        return self.root

    def label_map(self, folder_names: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
        if self.params["classes"] == "kather8":
            return tuple(folder_names), np.arange(len(folder_names))
        mapping = [PATHOLOGY_CLASSES.index(KATHER_TO_PATHOLOGY[f]) if f in KATHER_TO_PATHOLOGY
                   else -1 for f in folder_names]
        return PATHOLOGY_CLASSES, np.asarray(mapping)


class LC25000(ClassFolderDataset):
    """Lung and colon H&E images, 5 classes; group-aware splits from MANIFEST.csv group_id."""

    name: ClassVar[str] = "lc25000"
    modality: ClassVar[str] = "pathology"
    default_resolution: ClassVar[int | None] = 224
    citation: ClassVar[str] = (
        "Borkowski AA et al. Lung and Colon Cancer Histopathological Image Dataset (LC25000). "
        "arXiv:1912.12142, 2019. Groups: Batchkala G et al., LC25000-clean, DEMI 2024."
    )
    license: ClassVar[str] = "no explicit licence; public research dataset — cite Borkowski 2019"
    default_folder: ClassVar[str] = "lc25000"
    download: ClassVar[str] = (
        "github.com/tampapath/lung_colon_image_set (LC25000.zip, 25,000 JPEGs at 768 px); "
        "optionally a MANIFEST.csv with columns file,group_id (LC25000-clean clusters) to split "
        "by source tile."
    )
    layout: ClassVar[str] = (
        "  <root>/images/{colon_aca,colon_n,lung_aca,lung_n,lung_scc}/*.jpeg\n"
        "  <root>/MANIFEST.csv   (optional: columns file,group_id), or\n"
        "  <root>/lung_colon_image_set/{colon_image_sets,lung_image_sets}/<class>/*.jpeg"
    )
    class_names_fixed: ClassVar[tuple[str, ...] | None] = (
        "colon_aca", "colon_n", "lung_aca", "lung_n", "lung_scc")

    def data_root(self) -> Path:
        return self.root / "images" if (self.root / "images").is_dir() else self.root

    def scan(self) -> tuple[dict[str, list[tuple[Path, int]]], tuple[str, ...], list[Path]]:
        base = self.data_root()
        official = base / "lung_colon_image_set"
        if not (base / "colon_aca").is_dir() and official.is_dir():
            items: list[tuple[Path, int]] = []
            ignored: list[Path] = []
            for label, cls in enumerate(self.class_names_fixed or ()):
                folder = official / ("colon_image_sets" if cls.startswith("colon")
                                     else "lung_image_sets")
                found, _, more = scan_class_folders(folder, [cls])
                items += [(p, label) for p, _ in found]
                ignored += more
            return {"all": items}, tuple(self.class_names_fixed or ()), ignored
        return super().scan()

    def default_group_rule(self) -> str | None:
        return "manifest:group_id" if self.manifest_path().is_file() else None

    def resolve_groups(self, files: Sequence[Path], ctx: RunContext) -> list[str] | None:
        groups = super().resolve_groups(files, ctx)
        if groups is None or self.params.get("group_by"):
            return groups
        # LC25000-clean numbers its clusters per class: the class makes them unique.
        return [g if g.startswith("file:") else f"{f.parent.name}/{g}"
                for f, g in zip(files, groups, strict=True)]

    def load(self, ctx: RunContext) -> DataSplits:
        if self.group_rule() is None:
            ctx.log(
                "lc25000: no MANIFEST.csv with group_id: LC25000 holds rotated/flipped copies "
                "of each source tile, so a random split leaks near-duplicates across splits"
            )
        return super().load(ctx)


class BcssLizard(ClassFolderDataset):
    """The pathology study's 6-class 256 px patches (BCSS + Lizard), from class folders."""

    name: ClassVar[str] = "bcss-lizard"
    modality: ClassVar[str] = "pathology"
    default_resolution: ClassVar[int | None] = 256
    citation: ClassVar[str] = (
        "Amgad M et al. Structured crowdsourcing enables convolutional segmentation of "
        "histology images (BCSS). Bioinformatics 35(18), 2019; Graham S et al. Lizard: a "
        "large-scale dataset for colonic nuclear instance segmentation. ICCV Workshops 2021. "
        "As used by Nan, Felder et al., The Beauty or the Beast."
    )
    license: ClassVar[str] = "BCSS: CC0 1.0; Lizard: CC BY-NC-SA 4.0"
    default_folder: ClassVar[str] = "bcss-lizard"
    download: ClassVar[str] = (
        "BCSS (github.com/PathologyDataScience/BCSS: images/ and masks/) and Lizard "
        "(warwick.ac.uk/fac/cross_fac/tia/data/lizard); make the patches with "
        "`medsynbench data prepare bcss-lizard --slides S --masks M --out <root>`."
    )
    layout: ClassVar[str] = (
        "  <root>/{train,val,test}/{inflammatory,necrosis,stroma,tumor,fat,gland}/*.png\n"
        "  (256×256; paper sizes: train 7,874 / val 3,741 / test 7,478; file names\n"
        "  <slide>__<x>_<y>.png give the slide as group)"
    )
    class_names_fixed: ClassVar[tuple[str, ...] | None] = PATHOLOGY_CLASSES
    group_pattern: ClassVar[str | None] = r"^(.+?)__"
