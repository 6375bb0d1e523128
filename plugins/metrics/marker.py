"""``marker-rate``: how many images carry a burned-in marker — does a generator inherit the "R"?

The Kermany pediatric X-rays carry a burned-in laterality "R" (and on some PNEUMONIA images
kV/mA text) near the border; Nan et al. found that generators reproduce it. This metric counts
the images that carry such a mark, for the real reference set and for the synthetic set, per
class, so the board shows whether an entry passes the marker on.

Detection (:func:`find_markers`) is deliberately simple, so that its misses can be reasoned
about, and needs no encoder:

1. grey = mean over channels; ``background`` = grey opening with a square of
   ``max(3, round(0.06 × side))`` px (8 px at 128): it erases every bright structure too narrow
   to hold that square — letter strokes — and keeps broad ones (bones, soft tissue);
2. a pixel is *ink* when it rises at least ``contrast`` grey levels (default 40) above that
   background (the white top-hat) — or 6 noise σ on a noisy image (σ: the MAD of grey minus
   its 3×3 median), so that film grain does not write letters;
3. an 8-connected group of ink pixels is a *mark* when it is character-sized and stands alone:
   bounding box 3 px ≤ height ≤ 0.25 × side and 2 px ≤ width ≤ 0.25 × side, neither side more
   than 2.5 × the other, at least 5 ink pixels, a peak at least 1.5 × the ink threshold, its
   median top-hat at least 3 × the 90th percentile of the top-hat in a ring 2–3 px around it
   (ink on a plain background; a bone or skin edge continues, dimmer, beyond the part that
   crossed the threshold, and grain sits among grain), that ring at least as large as the mark
   (not cut off by the image edge), and the whole box inside the border band (``band`` of the
   side from an edge, :func:`~medsynbench.plugins.datasets.bias.band_width`);
4. an image *carries a marker* when it holds at least one mark.

What it measures (``tests/metrics/test_marker.py``):

* :func:`~medsynbench.plugins.datasets.bias.burn_marker`'s "R" on 300 phantom-xray images at
  64 and 128 px, every corner, jittered: 100 % found; the same phantoms unmarked: 0.7 % (64 px)
  and 0 % (128 px) flagged. Below 64 px the glyph no longer fits the 0.17 band.
* the Kermany test split at 128 px (subset A): 75.6 % of NORMAL (177/234) and 87.9 % of
  PNEUMONIA (343/390) flagged; train split 96.7 % NORMAL, 81.6 % PNEUMONIA. The source
  inspected an "R" on 24/24 NORMAL and 7/8 PNEUMONIA originals. By eye, on 16 flagged images
  of each class, the mark found was an "R" on 15/16 PNEUMONIA and 13/16 NORMAL images (the
  others: an ECG lead, a clavicle end, a bright neck fold). Misses are "R"s cut by the top
  edge, 2–3 px tall or touching the body outline.
* false alarms on anatomy: after :func:`~medsynbench.plugins.datasets.bias.crop_border` 0.17
  (markers cut away, the rest enlarged 1.5 ×), 27 % of NORMAL and 17 % of PNEUMONIA test images
  are still flagged, on rib crossings at the new edge — an upper bound for unmarked real images
  at their own scale, where edges are sharper and bands darker.

So a rate is "bright, character-sized, isolated marks in the border band", not a reader of
letters: compare an entry's rate with the real rate beside it, at the same resolution, and
read per-class rates together. It does not see *where* in the band a mark sits — for Kermany
the class cue is as much the position (NORMAL: left edge or top; PNEUMONIA: top-left corner) as
the presence.

Quantities (lower is better): ``marker_rate`` (synthetic), ``real_marker_rate``,
``marker_rate_excess`` (synthetic − real: > 0 the generator adds markers, < 0 it drops them)
and ``marker_rate[<class>]`` / ``real_marker_rate[<class>]``. They sit on the ``fidelity`` axis:
the core's axes are fidelity, variety, privacy, efficiency and utility, and the board shows no
metric on the utility axis; "does the synthetic set reproduce an artefact of the real one" is
the closest question. Lower is better because the marker is a shortcut, not anatomy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar, Literal

import numpy as np
from medsynbench.errors import DataError
from medsynbench.kinds import Metric, MetricInputs, Quantity, RunContext
from medsynbench.params import Param, in_range
from scipy import ndimage

from ..datasets.bias import band_width

__all__ = ["MarkerRateMetric", "carries_marker", "erase_markers", "find_markers", "marker_rates"]

_BAND = in_range(0, 0.5, low_open=True, high_open=True)

_OPENING = 0.06  # background square, fraction of the side
_MAX_SIZE = 0.25  # largest mark, fraction of the side (a 7-px glyph on a 32-px phantom: 0.22)
_MAX_ASPECT = 2.5
_MIN_INK = 5
_NOISE_UNITS = 6.0  # the ink threshold rises to this many noise σ on noisy images
_ISOLATION = 3.0  # a mark's median top-hat over the 90th percentile of its ring's
_PEAK = 1.5  # a mark's brightest pixel rises at least this × ``contrast`` above the background


_contrast = in_range(0, 255, low_open=True, high_open=True)


def _noise_sigma(grey: np.ndarray) -> float:
    """Pixel noise of one image: the robust (MAD) spread of grey − its 3×3 median."""
    residual = grey - ndimage.median_filter(grey, size=3)
    return float(1.4826 * np.median(np.abs(residual - np.median(residual))))


def _isolated(tophat: np.ndarray, labels: np.ndarray, box: tuple[slice, slice], i: int) -> bool:
    """Does component ``i`` stand out from its surroundings like ink on a plain background?

    Its median top-hat must be ``_ISOLATION`` × the 90th percentile of the top-hat in a ring
    2–3 px around it (other marks excluded): a bone or skin edge continues, dimmer, beyond the
    part that crossed the threshold, and noise clusters sit among noise nearly as bright.
    """
    h, w = tophat.shape
    pad = (slice(max(0, box[0].start - 3), min(h, box[0].stop + 3)),
           slice(max(0, box[1].start - 3), min(w, box[1].stop + 3)))
    local = labels[pad]
    mark = local == i
    eight = np.ones((3, 3), dtype=bool)
    near = ndimage.binary_dilation(mark, eight)
    ring = ndimage.binary_dilation(mark, eight, iterations=3) & ~near & (local == 0)
    if ring.sum() < mark.sum():  # mostly cut off by the image edge: too little context
        return False
    ink = float(np.median(tophat[pad][mark]))
    return ink >= _ISOLATION * (float(np.percentile(tophat[pad][ring], 90)) + 1.0)


def find_markers(
    images: np.ndarray, band: float = 0.17, contrast: float = 40.0
) -> list[list[tuple[int, int, int, int]]]:
    """Per image, the (top, left, height, width) boxes of the marks found (module docstring)."""
    if images.ndim != 4:
        raise DataError(f"marker detection expects N×C×H×W images, got shape {images.shape}")
    _, _, h, w = images.shape
    side = min(h, w)
    size = max(3, round(_OPENING * side))
    dy, dx = band_width(h, band), band_width(w, band)
    lo, hi = (3, 2), _MAX_SIZE * side
    found: list[list[tuple[int, int, int, int]]] = []
    for image in images:
        grey = image.astype(np.float32).mean(axis=0)
        tophat = grey - ndimage.grey_opening(grey, size=(size, size))
        threshold = max(contrast, _NOISE_UNITS * _noise_sigma(grey))
        labels, _ = ndimage.label(tophat >= threshold, structure=np.ones((3, 3)))
        marks = []
        for i, box in enumerate(ndimage.find_objects(labels), start=1):
            top, left = box[0].start, box[1].start
            bh, bw = box[0].stop - top, box[1].stop - left
            if not (lo[0] <= bh <= hi and lo[1] <= bw <= hi):
                continue
            if max(bh / bw, bw / bh) > _MAX_ASPECT:
                continue
            ink = labels[box] == i
            if int(ink.sum()) < _MIN_INK:
                continue
            if float(tophat[box][ink].max()) < _PEAK * threshold:
                continue
            in_band = (box[0].stop <= dy or top >= h - dy or box[1].stop <= dx or left >= w - dx)
            if in_band and _isolated(tophat, labels, box, i):
                marks.append((top, left, bh, bw))
        found.append(marks)
    return found


def carries_marker(images: np.ndarray, band: float = 0.17, contrast: float = 40.0) -> np.ndarray:
    """Boolean per image: at least one mark in the border band (:func:`find_markers`)."""
    return np.array([bool(m) for m in find_markers(images, band, contrast)], dtype=bool)


def erase_markers(images: np.ndarray, band: float = 0.17, contrast: float = 40.0) -> np.ndarray:
    """A copy of uint8 N×C×H×W ``images`` with every mark :func:`find_markers` finds — its box
    grown by 2 px — replaced by the opened background there (step 1 of the module docstring):
    the letter goes, the film, anatomy and border around it stay. Marks it misses stay too."""
    out = np.array(images, copy=True)
    size = max(3, round(_OPENING * min(images.shape[2:])))
    h, w = images.shape[2:]
    for i, marks in enumerate(find_markers(images, band, contrast)):
        if not marks:
            continue
        for channel in range(images.shape[1]):
            grey = images[i, channel].astype(np.float32)
            background = np.round(ndimage.grey_opening(grey, size=(size, size))).astype(np.uint8)
            for top, left, bh, bw in marks:
                box = (slice(max(0, top - 2), min(h, top + bh + 2)),
                       slice(max(0, left - 2), min(w, left + bw + 2)))
                out[i, channel][box] = background[box]
    return out


def marker_rates(
    images: np.ndarray, labels: np.ndarray, n_classes: int, band: float = 0.17,
    contrast: float = 40.0,
) -> tuple[float, list[float]]:
    """The fraction of images carrying a marker: over all, and per class (NaN: no image)."""
    if len(images) == 0:
        return float("nan"), [float("nan")] * n_classes
    flagged = carries_marker(images, band, contrast)
    labels = np.asarray(labels)
    per_class = [float(flagged[labels == c].mean()) if np.any(labels == c) else float("nan")
                 for c in range(n_classes)]
    return float(flagged.mean()), per_class


# The core has no "bias" axis (kinds.Axis); the board hides metrics on the utility axis.
_AXIS: Literal["fidelity"] = "fidelity"
_HEADLINE: dict[str, Quantity] = {
    "marker_rate": Quantity(
        _AXIS, False, "share of synthetic images with a burned-in marker in the border band: "
        "a shortcut a classifier trained on them can learn"),
    "real_marker_rate": Quantity(
        _AXIS, False, "the same share in the real reference set (what the generator saw)"),
    "marker_rate_excess": Quantity(
        _AXIS, False, "marker_rate − real_marker_rate: > 0 the generator adds markers, "
        "< 0 it drops them"),
}
_PER_CLASS = ("marker_rate[", "real_marker_rate[")


class _Quantities(Mapping[str, Quantity]):
    """The declared quantities, and per-class ``marker_rate[<class>]`` /
    ``real_marker_rate[<class>]`` on the same axis (class names are known only at run time)."""

    def __getitem__(self, key: str) -> Quantity:
        if key in _HEADLINE:
            return _HEADLINE[key]
        for prefix in _PER_CLASS:
            if key.startswith(prefix) and key.endswith("]"):
                base = _HEADLINE[prefix[:-1]]
                return Quantity(base.axis, base.higher_is_better, f"{base.help}, one class")
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(_HEADLINE)

    def __len__(self) -> int:
        return len(_HEADLINE)


class MarkerRateMetric(Metric):
    """Share of real and synthetic images carrying a burned-in text marker, per class."""

    name = "marker-rate"
    version = "0.1.0"
    description = ("Share of images with a burned-in marker (bright character-sized marks in the "
                   "border band), synthetic vs real, per class")
    input = "images"
    default_encoder = None
    parameters: ClassVar[Mapping[str, Param]] = {
        "band": Param(0.17, float, "border band searched, fraction of the side (0.17 covers the "
                      "Kermany markers at 128 px)", check=_BAND),
        "contrast": Param(40.0, float, "grey levels a mark's ink must rise above the opened "
                          "background", check=_contrast),
    }
    quantities: ClassVar[Mapping[str, Quantity]] = _Quantities()

    def compute(self, inputs: MetricInputs, ctx: RunContext) -> dict[str, float]:
        band, contrast = float(self.params["band"]), float(self.params["contrast"])
        k = len(inputs.class_names)
        synthetic, synthetic_classes = marker_rates(
            inputs.synthetic, inputs.synthetic_labels, k, band, contrast)
        real, real_classes = _real_rates(inputs.real, inputs.real_labels, k, band, contrast)
        values = {"marker_rate": synthetic, "real_marker_rate": real,
                  "marker_rate_excess": synthetic - real}
        values |= _per_class("marker_rate", inputs.class_names, synthetic_classes)
        values |= _per_class("real_marker_rate", inputs.class_names, real_classes)
        return values


_REAL_RATES: dict[tuple[str, int, float, float], tuple[float, list[float]]] = {}


def _real_rates(
    images: np.ndarray, labels: np.ndarray, n_classes: int, band: float, contrast: float,
) -> tuple[float, list[float]]:
    """:func:`marker_rates` of the real reference set, computed once per process.

    Every entry of a suite shares one real set; detecting its markers took ~19 s per entry on
    3,000 Kermany images at 128 px (2-core CPU). The key is a digest of the pixels and labels, so
    a different set (another suite, another split) is never served a stale rate."""
    digest = hashlib.blake2b(np.ascontiguousarray(images).tobytes(), digest_size=16)
    digest.update(np.ascontiguousarray(labels).astype(np.int64).tobytes())
    digest.update(repr(images.shape).encode())
    key = (digest.hexdigest(), n_classes, band, contrast)
    if key not in _REAL_RATES:
        _REAL_RATES.clear()  # one real set at a time: keep memory flat across suites
        _REAL_RATES[key] = marker_rates(images, labels, n_classes, band, contrast)
    overall, per_class = _REAL_RATES[key]
    return overall, list(per_class)


def _per_class(key: str, names: Sequence[str], rates: Sequence[float]) -> dict[str, float]:
    return {f"{key}[{name}]": rate for name, rate in zip(names, rates, strict=True)}
