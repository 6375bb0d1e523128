"""``phantom-pathology``: procedural H&E-like tissue patches for the pathology study's 6 classes.

Each patch is built as two stain-concentration maps, haematoxylin (nuclei, purple-blue) and
eosin (cytoplasm, collagen, pink), turned into RGB by Beer–Lambert colour deconvolution in
reverse: OD = H·h + E·e, RGB = 255·exp(−OD), with Ruifrok & Johnston's stain vectors jittered
per patch (stain variability). Nuclei are discs (or spindles) placed at random centres; their
rasterisation uses one Euclidean distance transform per patch, so a patch costs about a
millisecond at 64 px.

Class textures (sizes in pixels at 64 px; they scale with resolution):

* ``inflammatory`` — dense small round very dark nuclei (lymphocytes) on pale stroma;
* ``necrosis`` — pale mottled eosin with tiny nuclear fragments (karyorrhexis) and ghost cells;
* ``stroma`` — aligned eosinophilic fibres with sparse elongated (spindle) nuclei;
* ``tumor`` — crowded large pleomorphic nuclei with coarse chromatin on purple cytoplasm;
* ``fat`` — large empty polygonal adipocytes with thin membranes and rare flat nuclei;
* ``gland`` — epithelial rings of nuclei around white lumina in loose stroma.

``mix`` replaces a smooth random region of up to that fraction of each patch with another
class's texture (tissue borders), so a classifier must look at the texture, not one pixel.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from medsynbench import Dataset, DataSplits, ImageSet, Param, RunContext
from medsynbench.data import SplitPlan
from medsynbench.params import in_range, nonnegative
from PIL import Image
from scipy import ndimage

__all__ = ["CLASS_NAMES", "PhantomPathology", "render_patch"]

CLASS_NAMES = ("inflammatory", "necrosis", "stroma", "tumor", "fat", "gland")
_SPLIT_IDS = {"train": 1, "val": 2, "test": 3}
# Optical density per unit stain (RGB), Ruifrok & Johnston 2001.
_H = np.array([0.65, 0.70, 0.29], dtype=np.float32)
_E = np.array([0.07, 0.99, 0.11], dtype=np.float32)


def _smooth(rng: np.random.Generator, side: int, cells: int) -> np.ndarray:
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(
        Image.fromarray(coarse, mode="F").resize((side, side), Image.Resampling.BICUBIC)
    )


def _nuclei(
    rng: np.random.Generator, side: int, count: int, radius: tuple[float, float],
    stretch: float = 1.0, centres: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft nucleus mask (0..1) and per-pixel nucleus darkness for ``count`` random nuclei.

    ``stretch`` < 1 elongates nuclei along x (spindles). ``centres`` (k×2 row, col) overrides
    the uniform placement.
    """
    if centres is None:
        centres = rng.uniform(0, side, size=(count, 2))
    centres = np.clip(centres.astype(int), 0, side - 1)
    if len(centres) == 0:  # tiny patches of sparse tissue
        empty = np.zeros((side, side), dtype=np.float32)
        return empty, empty
    seeds = np.ones((side, side), dtype=bool)
    seeds[centres[:, 0], centres[:, 1]] = False
    distance, (rows, cols) = ndimage.distance_transform_edt(
        seeds, sampling=(1.0, stretch), return_indices=True
    )
    owner = np.full((side, side), -1, dtype=np.int64)
    owner[centres[:, 0], centres[:, 1]] = np.arange(len(centres))
    nearest = owner[rows, cols]
    radii = rng.uniform(*radius, size=len(centres)).astype(np.float32)
    darkness = rng.uniform(0.75, 1.0, size=len(centres)).astype(np.float32)
    mask = np.clip(radii[nearest] - distance + 0.5, 0.0, 1.0).astype(np.float32)
    return mask, darkness[nearest]


