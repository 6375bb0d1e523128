"""Radiomics features of whole 2-D images in numpy/scipy: first order, GLCM, GLRLM and GLSZM.

pyradiomics (which the FRD paper uses) does not install everywhere, so this module computes an
equivalent, documented subset with the pyradiomics / IBSI formulas — no weights, no filters.
Every image is one region of interest (the whole image), as in FRD.

Preprocessing: grey = mean over channels of the uint8 image, as float (0 … 255). Texture
features read grey levels discretised with a fixed bin width W (``bin_width``, default 8 → at
most 32 levels): X_d = ⌊X/W⌋ − ⌊min X/W⌋ + 1 (pyradiomics' and IBSI's fixed bin size, so levels
start at 1); Ng = max X_d, the levels the image spans. eps = 2.2e-16 inside every log₂.

``FEATURE_NAMES`` lists the 70 features, in the order of the columns of
:func:`radiomic_features`:

- ``firstorder_*`` (16, on grey, N_p pixels): mean, variance (population), skewness μ₃/σ³,
  kurtosis μ₄/σ⁴ (not excess), median, minimum, maximum, p10, p90, interquartile_range
  (p75 − p25), range, mean_absolute_deviation, robust_mean_absolute_deviation (of the pixels
  between p10 and p90, about their own mean), root_mean_squared, and on the histogram p of
  X_d: entropy (−Σ p log₂ p) and uniformity (Σ p²). Percentiles: numpy's linear interpolation.
- ``glcm_*`` (22): symmetric co-occurrence matrices at distance 1 for the four 2-D angles
  (0°, 45°, 90°, 135°), each normalised to p(i, j); each feature is computed per angle and
  averaged over the angles (pyradiomics' default). With p_x, p_y the marginals, μ_x, σ_x their
  means and deviations, p_{x+y}(k) and p_{x−y}(k) the sum and |difference| distributions:
  autocorrelation Σ p i j; joint_average μ_x; cluster_prominence / _shade / _tendency
  Σ p (i + j − μ_x − μ_y)^{4,3,2}; contrast Σ p (i − j)²; correlation (Σ p i j − μ_x μ_y) /
  (σ_x σ_y); difference_average DA = Σ k p_{x−y}; difference_entropy; difference_variance
  Σ (k − DA)² p_{x−y}; joint_energy Σ p²; joint_entropy HXY; imc1 (HXY − HXY1) / max(HX, HY);
  imc2 √(1 − exp(−2 (HXY2 − HXY))); idm Σ p_{x−y}/(1 + k²); idmn Σ p_{x−y}/(1 + k²/Ng²);
  id Σ p_{x−y}/(1 + k); idn Σ p_{x−y}/(1 + k/Ng); inverse_variance Σ_{k≥1} p_{x−y}/k²;
  maximum_probability max p; sum_entropy; sum_squares Σ p (i − μ_x)². (HX, HY: entropies of
  the marginals; HXY1 = −Σ p log₂(p_x p_y), HXY2 = −Σ p_x p_y log₂(p_x p_y).)
- ``glrlm_*`` (16): runs of equal X_d along each of the four angles (features per angle,
  averaged); ``glszm_*`` (16): zones = 8-connected regions of equal X_d. For N runs (zones) of
  level i and length (size) j, N_p pixels, P(i, j) their counts, p = P/N: short / long run
  (small / large area) emphasis Σ P j^∓2 / N; gray_level_non_uniformity Σ_i (Σ_j P)² / N and
  its ``_normalized`` form / N²; run_length (size_zone) non_uniformity Σ_j (Σ_i P)² / N and
  ``_normalized``; run (zone) percentage N / N_p; gray_level_variance Σ p (i − μ_i)²; run
  (zone) variance Σ p (j − μ_j)²; run (zone) entropy −Σ p log₂ p; low / high gray level
  emphasis Σ P i^∓2 / N; and the four products Σ P i^{∓2} j^{∓2} / N.

Blank (constant) images are handled explicitly, as pyradiomics does for a "flat region":
skewness and kurtosis (0/0) are 0, GLCM correlation (σ = 0) is 1 and imc1 (max(HX, HY) = 0) is
0; every other feature is finite on a constant image. Images smaller than 2×2 have no
co-occurring pairs and are refused. A feature that is not finite for any other reason is a
:class:`DataError` naming the image and the feature, never a silent NaN.

Not included (pyradiomics has them; FRD v1 uses them): shape features (the mask is the whole
image), GLDM, NGTDM, and the LoG / wavelet filtered images.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from medsynbench.errors import DataError
from scipy import ndimage

__all__ = ["ANGLES", "EPS", "FEATURE_NAMES", "discretise", "image_features", "radiomic_features"]

EPS = float(np.finfo(float).eps)  # 2.2e-16, pyradiomics' eps
ANGLES = ((0, 1), (1, 1), (1, 0), (1, -1))  # (dy, dx): 0°, 45° (down-right), 90°, 135°

FIRST_ORDER = (
    "mean", "variance", "skewness", "kurtosis", "median", "minimum", "maximum", "p10", "p90",
    "interquartile_range", "range", "mean_absolute_deviation", "robust_mean_absolute_deviation",
    "root_mean_squared", "entropy", "uniformity",
)
GLCM = (
    "autocorrelation", "joint_average", "cluster_prominence", "cluster_shade",
    "cluster_tendency", "contrast", "correlation", "difference_average", "difference_entropy",
    "difference_variance", "joint_energy", "joint_entropy", "imc1", "imc2", "idm", "idmn", "id",
    "idn", "inverse_variance", "maximum_probability", "sum_entropy", "sum_squares",
)
_RUN_LIKE = (
    "short_{r}_emphasis", "long_{r}_emphasis", "gray_level_non_uniformity",
    "gray_level_non_uniformity_normalized", "{n}_non_uniformity", "{n}_non_uniformity_normalized",
    "{p}_percentage", "gray_level_variance", "{p}_variance", "{p}_entropy",
    "low_gray_level_{p}_emphasis", "high_gray_level_{p}_emphasis",
    "short_{r}_low_gray_level_emphasis", "short_{r}_high_gray_level_emphasis",
    "long_{r}_low_gray_level_emphasis", "long_{r}_high_gray_level_emphasis",
)
GLRLM = tuple(f.format(r="run", n="run_length", p="run") for f in _RUN_LIKE)
GLSZM = tuple(f.format(r="area", n="size_zone", p="zone") for f in _RUN_LIKE)
FEATURE_NAMES: tuple[str, ...] = (
    *(f"firstorder_{n}" for n in FIRST_ORDER), *(f"glcm_{n}" for n in GLCM),
    *(f"glrlm_{n}" for n in GLRLM), *(f"glszm_{n}" for n in GLSZM),
)


def _entropy(p: np.ndarray) -> float:
    return float(-(p * np.log2(p + EPS)).sum())


def discretise(grey: np.ndarray, bin_width: float) -> np.ndarray:
    """Fixed-bin-width grey levels 1 … Ng (module docstring)."""
    levels: np.ndarray = np.floor(grey / bin_width) - np.floor(grey.min() / bin_width) + 1
    return levels.astype(np.int64)


def first_order(grey: np.ndarray, levels: np.ndarray) -> list[float]:
    """The 16 ``firstorder_*`` features of one image."""
    x = grey.ravel()
    mean = x.mean()
    centred = x - mean
    squared = centred * centred  # products, not float powers: 10× faster on large images
    variance = float(squared.mean())
    if variance > 0:
        skewness = float((squared * centred).mean() / variance**1.5)
        kurtosis = float((squared * squared).mean() / variance**2)
    else:  # flat region: 0/0, set to 0 as pyradiomics does
        skewness = kurtosis = 0.0
    p10, p25, p50, p75, p90 = np.percentile(x, [10, 25, 50, 75, 90])
    robust = x[(x >= p10) & (x <= p90)]
    hist = np.bincount(levels.ravel()).astype(float)
    hist = hist[hist > 0] / x.size
    return [
        float(mean), variance, skewness, kurtosis, float(p50), float(x.min()), float(x.max()),
        float(p10), float(p90), float(p75 - p25), float(x.max() - x.min()),
        float(np.abs(centred).mean()), float(np.abs(robust - robust.mean()).mean()),
        float(np.sqrt((x * x).mean())), _entropy(hist), float((hist**2).sum()),
    ]


def _pairs(levels: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """Levels of every pixel pair (p, p + (dy, dx)) inside the image."""
    h, w = levels.shape
    ys, yd = (slice(0, h - dy), slice(dy, h))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    return levels[ys, xs].ravel(), levels[yd, xd].ravel()


def _glcm_one(p: np.ndarray, ng: int) -> list[float]:
    i = np.arange(1, ng + 1, dtype=float)[:, None]
    j = i.T
    px, py = p.sum(axis=1), p.sum(axis=0)
    mu_x, mu_y = float((px * i[:, 0]).sum()), float((py * j[0]).sum())
    sigma_x = float(np.sqrt((px * (i[:, 0] - mu_x) ** 2).sum()))
    sigma_y = float(np.sqrt((py * (j[0] - mu_y) ** 2).sum()))
    k_sum = (i + j).astype(np.int64).ravel()
    k_diff = np.abs(i - j).astype(np.int64).ravel()
    p_sum = np.bincount(k_sum, weights=p.ravel(), minlength=2 * ng + 1)[2:]
    p_diff = np.bincount(k_diff, weights=p.ravel(), minlength=ng)
    k = np.arange(ng, dtype=float)
    autocorrelation = float((p * i * j).sum())
    spread = i + j - mu_x - mu_y
    diff_average = float((k * p_diff).sum())
    hx, hy, hxy = _entropy(px), _entropy(py), _entropy(p)
    outer = px[:, None] * py[None, :]
    hxy1 = float(-(p * np.log2(outer + EPS)).sum())
    hxy2 = _entropy(outer)
    correlation = ((autocorrelation - mu_x * mu_y) / (sigma_x * sigma_y)
                   if sigma_x * sigma_y > 0 else 1.0)  # flat region: 1, as pyradiomics
    imc1 = (hxy - hxy1) / max(hx, hy) if max(hx, hy) > 0 else 0.0  # flat region: 0
    imc2 = float(np.sqrt(1 - np.exp(-2 * (hxy2 - hxy)))) if hxy2 > hxy else 0.0
    return [
        autocorrelation, mu_x, float((p * spread**4).sum()), float((p * spread**3).sum()),
        float((p * spread**2).sum()), float((p * (i - j) ** 2).sum()), float(correlation),
        diff_average, _entropy(p_diff), float(((k - diff_average) ** 2 * p_diff).sum()),
        float((p**2).sum()), hxy, float(imc1), imc2, float((p_diff / (1 + k**2)).sum()),
        float((p_diff / (1 + k**2 / ng**2)).sum()), float((p_diff / (1 + k)).sum()),
        float((p_diff / (1 + k / ng)).sum()), float((p_diff[1:] / k[1:] ** 2).sum()),
        float(p.max()), _entropy(p_sum), float((p * (i - mu_x) ** 2).sum()),
    ]


def glcm(levels: np.ndarray) -> list[float]:
    """The 22 ``glcm_*`` features of one discretised image, averaged over the four angles."""
    ng = int(levels.max())
    per_angle = []
    for dy, dx in ANGLES:
        a, b = _pairs(levels, dy, dx)
        if a.size == 0:
            continue
        counts = np.bincount((a - 1) * ng + (b - 1), minlength=ng * ng).reshape(ng, ng)
        counts = counts + counts.T  # symmetric
        per_angle.append(_glcm_one(counts / counts.sum(), ng))
    return list(np.mean(per_angle, axis=0))


def _run_like(level: np.ndarray, length: np.ndarray, n_pixels: int) -> list[float]:
    """The 16 run-length / size-zone features from one entry per run (zone)."""
    i, j = level.astype(float), length.astype(float)
    n = float(len(i))
    by_level = np.bincount(level)
    by_length = np.bincount(length)
    # p(i, j) over distinct (i, j) pairs, for the entropy
    pair_counts = np.bincount(level * (int(length.max()) + 1) + length)
    p_pairs = pair_counts[pair_counts > 0] / n
    mu_i, mu_j = i.mean(), j.mean()
    return [
        float((1 / j**2).sum() / n), float((j**2).sum() / n),
        float((by_level**2).sum() / n), float((by_level**2).sum() / n**2),
        float((by_length**2).sum() / n), float((by_length**2).sum() / n**2),
        n / n_pixels, float(((i - mu_i) ** 2).mean()), float(((j - mu_j) ** 2).mean()),
        _entropy(p_pairs), float((1 / i**2).sum() / n), float((i**2).sum() / n),
        float((1 / (i**2 * j**2)).sum() / n), float((i**2 / j**2).sum() / n),
        float((j**2 / i**2).sum() / n), float((i**2 * j**2).sum() / n),
    ]


@functools.lru_cache(maxsize=16)
def _line_order(shape: tuple[int, int], dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel indices ordered line by line along (dy, dx), and each one's line id.

    line = dy·x − dx·y is constant along a step (dy, dx); pos = dy·y + dx·x increases by a
    fixed amount at each step, so sorting by (line, pos) lays every line out in order."""
    ys, xs = np.indices(shape)
    line = (dy * xs - dx * ys).ravel()
    order = np.lexsort(((dy * ys + dx * xs).ravel(), line))
    return order, line[order]


