"""Radiomics features (hand-computed on tiny images, blank images, the NaN guard) and FRD
(agreement with frd-score v1's normalisation + Fréchet distance on the same feature tables)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from medsynbench import MetricInputs, RunContext, metrics
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.metrics import radiomics
from medsynbench.plugins.metrics.frd import FRDMetric, frd, standardise
from medsynbench.plugins.metrics.frechet import fid
from medsynbench.plugins.metrics.radiomics import FEATURE_NAMES, radiomic_features, runs, zones


def features_of(image: np.ndarray, bin_width: float = 8.0) -> dict[str, float]:
    table = radiomic_features(image[None].astype(np.uint8), bin_width)
    return dict(zip(FEATURE_NAMES, table[0].tolist(), strict=True))


def test_seventy_named_features_in_four_families() -> None:
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == 70
    assert metrics.RADIOMICS_FEATURES == FEATURE_NAMES
    families = [name.split("_")[0] for name in FEATURE_NAMES]
    assert {f: families.count(f) for f in set(families)} == {
        "firstorder": 16, "glcm": 22, "glrlm": 16, "glszm": 16}


def test_hand_computed_two_by_two() -> None:
    # grey [[0, 0], [8, 8]], bin width 8 → levels [[1, 1], [2, 2]], Ng = 2.
    f = features_of(np.array([[[0, 0], [8, 8]]]))
    # first order of (0, 0, 8, 8)
    assert f["firstorder_mean"] == 4 and f["firstorder_variance"] == 16
    assert f["firstorder_skewness"] == 0 and f["firstorder_kurtosis"] == pytest.approx(1.0)
    assert (f["firstorder_p10"], f["firstorder_p90"], f["firstorder_interquartile_range"]) == (
        0, 8, 8)
    assert f["firstorder_mean_absolute_deviation"] == 4
    assert f["firstorder_root_mean_squared"] == pytest.approx(math.sqrt(32))
    assert f["firstorder_entropy"] == pytest.approx(1.0) and f["firstorder_uniformity"] == 0.5
    # GLCM: 0° pairs (1,1), (2,2) → p = diag(½, ½); 45°, 90°, 135° pairs (1,2) → p = ½ off-diag.
    assert f["glcm_contrast"] == pytest.approx((0 + 1 + 1 + 1) / 4)
    assert f["glcm_correlation"] == pytest.approx((1 - 1 - 1 - 1) / 4)  # (Σpij − μ²)/σ², σ = ½
    assert f["glcm_autocorrelation"] == pytest.approx((2.5 + 2 + 2 + 2) / 4)
    assert f["glcm_idm"] == pytest.approx((1 + 0.5 * 3) / 4)
    assert f["glcm_joint_energy"] == pytest.approx(0.5)
    assert f["glcm_joint_entropy"] == pytest.approx(1.0)
    # GLRLM: 0°: two runs of length 2; 45°, 90°, 135°: four runs of length 1 (N_p = 4).
    assert f["glrlm_run_percentage"] == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    assert f["glrlm_short_run_emphasis"] == pytest.approx((0.25 + 1 + 1 + 1) / 4)
    assert f["glrlm_long_run_emphasis"] == pytest.approx((4 + 1 + 1 + 1) / 4)
    assert f["glrlm_gray_level_non_uniformity"] == pytest.approx((1 + 2 + 2 + 2) / 4)
    # GLSZM: two zones of size 2, levels 1 and 2.
    assert f["glszm_zone_percentage"] == 0.5 and f["glszm_short_area_emphasis"] == 0.25
    assert f["glszm_long_area_emphasis"] == 4 and f["glszm_zone_entropy"] == pytest.approx(1.0)
    assert f["glszm_low_gray_level_zone_emphasis"] == pytest.approx((1 + 1 / 4) / 2)
    assert f["glszm_high_gray_level_zone_emphasis"] == pytest.approx((1 + 4) / 2)


def pairs(found: tuple[np.ndarray, np.ndarray]) -> list[tuple[int, int]]:
    return sorted(zip(found[0].tolist(), found[1].tolist(), strict=True))


def test_runs_and_zones_by_hand() -> None:
    levels = np.array([[1, 1, 2], [2, 2, 2], [1, 2, 1]])
    # rows: (1,1)(2) / (2,2,2) / (1)(2)(1)
    assert pairs(runs(levels, 0, 1)) == [(1, 1), (1, 1), (1, 2), (2, 1), (2, 1), (2, 3)]
    # anti-diagonals: (2,2)(1) / (1)(2) / (2,2) / (1) / (1)
    assert pairs(runs(levels, 1, -1)) == [(1, 1), (1, 1), (1, 1), (1, 1), (2, 1), (2, 2),
                                          (2, 2)]
    # 8-connected zones: the 2s form one zone of 5
    assert pairs(zones(levels)) == [(1, 1), (1, 1), (1, 2), (2, 5)]


def test_blank_image_is_handled_explicitly() -> None:
    f = features_of(np.full((3, 16, 16), 100))
    assert all(np.isfinite(list(f.values())))
    # 0/0 cases, set as pyradiomics does for a flat region
    assert f["firstorder_skewness"] == 0 and f["firstorder_kurtosis"] == 0
    assert f["glcm_correlation"] == 1 and f["glcm_imc1"] == 0 and f["glcm_imc2"] == 0
    assert f["glszm_zone_percentage"] == 1 / 256 and f["glszm_long_area_emphasis"] == 256**2
    assert f["firstorder_mean"] == 100 and f["firstorder_variance"] == 0


def test_colour_is_averaged_to_grey() -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (1, 12, 12))
    rgb = np.concatenate([grey, grey, grey])
    assert features_of(rgb) == features_of(grey)


def test_a_non_finite_feature_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    original = radiomics.first_order

    def broken(grey: np.ndarray, levels: np.ndarray) -> list[float]:
        values = original(grey, levels)
        values[2] = float("nan") if grey.std() == 0 else values[2]
        return values

    monkeypatch.setattr(radiomics, "FAMILIES", (("firstorder", broken), *radiomics.FAMILIES[1:]))
    images = np.stack([np.random.default_rng(1).integers(0, 256, (1, 8, 8)),
                       np.full((1, 8, 8), 7)]).astype(np.uint8)
    with pytest.raises(DataError, match=r"firstorder_skewness is not finite on image 1"):
        radiomic_features(images)


def test_bad_images_are_refused() -> None:
    with pytest.raises(DataError, match="at least 2×2"):
        radiomic_features(np.zeros((2, 1, 1, 8), np.uint8))
    with pytest.raises(DataError, match="uint8 N×C×H×W"):
        radiomic_features(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(DataError, match="empty"):
        radiomic_features(np.zeros((0, 1, 8, 8), np.uint8))
    with pytest.raises(ParameterError, match="bin_width"):
        FRDMetric(bin_width=0)


def frd_score_v1(real: np.ndarray, fake: np.ndarray) -> float:
    """frd-score 1.0.1 (``frd_score/frd.py``) v1 defaults after feature extraction, transcribed:
    ``z_score_normalize`` with ``base_distribution`` = D1 (norm_ref "d1"), range [0, 1],
    ``replace_nan = handle_std_zero = False``; columns with NaN/inf after normalisation dropped;
    ``calculate_frechet_distance`` (scipy sqrtm) — without the log and the float32 cast."""
    mean, std = np.nanmean(real, axis=0), np.nanstd(real, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = [((x - mean) / std) * (1.0 - 0.0) + 0.0 for x in (real, fake)]
    keep = ~np.zeros(real.shape[1], dtype=bool)
    for x in normalised:
        keep &= ~(np.isnan(x).any(axis=0) | np.isinf(x).any(axis=0))
    a, b = (x[:, keep] for x in normalised)
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = np.real(scipy.linalg.sqrtm(s1.dot(s2)))
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("seed", [0, 1])
def test_standardised_frechet_equals_frd_score_v1(seed: int) -> None:
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(150, 8)) * rng.uniform(0.1, 50, 8) + rng.normal(size=8) * 10
    fake = rng.normal(size=(120, 8)) * rng.uniform(0.1, 50, 8) + rng.normal(size=8) * 10
    real[:, 3] = 5.0  # constant over the real set: dropped by frd-score, zeroed here
    real_z, fake_z = standardise(real, fake)
    assert not real_z[:, 3].any() and not fake_z[:, 3].any()
    assert fid(real_z, fake_z, device="cpu") == pytest.approx(frd_score_v1(real, fake),
                                                              abs=1e-6)


def phantoms(seed: int, n: int, blur: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (n, 1, 1, 1)) + rng.normal(0, 30, (n, 1, 16, 16))
    if blur:
        base = (base + np.roll(base, 1, axis=3) + np.roll(base, 1, axis=2)) / 3
    return np.clip(base, 0, 255).astype(np.uint8)


def test_frd_plugin_sees_texture(ctx: RunContext) -> None:
    real, same, blurred = phantoms(0, 48), phantoms(1, 48), phantoms(2, 48, blur=True)
    with pytest.warns(UserWarning, match="rank-deficient"):  # 48 images < 70 features
        close = frd(real, same, device="cpu")["frd"]
        far = frd(real, blurred, device="cpu")["frd"]
    assert 0 < close < far
    inputs = MetricInputs(real=real, synthetic=blurred, heldout=None,
                          real_labels=np.zeros(48), synthetic_labels=np.zeros(48),
                          class_names=("a",), representation="images")
    with pytest.warns(UserWarning, match="rank-deficient"):
        assert FRDMetric().compute(inputs, ctx) == metrics.frd(real, blurred, device="cpu")
        assert metrics.frd(real, blurred, device="cpu") == {"frd": far}
        assert frd(real, real, device="cpu")["frd"] == pytest.approx(0.0, abs=1e-9)
    assert FRDMetric.quantities["frd"].axis == "fidelity"
    assert not FRDMetric.quantities["frd"].higher_is_better
    assert FRDMetric.input == "images" and FRDMetric.default_encoder is None
