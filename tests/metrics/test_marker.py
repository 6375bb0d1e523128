"""marker-rate: burned-in "R"s are found, plain images are not flagged, a crop removes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from medsynbench import MetricInputs, RunContext
from medsynbench.plugins.datasets.bias import SLOTS, burn_marker, crop_border, mask_border
from medsynbench.plugins.datasets.phantom_xray import PhantomXray
from medsynbench.plugins.metrics import PLUGINS
from medsynbench.plugins.metrics.marker import (
    MarkerRateMetric,
    carries_marker,
    erase_markers,
    find_markers,
    marker_rates,
)
from PIL import Image


def plain(n: int, side: int = 64) -> np.ndarray:
    """Dark film with a gentle left-to-right ramp (20 → 60): nothing bright, nothing small."""
    ramp = np.linspace(20, 60, side)
    return np.broadcast_to(ramp, (n, 1, side, side)).round().astype(np.uint8).copy()


def every_slot(images: np.ndarray) -> np.ndarray:
    return burn_marker(images, [SLOTS[i % 4] for i in range(len(images))])


def test_burned_r_on_plain_film_is_found_once_in_its_corner() -> None:
    marked = every_slot(plain(4))
    found = find_markers(marked)
    assert [len(marks) for marks in found] == [1, 1, 1, 1]
    # 64 px: the glyph is 7×5 px, 3 px from the border (bias.marker_box)
    top, left, height, width = found[0][0]
    assert (top, left, height, width) == (3, 3, 7, 5)
    assert found[1][0][1] == 64 - 3 - 5  # top-right slot
    assert not carries_marker(plain(4)).any()


def test_a_crop_or_a_mask_of_the_border_band_removes_the_marker() -> None:
    marked = every_slot(plain(8))
    assert carries_marker(marked).all()
    assert not carries_marker(crop_border(marked, 0.17)).any()
    assert not carries_marker(mask_border(marked, 0.17)).any()


def test_a_mark_outside_the_band_is_not_a_marker() -> None:
    image = plain(1)
    image[0, 0, 28:35, 30:35] = 250  # a bright 7×5 block in the middle of the film
    assert not carries_marker(image).any()


@pytest.mark.parametrize("side", [64, 128])
def test_phantom_r_detected_and_unmarked_phantoms_not_flagged(side: int, ctx: RunContext) -> None:
    phantoms = PhantomXray(resolution=side, n_train=0, n_val=0, n_test=30, classes=2,
                           seed=5).load(ctx).test.images
    jitter = np.random.default_rng(0).integers(-1, 2, size=(len(phantoms), 2))
    slots = [SLOTS[i % 4] for i in range(len(phantoms))]
    marked = burn_marker(phantoms, slots, jitter=jitter)
    assert carries_marker(marked).mean() >= 0.95
    assert carries_marker(phantoms).mean() <= 0.05
    assert carries_marker(mask_border(marked, 0.17)).mean() == 0.0


def test_rates_per_class_are_counts_over_class_sizes() -> None:
    images = plain(8)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    marked = burn_marker(images, ["top-left"] * 4 + ["top-right", None, None, None])
    overall, per_class = marker_rates(marked, labels, 3)
    assert overall == 5 / 8
    assert per_class[:2] == [1.0, 0.25]
    assert np.isnan(per_class[2])  # no image of class 2


def test_metric_reports_real_and_synthetic_rates_per_class(ctx: RunContext) -> None:
    real = every_slot(plain(4))  # every real image marked
    synthetic = burn_marker(plain(4), ["top-left", None, None, None])
    labels = np.array([0, 0, 1, 1])
    inputs = MetricInputs(real, synthetic, None, labels, labels, ("normal", "pneumonia"),
                          representation="images")
    values = MarkerRateMetric().compute(inputs, ctx)
    assert values["real_marker_rate"] == 1.0
    assert values["marker_rate"] == 0.25
    assert values["marker_rate_excess"] == -0.75
    assert values["marker_rate[normal]"] == 0.5 and values["marker_rate[pneumonia]"] == 0.0
    assert values["real_marker_rate[pneumonia]"] == 1.0
    # every reported value has a declared axis and direction (per-class keys included)
    for key in values:
        quantity = MarkerRateMetric.quantities[key]
        assert quantity.axis == "fidelity" and quantity.higher_is_better is False
    assert MarkerRateMetric in PLUGINS and MarkerRateMetric.input == "images"


def test_real_rate_is_computed_once_per_real_set(ctx: RunContext, monkeypatch) -> None:
    from medsynbench.plugins.metrics import marker

    calls: list[int] = []

    def counting(images, *args, **kwargs):
        calls.append(len(images))
        return marker_rates(images, *args, **kwargs)

    monkeypatch.setattr(marker, "marker_rates", counting)
    monkeypatch.setattr(marker, "_REAL_RATES", {})  # earlier tests may have seen this set
    labels = np.array([0, 0, 1, 1])
    real = every_slot(plain(4))
    metric = MarkerRateMetric()
    for synthetic in (plain(4), every_slot(plain(4))):  # two entries, one real set
        inputs = MetricInputs(real, synthetic, None, labels, labels, ("a", "b"),
                              representation="images")
        assert metric.compute(inputs, ctx)["real_marker_rate"] == 1.0
    assert len(calls) == 3  # real once, each synthetic set once
    other = plain(4)  # another real set (same shape, unmarked) is not served the stale rate
    inputs = MetricInputs(other, other, None, labels, labels, ("a", "b"), representation="images")
    assert metric.compute(inputs, ctx)["real_marker_rate"] == 0.0

def test_bad_band_is_refused() -> None:
    from medsynbench.errors import ParameterError

    with pytest.raises(ParameterError, match="band"):
        MarkerRateMetric(band=0.6)


# --- the real Kermany "R" (skipped without ../shared/data) ---------------------------------

def _kermany_test(shared_data: Path, name: str) -> np.ndarray:
    folder = shared_data / "kermany2018_chest_xray" / "chest_xray" / "test" / name
    files = sorted(folder.glob("*.png"))
    if not files:
        pytest.skip(f"no Kermany test images in {folder}")
    return np.stack([np.asarray(Image.open(f)) for f in files])[:, None]


def test_kermany_markers_at_128px(shared_data: Path) -> None:
    """Measured 2026-11-29: NORMAL 0.756 (177/234), PNEUMONIA 0.879 (343/390) at band 0.17."""
    normal = _kermany_test(shared_data, "NORMAL")
    pneumonia = _kermany_test(shared_data, "PNEUMONIA")
    assert normal.shape[1:] == (1, 128, 128)
    assert carries_marker(normal).mean() == pytest.approx(177 / 234, abs=0.02)
    assert carries_marker(pneumonia).mean() == pytest.approx(343 / 390, abs=0.02)
    assert not carries_marker(mask_border(pneumonia, 0.17)).any()
    # erasing what was found leaves few marks (measured 1.8 % of the 624: marks under marks)
    both = np.concatenate([normal, pneumonia])
    assert carries_marker(erase_markers(both)).mean() <= 0.03


def test_erasing_the_marks_gives_back_the_plain_film() -> None:
    film = plain(4)
    erased = erase_markers(every_slot(film))
    assert not carries_marker(erased).any()
    assert np.abs(erased.astype(int) - film).max() <= 1  # the opened ramp is the ramp
    untouched = plain(2)
    assert erase_markers(untouched) is not untouched
    np.testing.assert_array_equal(erase_markers(untouched), untouched)
