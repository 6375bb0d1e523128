"""Datasets stored as class folders: ``imagefolder``, ``kaggle-cxr``, ``kather2016``,
``lc25000`` and ``bcss-lizard``.

A root either holds split folders (``train/``, ``val/``, ``test/``, each with one folder per
class; the split is then kept as given) or class folders directly (then a seeded, stratified,
group-aware split is made with ``val_fraction``/``test_fraction``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import DataSplits, ImageSet, Param, RunContext
from medsynbench.errors import DataError

from .bias import BIAS_PARAMETERS, apply_bias
from .files import FILE_PARAMETERS, FileDataset, scan_class_folders, warn_small_splits
from .splits import SPLIT_PARAMETERS, assert_groups_disjoint

__all__ = ["LC25000", "BcssLizard", "ClassFolderDataset", "ImageFolder", "KaggleCXR", "Kather2016"]

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}
PATHOLOGY_CLASSES = ("inflammatory", "necrosis", "stroma", "tumor", "fat", "gland")


def _regex(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        compiled = re.compile(value)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    return None if compiled.groups >= 1 else "needs one capture group: the group id"


RESPLIT = Param(False, bool, "merge the given split folders and re-split randomly "
                "(group-aware) with val_fraction/test_fraction")


class ClassFolderDataset(FileDataset):
    """Class folders, optionally under split folders; see the module docstring."""

    parameters: ClassVar[dict[str, Param]] = {
        **FILE_PARAMETERS, **SPLIT_PARAMETERS, "resplit": RESPLIT}
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

    def group_of(self, path: Path) -> str | None:
        """Group id of a file (patient, slide, tile) from ``group_regex`` or the class pattern."""
        pattern = self.params.get("group_regex") or self.group_pattern
        if not pattern:
            return None
        match = re.search(pattern, path.stem)
        return match.group(1) if match else path.stem

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
        """Scan, read (through the prepared cache) and split."""
        per_split, folder_names, ignored = self.scan()
        class_names, mapping = self.label_map(folder_names)
        if ignored:
            ctx.log(f"{self.name}: ignored {len(ignored)} non-image files, e.g. {ignored[0]}")
        sources = [p for items in per_split.values() for p, _ in items]

        def build() -> DataSplits:
            sets: dict[str, ImageSet] = {}
            info: dict[str, Any] = {"skipped_files": [], "upsampled": 0,
                                    "ignored_files": len(ignored), **self.describe()}
            for split, items in per_split.items():
                kept = [(p, int(mapping[c])) for p, c in items if mapping[c] >= 0]
                groups = [self.group_of(p) for p, _ in kept]
                has_groups = any(g is not None for g in groups)
                data, read_info = self.read(
                    [p for p, _ in kept], [c for _, c in kept], ctx, split,
                    groups if has_groups else None,
                )
                info["skipped_files"] += read_info["skipped_files"]
                info["upsampled"] += read_info["upsampled"]
                if len(data) or split in ("train", "test", "all"):
                    sets[split] = data  # an empty val/extra split folder is dropped
            if "all" in sets:
                sets = self.split_random(sets.pop("all"))
                if self.params["group_split"]:
                    assert_groups_disjoint(sets)
                info["split"] = {"kind": "random", "seed": self.params["split_seed"],
                                 "group_aware": bool(self.params["group_split"])}
            else:
                info["split"] = {"kind": "folders"}
            warn_small_splits(sets, len(class_names), ctx)
            return DataSplits(sets, class_names, self.modality, info)

        return self.prepare(ctx, sources, build)


class ImageFolder(ClassFolderDataset):
    """Any folder of class folders (optionally under train/val/test folders)."""

    name: ClassVar[str] = "imagefolder"
    modality: ClassVar[str] = "unspecified"
    citation: ClassVar[str] = "Your own data: cite its source."
    license: ClassVar[str] = "as per your data"
    default_folder: ClassVar[str] = "imagefolder"
    download: ClassVar[str] = "nothing: point `root` at your own images."
    layout: ClassVar[str] = (
        "  <root>/<class>/*.png|jpg|tif ...            (split randomly), or\n"
        "  <root>/{train,val,test}/<class>/*.png ...  (split kept as given)"
    )
    parameters: ClassVar[dict[str, Param]] = {
        **FILE_PARAMETERS, **SPLIT_PARAMETERS, "resplit": RESPLIT,
        "channels": Param(3, int, "1: grayscale, 3: RGB", choices=(1, 3)),
        "group_regex": Param(None, str, "regex on file names; group 1 is the group id "
                             "(e.g. '^(patient\\d+)_')", nullable=True, check=_regex),
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
    """Pediatric chest X-ray pneumonia (Kermany et al.; Kaggle 'chest-xray-pneumonia')."""

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
    parameters: ClassVar[dict[str, Param]] = {
        **FILE_PARAMETERS, **SPLIT_PARAMETERS, "resplit": RESPLIT, **BIAS_PARAMETERS}
    # person123_bacteria_456 / IM-0115-0001 / NORMAL2-IM-1427-0001: the patient number.
    group_pattern: ClassVar[str | None] = r"^(person\d+|(?:NORMAL2-)?IM-\d+)"

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
        **FILE_PARAMETERS, **SPLIT_PARAMETERS, "resplit": RESPLIT,
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

    def _manifest_groups(self) -> dict[str, str]:
        manifest = self.root / "MANIFEST.csv"
        if not manifest.is_file():
            return {}
        with manifest.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "file" not in reader.fieldnames or (
                "group_id" not in reader.fieldnames
            ):
                raise DataError(
                    f"{manifest} needs the columns file and group_id; it has "
                    f"{', '.join(reader.fieldnames or [])}"
                )
            return {Path(row["file"]).name: row["group_id"] for row in reader}

    def group_of(self, path: Path) -> str | None:
        if not hasattr(self, "_groups"):
            self._groups = self._manifest_groups()
        group = self._groups.get(path.name)
        return None if group is None else f"{path.parent.name}/{group}"

    def load(self, ctx: RunContext) -> DataSplits:
        if not (self.root / "MANIFEST.csv").is_file():
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
