"""``phantom-ct``: procedural chest/abdomen CT volumes in HU, cut into montages like the CT study.

A volume is 80 axial slices (20 montages × 4) from lung apex to kidneys: air (−1000 HU), a
body ellipse with a subcutaneous fat ring (−100) around mottled soft tissue (about 10), lungs
(−850) that taper in and out, heart (45), contrast-filled aorta (150), liver (65), kidneys
(30, brighter cortex) and the spine (700, canal 20). Anatomy is jittered per volume;
Gaussian noise is added in HU. Class ``lesions`` adds 8–14 spherical lesions spread over the
volume: soft-tissue nodules in the lungs, masses ``lesion_contrast`` HU darker than their
surroundings elsewhere. Volumes are windowed (soft-tissue window by default) and cut into
montages with :func:`.ct.volume_to_montages`; every montage carries its volume id as group.
Montages are labelled by their volume, as in the study, so some lesion-volume montages show
no lesion: a classifier can do well but not perfectly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from medsynbench import Dataset, DataSplits, ImageSet, Param, RunContext
from medsynbench.data import SplitPlan
from medsynbench.params import at_least, nonnegative
from scipy import ndimage

from .ct import WINDOWS, volume_to_montages, window_hu

__all__ = ["PhantomCT", "render_volume"]

CLASS_NAMES = ("normal", "lesions")
_SPLIT_IDS = {"train": 1, "val": 2, "test": 3}


def _ellipse(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float,
    ax: float | np.ndarray, ay: float | np.ndarray,
) -> np.ndarray:
    inside: np.ndarray = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0
    return inside


def render_volume(
    rng: np.random.Generator, side: int, depth: int, label: int,
    lesion_contrast: float = 60.0, noise: float = 12.0,
) -> np.ndarray:
    """One volume (depth×side×side float32 HU) of class ``label`` (0 normal, 1 lesions)."""
    lin = (np.arange(side, dtype=np.float32) + 0.5) / side * 2.0 - 1.0
    z = ((np.arange(depth, dtype=np.float32) + 0.5) / depth)[:, None, None]
    y, x = lin[None, :, None], lin[None, None, :]

    def u(low: float, high: float) -> float:
        return float(rng.uniform(low, high))

    shift = u(-0.05, 0.05)
    zz = z + shift
    vol = np.full((depth, side, side), -1000.0, dtype=np.float32)
    bw, bh = u(0.78, 0.9), u(0.55, 0.66)
    body = _ellipse(x, y, 0.0, 0.05, bw, bh)
    vol = np.where(body, -100.0, vol)
    # Inside the fat ring: muscle, bowel and mesenteric fat as a smooth mottle around 10 HU.
    coarse = rng.standard_normal((depth // 8 + 2, 6, 6)).astype(np.float32)
    zoom = (depth / coarse.shape[0], side / 6, side / 6)
    mottle = ndimage.zoom(coarse, zoom, order=1, grid_mode=True, mode="nearest")
    inner = _ellipse(x, y, 0.0, 0.05, bw - 0.08, bh - 0.08)
    vol = np.where(inner, 10.0 + 10.0 * mottle, vol)
    taper = np.clip(np.sin(np.pi * np.clip(zz / 0.5, 0, 1)), 0, 1) * (zz < 0.5)
    lungs = np.zeros(vol.shape, dtype=bool)
    for sign in (-1.0, 1.0):
        lungs |= _ellipse(x, y, sign * u(0.36, 0.42), -0.02, 0.3 * taper + 1e-3,
                          0.42 * taper + 1e-3)
    vol = np.where(lungs, -850.0, vol)
    heart = _ellipse(x, y, 0.12, 0.02, 0.26, 0.24) & (zz > 0.28) & (zz < 0.48)
    vol = np.where(heart, 45.0, vol)
    liver_r = np.clip(np.sin(np.pi * np.clip((zz - 0.4) / 0.38, 0, 1)), 0, 1)
    liver = _ellipse(x, y, -0.3 + u(-0.04, 0.04), 0.0, 0.42 * liver_r + 1e-3,
                     0.45 * liver_r + 1e-3)
    vol = np.where(liver, 65.0, vol)
    kid_r = np.clip(np.sin(np.pi * np.clip((zz - 0.62) / 0.25, 0, 1)), 0, 1)
    for sign in (-1.0, 1.0):
        cortex = _ellipse(x, y, sign * 0.36, 0.3, 0.13 * kid_r + 1e-3, 0.17 * kid_r + 1e-3)
        medulla = _ellipse(x, y, sign * 0.36, 0.3, 0.08 * kid_r + 1e-3, 0.11 * kid_r + 1e-3)
        vol = np.where(cortex, 140.0, vol)
        vol = np.where(medulla, 30.0, vol)
    vol = np.where(_ellipse(x, y, 0.06, 0.3, 0.06, 0.06) & (zz > 0.2), 150.0, vol)  # aorta
    vol = np.where(_ellipse(x, y, 0.0, 0.5, 0.11, 0.1), 700.0, vol)  # vertebral body
    vol = np.where(_ellipse(x, y, 0.0, 0.64, 0.04, 0.04), 20.0, vol)  # spinal canal
    if label == 1:  # lesions spread over the whole volume: lung nodules, hypodense masses
        inner_body = inner & (vol < 500)
        for _ in range(int(rng.integers(8, 15))):
            cz, cx, cy = u(0.03, 0.97), u(-0.55, 0.55), u(-0.35, 0.4)
            r, rz = u(0.09, 0.15), u(0.04, 0.07)
            sphere = ((x - cx) / r) ** 2 + ((y - cy) / r) ** 2 + ((zz - cz) / rz) ** 2 <= 1.0
            vol = np.where(sphere & lungs, 20.0, vol)
            vol = np.where(sphere & inner_body & ~lungs, vol - lesion_contrast, vol)
    vol += noise * rng.standard_normal(vol.shape, dtype=np.float32)
    return vol


class PhantomCT(Dataset):
    """Procedural CT volumes → 4-slice montages (20 per volume): normal vs lesions."""

    name: ClassVar[str] = "phantom-ct"
    version: ClassVar[str] = "0.1.0"
    modality: ClassVar[str] = "ct"
    citation: ClassVar[str] = "MedSynBench procedural phantom (montage protocol of Nan et al.)."
    license: ClassVar[str] = "Apache-2.0 (generated data)"
    parameters: ClassVar[dict[str, Param]] = {
        "resolution": Param(128, int, "montage side (2×2 tiles of side/2)",
                            check=lambda v: None if v >= 16 and v % 2 == 0 else "even, >= 16"),
        "n_train": Param(4, int, "training volumes per class",
                         check=at_least(1)),
        "n_val": Param(1, int, "validation volumes per class (0: no val split)",
                       check=nonnegative),
        "n_test": Param(2, int, "test volumes per class",
                        check=at_least(1)),
        "n_montages": Param(20, int, "montages per volume",
                            check=at_least(1)),
        "seed": Param(0, int, "generation seed"),
        "lesion_contrast": Param(60.0, float,
                                 "how many HU darker than their surroundings masses are"),
        "noise": Param(12.0, float, "std of Gaussian noise in HU"),
        "window": Param("soft-tissue", str, "HU window preset", choices=tuple(WINDOWS)),
    }

    def planned_splits(self) -> SplitPlan:
        """Montages per class of each split (volumes × montages per volume), from the
        parameters (checked at validate)."""
        side, per_volume = self.params["resolution"], self.params["n_montages"]
        per_class = {s: self.params[f"n_{s}"] * per_volume for s in ("train", "val", "test")}
        return SplitPlan(CLASS_NAMES, (1, side, side), per_class,
                         {s: f"n_{s}" for s in ("train", "val", "test")})

    def load(self, ctx: RunContext) -> DataSplits:
        """Render volumes per split, window them, cut montages; groups = volume ids."""
        side = self.params["resolution"]
        n_montages = self.params["n_montages"]
        center, width = WINDOWS[self.params["window"]]
        splits: dict[str, ImageSet] = {}
        for split in ("train", "val", "test"):
            n = self.params[f"n_{split}"]
            if n == 0:
                continue
            montages, labels, groups = [], [], []
            with ctx.progress(f"phantom-ct {split} volumes", total=2 * n) as task:
                for i in range(2 * n):
                    rng = np.random.default_rng([self.params["seed"], _SPLIT_IDS[split], i])
                    label = i // n
                    volume = render_volume(rng, side // 2, 4 * n_montages, label,
                                           self.params["lesion_contrast"], self.params["noise"])
                    montages.append(volume_to_montages(window_hu(volume, center, width), side,
                                                       n_montages, 4))
                    labels += [label] * n_montages
                    groups += [f"{split}-{i:04d}"] * n_montages
                    task.advance(1)
            splits[split] = ImageSet(np.concatenate(montages), np.asarray(labels),
                                     np.asarray(groups))
        info: dict[str, Any] = {"generator": "procedural", "window_hu": [center, width],
                                "montages_per_volume": n_montages, "slices_per_montage": 4}
        return DataSplits(splits, CLASS_NAMES, self.modality, info)
