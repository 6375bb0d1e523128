"""The variety codecs: quality-100 JPEG (the papers') and truly lossless PNG; V is board-derived."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from medsynbench.errors import ParameterError
from medsynbench.kinds import MetricInputs, RunContext
from medsynbench.plugins.metrics.builtin import MeanImageJPEGMetric
from medsynbench.plugins.metrics.variety import (
    CODECS,
    encode,
    encoded_size,
    jpeg_size,
    mean_image,
    mean_image_variety,
)
from PIL import Image


def decode(data: bytes) -> np.ndarray:
    """Decoded bytes as a uint8 C×H×W array."""
    array = np.asarray(Image.open(io.BytesIO(data)))
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def png_chunks(data: bytes) -> list[str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append(data[at + 4 : at + 8].decode("ascii"))
        at += 12 + length
    return chunks


def images(channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(5, channels, 20, 24), dtype=np.uint8)


@pytest.mark.parametrize("channels", [1, 3])
def test_png_round_trip_gives_the_mean_image_back(channels: int) -> None:
    mean = mean_image(images(channels))
    data = encode(mean, "png")
    decoded = decode(data)
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, mean)
    assert png_chunks(data) == ["IHDR"] + ["IDAT"] * (len(png_chunks(data)) - 2) + ["IEND"]


def test_jpeg_quality_100_is_not_lossless() -> None:
    mean = mean_image(images(3))
    assert not np.array_equal(decode(encode(mean, "jpeg")), mean)


def test_png_size_is_deterministic_and_follows_the_documented_settings() -> None:
    mean = mean_image(images(1))
    sizes = {encoded_size(mean, "png") for _ in range(3)}
    assert len(sizes) == 1
    buffer = io.BytesIO()
    Image.fromarray(mean[0], mode="L").save(buffer, format="PNG", compress_level=9,
                                            optimize=False)
    assert sizes == {len(buffer.getvalue())}
    assert CODECS["png"] == {"format": "PNG", "compress_level": 9, "optimize": False}
    assert jpeg_size(mean) == encoded_size(mean, "jpeg") == len(encode(mean))


def test_mean_image_variety_uses_the_codec() -> None:
    arr, labels = images(1), np.array([0, 0, 1, 1, 1])
    png = mean_image_variety(arr, labels, codec="png")
    assert png["all"] == encoded_size(mean_image(arr), "png")
    assert png["class_1"] == encoded_size(mean_image(arr[2:]), "png")
    assert mean_image_variety(arr, labels) == mean_image_variety(arr, labels, codec="jpeg")


def test_unknown_codec_is_refused() -> None:
    with pytest.raises(ParameterError, match="'jpg' is not one of jpeg, png"):
        mean_image_variety(images(1), np.zeros(5, int), codec="jpg")
    with pytest.raises(ParameterError, match="codec"):
        MeanImageJPEGMetric(codec="webp")
    with pytest.raises(ParameterError, match="codec"):
        MeanImageJPEGMetric(codec=100)
    assert MeanImageJPEGMetric().params == {"codec": "jpeg"}


@pytest.mark.parametrize("codec", ["jpeg", "png"])
def test_metric_reports_raw_sizes_only(codec: str) -> None:
    real, fake = images(1, seed=1), images(1, seed=2)
    labels = np.array([0, 0, 1, 1, 1])
    inputs = MetricInputs(real=real, synthetic=fake, heldout=None, real_labels=labels,
                          synthetic_labels=labels, class_names=("a", "b"),
                          representation="images")
    values = MeanImageJPEGMetric(codec=codec).compute(inputs, RunContext())
    fake_sizes = mean_image_variety(fake, labels, codec=codec)
    assert values == {
        "jpeg_bytes": fake_sizes["all"],
        "jpeg_bytes_class_mean": (fake_sizes["class_0"] + fake_sizes["class_1"]) / 2,
        "real_jpeg_bytes": mean_image_variety(real, labels, codec=codec)["all"],
    }


def test_variety_is_declared_for_the_board_to_derive() -> None:
    quantities = MeanImageJPEGMetric.quantities
    assert not hasattr(MeanImageJPEGMetric, "across_entries")
    for derived, source in (("variety", "jpeg_bytes"),
                            ("variety_class_mean", "jpeg_bytes_class_mean")):
        q = quantities[derived]
        assert (q.axis, q.higher_is_better, q.board_rule, q.source) == (
            "variety", True, "inverse-minmax", source)
        assert quantities[source].board_rule is None
        assert quantities[source].higher_is_better is False
    assert MeanImageJPEGMetric.version != "0.1.0"
