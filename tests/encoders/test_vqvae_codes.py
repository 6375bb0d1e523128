"""vqvae-codes: tiny fits on CPU, code shapes, determinism, save/load round trip, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.errors import DataError, ParameterError, WeightsError
from medsynbench.plugins.encoders.vqvae_codes import CHECKPOINT, VQVAECodes

TINY = {
    "codebook_size": 16,
    "code_dim": 8,
    "channels": 16,
    "res_channels": 8,
    "n_res": 1,
    "steps": 60,
    "batch_size": 8,
    "lr": 3e-3,
}


def toy_set(channels: int = 1, size: int = 32, n_per_class: int = 16, seed: int = 0) -> ImageSet:
    """Dark images with a bright square top-left vs bright images with a dark bar at the bottom."""
    rng = np.random.default_rng(seed)
    images = np.empty((2 * n_per_class, channels, size, size), np.float64)
    images[:n_per_class] = 60
    images[:n_per_class, :, : size // 2, : size // 2] = 200
    images[n_per_class:] = 190
    images[n_per_class:, :, -size // 4 :, :] = 40
    images += rng.normal(0, 8, images.shape)
    labels = np.repeat([0, 1], n_per_class)
    return ImageSet(np.clip(images, 0, 255).astype(np.uint8), labels)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[VQVAECodes, Path, ImageSet]:
    workdir = tmp_path_factory.mktemp("vqvae")
    train = toy_set(size=16)
    encoder = VQVAECodes(**TINY)
    encoder.fit(train, workdir, RunContext(device="cpu", seed=3, workdir=workdir))
    return encoder, workdir, train


def test_codes_shape_dtype_and_range(
    fitted: tuple[VQVAECodes, Path, ImageSet], ctx: RunContext
) -> None:
    encoder, _, train = fitted
    codes = encoder.encode(train.images, ctx)
    assert codes.shape == (len(train), (16 // 8) ** 2)
    assert codes.dtype == np.int32
    assert codes.min() >= 0 and codes.max() < TINY["codebook_size"]
    assert encoder.code_length == 4


def test_fit_reduces_the_loss(fitted: tuple[VQVAECodes, Path, ImageSet]) -> None:
    _, workdir, _ = fitted
    saved = torch.load(workdir / CHECKPOINT, weights_only=True)
    assert saved["final_loss"] < 0.7 * saved["initial_loss"]


def test_codes_separate_the_two_kinds_of_image(
    fitted: tuple[VQVAECodes, Path, ImageSet], ctx: RunContext
) -> None:
    encoder, _, train = fitted
    codes = encoder.encode(train.images, ctx)
    hamming = (codes[:, None, :] != codes[None, :, :]).mean(-1)
    same = train.labels[:, None] == train.labels[None]
    off_diagonal = ~np.eye(len(train), dtype=bool)
    assert hamming[same & off_diagonal].mean() < 0.5 * hamming[~same].mean()


def test_reload_round_trip(fitted: tuple[VQVAECodes, Path, ImageSet], ctx: RunContext) -> None:
    encoder, workdir, train = fitted
    assert (workdir / CHECKPOINT).is_file()
    restored = VQVAECodes(**TINY)
    restored.load(workdir, ctx)
    np.testing.assert_array_equal(
        restored.encode(train.images, ctx), encoder.encode(train.images, ctx)
    )


def test_fit_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    train = toy_set(size=16, n_per_class=4)
    params = {**TINY, "steps": 2, "batch_size": 4}
    codes = []
    for run in ("a", "b"):
        ctx = RunContext(device="cpu", seed=11, workdir=tmp_path / run)
        encoder = VQVAECodes(**params)
        encoder.fit(train, tmp_path / run, ctx)
        codes.append(encoder.encode(train.images, ctx))
    np.testing.assert_array_equal(codes[0], codes[1])
    other = VQVAECodes(**params)
    other.fit(train, tmp_path / "c", RunContext(device="cpu", seed=12, workdir=tmp_path / "c"))
    a = torch.load(tmp_path / "a" / CHECKPOINT, weights_only=True)["state_dict"]
    c = torch.load(tmp_path / "c" / CHECKPOINT, weights_only=True)["state_dict"]
    assert not torch.equal(a["pre_quant.weight"], c["pre_quant.weight"])


def test_rgb_model_accepts_grayscale_by_repetition(tmp_path: Path, ctx: RunContext) -> None:
    rgb = toy_set(channels=3, size=16, n_per_class=4)
    encoder = VQVAECodes(**{**TINY, "steps": 3})
    encoder.fit(rgb, tmp_path, ctx)
    gray = rgb.images[:, :1]
    np.testing.assert_array_equal(
        encoder.encode(gray, ctx), encoder.encode(np.repeat(gray, 3, axis=1), ctx)
    )


def test_grayscale_model_refuses_rgb(tmp_path: Path, ctx: RunContext) -> None:
    gray = toy_set(channels=1, size=16, n_per_class=4)
    encoder = VQVAECodes(**{**TINY, "steps": 2})
    encoder.fit(gray, tmp_path, ctx)
    with pytest.raises(DataError, match="fitted on grayscale images but got 3-channel"):
        encoder.encode(np.zeros((1, 3, 16, 16), np.uint8), ctx)


def test_resolution_resizes_and_sets_code_length(tmp_path: Path, ctx: RunContext) -> None:
    encoder = VQVAECodes(**{**TINY, "steps": 2, "resolution": 24})
    encoder.fit(toy_set(size=20, n_per_class=3), tmp_path, ctx)
    assert encoder.encode(toy_set(size=40, n_per_class=1).images, ctx).shape == (2, 9)


def test_unfitted_encode_and_missing_checkpoint(tmp_path: Path, ctx: RunContext) -> None:
    encoder = VQVAECodes(**TINY)
    with pytest.raises(WeightsError, match=r"not fitted; call fit\(train, workdir, ctx\)"):
        encoder.encode(np.zeros((1, 1, 16, 16), np.uint8), ctx)
    with pytest.raises(WeightsError, match=rf"no fitted model at .*{CHECKPOINT}"):
        encoder.load(tmp_path, ctx)


def test_checkpoint_with_other_parameters_is_refused(
    fitted: tuple[VQVAECodes, Path, ImageSet], ctx: RunContext
) -> None:
    _, workdir, _ = fitted
    other = VQVAECodes(**{**TINY, "codebook_size": 32})
    with pytest.raises(WeightsError, match=r"codebook_size: saved 16 vs now 32"):
        other.load(workdir, ctx)


def test_bad_sizes_are_explained(tmp_path: Path, ctx: RunContext) -> None:
    with pytest.raises(ParameterError, match="resolution 20 is not a multiple of downsample 8"):
        VQVAECodes(resolution=20)
    with pytest.raises(ParameterError, match="must be a power of two"):
        VQVAECodes(downsample=6)
    with pytest.raises(DataError, match=r"training images are 20×20.*resolution = 24"):
        VQVAECodes(**TINY).fit(toy_set(size=20, n_per_class=2), tmp_path, ctx)


def test_fits_through_dataset_splits(
    toy_splits: DataSplits, tmp_path: Path, ctx: RunContext
) -> None:
    """The conftest toy dataset (16 px grayscale) works end to end: 2×2 code maps."""
    encoder = VQVAECodes(**{**TINY, "steps": 3})
    encoder.fit(toy_splits.train, tmp_path, ctx)
    assert encoder.encode(toy_splits.test.images, ctx).shape == (len(toy_splits.test), 4)
