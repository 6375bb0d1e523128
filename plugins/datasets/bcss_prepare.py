"""Cut the pathology study's 6-class 256 px patches from slides (or ROIs) and label masks.

Input: a folder of RGB slide/ROI images and a folder of label masks with the same file stem
(BCSS: ``masks/<roi>.png``, one class code per pixel). Each slide is tiled on a grid with
stride = patch size; a patch is kept when one mapped class covers at least ``min_fraction`` of
it, and is labelled with that class. The default mapping reads BCSS codes
(github.com/PathologyDataScience/BCSS, ``gtruth_codes.tsv``):

    tumor ← 1 tumor          stroma ← 2 stroma          inflammatory ← 3, 10, 11 (lymphocytic,
    necrosis ← 4 necrosis/debris    fat ← 9 fat          plasma cells, other immune)
    gland ← 13 normal acinus or duct

Lizard (colon) label files are read natively: ``labels/<image>.mat`` with ``inst_map`` (instance
id per pixel) and ``class`` (one nuclear class per instance, in the order of ``id``) become a
per-pixel nuclear class map (1 neutrophil, 2 epithelial, 3 lymphocyte, 4 plasma, 5 eosinophil,
6 connective tissue). When every mask is a ``.mat`` and no mapping is given, :data:`LIZARD_MAPPING`
applies (inflammatory ← 1, 3, 4, 5; gland ← 2; stroma ← 6). Nuclei cover only part of a patch, so
pass a smaller ``--min-fraction`` (e.g. 0.1) for Lizard. Any other source works with a mapping
JSON (``{"gland": [2], ...}``) over per-pixel class PNGs.

Split: slides (the TCGA id before the first ``_``) are assigned whole to train/val/test in the
study's proportions (7,874 / 3,741 / 7,478), stratified by their majority class, with a fixed
seed; with ``paper_sizes`` each split is then subsampled (class proportions kept) to at most
the study's count. Patches are written as ``<out>/<split>/<class>/<slide>__<roi>_<x>_<y>.png``, the
layout ``bcss-lizard`` reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from medsynbench import RunContext
from medsynbench.errors import DataError
from PIL import Image

from .folders import PATHOLOGY_CLASSES
from .imageio import IMAGE_EXTENSIONS
from .splits import split_indices

__all__ = [
    "BCSS_MAPPING",
    "LIZARD_MAPPING",
    "PAPER_SIZES",
    "load_mapping",
    "prepare_bcss_lizard",
    "read_label_map",
    "tile_slide",
]

BCSS_MAPPING: dict[str, list[int]] = {
    "inflammatory": [3, 10, 11], "necrosis": [4], "stroma": [2], "tumor": [1], "fat": [9],
    "gland": [13],
}
LIZARD_MAPPING: dict[str, list[int]] = {"inflammatory": [1, 3, 4, 5], "gland": [2], "stroma": [6]}
PAPER_SIZES = {"train": 7874, "val": 3741, "test": 7478}
MASK_SUFFIXES = (*IMAGE_EXTENSIONS, ".mat")


def read_label_map(mask: Path) -> np.ndarray:
    """Per-pixel class codes from a PNG-like mask or a Lizard ``.mat`` label file."""
    if mask.suffix.lower() != ".mat":
        with Image.open(mask) as opened:
            return np.asarray(opened.convert("L") if opened.mode not in ("L", "P") else opened)
    from scipy.io import loadmat

    try:
        content = loadmat(mask)
    except Exception as exc:  # scipy raises several types for a corrupt file
        raise DataError(f"cannot read Lizard label file {mask}: {exc}") from exc
    missing = [key for key in ("inst_map", "class") if key not in content]
    if missing:
        raise DataError(f"{mask} lacks {', '.join(missing)}: not a Lizard label file (it needs "
                        "inst_map and class; see the Lizard release's README)")
    inst_map = np.asarray(content["inst_map"]).astype(np.int64)
    classes = np.asarray(content["class"]).astype(np.int64).ravel()
    ids = np.asarray(content["id"]).astype(np.int64).ravel() if "id" in content else \
        np.arange(1, len(classes) + 1)
    if len(ids) != len(classes):
        raise DataError(f"{mask}: {len(ids)} instance ids but {len(classes)} classes")
    lookup = np.zeros(max(int(inst_map.max()), int(ids.max(initial=0))) + 1, dtype=np.uint8)
    lookup[ids] = classes
    return lookup[inst_map]


def load_mapping(path: Path | None) -> dict[str, list[int]]:
    """A class → mask codes mapping from JSON (default: BCSS), checked against the 6 classes."""
    if path is None:
        return dict(BCSS_MAPPING)
    try:
        mapping = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the mapping JSON {path}: {exc}") from exc
    unknown = sorted(set(mapping) - set(PATHOLOGY_CLASSES))
    if unknown:
        raise DataError(f"{path}: unknown classes {unknown}; use {', '.join(PATHOLOGY_CLASSES)}")
    return {k: [int(v) for v in codes] for k, codes in mapping.items()}


def _lookup(mapping: Mapping[str, Sequence[int]]) -> np.ndarray:
    table = np.full(256, -1, dtype=np.int64)
    for name, codes in mapping.items():
        for code in codes:
            table[code] = PATHOLOGY_CLASSES.index(name)
    return table


def tile_slide(
    slide: Path, mask: Path, table: np.ndarray, patch: int, min_fraction: float
) -> list[tuple[int, int, int]]:
    """(x, y, class) of every grid patch of ``slide`` whose majority mapped class qualifies."""
    labels = read_label_map(mask)
    with Image.open(slide) as opened:
        size = opened.size
    if labels.shape != (size[1], size[0]):
        raise DataError(f"mask {mask} is {labels.shape[1]}×{labels.shape[0]} but slide {slide} "
                        f"is {size[0]}×{size[1]}")
    mapped = table[labels.astype(np.int64)]
    found = []
    for y in range(0, labels.shape[0] - patch + 1, patch):
        for x in range(0, labels.shape[1] - patch + 1, patch):
            window = mapped[y : y + patch, x : x + patch]
            counts = np.bincount(window[window >= 0].ravel(), minlength=len(PATHOLOGY_CLASSES))
            best = int(counts.argmax())
            if counts[best] >= min_fraction * patch * patch:
                found.append((x, y, best))
    return found


def _pairs(slides: Path, masks: Path) -> list[tuple[Path, Path]]:
    for folder, what in ((slides, "slides"), (masks, "masks")):
        if not folder.is_dir():
            raise DataError(f"--{what} folder {folder} does not exist")
    by_stem = {p.stem: p for p in masks.iterdir() if p.suffix.lower() in MASK_SUFFIXES}
    pairs, missing = [], []
    for slide in sorted(p for p in slides.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
        mask = by_stem.get(slide.stem)
        (pairs.append((slide, mask)) if mask else missing.append(slide.name))
    if missing:
        raise DataError(f"no mask in {masks} for slides: {', '.join(missing[:10])}")
    if not pairs:
        raise DataError(f"{slides} contains no slide images")
    return pairs


def prepare_bcss_lizard(
    slides: Path, masks: Path, out: Path, ctx: RunContext, patch: int = 256,
    min_fraction: float = 0.5, seed: int = 0, paper_sizes: bool = True,
    mapping: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, dict[str, int]]:
    """Tile every slide, split by slide, write the patches; return counts per split and class."""
    if not 0 < min_fraction <= 1:
        raise DataError(f"--min-fraction must be in (0, 1], got {min_fraction}")
    pairs = _pairs(slides, masks)
    if mapping is None:
        lizard = all(mask.suffix.lower() == ".mat" for _, mask in pairs)
        mapping = LIZARD_MAPPING if lizard else BCSS_MAPPING
    table = _lookup(mapping)
    with ctx.progress("bcss-lizard: tiling slides", total=len(pairs)) as task, \
            ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        tiles = []
        for result in pool.map(
                lambda p: tile_slide(p[0], p[1], table, patch, min_fraction), pairs):
            tiles.append(result)
            task.advance(1)
    records = [(k, x, y, c) for k, found in enumerate(tiles) for x, y, c in found]
    if not records:
        raise DataError(f"no patch of {patch} px reached min_fraction {min_fraction} of one class")
    slide_of = np.asarray([r[0] for r in records])
    labels = np.asarray([r[3] for r in records])
    slide_ids = np.asarray([pairs[k][0].stem.split("_")[0] for k in slide_of])
    total = sum(PAPER_SIZES.values())
    fractions = {s: n / total for s, n in PAPER_SIZES.items()}
    parts = split_indices(labels, fractions, seed, slide_ids)
    rng = np.random.default_rng(seed)
    counts: dict[str, dict[str, int]] = {}
    with ctx.progress("bcss-lizard: writing patches", total=len(records)) as task:
        for split, index in parts.items():
            if paper_sizes and len(index) > PAPER_SIZES[split]:
                index = np.sort(rng.permutation(index)[: PAPER_SIZES[split]])
            counts[split] = dict.fromkeys(PATHOLOGY_CLASSES, 0)
            by_slide: dict[int, list[int]] = {}
            for i in index:
                by_slide.setdefault(int(slide_of[i]), []).append(int(i))
            for k, members in by_slide.items():
                with Image.open(pairs[k][0]) as opened:
                    rgb = opened.convert("RGB")
                    for i in members:
                        _, x, y, c = records[i]
                        name = PATHOLOGY_CLASSES[c]
                        stem = f"{slide_ids[i]}__{pairs[k][0].stem}_{x}_{y}"
                        target = out / split / name / f"{stem}.png"
                        target.parent.mkdir(parents=True, exist_ok=True)
                        rgb.crop((x, y, x + patch, y + patch)).save(target)
                        counts[split][name] += 1
                        task.advance(1)
    return counts