def _texture(rng: np.random.Generator, side: int, label: int) -> tuple[np.ndarray, np.ndarray]:
    """Haematoxylin and eosin concentration maps (H×W float32) of one class."""
    s = side / 64.0
    area = s * s
    grain = _smooth(rng, side, max(4, side // 4))
    if label == 0:  # inflammatory
        mask, dark = _nuclei(rng, side, int(110 * area), (1.4 * s, 2.1 * s))
        eosin = 0.25 + 0.05 * grain
        haem = mask * dark * 1.25
    elif label == 1:  # necrosis
        mask, dark = _nuclei(rng, side, int(140 * area), (0.5 * s, 1.1 * s))
        ghosts, _ = _nuclei(rng, side, int(10 * area), (3.0 * s, 4.5 * s))
        eosin = 0.42 + 0.16 * _smooth(rng, side, 5) + 0.05 * grain
        haem = mask * dark * 0.7 + 0.12 * ghosts
    elif label == 2:  # stroma
        fibres = ndimage.gaussian_filter(rng.standard_normal((side, side)), (0.6 * s, 5.0 * s))
        fibres = fibres / (np.abs(fibres).max() + 1e-6)
        mask, dark = _nuclei(rng, side, int(14 * area), (1.2 * s, 1.6 * s), stretch=0.3)
        eosin = 0.62 + 0.3 * fibres.astype(np.float32)
        haem = mask * dark * 0.95
        turns = int(rng.integers(4))  # fibre direction: one of four orientations
        eosin, haem = np.rot90(eosin, turns), np.rot90(haem, turns)
    elif label == 3:  # tumour
        mask, dark = _nuclei(rng, side, int(38 * area), (2.4 * s, 4.4 * s))
        chromatin = np.clip(0.75 + 0.5 * _smooth(rng, side, max(8, side // 3)), 0.3, 1.2)
        eosin = 0.42 + 0.06 * grain
        haem = 0.16 + mask * dark * chromatin * 0.95
    elif label == 4:  # fat
        cells = rng.uniform(0, side, size=(max(4, int(rng.integers(7, 13) * area)), 2))
        seeds = np.ones((side, side), dtype=bool)
        seeds[cells[:, 0].astype(int), cells[:, 1].astype(int)] = False
        _, (rows, cols) = ndimage.distance_transform_edt(seeds, return_indices=True)
        owner = rows * side + cols
        edge = np.zeros((side, side), dtype=np.float32)
        edge[:, 1:] += owner[:, 1:] != owner[:, :-1]
        edge[1:, :] += owner[1:, :] != owner[:-1, :]
        edge = np.clip(ndimage.gaussian_filter(edge, 0.5 * s) * 2.0, 0.0, 1.0)
        mask, dark = _nuclei(rng, side, int(3 * area), (1.0 * s, 1.4 * s), stretch=0.35)
        eosin = 0.03 + 0.65 * edge
        haem = mask * dark * edge.clip(0.3, 1.0) * 0.9
    else:  # gland
        fibres = ndimage.gaussian_filter(rng.standard_normal((side, side)), (0.8 * s, 3.0 * s))
        eosin = 0.45 + 0.15 * (fibres / (np.abs(fibres).max() + 1e-6)).astype(np.float32)
        haem = np.zeros((side, side), dtype=np.float32)
        yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
        centres = []
        for _ in range(int(rng.integers(1, 3))):
            cy, cx = rng.uniform(0.2, 0.8, size=2) * side
            r_in, ring = rng.uniform(5, 10) * s, rng.uniform(4, 6) * s
            r = np.hypot(yy - cy, xx - cx) * np.hypot(1.0, 0.0)
            lumen = r < r_in
            epithelium = (r >= r_in) & (r < r_in + ring)
            eosin = np.where(lumen, 0.04, np.where(epithelium, 0.5, eosin))
            haem += 0.12 * epithelium
            n = max(6, int(2 * np.pi * (r_in + ring * 0.6) / (2.6 * s)))
            angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 1)
            rad = r_in + ring * rng.uniform(0.45, 0.75, size=n)
            centres.append(np.stack([cy + rad * np.sin(angles), cx + rad * np.cos(angles)], 1))
        mask, dark = _nuclei(rng, side, 0, (1.5 * s, 2.2 * s),
                             centres=np.concatenate(centres))
        haem += mask * dark
        scattered, sdark = _nuclei(rng, side, int(8 * area), (1.2 * s, 1.6 * s), stretch=0.4)
        haem += scattered * sdark * 0.8
    return haem.astype(np.float32), np.asarray(eosin, dtype=np.float32)


def render_patch(
    rng: np.random.Generator, side: int, label: int, mix: float = 0.25, noise: float = 0.03
) -> np.ndarray:
    """One RGB patch of class ``label`` as uint8 3×H×W."""
    haem, eosin = _texture(rng, side, label)
    if mix > 0 and rng.random() < 0.8:
        other = (label + int(rng.integers(1, len(CLASS_NAMES)))) % len(CLASS_NAMES)
        oh, oe = _texture(rng, side, other)
        field = _smooth(rng, side, 3)
        cut = np.quantile(field, 1.0 - rng.uniform(0.3, 1.0) * mix)
        blend = np.clip((field - cut) * 6.0, 0.0, 1.0)
        haem = haem * (1 - blend) + oh * blend
        eosin = eosin * (1 - blend) + oe * blend
    # Optics blur the stains before they absorb (blurring two maps beats blurring RGB).
    sigma = 0.5 * side / 64.0
    haem = ndimage.gaussian_filter(haem, sigma) * float(rng.uniform(0.75, 1.25))
    eosin = ndimage.gaussian_filter(eosin, sigma) * float(rng.uniform(0.75, 1.25))
    h_vec = 1.1 * (_H + rng.normal(0, 0.04, 3).astype(np.float32))
    e_vec = 1.1 * (_E + rng.normal(0, 0.04, 3).astype(np.float32))
    od = h_vec[:, None, None] * haem + e_vec[:, None, None] * eosin
    rgb = 255.0 * np.exp(-od)
    rgb += (noise * 255.0) * rng.standard_normal(od.shape, dtype=np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


class PhantomPathology(Dataset):
    """Procedural H&E-like patches: inflammatory, necrosis, stroma, tumor, fat, gland."""

    name: ClassVar[str] = "phantom-pathology"
    version: ClassVar[str] = "0.1.0"
    modality: ClassVar[str] = "pathology"
    citation: ClassVar[str] = (
        "MedSynBench procedural phantom; stain vectors from Ruifrok AC, Johnston DA, "
        "Quantification of histochemical staining by color deconvolution, AQCH 23(4), 2001."
    )
    license: ClassVar[str] = "Apache-2.0 (generated data)"
    parameters: ClassVar[dict[str, Param]] = {
        "resolution": Param(64, int, "patch side in pixels",
                            check=lambda v: None if 16 <= v <= 1024 else "must be 16..1024"),
        "n_train": Param(200, int, "training patches per class", check=nonnegative),
        "n_val": Param(20, int, "validation patches per class (0: no val split)",
                       check=nonnegative),
        "n_test": Param(100, int, "test patches per class", check=nonnegative),
        "seed": Param(0, int, "generation seed"),
        "mix": Param(0.25, float, "largest fraction of a patch showing another class's tissue",
                     check=in_range(0, 0.5)),
        "noise": Param(0.03, float, "std of additive pixel noise (fraction of 255)",
                       check=in_range(0, 0.5)),
    }

    def planned_splits(self) -> SplitPlan:
        """Patches per class of each split, known from the parameters (checked at validate)."""
        side = self.params["resolution"]
        return SplitPlan(CLASS_NAMES, (3, side, side),
                         {s: self.params[f"n_{s}"] for s in ("train", "val", "test")},
                         {s: f"n_{s}" for s in ("train", "val", "test")})

    def load(self, ctx: RunContext) -> DataSplits:
        """Render train/val/test patches, classes in blocks."""
        side, k = self.params["resolution"], len(CLASS_NAMES)
        splits: dict[str, ImageSet] = {}
        for split in ("train", "val", "test"):
            n = self.params[f"n_{split}"]
            if split == "val" and n == 0:
                continue
            images = np.empty((n * k, 3, side, side), dtype=np.uint8)
            with ctx.progress(f"phantom-pathology {split}", total=len(images)) as task:
                for i in range(len(images)):
                    rng = np.random.default_rng([self.params["seed"], _SPLIT_IDS[split], i])
                    images[i] = render_patch(rng, side, i // n, self.params["mix"],
                                             self.params["noise"])
                    task.advance(1)
            splits[split] = ImageSet(images, np.repeat(np.arange(k), n))
        info: dict[str, Any] = {"generator": "procedural", "mix": self.params["mix"]}
        return DataSplits(splits, CLASS_NAMES, self.modality, info)
