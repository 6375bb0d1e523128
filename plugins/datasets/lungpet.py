"""``lung-pet-ct-dx``: real chest CT (TCIA Lung-PET-CT-Dx, 2 patients, 4 series) → montages.

The shared copy holds 256×256 8-bit PNG slices already windowed to [−1000, 400] HU (centre
−300, width 1,400) when they were made from the DICOMs, so no HU window applies here. Slices
are stacked per series in the manifest's ``instance_number`` order and cut into montages by
the ``ct-montage`` rules (:func:`.ct.montage_slices`: evenly spaced slices, never repeated
unless asked). A montage is labelled ``tumour_box`` when any of its slices carries a
``tumour_bbox`` in the manifest, else ``no_tumour_box`` — which does NOT mean tumour-free:
the boxes exist on some slices of some series only (SOURCE.md). Groups are patients: the two
series (reconstruction kernels) of one scan are near-copies and stay on one side.

Two patients make one honest split only: one patient in train, the other in test. The
defaults (``val_fraction = 0``, ``test_fraction = 0.5``) give exactly that, and the load
refuses a split that leaves train or test empty. Far too few for statistics; it exercises CT
code paths on real anatomy.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import DataSplits, ImageSet, Param, RunContext
from medsynbench.errors import DataError
from medsynbench.params import at_least

from .ct import (
    MONTAGE_SPLIT_PARAMETERS,
    SHORT_VOLUMES,
    montage_slices,
    require_train_and_test,
    slice_usage,
    tile_montages,
    warn_short_volumes,
)
from .files import FileDataset, warn_small_splits
from .imageio import ReadSpec, read_images
from .splits import SPLIT_PARAMETERS, assert_groups_disjoint

__all__ = ["LungPetCTDx"]

CLASS_NAMES = ("no_tumour_box", "tumour_box")
MANIFEST = "MANIFEST.csv"
NEEDED_COLUMNS = ("file", "patient_id", "series_uid", "instance_number", "tumour_bbox")


def _even_side(value: int) -> str | None:
    return None if value >= 16 and value % 2 == 0 else "even, >= 16"


def read_manifest(path: Path) -> dict[tuple[str, str], list[dict[str, str]]]:
    """Manifest rows per (patient, series folder), each list in ``instance_number`` order."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in NEEDED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path} lacks the column(s) {', '.join(missing)}")
        rows = list(reader)
    series: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        series.setdefault((row["patient_id"], Path(row["file"]).parent.name), []).append(row)
    try:
        for items in series.values():
            items.sort(key=lambda r: int(r["instance_number"]))
    except ValueError as exc:
        raise DataError(f"{path}: instance_number is not an integer ({exc})") from exc
    return series


