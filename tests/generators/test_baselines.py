"""Baseline generators: shapes, labels, determinism and bad requests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from medsynbench import ImageSet, RunContext
from medsynbench.errors import GeneratorError, ParameterError
from medsynbench.plugins.generators.baselines import ClassicalAugment, CopyReal, Noise


def _train(n_per_class: tuple[int, ...] = (5, 7), channels: int = 3, size: int = 8) -> ImageSet:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class)
    images = rng.integers(0, 256, size=(len(labels), channels, size, size), dtype=np.uint8)
    return ImageSet(images, labels)


def _fitted(cls: type, ctx: RunContext, train: ImageSet, **params: object):
    gen = cls(**params)
    gen.fit(train, ("a", "b"), ctx.workdir, ctx)
    return gen


@pytest.mark.parametrize("cls", [CopyReal, ClassicalAugment, Noise])
def test_shapes_labels_and_determinism(cls: type, ctx: RunContext) -> None:
    train = _train()
    gen = _fitted(cls, ctx, train)
    out = gen.sample([3, 12], seed=4, ctx=ctx)
    assert out.images.shape == (15, 3, 8, 8) and out.images.dtype == np.uint8
    assert out.labels.tolist() == [0] * 3 + [1] * 12
    again = gen.sample([3, 12], seed=4, ctx=ctx)
    np.testing.assert_array_equal(out.images, again.images)
    other = gen.sample([3, 12], seed=5, ctx=ctx)
    assert not np.array_equal(out.images, other.images)
    # A fresh instance loading the workdir samples the same images.
    loaded = cls()
    loaded.load(ctx.workdir, ctx)
    np.testing.assert_array_equal(loaded.sample([3, 12], seed=4, ctx=ctx).images, out.images)


def test_copy_real_returns_real_images_without_replacement(ctx: RunContext) -> None:
    train = _train()
    gen = _fitted(CopyReal, ctx, train)
    out = gen.sample([5, 7], seed=0, ctx=ctx)
    for c in (0, 1):
        real = {img.tobytes() for img in train.images[train.labels == c]}
        got = [img.tobytes() for img in out.images[out.labels == c]]
        assert set(got) == real and len(got) == len(real)  # every image once, exactly
    # More than available: every image at least once, none invented.
    many = gen.sample([11, 0], seed=0, ctx=ctx)
    real0 = {img.tobytes() for img in train.images[train.labels == 0]}
    got0 = [img.tobytes() for img in many.images]
    assert set(got0) == real0 and len(got0) == 11


def test_classical_augment_is_a_dihedral_copy_when_jitter_is_off(ctx: RunContext) -> None:
    train = _train(size=6)
    gen = _fitted(ClassicalAugment, ctx, train, contrast=0.0, brightness=0.0)
    out = gen.sample([10, 10], seed=2, ctx=ctx)
    variants = set()
    for img in train.images:
        for k in range(4):
            for flipped in (img, img[:, :, ::-1]):
                variants.add(np.rot90(flipped, k, axes=(1, 2)).tobytes())
    assert all(img.tobytes() in variants for img in out.images)
    # Not all are identity copies: the transforms really apply.
    originals = {img.tobytes() for img in train.images}
    assert any(img.tobytes() not in originals for img in out.images)


def test_classical_augment_all_off_returns_copies(ctx: RunContext) -> None:
    train = _train()
    gen = _fitted(ClassicalAugment, ctx, train, flip=False, rotate=False, contrast=0.0,
                  brightness=0.0)
    out = gen.sample([2, 2], seed=0, ctx=ctx)
    originals = {img.tobytes() for img in train.images}
    assert all(img.tobytes() in originals for img in out.images)


def test_classical_augment_rejects_bad_jitter() -> None:
    with pytest.raises(ParameterError, match="contrast"):
        ClassicalAugment(contrast=1.5)


def test_noise_uniform_and_gaussian_statistics(ctx: RunContext) -> None:
    labels = np.repeat([0, 1], 20)
    images = np.where(labels[:, None, None, None] == 0, 40, 200) * np.ones((40, 1, 16, 16))
    train = ImageSet(images.astype(np.uint8), labels)
    gauss = _fitted(Noise, ctx, train).sample([50, 50], seed=0, ctx=ctx)
    assert abs(gauss.images[:50].mean() - 40) < 2 and abs(gauss.images[50:].mean() - 200) < 2
    uniform = _fitted(Noise, ctx, train, distribution="uniform").sample([50, 0], seed=0, ctx=ctx)
    assert abs(uniform.images.mean() - 127.5) < 3 and uniform.images.shape == (50, 1, 16, 16)
    assert Noise.baseline is False and CopyReal.baseline and ClassicalAugment.baseline


@pytest.mark.parametrize("cls", [CopyReal, ClassicalAugment, Noise])
def test_sample_before_fit_is_a_clear_error(cls: type, ctx: RunContext) -> None:
    with pytest.raises(GeneratorError, match="before fit"):
        cls().sample([1, 1], seed=0, ctx=ctx)


@pytest.mark.parametrize("cls", [CopyReal, Noise])
def test_load_without_fit_names_the_file(cls: type, tmp_path: Path, ctx: RunContext) -> None:
    with pytest.raises(GeneratorError, match=r"baseline\.json"):
        cls().load(tmp_path, ctx)


@pytest.mark.parametrize("cls", [CopyReal, ClassicalAugment, Noise])
@pytest.mark.parametrize(
    ("counts", "message"),
    [([0, 0], "0 images in total"), ([1], "2 classes"), ([-1, 3], ">= 0")],
)
def test_bad_counts(cls: type, counts: list[int], message: str, ctx: RunContext) -> None:
    gen = _fitted(cls, ctx, _train())
    with pytest.raises(GeneratorError, match=message):
        gen.sample(counts, seed=0, ctx=ctx)


def test_missing_class_in_training_split(ctx: RunContext) -> None:
    gen = CopyReal()
    gen.fit(_train((4,)), ("a", "b"), ctx.workdir, ctx)
    with pytest.raises(GeneratorError, match="'b'"):
        gen.sample([1, 1], seed=0, ctx=ctx)