def runs(levels: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """(level, length) of every maximal run of equal levels along direction (dy, dx)."""
    order, line = _line_order(levels.shape, dy, dx)
    sequence = levels.ravel()[order]
    start = np.ones(sequence.size, dtype=bool)
    start[1:] = (sequence[1:] != sequence[:-1]) | (line[1:] != line[:-1])
    first = np.flatnonzero(start)
    return sequence[first], np.diff(np.append(first, sequence.size))


def glrlm(levels: np.ndarray) -> list[float]:
    """The 16 ``glrlm_*`` features, averaged over the four angles."""
    per_angle = [_run_like(*runs(levels, dy, dx), levels.size) for dy, dx in ANGLES]
    return list(np.mean(per_angle, axis=0))


def zones(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(level, size) of every 8-connected zone of equal levels."""
    eight = np.ones((3, 3), dtype=bool)
    zone_levels, sizes = [], []
    for level in np.unique(levels):
        labelled, count = ndimage.label(levels == level, structure=eight)
        zone_sizes = np.bincount(labelled.ravel())[1:]
        zone_levels.append(np.full(count, level, dtype=np.int64))
        sizes.append(zone_sizes)
    return np.concatenate(zone_levels), np.concatenate(sizes)


def glszm(levels: np.ndarray) -> list[float]:
    """The 16 ``glszm_*`` features."""
    return _run_like(*zones(levels), levels.size)


FAMILIES: tuple[tuple[str, Callable[..., list[float]]], ...] = (
    ("firstorder", first_order), ("glcm", glcm), ("glrlm", glrlm), ("glszm", glszm),
)


def image_features(image: np.ndarray, bin_width: float = 8.0) -> np.ndarray:
    """The 70 features (``FEATURE_NAMES`` order) of one uint8 C×H×W image."""
    grey = image.astype(np.float64).mean(axis=0)
    levels = discretise(grey, bin_width)
    values: list[float] = []
    for family, compute in FAMILIES:
        values += compute(grey, levels) if family == "firstorder" else compute(levels)
    return np.array(values)


def radiomic_features(images: np.ndarray, bin_width: float = 8.0) -> np.ndarray:
    """N×70 float64 features of uint8 N×C×H×W ``images`` (columns: ``FEATURE_NAMES``)."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise DataError("radiomics features need uint8 N×C×H×W images, got "
                        f"{getattr(images, 'dtype', type(images).__name__)} with shape "
                        f"{getattr(images, 'shape', '?')}")
    if images.shape[0] == 0:
        raise DataError("radiomics features: the image set is empty")
    if min(images.shape[2:]) < 2:
        raise DataError(f"radiomics features need images of at least 2×2 pixels (texture "
                        f"matrices count neighbouring pairs), got {images.shape[2:]}")
    if not bin_width > 0:
        raise DataError(f"radiomics bin_width must be > 0, got {bin_width}")
    table = np.stack([image_features(image, bin_width) for image in images])
    bad = ~np.isfinite(table)
    if bad.any():
        row, column = (int(v[0]) for v in np.nonzero(bad))
        names = sorted({FEATURE_NAMES[c] for c in np.nonzero(bad.any(axis=0))[0]})
        raise DataError(f"radiomics feature {FEATURE_NAMES[column]} is not finite on image "
                        f"{row} ({int(bad.any(axis=1).sum())} images; features {names}); "
                        "this image has no defined value for it — check the images")
    return table