class LungPetCTDx(FileDataset):
    """Lung-PET-CT-Dx chest CT (2 patients, 4 series of PNG slices) → labelled montages."""

    name: ClassVar[str] = "lung-pet-ct-dx"
    modality: ClassVar[str] = "ct"
    channels: ClassVar[int] = 1
    citation: ClassVar[str] = (
        "Li P, Wang S, Li T, Lu J, HuangFu Y, Wang D. A Large-Scale CT and PET/CT Dataset for "
        "Lung Cancer Diagnosis (Lung-PET-CT-Dx). The Cancer Imaging Archive (2020). "
        "doi:10.7937/TCIA.2020.NNC20461. With TCIA: Clark K et al., J Digit Imaging "
        "26(6):1045-1057, 2013."
    )
    license: ClassVar[str] = "CC BY 4.0"
    default_folder: ClassVar[str] = "lung_pet_ct_dx"
    download: ClassVar[str] = (
        "the shared copy (../shared/data/lung_pet_ct_dx: 188 PNG slices made from TCIA "
        "Lung-PET-CT-Dx patients A0001 and A0002, see its SOURCE.md)."
    )
    layout: ClassVar[str] = (
        "  <root>/slices/<patient>/<series>/<stem>.png   (256×256, windowed [-1000, 400] HU)\n"
        "  <root>/MANIFEST.csv   (file, patient_id, series_uid, instance_number, tumour_bbox)"
    )
    parameters: ClassVar[dict[str, Param]] = {
        "root": Param(None, str, "folder holding slices/ and MANIFEST.csv", nullable=True),
        "resolution": Param(256, int, "montage side", check=_even_side),
        "n_montages": Param(7, int, "montages per series (7 = ⌊30/4⌋: the 30-slice series)",
                            check=at_least(1)),
        "slices_per_montage": Param(4, int, "slices per montage (a square number)",
                                    choices=(1, 4, 9, 16)),
        "short_volumes": Param("error", str, "series with fewer than n_montages × "
                               "slices_per_montage slices: error, fewer or repeat",
                               choices=SHORT_VOLUMES),
        **MONTAGE_SPLIT_PARAMETERS,
        # Two patients: one per side, no val (see the module docstring).
        "val_fraction": dataclasses.replace(SPLIT_PARAMETERS["val_fraction"], default=0.0),
        "test_fraction": dataclasses.replace(SPLIT_PARAMETERS["test_fraction"], default=0.5),
    }

    def load(self, ctx: RunContext) -> DataSplits:
        """Stack each series, montage it, label montages by tumour boxes, split by patient."""
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise DataError(f"{self.root} lacks {MANIFEST}: slice order, patients and tumour "
                            f"boxes come from it\n{self.layout}")
        series = read_manifest(manifest)
        files = [self.root / row["file"] for rows in series.values() for row in rows]
        absent = [str(p) for p in files if not p.is_file()]
        if absent:
            raise DataError(f"{len(absent)} slice file(s) listed in {manifest} are missing, "
                            f"e.g. {', '.join(absent[:3])}")
        return self.prepare(ctx, [*files, manifest], lambda: self._build(series, ctx))

    def _build(self, series: dict[tuple[str, str], list[dict[str, str]]],
               ctx: RunContext) -> DataSplits:
        n, k = self.params["n_montages"], self.params["slices_per_montage"]
        policy, side = self.params["short_volumes"], self.params["resolution"]
        montages, labels, groups, usage = [], [], [], []
        for (patient, folder), rows in series.items():
            name = f"{patient}/{folder}"
            paths = [self.root / row["file"] for row in rows]
            stack = read_images(paths, ReadSpec(1, None), ctx, f"{self.name}: {name}").images
            slices = montage_slices(len(stack), n, k, policy, name)
            boxed = np.array([bool(row["tumour_bbox"].strip()) for row in rows])
            montage_labels = boxed[slices].any(axis=1).astype(np.int64)
            montages.append(tile_montages(stack[:, 0], slices, side))
            labels.append(montage_labels)
            groups += [patient] * len(slices)
            usage.append({**slice_usage(name, len(stack), slices), "group": patient,
                          "ordered_by": "instance_number",
                          "tumour_box_montages": int(montage_labels.sum())})
        warn_short_volumes(usage, n, policy, ctx, self.name)
        data = ImageSet(np.concatenate(montages), np.concatenate(labels), np.asarray(groups))
        splits = self.split_random(data)
        assert_groups_disjoint(splits)
        require_train_and_test(splits, data, f"{self.name} at {self.root}")
        warn_small_splits(splits, len(CLASS_NAMES), ctx)
        sides = {str(g): name for name, s in splits.items() for g in np.unique(s.groups)}
        tiles = sum(u["montages"] for u in usage) * k
        info: dict[str, Any] = {
            "window_hu": [-300.0, 1400.0],
            "window_note": "slices were windowed to [-1000, 400] HU when the PNGs were made; "
                           "no window parameter applies",
            "label_note": "tumour_box: a slice of the montage carries a tumour box; "
                          "no_tumour_box does NOT mean tumour-free (boxes exist on some "
                          "slices of some series only)",
            "patients_per_split": sides,
            "slices_per_volume": usage,
            "unique_slice_ratio": round(sum(u["slices_used"] for u in usage) / max(tiles, 1), 4),
            **self.describe(),
        }
        return DataSplits(splits, CLASS_NAMES, self.modality, info)
