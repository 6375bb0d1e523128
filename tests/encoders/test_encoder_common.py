"""Shared encoder machinery: preprocessing, device resolution, progress, registration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import medsynbench.plugins.encoders as encoders_package
import numpy as np
import pytest
import torch
from medsynbench import RunContext
from medsynbench.errors import DataError, ParameterError
from medsynbench.plugins.encoders._common import (
    check_images,
    encode_batched,
    resolve_device,
    to_unit_rgb,
)
from medsynbench.registry import PluginRegistry


def test_to_unit_rgb_scales_repeats_and_resizes() -> None:
    batch = torch.tensor([[[[0, 255], [51, 102]]]], dtype=torch.uint8)  # 1×1×2×2
    same = to_unit_rgb(batch, None)
    assert same.shape == (1, 3, 2, 2) and same.dtype == torch.float32
    torch.testing.assert_close(same[0, 2], torch.tensor([[0.0, 1.0], [0.2, 0.4]]))
    assert to_unit_rgb(batch, 6).shape == (1, 3, 6, 6)


def test_downsampling_is_antialiased_unless_disabled() -> None:
    # columns 1, 2 of every 4 are white: half the area. A 4× antialiased downsample averages
    # to mid-grey; plain bilinear samples exactly between columns 1 and 2 and sees white.
    stripes = np.tile(np.isin(np.arange(32) % 4, (1, 2)) * 255, (32, 1)).astype(np.uint8)
    batch = torch.from_numpy(stripes)[None, None]
    smooth = to_unit_rgb(batch, 8)
    assert torch.allclose(smooth, torch.full_like(smooth, 0.5), atol=0.05)
    aliased = to_unit_rgb(batch, 8, antialias=False)
    assert torch.allclose(aliased, torch.ones_like(aliased))


def test_check_images_messages_name_the_encoder() -> None:
    with pytest.raises(DataError, match=r"encoder 'x': images must be uint8 N×C×H×W, got int64"):
        check_images(np.zeros((1, 1, 4, 4), np.int64), "x")
    with pytest.raises(DataError, match="must have 1 or 3 channels"):
        check_images(np.zeros((1, 4, 4, 4), np.uint8), "x")
    with pytest.raises(DataError, match="expected a numpy array"):
        check_images(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), "x")  # type: ignore[arg-type]


def test_resolve_device() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ParameterError, match="not a valid torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA is not available"):
            resolve_device("cuda")


def test_progress_reports_every_image(ctx: RunContext) -> None:
    calls: list[tuple[str, Any]] = []

    class Task:
        def advance(self, n: float = 1) -> None:
            calls.append(("advance", n))

        def update(self, **fields: Any) -> None:
            pass

    @contextmanager
    def progress(description: str, total: float | None = None) -> Iterator[Task]:
        calls.append((description, total))
        yield Task()

    images = np.zeros((7, 1, 4, 4), np.uint8)
    out = encode_batched(
        images, lambda b: b.float().flatten(1)[:, :2], ctx.child(progress=progress),
        name="probe", batch_size=3, out_dim=2,
    )
    assert out.shape == (7, 2)
    assert calls == [("encode probe", 7), ("advance", 3), ("advance", 3), ("advance", 1)]


def test_wrong_forward_output_is_caught(ctx: RunContext) -> None:
    with pytest.raises(RuntimeError, match=r"produced shape \(2, 3\), expected \(B, 4\)"):
        encode_batched(
            np.zeros((2, 1, 4, 4), np.uint8), lambda b: torch.zeros(len(b), 3), ctx,
            name="probe", batch_size=2, out_dim=4,
        )


def test_all_encoders_register() -> None:
    registry = PluginRegistry()
    registry.add_module(encoders_package, "medsynbench")
    names = ["dinov2", "efficientnet-lite0", "inception-fid", "open-clip", "timm", "vqvae-codes"]
    assert registry.names("encoder") == names
    assert registry.get("encoder", "vqvae-codes").output == "codes"
    assert registry.get("encoder", "vqvae-codes").needs_fit
    for name in ("efficientnet-lite0", "inception-fid", "timm"):
        cls = registry.get("encoder", name)
        assert cls.output == "features" and not cls.needs_fit and cls.description


@pytest.mark.gpu
def test_cuda_features_match_cpu() -> None:
    from medsynbench.plugins.encoders import EfficientNetLite0

    images = np.random.default_rng(0).integers(0, 256, (8, 1, 64, 64), dtype=np.uint8)
    cpu = EfficientNetLite0(resolution=96).encode(images, RunContext(device="cpu"))
    cuda = EfficientNetLite0(resolution=96).encode(images, RunContext(device="cuda"))
    assert np.abs(cpu - cuda).max() < 0.05 * np.abs(cpu).max()  # float16 autocast on CUDA
