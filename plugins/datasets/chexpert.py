"""``chexpert-pe``: CheXpert frontal radiographs, pleural effusion vs none, with the privacy
study's A1/A2/B/C split (Xing, Felder, Nan, Walsh, Yang, *You Don't Have to Be Perfect to Be
Amazing*).

Label policy (declared, not guessed): the ``Pleural Effusion`` column holds 1 (positive),
0 (negative), −1 (uncertain) or blank (not mentioned). ``uncertain`` chooses U-Ignore
(``exclude``, default), U-Ones (``positive``) or U-Zeros (``negative``); ``blank`` chooses
``exclude`` (default: only explicit labels, which matches the study's ~75 % PE ratio) or
``negative``. Only frontal views (``Frontal/Lateral == Frontal``) are used.

Split: patients (``patientNNNNN`` in the path) are assigned whole to A1/A2/B/C in the study's
proportions, stratified by class, with a fixed seed; with ``sizes = "paper"`` each split is
then capped per class at the study's counts × ``scale``:

    A1 15,004 PE / 5,127 no-PE   A2 30,692 / 10,118   B 3,738 / 1,160   C 12,456 / 3,863

Split names: ``train`` = A1 (fitting and the real-only baseline), ``A2`` (remote data),
``B``, ``test`` = C (evaluation). The pediatric set D is ``kaggle-cxr``. Duplicate images
follow ``duplicates`` (see :mod:`.splits`): with ``group`` (default) copies of A1 images in
A2/B/C, and of earlier splits in later ones, are dropped and named.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import DataSplits, ImageSet, Param, RunContext
from medsynbench.errors import DataError
from medsynbench.params import in_range

from .bias import BIAS_PARAMETERS, apply_bias
from .files import FILE_PARAMETERS, FileDataset
from .splits import DUPLICATES, assert_groups_disjoint, split_indices

__all__ = ["PAPER_SPLITS", "CheXpertPE", "read_label_csv"]

# split: (PE, no-PE) image counts of the study; name in DataSplits.
PAPER_SPLITS: dict[str, tuple[int, int]] = {
    "A1": (15004, 5127), "A2": (30692, 10118), "B": (3738, 1160), "C": (12456, 3863)}
SPLIT_NAMES = {"A1": "train", "A2": "A2", "B": "B", "C": "test"}
LABEL_COLUMN = "Pleural Effusion"
CLASS_NAMES = ("no-PE", "PE")


def read_label_csv(path: Path, uncertain: str, blank: str) -> tuple[list[str], list[int]]:
    """Frontal image paths and 0/1 effusion labels from a CheXpert CSV under the policies."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for needed in ("Path", LABEL_COLUMN):
            if needed not in columns:
                raise DataError(
                    f"{path} has no column {needed!r} (columns: {', '.join(columns) or 'none'}); "
                    "expected a CheXpert train.csv/valid.csv"
                )
        paths, labels = [], []
        for row in reader:
            if row.get("Frontal/Lateral", "Frontal") != "Frontal":
                continue
            raw = (row[LABEL_COLUMN] or "").strip()
            if raw == "":
                if blank == "exclude":
                    continue
                label = 0
            else:
                value = float(raw)
                if value == -1.0:
                    if uncertain == "exclude":
                        continue
                    label = 1 if uncertain == "positive" else 0
                else:
                    label = int(value == 1.0)
            paths.append(row["Path"])
            labels.append(label)
    return paths, labels


