"""``medmnist``: every 2D MedMNIST v2 / MedMNIST+ ``.npz`` (plus ``pneumoniamnist``, ``pathmnist``).

A MedMNIST file holds ``{train,val,test}_images`` (N×H×W grayscale or N×H×W×3 RGB uint8,
H = 28, or 64/128/224 for MedMNIST+) and ``{train,val,test}_labels`` (N×1). The official
split is kept. Multi-label files (chestmnist) need ``label_column`` to pick one finding.
File lookup under ``root``: ``<flag>.npz`` (28 px) or ``<flag>_<size>.npz``, else the single
``*.npz`` whose name starts with the flag; ``file`` names a file directly.

``max_per_class = N`` keeps the first N images of each class of every split, in the file's
order, chosen from the labels before the images are converted or resized (an ``.npz`` member is
read whole, so the file is still read in full).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from medsynbench import DataSplits, ImageSet, Param, RunContext
from medsynbench.errors import DataError
from PIL import Image

from .bias import BIAS_PARAMETERS, apply_bias
from .files import FILE_PARAMETERS, MAX_PER_CLASS, FileDataset, first_per_class

__all__ = ["MEDMNIST_CLASSES", "MedMNIST", "PathMNIST", "PneumoniaMNIST"]

MEDMNIST_CLASSES: dict[str, tuple[str, ...]] = {
    "pneumoniamnist": ("normal", "pneumonia"),
    "pathmnist": ("adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
                  "normal colon mucosa", "cancer-associated stroma",
                  "colorectal adenocarcinoma epithelium"),
    "dermamnist": ("actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
                   "benign keratosis-like lesions", "dermatofibroma", "melanoma",
                   "melanocytic nevi", "vascular lesions"),
    "octmnist": ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
    "breastmnist": ("malignant", "normal, benign"),
    "bloodmnist": ("basophil", "eosinophil", "erythroblast", "immature granulocytes",
                   "lymphocyte", "monocyte", "neutrophil", "platelet"),
    "retinamnist": ("grade 0", "grade 1", "grade 2", "grade 3", "grade 4"),
    "tissuemnist": ("collecting duct, connecting tubule", "distal convoluted tubule",
                    "glomerular endothelial cells", "interstitial endothelial cells",
                    "leukocytes", "podocytes", "proximal tubule segments", "thick ascending limb"),
    "organamnist": ("bladder", "femur-left", "femur-right", "heart", "kidney-left",
                    "kidney-right", "liver", "lung-left", "lung-right", "pancreas", "spleen"),
}
MEDMNIST_CLASSES["organcmnist"] = MEDMNIST_CLASSES["organamnist"]
MEDMNIST_CLASSES["organsmnist"] = MEDMNIST_CLASSES["organamnist"]
_MODALITY = {"pneumoniamnist": "xray", "chestmnist": "xray", "pathmnist": "pathology",
             "dermamnist": "dermatoscopy", "octmnist": "oct", "breastmnist": "ultrasound",
             "bloodmnist": "microscopy", "tissuemnist": "microscopy", "retinamnist": "fundus",
             "organamnist": "ct", "organcmnist": "ct", "organsmnist": "ct"}
SPLITS = ("train", "val", "test")


class MedMNIST(FileDataset):
    """Any 2D MedMNIST v2 / MedMNIST+ file, official train/val/test split."""

    name: ClassVar[str] = "medmnist"
    modality: ClassVar[str] = "varies"
    citation: ClassVar[str] = (
        "Yang J et al. MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D "
        "biomedical image classification. Scientific Data 10:41, 2023 (and the source "
        "dataset of the chosen flag)."
    )
    license: ClassVar[str] = "CC BY 4.0 (most flags; see medmnist.com)"
    default_folder: ClassVar[str] = "medmnist"
    download: ClassVar[str] = (
        "the flag's .npz from Zenodo (doi:10.5281/zenodo.10519652), e.g. pneumoniamnist.npz "
        "(28 px) or pneumoniamnist_224.npz (MedMNIST+), or `pip install medmnist` and its "
        "download=True once on a networked machine."
    )
    layout: ClassVar[str] = "  <root>/<flag>.npz  or  <root>/<flag>_<size>.npz"
    default_flag: ClassVar[str | None] = None
    parameters: ClassVar[dict[str, Param]] = {
        **FILE_PARAMETERS,
        "flag": Param(None, str, "MedMNIST flag, e.g. pneumoniamnist, pathmnist, dermamnist",
                      nullable=True),
        "size": Param(28, int, "MedMNIST(+) image size to look for", choices=(28, 64, 128, 224)),
        "file": Param(None, str, "explicit path of the .npz (overrides root/flag/size)",
                      nullable=True),
        "label_column": Param(None, int, "for multi-label files: which label column to use",
                              nullable=True),
        "max_per_class": MAX_PER_CLASS,
    }

    @property
    def flag(self) -> str:
        return str(self.params.get("flag") or self.default_flag or "")

    def candidate_roots(self) -> list[Path]:
        if self.params.get("file"):
            return [Path(self.params["file"]).expanduser()]
        return super().candidate_roots()

    def check(self) -> None:
        if not self.flag and not self.params.get("file"):
            raise DataError(
                "dataset 'medmnist' needs flag = \"<name>\" (e.g. pneumoniamnist, pathmnist) "
                "or file = \"<path/to/file.npz>\""
            )
        super().check()

    def npz_path(self) -> Path:
        """The .npz file to read (see the module docstring for the lookup order)."""
        root = self.root
        if root.is_file():
            return root
        size = self.params["size"]
        names = [f"{self.flag}.npz"] if size == 28 else []
        names.append(f"{self.flag}_{size}.npz")
        for name in names:
            if (root / name).is_file():
                return root / name
        prefixed = sorted(p for p in root.glob(f"{self.flag}*.npz"))
        if size != 28:
            prefixed = [p for p in prefixed if f"_{size}" in p.stem]
        if len(prefixed) == 1:
            return prefixed[0]
        found = ", ".join(p.name for p in sorted(root.glob("*.npz"))) or "no .npz files"
        raise DataError(
            f"dataset {self.name!r}: no {' or '.join(names)} in {root} ({found}).\n"
            f"Download: {self.download}\nor pass file = \"<path>\"."
        )

    def planned_image_size(self) -> tuple[int, int] | None:
        """``resolution`` when set, else ``size`` when the file is looked up by flag and size
        (not given as ``file``). A file found by name prefix may hold another size: the runner
        checks the loaded images against the generators right after preparing them."""
        side = self.params.get("resolution")
        if side is None and not self.params.get("file"):
            side = self.params["size"]
        return None if side is None else (int(side), int(side))

    def class_names(self, n_classes: int) -> tuple[str, ...]:
        names = MEDMNIST_CLASSES.get(self.flag)
        if names is not None and len(names) >= n_classes:
            return names
        return tuple(f"class_{i}" for i in range(n_classes))

    def _labels(self, raw: np.ndarray, key: str) -> np.ndarray:
        labels = np.asarray(raw)
        if labels.ndim == 2 and labels.shape[1] == 1:
            return labels[:, 0].astype(np.int64)
        if labels.ndim == 1:
            return labels.astype(np.int64)
        column = self.params.get("label_column")
        if column is None or not 0 <= column < labels.shape[1]:
            raise DataError(
                f"{key} is multi-label ({labels.shape[1]} columns); set label_column to one of "
                f"0..{labels.shape[1] - 1} to make a binary task of that finding"
            )
        return labels[:, column].astype(np.int64)

    def _images(self, raw: np.ndarray, key: str, ctx: RunContext) -> np.ndarray:
        images = np.asarray(raw)
        if images.dtype != np.uint8:
            raise DataError(f"{key} has dtype {images.dtype}; MedMNIST images are uint8")
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        size = self.params.get("resolution")
        if size and size != images.shape[-1]:
            if size > images.shape[-1]:
                message = (f"{self.name}: resolution {size} is larger than the source "
                           f"{images.shape[-1]} px: images are upsampled")
                warnings.warn(message, UserWarning, stacklevel=2)
                ctx.log(message)
            images = _resize_stack(images, size)
        return np.ascontiguousarray(images)

    def load(self, ctx: RunContext) -> DataSplits:
        """Read the official splits of the .npz (resized when ``resolution`` is set)."""
        path = self.npz_path()

        def build() -> DataSplits:
            with np.load(path, allow_pickle=False) as npz:
                missing = [f"{s}_{k}" for s in ("train", "test") for k in ("images", "labels")
                           if f"{s}_{k}" not in npz.files]
                if missing:
                    raise DataError(
                        f"{path} lacks the key(s) {', '.join(missing)} (has "
                        f"{', '.join(npz.files)}); expected a MedMNIST .npz"
                    )
                sets = {}
                for split in SPLITS:
                    if f"{split}_images" not in npz.files:
                        continue
                    labels = self._labels(npz[f"{split}_labels"], f"{split}_labels")
                    keep = first_per_class(labels, self.max_per_class)
                    raw = npz[f"{split}_images"]
                    if len(keep) < len(labels):
                        raw = raw[keep]
                    images = self._images(raw, f"{split}_images", ctx)
                    sets[split] = ImageSet(images, labels[keep])
            n_classes = int(max(int(s.labels.max()) for s in sets.values() if len(s))) + 1
            info: dict[str, Any] = {"file": str(path), "flag": self.flag, **self.describe()}
            if self.max_per_class is not None:
                info["max_per_class"] = self.max_per_class
            modality = _MODALITY.get(self.flag, self.modality)
            return DataSplits(sets, self.class_names(n_classes), modality, info)

        return self.prepare(ctx, [path], build)


def _resize_stack(images: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bicubic resize of uint8 N×C×H×W to N×C×size×size."""
    out = np.empty((*images.shape[:2], size, size), dtype=np.uint8)
    for i in range(images.shape[0]):
        for c in range(images.shape[1]):
            img = Image.fromarray(images[i, c]).resize((size, size), Image.Resampling.BICUBIC)
            out[i, c] = np.asarray(img)
    return out


