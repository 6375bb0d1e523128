"""``phantom-xray``: procedural chest-radiograph-like images with known ground truth.

Each image is drawn in normalised coordinates (x, y in [-1, 1], y pointing down), so the same
anatomy renders at any resolution. Brightness follows X-ray convention (dense = bright):

* air outside the torso is dark; the torso is soft tissue with a random linear gradient;
* two lung fields (superellipses, so their lower lateral corners form sharp costophrenic
  angles) are dark, with faint smoothed "vascular" texture;
* mediastinum, heart shadow and spine are bright and overlap the medial lung edges;
* posterior rib arcs and clavicles are bright bands;
* anatomy is jittered per image (shift, scale, lung size, rib phase, gamma), then noise is added.

Classes: ``normal``; ``pneumonia`` — 1–2 patchy consolidations (smooth blobs modulated by
low-frequency noise) inside a lung; ``effusion`` (3-class variant) — a homogeneous fluid
opacity rising from the diaphragm with a meniscus that climbs laterally, blunting the
costophrenic angle of one or both lungs. ``lesion_contrast`` scales both findings.

Bias experiment: with ``marker_rate > 0`` an "R" marker is burned into the slot of the image's
class (see :mod:`.bias`) with that probability (``marker_mode="position"``), or only into the
abnormal classes (``marker_mode="presence"``). The extra splits ``test_swapped`` (every test
image with the marker where another class would have it) and ``test_nomarker`` (the same images
with no marker) hold the identical anatomy, so accuracy differences measure the shortcut only.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from medsynbench import Dataset, DataSplits, ImageSet, Param, RunContext
from medsynbench.data import SplitPlan
from medsynbench.params import in_range, nonnegative
from PIL import Image
from scipy import ndimage

from .bias import BIAS_PARAMETERS, apply_bias

__all__ = ["PhantomXray", "render_xray"]

CLASS_NAMES = ("normal", "pneumonia", "effusion")
_SPLIT_IDS = {"train": 1, "val": 2, "test": 3}


def _resolution(value: int) -> str | None:
    return None if 16 <= value <= 2048 else f"must be between 16 and 2048 pixels, got {value}"


_rate = in_range(0, 1)


def _smooth_noise(rng: np.random.Generator, side: int, cells: int) -> np.ndarray:
    """Low-frequency noise (unit-ish std): a ``cells``×``cells`` grid, bicubically upsampled."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    fine = Image.fromarray(coarse, mode="F").resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(fine)


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(np.clip(t, -30.0, 30.0)))


def _superellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float,
                  p: int, soft: float) -> np.ndarray:
    """Soft mask (0..1) of |(x-cx)/ax|^p + |(y-cy)/ay|^p <= 1 with edge width ``soft``."""
    r = np.abs((x - cx) / ax) ** p + np.abs((y - cy) / ay) ** p
    return _sigmoid((r - 1.0) / soft)


def render_xray(
    rng: np.random.Generator,
    side: int,
    label: int,
    lesion_contrast: float = 0.2,
    noise: float = 0.05,
) -> np.ndarray:
    """Draw one phantom radiograph of class ``label`` (0/1/2) as float32 H×W in [0, 1]."""
    lin = (np.arange(side, dtype=np.float32) + 0.5) / side * 2.0 - 1.0
    gy, gx = np.meshgrid(lin, lin, indexing="ij")
    # Per-image pose: shift, scale and a small rotation of the patient. Python floats keep
    # every array float32 (numpy scalars would promote to float64 and double the cost).
    scale = float(rng.uniform(0.92, 1.08))
    angle = math.radians(float(rng.uniform(-4.0, 4.0)))
    dx, dy = (float(v) for v in rng.uniform(-0.06, 0.06, size=2))
    ca, sa = math.cos(angle) / scale, math.sin(angle) / scale
    x = ca * (gx - dx) + sa * (gy - dy)
    y = -sa * (gx - dx) + ca * (gy - dy)

    body = _superellipse(x, y, 0.0, 0.15, 0.9, 1.15, 2, 0.04)
    gradient = float(rng.uniform(-0.08, 0.08)) * y + float(rng.uniform(-0.05, 0.05)) * x
    img = 0.04 + body * (0.55 + gradient)

    # Lungs: lateral lower corners are the costophrenic angles.
    lung_w, lung_h = float(rng.uniform(0.26, 0.33)), float(rng.uniform(0.55, 0.66))
    lung_cy = float(rng.uniform(-0.12, -0.02))
    lungs = []
    for side_sign in (-1.0, 1.0):
        cx = side_sign * float(rng.uniform(0.38, 0.45))
        lungs.append((cx, _superellipse(x, y, cx, lung_cy, lung_w, lung_h, 3, 0.05)))
    heart_w = float(rng.uniform(0.26, 0.34))
    heart = _superellipse(x, y, 0.14, 0.32, heart_w, 0.25, 2, 0.06)
    mediastinum = np.maximum(_superellipse(x, y, 0.0, -0.1, 0.13, 0.75, 4, 0.05), heart)
    lung_mask = np.clip(lungs[0][1] + lungs[1][1], 0.0, 1.0) * (1.0 - mediastinum)
    vessels = _smooth_noise(rng, side, max(4, side // 6))
    img -= lung_mask * (0.36 + 0.02 * vessels)
    img += 0.08 * mediastinum * body
    img += 0.06 * _superellipse(x, y, 0.0, 0.0, 0.06, 1.3, 2, 0.08) * body  # spine

    # Ribs: posterior arcs curving down laterally (a periodic profile along the arc
    # coordinate, limited to the rib cage), and two clavicles.
    spacing = float(rng.uniform(0.13, 0.16))
    arc = y - 0.35 * x * x + 0.68 - float(rng.uniform(-0.04, 0.04))
    profile = (0.5 + 0.5 * np.cos(arc * (2.0 * np.pi / spacing))) ** 16
    cage = (arc > -spacing / 2) & (arc < 8.5 * spacing)
    clavicle = np.exp(-(((y + 0.72 - 0.12 * np.abs(x)) / 0.025) ** 2)) * (np.abs(x) < 0.55)
    img += 0.09 * np.clip(profile * cage + clavicle, 0.0, 1.0) * body

    finding = np.zeros_like(x)
    if label == 1:  # patchy consolidation in one lung
        which = int(rng.integers(2))
        cx = lungs[which][0]
        for _ in range(int(rng.integers(1, 3))):
            bx = cx + float(rng.uniform(-0.55, 0.55)) * lung_w
            by = lung_cy + float(rng.uniform(-0.55, 0.6)) * lung_h
            radius = float(rng.uniform(0.09, 0.18))
            blob = np.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * radius**2))
            patchy = np.clip(0.65 + 0.5 * _smooth_noise(rng, side, 5), 0.0, 1.0)
            finding = np.maximum(finding, blob * patchy)
        finding *= lungs[which][1]
    elif label == 2:  # effusion: meniscus climbing laterally from the diaphragm
        sides = [0, 1] if rng.random() < 0.25 else [int(rng.integers(2))]
        bottom = lung_cy + lung_h
        for which in sides:
            cx = lungs[which][0]
            depth = float(rng.uniform(0.14, 0.3)) * lung_h * 2
            lateral = np.clip((1.0 if cx > 0 else -1.0) * (x - cx) / lung_w, -1.0, 1.0)
            surface = bottom - depth + 0.12 * lateral**2 - 0.08 * (lateral + 1)
            fluid = _sigmoid((surface - y) / 0.02)
            finding = np.maximum(finding, fluid * lungs[which][1])
    img += lesion_contrast * finding * (1.0 - 0.5 * mediastinum)

    gamma = float(rng.uniform(0.8, 1.25))
    img = np.clip(img, 0.0, 1.0) ** gamma
    img = ndimage.gaussian_filter(img, max(0.4, side / 160.0))
    img += noise * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0.0, 1.0)