class CheXpertPE(FileDataset):
    """CheXpert frontal views, pleural effusion, A1/A2/B/C split of the privacy study."""

    name: ClassVar[str] = "chexpert-pe"
    version: ClassVar[str] = "0.2.0"  # duplicates policy, image names
    modality: ClassVar[str] = "xray"
    channels: ClassVar[int] = 1
    default_resolution: ClassVar[int | None] = 256
    citation: ClassVar[str] = (
        "Irvin J et al. CheXpert: A Large Chest Radiograph Dataset with Uncertainty Labels and "
        "Expert Comparison. AAAI 2019. Split of Xing X, Felder F, Nan Y, Walsh S, Yang G. You "
        "Don't Have to Be Perfect to Be Amazing."
    )
    license: ClassVar[str] = (
        "Stanford University School of Medicine CheXpert Dataset Research Use Agreement"
    )
    default_folder: ClassVar[str] = "CheXpert-v1.0-small"
    download: ClassVar[str] = (
        "CheXpert-v1.0 or CheXpert-v1.0-small from stanfordmlgroup.github.io/competitions/"
        "chexpert (registration and research-use agreement required); unzip it."
    )
    layout: ClassVar[str] = (
        "  <root>/train.csv   (columns Path, Frontal/Lateral, Pleural Effusion, ...)\n"
        "  <root>/train/patient00001/study1/view1_frontal.jpg ..."
    )
    parameters: ClassVar[dict[str, Param]] = {
        **FILE_PARAMETERS,
        "csv": Param("train.csv", str, "label CSV under root"),
        "uncertain": Param("exclude", str, "uncertain (-1) labels: exclude (U-Ignore), "
                           "positive (U-Ones) or negative (U-Zeros)",
                           choices=("exclude", "positive", "negative")),
        "blank": Param("exclude", str, "blank (not mentioned) labels: exclude or negative",
                       choices=("exclude", "negative")),
        "sizes": Param("paper", str, "paper: cap splits at the study's counts × scale; "
                       "proportional: keep every image", choices=("paper", "proportional")),
        "scale": Param(1.0, float, "fraction of the study's split sizes (quick runs)",
                       check=in_range(0, 1, low_open=True)),
        "split_seed": Param(0, int, "seed of the patient split (fixed: reproducible)"),
        "duplicates": DUPLICATES,
        **BIAS_PARAMETERS,
    }

    def resolve(self, relative: str) -> Path:
        """A CSV ``Path`` (``CheXpert-v1.0-small/train/...``) as a file under the root."""
        rel = Path(relative)
        candidates = [self.root.parent / rel, self.root / rel]
        if len(rel.parts) > 1:  # the CSV repeats the root folder's own name
            candidates.append(self.root / Path(*rel.parts[1:]))
        return next((c for c in candidates if c.exists()), candidates[-1])

    def assign(self, labels: np.ndarray, patients: np.ndarray) -> dict[str, np.ndarray]:
        """Indices of each study split (A1, A2, B, C), patient-disjoint."""
        totals = {k: sum(v) for k, v in PAPER_SPLITS.items()}
        grand = sum(totals.values())
        fractions = {k: totals[k] / grand for k in PAPER_SPLITS}
        parts = split_indices(labels, fractions, self.params["split_seed"], patients)
        if self.params["sizes"] == "paper":
            rng = np.random.default_rng(self.params["split_seed"] + 1)
            for split, (n_pe, n_no) in PAPER_SPLITS.items():
                keep = []
                for label, target in ((1, n_pe), (0, n_no)):
                    idx = parts[split][labels[parts[split]] == label]
                    cap = round(target * self.params["scale"])
                    keep.append(np.sort(rng.permutation(idx)[:cap]))
                parts[split] = np.sort(np.concatenate(keep))
        return parts

    def load(self, ctx: RunContext) -> DataSplits:
        """Read the CSV under the label policy, split by patient, decode the images."""
        csv_path = self.root / self.params["csv"]
        if not csv_path.is_file():
            raise DataError(self.missing_message([csv_path]))
        rel_paths, label_list = read_label_csv(
            csv_path, self.params["uncertain"], self.params["blank"])
        if not rel_paths:
            raise DataError(f"{csv_path}: no frontal images with a usable {LABEL_COLUMN} label")
        labels = np.asarray(label_list, dtype=np.int64)
        patients = np.asarray([_patient(p) for p in rel_paths])
        parts = self.assign(labels, patients)

        def build() -> DataSplits:
            sets: dict[str, ImageSet] = {}
            info: dict[str, Any] = {"skipped_files": [], "upsampled": 0, **self.describe(),
                                    "label_policy": {"uncertain": self.params["uncertain"],
                                                     "blank": self.params["blank"]},
                                    "splits": {v: k for k, v in SPLIT_NAMES.items()}}
            for split, index in parts.items():
                files = [self.resolve(rel_paths[i]) for i in index]
                data, read_info = self.read(files, labels[index].tolist(), ctx, split,
                                            patients[index].tolist())
                info["skipped_files"] += read_info["skipped_files"]
                info["upsampled"] += read_info["upsampled"]
                sets[SPLIT_NAMES[split]] = data
            assert_groups_disjoint(sets)
            # Duplicate images under other patients' names: held-out copies of A1 images are
            # dropped (policy group), as for given split folders.
            sets, extra = self.finish_splits(sets, CLASS_NAMES, ctx)
            info.update(extra, split={"kind": "patients", "seed": self.params["split_seed"]})
            return DataSplits(sets, CLASS_NAMES, self.modality, info)

        data = self.prepare(ctx, [csv_path], build)
        return apply_bias(data, self.params, self.params["split_seed"])


def _patient(path: str) -> str:
    match = re.search(r"(patient\d+)", path)
    return match.group(1) if match else path