class PneumoniaMNIST(MedMNIST):
    """PneumoniaMNIST (MedMNIST v2): pediatric chest X-rays, normal vs pneumonia."""

    name: ClassVar[str] = "pneumoniamnist"
    modality: ClassVar[str] = "xray"
    citation: ClassVar[str] = (
        MedMNIST.citation + " Source: Kermany DS et al., Cell 172(5):1122-1131, 2018."
    )
    license: ClassVar[str] = "CC BY 4.0"
    default_folder: ClassVar[str] = "pneumoniamnist"
    default_flag: ClassVar[str | None] = "pneumoniamnist"
    parameters: ClassVar[dict[str, Param]] = {**MedMNIST.parameters, **BIAS_PARAMETERS}

    def load(self, ctx: RunContext) -> DataSplits:
        """The official split, with marker injection / border crop when asked."""
        return apply_bias(super().load(ctx), self.params, 0)


class PathMNIST(MedMNIST):
    """PathMNIST (MedMNIST v2): colorectal H&E tiles (NCT-CRC-HE-100K), 9 classes."""

    name: ClassVar[str] = "pathmnist"
    modality: ClassVar[str] = "pathology"
    citation: ClassVar[str] = (
        MedMNIST.citation + " Source: Kather JN et al., PLOS Medicine 16(1):e1002730, 2019."
    )
    license: ClassVar[str] = "CC BY 4.0"
    default_folder: ClassVar[str] = "pathmnist"
    default_flag: ClassVar[str | None] = "pathmnist"
