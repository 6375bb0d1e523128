"""Mean-image JPEG size and the normalised variety V."""

from __future__ import annotations

import io

import numpy as np
import pytest
from medsynbench import metrics
from medsynbench.errors import DataError
from medsynbench.plugins.metrics.variety import jpeg_size, mean_image
from PIL import Image


def pil_jpeg_bytes(array: np.ndarray, mode: str) -> int:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="JPEG", quality=100, subsampling=0)
    return len(buffer.getvalue())


def test_mean_image_rounds_half_to_even() -> None:
    images = np.stack([np.zeros((1, 2, 2)), np.full((1, 2, 2), 255),
                       np.zeros((1, 2, 2)), np.full((1, 2, 2), 254)]).astype(np.uint8)
    # means: (0 + 255)/2 = 127.5 → 128 (even); (0+255+0+254)/4 = 127.25 → 127
    assert mean_image(images[:2]).tolist() == [[[128, 128], [128, 128]]]
    assert int(mean_image(images)[0, 0, 0]) == 127


def test_sizes_are_the_documented_pillow_encoding() -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(6, 1, 24, 24), dtype=np.uint8)
    labels = np.array([0, 0, 1, 1, 1, 1])
    sizes = metrics.mean_image_variety(gray, labels, class_names=["a", "b"])
    assert set(sizes) == {"all", "a", "b"}
    assert sizes["all"] == pil_jpeg_bytes(mean_image(gray)[0], "L")
    assert sizes["a"] == pil_jpeg_bytes(mean_image(gray[:2])[0], "L")
    rgb = rng.integers(0, 256, size=(3, 3, 16, 16), dtype=np.uint8)
    expected = pil_jpeg_bytes(mean_image(rgb).transpose(1, 2, 0).copy(), "RGB")
    assert metrics.mean_image_variety(rgb, [2, 2, 2]) == {"all": expected, "class_2": expected}
    assert jpeg_size(mean_image(rgb)) == expected


def test_varied_set_has_smaller_mean_image_than_repeated_image() -> None:
    rng = np.random.default_rng(1)
    varied = rng.integers(0, 256, size=(64, 1, 32, 32), dtype=np.uint8)
    collapsed = np.repeat(varied[:1], 64, axis=0)  # mode collapse: one image 64 times
    v = metrics.mean_image_variety(varied, np.zeros(64, int))["all"]
    c = metrics.mean_image_variety(collapsed, np.zeros(64, int))["all"]
    assert v < c


def test_normalised_variety_hand_computed() -> None:
    assert metrics.normalised_variety({"a": 100, "b": 200, "c": 150}) == {
        "a": 1.0, "b": 0.0, "c": 0.5}
    assert metrics.normalised_variety({"a": 7, "b": 7}) == {"a": 1.0, "b": 1.0}
    assert metrics.normalised_variety({"only": 3}) == {"only": 1.0}
    assert metrics.normalised_variety({}) == {}


def test_bad_images_are_refused() -> None:
    with pytest.raises(DataError, match="uint8 images"):
        metrics.mean_image_variety(np.zeros((2, 1, 4, 4), np.float32), [0, 0])
    with pytest.raises(DataError, match="uint8 images"):
        metrics.mean_image_variety(np.zeros((2, 2, 4, 4), np.uint8), [0, 0])
    with pytest.raises(DataError, match="empty"):
        metrics.mean_image_variety(np.zeros((0, 1, 4, 4), np.uint8), [])
    with pytest.raises(DataError, match="labels must have shape"):
        metrics.mean_image_variety(np.zeros((2, 1, 4, 4), np.uint8), [0])
    with pytest.raises(DataError, match="no class name"):
        metrics.mean_image_variety(np.zeros((2, 1, 4, 4), np.uint8), [0, 3], ["x"])
