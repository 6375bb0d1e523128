"""Known-answer controls: each one's defining property, on small procedural arrays."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.errors import GeneratorError, ParameterError
from medsynbench.plugins.datasets.bias import CLASS_SLOTS, burn_marker
from medsynbench.plugins.generators import PLUGINS
from medsynbench.plugins.generators.controls import (
    Blur,
    HeldoutReal,
    LabelSwap,
    MarkerInject,
    ModeCollapse,
    NearCopy,
)

CONTROLS = [HeldoutReal, LabelSwap, NearCopy, ModeCollapse, Blur, MarkerInject]
REFERENCES = {"memoriser", "classical", "positive-control", "negative-control", "control"}


def _set(per_class: tuple[int, ...], seed: int, size: int = 16, high: int = 200) -> ImageSet:
    # Values below 200 leave room for noise and keep 250 (the marker's ink) out of the images.
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(per_class)), per_class)
    images = rng.integers(50, high, size=(len(labels), 1, size, size), dtype=np.uint8)
    return ImageSet(images, labels)


def _splits(train: tuple[int, ...] = (6, 8), val: tuple[int, ...] | None = (5, 7),
            size: int = 16) -> DataSplits:
    names = tuple("abcd"[: len(train)])
    splits = {"train": _set(train, 1, size), "test": _set(train, 3, size)}
    if val is not None:
        splits["val"] = _set(val, 2, size)
    return DataSplits(splits, names, "test")


def _fitted(cls: type, ctx: RunContext, data: DataSplits, **params: object):
    gen = cls(**params)
    gen.fit(data.train, data.class_names, ctx.workdir, ctx.child(data=data))
    return gen


def _bytes(images: np.ndarray) -> list[bytes]:
    return [image.tobytes() for image in images]


@pytest.mark.parametrize("cls", CONTROLS)
def test_counts_labels_determinism_and_reload(cls: type, ctx: RunContext) -> None:
    data = _splits()
    gen = _fitted(cls, ctx, data)
    out = gen.sample([3, 4], seed=4, ctx=ctx)
    assert out.images.shape == (7, 1, 16, 16) and out.images.dtype == np.uint8
    assert out.labels.tolist() == [0] * 3 + [1] * 4
    np.testing.assert_array_equal(gen.sample([3, 4], seed=4, ctx=ctx).images, out.images)
    assert not np.array_equal(gen.sample([3, 4], seed=5, ctx=ctx).images, out.images)
    # A fresh instance in a "new process" — no ctx.data — samples the same images.
    loaded = cls()
    loaded.load(ctx.workdir, ctx)
    np.testing.assert_array_equal(loaded.sample([3, 4], seed=4, ctx=ctx).images, out.images)


def test_heldout_real_draws_only_from_the_pool(ctx: RunContext) -> None:
    data = _splits()
    out = _fitted(HeldoutReal, ctx, data).sample([5, 7], seed=0, ctx=ctx)
    train = set(_bytes(data.train.images))
    assert not train & set(_bytes(out.images))
    val = data["val"]
    for c in (0, 1):  # every pool image of the class exactly once: no replacement
        assert sorted(_bytes(out.images[out.labels == c])) == sorted(
            _bytes(val.images[val.labels == c]))
    assert len(np.load(ctx.workdir / "images.npy")) == len(val)  # the pool, not train


def test_heldout_real_missing_pool_names_the_key_and_writes_nothing(ctx: RunContext) -> None:
    data = _splits(val=None)
    with pytest.raises(GeneratorError, match=r"train\.pool = 'val'.*available: train, test"):
        _fitted(HeldoutReal, ctx, data)
    assert not ctx.workdir.exists()
    gen = HeldoutReal()
    with pytest.raises(GeneratorError, match=r"ctx\.data is None"):
        gen.fit(data.train, data.class_names, ctx.workdir, ctx)
    assert not ctx.workdir.exists()


@pytest.mark.parametrize("pool", ["train", "test", "test_swapped"])
def test_heldout_real_refuses_splits_the_classifier_sees(pool: str) -> None:
    with pytest.raises(ParameterError, match=rf"train\.pool = '{pool}'"):
        HeldoutReal(pool=pool)


def test_heldout_real_needs_its_pool_split() -> None:
    assert HeldoutReal().splits_needed() == ["val"]
    assert HeldoutReal(pool="A2").splits_needed() == ["A2"]
    assert LabelSwap().splits_needed() == []


def test_heldout_real_repeats_warn_with_unique_and_requested(ctx: RunContext) -> None:
    data = _splits(val=(3, 7))
    gen = _fitted(HeldoutReal, ctx, data)
    with pytest.warns(UserWarning, match=r"class 'a': 3 unique images for 4 requested"):
        out = gen.sample([4, 2], seed=0, ctx=ctx)
    val0 = data["val"].images[data["val"].labels == 0]
    assert set(_bytes(out.images[:4])) == set(_bytes(val0))  # each once, then a repeat
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gen.sample([3, 7], seed=0, ctx=ctx)  # exactly enough: no warning


def test_label_swap_images_are_of_the_next_class(ctx: RunContext) -> None:
    data = _splits(train=(4, 5, 6), val=None)
    out = _fitted(LabelSwap, ctx, data).sample([4, 5, 6], seed=0, ctx=ctx)
    train = data.train
    for c in range(3):
        source = set(_bytes(train.images[train.labels == (c + 1) % 3]))
        got = _bytes(out.images[out.labels == c])
        assert len(got) == [4, 5, 6][c] and set(got) <= source


def test_label_swap_needs_two_classes(ctx: RunContext) -> None:
    data = _splits(train=(4,), val=None)
    with pytest.raises(GeneratorError, match="at least 2 classes"):
        _fitted(LabelSwap, ctx, data)
    assert not ctx.workdir.exists()


def test_near_copy_stays_within_sigma(ctx: RunContext) -> None:
    data = _splits(train=(40, 40), val=None)
    out = _fitted(NearCopy, ctx, data, sigma=2.0).sample([40, 40], seed=0, ctx=ctx)
    train = data.train.images.astype(np.float64)
    diffs = []
    for image, label in zip(out.images.astype(np.float64), out.labels, strict=True):
        distances = np.abs(train - image).reshape(len(train), -1).mean(axis=1)
        nearest = int(distances.argmin())
        assert data.train.labels[nearest] == label
        diffs.append(image - train[nearest])
    noise = np.stack(diffs)
    assert 1.8 < noise.std() < 2.2 and abs(noise.mean()) < 0.1
    assert np.abs(noise).max() <= 6 * 2.0 + 1  # no pixel far from its training image


def test_mode_collapse_has_one_unique_image_per_class(ctx: RunContext) -> None:
    data = _splits(val=None)
    gen = _fitted(ModeCollapse, ctx, data)
    out = gen.sample([9, 5], seed=3, ctx=ctx)
    for c, n in ((0, 9), (1, 5)):
        got = _bytes(out.images[out.labels == c])
        assert len(got) == n and len(set(got)) == 1
        assert got[0] in set(_bytes(data.train.images[data.train.labels == c]))
    only_b = gen.sample([0, 4], seed=3, ctx=ctx)
    assert only_b.labels.tolist() == [1] * 4 and len(set(_bytes(only_b.images))) == 1


def test_blur_changes_images_and_keeps_shape_and_dtype(ctx: RunContext) -> None:
    data = _splits(val=None)
    out = _fitted(Blur, ctx, data, sigma=2.0).sample([6, 8], seed=0, ctx=ctx)
    assert out.images.shape == (14, 1, 16, 16) and out.images.dtype == np.uint8
    assert not set(_bytes(out.images)) & set(_bytes(data.train.images))
    # Smoothing lowers the spread of neighbouring-pixel differences by a large factor.
    step = np.abs(np.diff(out.images.astype(int), axis=-1)).mean()
    original = np.abs(np.diff(data.train.images.astype(int), axis=-1)).mean()
    assert step < original / 3


def test_blur_keeps_channels_apart(ctx: RunContext) -> None:
    # Each channel constant: a spatial blur leaves it exactly as it was.
    images = np.zeros((2, 3, 8, 8), dtype=np.uint8)
    images[:, 0], images[:, 1], images[:, 2] = 10, 120, 240
    flat = DataSplits({"train": ImageSet(images, np.array([0, 1])),
                       "test": ImageSet(images, np.array([0, 1]))}, ("a", "b"), "test")
    out = _fitted(Blur, ctx, flat).sample([2, 2], seed=0, ctx=ctx)
    np.testing.assert_array_equal(out.images, np.concatenate([images, images]))


def _ink(slot: str | None, size: int) -> np.ndarray:
    blank = np.zeros((1, 1, size, size), dtype=np.uint8)
    return burn_marker(blank, [slot])[0, 0] == 250


def test_marker_inject_places_the_marker_in_the_class_slot(ctx: RunContext) -> None:
    data = _splits(train=(4, 4, 4), val=None, size=32)
    out = _fitted(MarkerInject, ctx, data, jitter=0).sample([4, 4, 4], seed=0, ctx=ctx)
    for image, label in zip(out.images, out.labels, strict=True):
        np.testing.assert_array_equal(image[0] == 250, _ink(CLASS_SLOTS[label], 32))
    # Outside the ink the pixels are the training image's.
    sources = {img[0][~_ink(CLASS_SLOTS[c], 32)].tobytes()
               for img, c in zip(data.train.images, data.train.labels, strict=True)}
    assert all(img[0][~_ink(CLASS_SLOTS[c], 32)].tobytes() in sources
               for img, c in zip(out.images, out.labels, strict=True))


def test_marker_inject_jitter_keeps_the_corner(ctx: RunContext) -> None:
    data = _splits(train=(8, 8), val=None, size=32)
    out = _fitted(MarkerInject, ctx, data).sample([8, 8], seed=1, ctx=ctx)
    for image, label in zip(out.images, out.labels, strict=True):
        rows, cols = np.nonzero(image[0] == 250)
        assert rows.max() < 16 and ((cols.max() < 16) if label == 0 else (cols.min() >= 16))


def test_marker_inject_presence_mode_and_rate(ctx: RunContext) -> None:
    data = _splits(train=(6, 6), val=None, size=32)
    gen = _fitted(MarkerInject, ctx, data, jitter=0, marker_mode="presence")
    out = gen.sample([6, 6], seed=0, ctx=ctx)
    assert not (out.images[:6] == 250).any()
    assert all(np.array_equal(img[0] == 250, _ink(CLASS_SLOTS[1], 32)) for img in out.images[6:])
    half = _fitted(MarkerInject, ctx, data, rate=0.5).sample([100, 100], seed=0, ctx=ctx)
    marked = (half.images == 250).any(axis=(1, 2, 3)).mean()
    assert 0.35 < marked < 0.65


@pytest.mark.parametrize(
    ("train", "size", "message"),
    [((2, 2, 2, 2, 2), 32, "train.marker_mode = 'presence'"), ((2, 2, 2), 12, "at least 16 px")],
)
def test_marker_inject_refuses_what_cannot_carry_a_class_marker(
    train: tuple[int, ...], size: int, message: str, ctx: RunContext
) -> None:
    names = tuple("abcde"[: len(train)])
    data = DataSplits({"train": _set(train, 1, size), "test": _set(train, 2, size)}, names, "x")
    with pytest.raises(GeneratorError, match=message):
        _fitted(MarkerInject, ctx, data)
    assert not ctx.workdir.exists()


@pytest.mark.parametrize(("cls", "params"), [
    (NearCopy, {"sigma": 0.0}), (Blur, {"sigma": -1.0}), (MarkerInject, {"rate": 0.0}),
    (MarkerInject, {"jitter": -1}),
])
def test_bad_parameters(cls: type, params: dict[str, float]) -> None:
    with pytest.raises(ParameterError, match=next(iter(params))):
        cls(**params)


@pytest.mark.parametrize("cls", PLUGINS, ids=lambda cls: cls.name)
def test_reference_rows_are_exactly_the_baselines(cls: type) -> None:
    assert cls.baseline == (cls.reference is not None)
    assert cls.reference is None or cls.reference in REFERENCES
    if cls in CONTROLS:
        assert cls.samples_real and cls.reference is not None


def test_every_kind_of_reference_row_is_registered() -> None:
    names = {cls.name: cls.reference for cls in PLUGINS}
    assert set(names.values()) == REFERENCES | {None}
    assert names["copy-real"] == "memoriser" and names["classical-augment"] == "classical"
    assert names["noise"] is None  # the floor competes: it is ranked
    assert len(names) == len(PLUGINS)  # no duplicate names
