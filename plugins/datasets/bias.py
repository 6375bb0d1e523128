"""Bias tools for the X-ray shortcut experiment: burn in an "R" marker, crop the marker region.

The Nan et al. chest X-ray study found that generators reproduce the burned-in laterality
marker ("R") of the Kaggle pediatric set, and that a classifier can use it as a shortcut; its
re-evaluation cropped the image border where the markers sit. These helpers do both on uint8
N×C×H×W arrays so that any X-ray dataset (phantom or real) can be probed the same way.

Datasets of X-rays declare :data:`BIAS_PARAMETERS` and pass their splits through
:func:`apply_bias`, so a suite can set ``marker_rate`` (inject the shortcut, adding the probe
splits ``test_swapped`` and ``test_nomarker``) and ``crop_border`` (crop every split, the
images generators are fitted on included).

Real markers (the Kermany "R", kV/mA text) cannot be moved to another class's place: they are
part of the pixels. For them :func:`mask_border` blanks the *border band* — the outer
:func:`band_width` pixels of every side, where markers sit — and keeps the anatomy where it was
(no rescale, unlike :func:`crop_border`). On the Kermany images at 128 px nearly all markers
lie within 16 px (0.125 of the side) of an edge and a few reach about 20 px (NORMAL: "R" at the
left edge down to two thirds of the height, or along the top edge; PNEUMONIA: a small "R" in
the top-left corner); the share of images with a mark found stops growing beyond a band of
0.14–0.17, so 0.17 (22 px) covers them. The ``bias-probe-masked`` task masks the test
split itself, and the tasks' ``crop_border`` crops everything a classifier sees, synthetic
images included, with the generators unchanged (Nan et al.'s Table IV; ``plugins/tasks``).
These stay out of the datasets: a new dataset parameter would change the protocol hash of every
suite on an X-ray dataset, since parameters enter it with their defaults.

Marker placement is expressed as *slots*: named corners of the image. A dataset that makes the
marker class-dependent gives every class its own slot (see :data:`CLASS_SLOTS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from medsynbench import DataSplits, ImageSet, Param
from medsynbench.errors import ParameterError
from medsynbench.params import in_range
from PIL import Image

__all__ = [
    "BIAS_PARAMETERS",
    "CLASS_SLOTS",
    "SLOTS",
    "apply_bias",
    "band_width",
    "burn_marker",
    "crop_border",
    "marker_box",
    "marker_slot",
    "mask_border",
]

# A 5×7 bitmap of the letter "R" (1 = ink); scaled with np.kron to the image size.
_GLYPH_R = np.array(
    [
        [1, 1, 1, 1, 0],
        [1, 0, 0, 0, 1],
        [1, 0, 0, 0, 1],
        [1, 1, 1, 1, 0],
        [1, 0, 1, 0, 0],
        [1, 0, 0, 1, 0],
        [1, 0, 0, 0, 1],
    ],
    dtype=bool,
)

SLOTS: tuple[str, ...] = ("top-left", "top-right", "bottom-left", "bottom-right")
# Class c's marker sits in slot CLASS_SLOTS[c]: normal top-left, pneumonia top-right, effusion
# bottom-left. The corners lie outside the phantom's torso, as real markers lie off the body.
CLASS_SLOTS: tuple[str, ...] = ("top-left", "top-right", "bottom-left", "bottom-right")

_MARGIN = 0.05  # of the image side, between the marker and the border
_HEIGHT = 0.11  # marker height as a fraction of the image side


def _glyph(side: int) -> np.ndarray:
    scale = max(1, round(side * _HEIGHT / _GLYPH_R.shape[0]))
    return np.kron(_GLYPH_R, np.ones((scale, scale), dtype=bool))


def marker_box(side: int, slot: str) -> tuple[int, int, int, int]:
    """(top, left, height, width) in pixels of the marker in ``slot`` for a square image."""
    if slot not in SLOTS:
        raise ParameterError(f"unknown marker slot {slot!r}; slots: {', '.join(SLOTS)}")
    glyph = _glyph(side)
    h, w = glyph.shape
    margin = max(1, round(side * _MARGIN))
    top = margin if slot.startswith("top") else side - margin - h
    left = margin if slot.endswith("left") else side - margin - w
    return top, left, h, w


def burn_marker(
    images: np.ndarray,
    slots: Sequence[str | None],
    value: int = 250,
    jitter: np.ndarray | None = None,
) -> np.ndarray:
    """Return a copy of uint8 N×C×H×W ``images`` with an "R" burned into ``slots[i]``.

    ``None`` leaves image ``i`` unmarked. ``jitter`` (N×2 integer pixel offsets, optional)
    moves each marker a little so that its position is not a single fixed pixel pattern.
    """
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ParameterError(f"burn_marker expects uint8 N×C×H×W images, got {images.shape}")
    if len(slots) != images.shape[0]:
        raise ParameterError(f"burn_marker got {len(slots)} slots for {images.shape[0]} images")
    out = np.array(images, copy=True)
    side = min(images.shape[2], images.shape[3])
    glyph = _glyph(side)
    for i, slot in enumerate(slots):
        if slot is None:
            continue
        top, left, h, w = marker_box(side, slot)
        if jitter is not None:
            top = int(np.clip(top + jitter[i, 0], 0, images.shape[2] - h))
            left = int(np.clip(left + jitter[i, 1], 0, images.shape[3] - w))
        region = out[i, :, top : top + h, left : left + w]
        region[:, glyph] = value
    return out


def band_width(side: int, fraction: float) -> int:
    """Pixels of the border band of ``fraction`` on a side of ``side`` pixels: what
    :func:`crop_border` cuts, :func:`mask_border` blanks and ``marker-rate`` searches."""
    if not 0.0 <= fraction < 0.5:
        raise ParameterError(f"border fraction must be in [0, 0.5), got {fraction}")
    return round(side * fraction)


def crop_border(images: np.ndarray, fraction: float) -> np.ndarray:
    """Cut ``fraction`` of the side off every border and resize back (the "cropped X-ray").

    With the default marker geometry, ``fraction >= 0.17`` removes every corner marker from
    images of 64 px and more (below that the 7-pixel glyph is a larger share of the side), and
    the real Kermany markers at 128 px (module docstring).
    Resizing uses Pillow's antialiased bicubic filter so the output keeps the input shape.
    """
    n, c, h, w = images.shape
    dy, dx = band_width(h, fraction), band_width(w, fraction)
    if dy == 0 and dx == 0:
        return images
    out = np.empty_like(images)
    for i in range(n):
        for ch in range(c):
            crop = Image.fromarray(np.ascontiguousarray(images[i, ch, dy : h - dy, dx : w - dx]))
            out[i, ch] = np.asarray(crop.resize((w, h), Image.Resampling.BICUBIC))
    return out


def mask_border(images: np.ndarray, fraction: float) -> np.ndarray:
    """A copy of uint8 N×C×H×W ``images`` whose border band (``fraction`` of each side) holds
    one flat grey: the median of that image's own band, per channel.

    The anatomy inside keeps its place and scale. The fill is the image's own band median, not
    a constant: black would make tightly collimated images (PNEUMONIA in the Kermany set: tissue
    up to the edge) look like wide ones (NORMAL: dark borders), a new class cue; the median keeps
    each image's border level and removes what the band *shows* (letters, electrodes, the
    body's outline). It still tells a classifier how bright the border was.
    """
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ParameterError(f"mask_border expects uint8 N×C×H×W images, got {images.shape}")
    h, w = images.shape[2:]
    dy, dx = band_width(h, fraction), band_width(w, fraction)
    if dy == 0 and dx == 0:
        return images
    band = np.ones((h, w), dtype=bool)
    band[dy : h - dy, dx : w - dx] = False
    out = np.array(images, copy=True)
    fill = np.median(images[:, :, band], axis=2)  # N×C
    out[:, :, band] = np.round(fill).astype(np.uint8)[:, :, None]
    return out


_rate = in_range(0, 1)


_crop = in_range(0, 0.5, high_open=True)


BIAS_PARAMETERS: dict[str, Param] = {
    "marker_rate": Param(
        0.0, float, "probability that an image carries its class's 'R' marker (0: none)",
        check=_rate,
    ),
    "marker_mode": Param(
        "position", str,
        "position: every class has its own marker corner; presence: only abnormal classes "
        "(label > 0) are marked", choices=("position", "presence"),
    ),
    "crop_border": Param(
        0.0, float, "fraction cut off every border of every split, resized back (>= 0.17 "
        "removes the markers at 64 px and above); generators are then fitted on cropped images "
        "too — the tasks' crop_border crops only what the classifier sees (Table IV)",
        check=_crop,
    ),
}
_SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}


def marker_slot(label: int, n_classes: int, mode: str, swapped: bool) -> str | None:
    """Where class ``label``'s marker sits — or, ``swapped``, where another class's would."""
    if mode == "presence":
        marked = label != 0
        return CLASS_SLOTS[1] if marked != swapped else None
    return CLASS_SLOTS[(label + 1) % n_classes if swapped else label]


def apply_bias(data: DataSplits, params: dict[str, Any], seed: int) -> DataSplits:
    """Inject markers (with the probe splits) and/or crop borders as ``params`` ask.

    With ``marker_rate > 0`` each image of every split carries its class's marker with that
    probability; ``test_swapped`` holds every test image marked as another class would be and
    ``test_nomarker`` the same images unmarked (identical anatomy: differences in accuracy
    measure the shortcut only). ``crop_border`` is applied last, to every split.
    """
    rate = float(params.get("marker_rate", 0.0))
    mode = str(params.get("marker_mode", "position"))
    crop = float(params.get("crop_border", 0.0))
    if rate <= 0 and crop <= 0:
        return data
    k = data.n_classes
    splits: dict[str, ImageSet] = {}
    for name, split in data.splits.items():
        if rate <= 0:
            splits[name] = split
            continue
        base = np.asarray(split.images)
        labels = split.labels
        rng = np.random.default_rng([seed, _SPLIT_SEEDS.get(name, 9), 10**6])
        carries = rng.random(len(labels)) < rate
        jitter = rng.integers(-1, 2, size=(len(labels), 2))
        slots = [marker_slot(int(c), k, mode, False) if m else None
                 for c, m in zip(labels, carries, strict=True)]
        splits[name] = ImageSet(burn_marker(base, slots, jitter=jitter), labels, split.groups,
                                split.names)
        if name == "test":
            swapped = [marker_slot(int(c), k, mode, True) for c in labels]
            splits["test_swapped"] = ImageSet(burn_marker(base, swapped, jitter=jitter), labels,
                                              split.groups, split.names)
            splits["test_nomarker"] = ImageSet(base, labels, split.groups, split.names)
    if crop > 0:
        splits = {name: ImageSet(crop_border(np.asarray(s.images), crop), s.labels, s.groups,
                                 s.names)
                  for name, s in splits.items()}
    info = {**data.info, "marker_rate": rate, "marker_mode": mode, "crop_border": crop}
    return DataSplits(splits, data.class_names, data.modality, info)