class PhantomXray(Dataset):
    """Procedural chest X-ray phantom: normal / pneumonia (/ effusion), optional "R" marker bias."""

    name: ClassVar[str] = "phantom-xray"
    version: ClassVar[str] = "0.1.0"
    modality: ClassVar[str] = "xray"
    citation: ClassVar[str] = "MedSynBench procedural phantom (no external source)."
    license: ClassVar[str] = "Apache-2.0 (generated data)"
    parameters: ClassVar[dict[str, Param]] = {
        "classes": Param(2, int, "2: normal/pneumonia; 3: + effusion", choices=(2, 3)),
        "resolution": Param(64, int, "image side in pixels", check=_resolution),
        "n_train": Param(500, int, "training images per class", check=nonnegative),
        "n_val": Param(50, int, "validation images per class (0: no val split)", check=nonnegative),
        "n_test": Param(200, int, "test images per class", check=nonnegative),
        "seed": Param(0, int, "generation seed (images are a pure function of it)"),
        "lesion_contrast": Param(
            0.2, float, "brightness added by a finding; higher is easier", check=_rate
        ),
        "noise": Param(0.05, float, "std of additive Gaussian noise (0..1 scale)", check=_rate),
        **BIAS_PARAMETERS,
    }

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES[: self.params["classes"]]

    def check(self) -> None:
        """Generated data needs no files; counts are checked through :meth:`planned_splits`."""

    def planned_splits(self) -> SplitPlan:
        """Images per class of each split, known from the parameters (checked at validate)."""
        per_class = {s: self.params[f"n_{s}"] for s in ("train", "val", "test")}
        if self.params["marker_rate"] > 0:  # apply_bias's probe splits copy the test split
            per_class |= {"test_swapped": per_class["test"], "test_nomarker": per_class["test"]}
        side = self.params["resolution"]
        return SplitPlan(self.class_names, (1, side, side), per_class,
                         {s: f"n_{s}" for s in ("train", "val", "test")})

    def render_split(self, split: str, n_per_class: int, ctx: RunContext) -> np.ndarray:
        """Unmarked float images (N×H×W) of one split, classes in blocks of ``n_per_class``."""
        side, k = self.params["resolution"], self.params["classes"]
        out = np.empty((n_per_class * k, side, side), dtype=np.float32)
        with ctx.progress(f"phantom-xray {split}", total=len(out)) as task:
            for i in range(len(out)):
                rng = np.random.default_rng([self.params["seed"], _SPLIT_IDS[split], i])
                out[i] = render_xray(
                    rng, side, i // n_per_class,
                    self.params["lesion_contrast"], self.params["noise"],
                )
                if i % 64 == 63:
                    task.advance(64)
            task.advance(len(out) % 64)
        return out

    def load(self, ctx: RunContext) -> DataSplits:
        """Render train/val/test (and the marker-probe splits when ``marker_rate > 0``)."""
        k = self.params["classes"]
        counts = {"train": self.params["n_train"], "val": self.params["n_val"],
                  "test": self.params["n_test"]}
        splits: dict[str, ImageSet] = {}
        for split, n in counts.items():
            if split == "val" and n == 0:
                continue
            base = (self.render_split(split, n, ctx) * 255.0 + 0.5).astype(np.uint8)[:, None]
            splits[split] = ImageSet(base, np.repeat(np.arange(k), n))
        info: dict[str, Any] = {"generator": "procedural"}
        data = DataSplits(splits, self.class_names, self.modality, info)
        return apply_bias(data, self.params, self.params["seed"])
