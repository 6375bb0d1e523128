"""The folder adapter: a valid round trip and every malformed submission."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from medsynbench import ImageSet, RunContext
from medsynbench.errors import DataError, GeneratorError
from medsynbench.plugins.generators.folder import Folder, write_folder
from PIL import Image

CLASSES = ("normal", "pneumonia")


def _images(n_per_class: int = 4, channels: int = 1, size: int = 8) -> ImageSet:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], n_per_class)
    pixels = rng.integers(0, 256, size=(len(labels), channels, size, size), dtype=np.uint8)
    return ImageSet(pixels, labels)


def _fit(root: Path, ctx: RunContext, train: ImageSet | None = None, **params: object) -> Folder:
    gen = Folder(root=str(root), **params)
    gen.fit(train if train is not None else _images(), CLASSES, ctx.workdir, ctx)
    return gen


@pytest.mark.parametrize("channels", [1, 3])
def test_round_trip(channels: int, tmp_path: Path, ctx: RunContext) -> None:
    submitted = _images(channels=channels)
    write_folder(submitted, CLASSES, tmp_path / "synth")
    gen = _fit(tmp_path / "synth", ctx, _images(channels=channels))
    out = gen.sample([4, 4], seed=0, ctx=ctx)
    np.testing.assert_array_equal(out.images, submitted.images)
    np.testing.assert_array_equal(out.labels, submitted.labels)
    # Fewer than available: a seeded subset, same for the same seed, after a reload.
    first = gen.sample([2, 3], seed=1, ctx=ctx)
    loaded = Folder(root=str(tmp_path / "synth"))
    loaded.load(ctx.workdir, ctx)
    np.testing.assert_array_equal(loaded.sample([2, 3], seed=1, ctx=ctx).images, first.images)
    assert first.labels.tolist() == [0, 0, 1, 1, 1]


def test_missing_root_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is not a directory"):
        Folder(root=str(tmp_path / "nope"))


def test_unknown_class_name_suggests_the_right_one(tmp_path: Path, ctx: RunContext) -> None:
    write_folder(_images(), ("normal", "pneumonai"), tmp_path / "synth")
    with pytest.raises(DataError, match=r"pneumonai.*did you mean \"pneumonia\""):
        _fit(tmp_path / "synth", ctx)


def test_too_few_images_names_the_folder(tmp_path: Path, ctx: RunContext) -> None:
    write_folder(_images(n_per_class=3), CLASSES, tmp_path / "synth")
    gen = _fit(tmp_path / "synth", ctx)
    with pytest.raises(GeneratorError, match=r"pneumonia holds 3; add 2 more"):
        gen.sample([1, 5], seed=0, ctx=ctx)


def test_wrong_size_is_reported_unless_resize(tmp_path: Path, ctx: RunContext) -> None:
    write_folder(_images(size=12), CLASSES, tmp_path / "synth")
    with pytest.raises(DataError, match=r"000000\.png is 12×12 .* 8×8.*resize = true"):
        _fit(tmp_path / "synth", ctx)
    out = _fit(tmp_path / "synth", ctx, resize=True).sample([4, 4], seed=0, ctx=ctx)
    assert out.images.shape == (8, 1, 8, 8)


def test_wrong_channels_is_reported_unless_converted(tmp_path: Path, ctx: RunContext) -> None:
    write_folder(_images(channels=3), CLASSES, tmp_path / "synth")
    with pytest.raises(DataError, match=r"000000\.png is RGB .*1 channel.*convert_channels"):
        _fit(tmp_path / "synth", ctx)
    out = _fit(tmp_path / "synth", ctx, convert_channels=True).sample([1, 1], seed=0, ctx=ctx)
    assert out.images.shape == (2, 1, 8, 8)


def test_rgba_and_16_bit_images(tmp_path: Path, ctx: RunContext) -> None:
    root = tmp_path / "synth"
    (root / "normal").mkdir(parents=True)
    Image.new("RGBA", (8, 8), (10, 20, 30, 255)).save(root / "normal" / "a.png")
    with pytest.raises(DataError, match="RGBA"):
        _fit(root, ctx, _images(channels=3))
    out = _fit(root, ctx, _images(channels=3), convert_channels=True).sample([1, 0], 0, ctx)
    assert out.images[0, :, 0, 0].tolist() == [10, 20, 30]
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(root / "normal" / "b.png")
    with pytest.raises(DataError, match=r"b\.png has pixel mode .*8-bit"):
        _fit(root, ctx, _images(channels=3), convert_channels=True)


def test_unreadable_and_empty_folders(tmp_path: Path, ctx: RunContext) -> None:
    root = tmp_path / "synth"
    root.mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        _fit(root, ctx)
    (root / "normal").mkdir()
    (root / "normal" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="no images"):
        _fit(root, ctx)
    (root / "normal" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"cannot read image .*broken\.png"):
        _fit(root, ctx)


def test_zero_images_and_sample_before_fit(tmp_path: Path, ctx: RunContext) -> None:
    write_folder(_images(), CLASSES, tmp_path / "synth")
    with pytest.raises(GeneratorError, match="before fit"):
        Folder(root=str(tmp_path / "synth")).sample([1, 1], seed=0, ctx=ctx)
    gen = _fit(tmp_path / "synth", ctx)
    with pytest.raises(GeneratorError, match="0 images in total"):
        gen.sample([0, 0], seed=0, ctx=ctx)


def test_changed_folder_is_logged_on_load(tmp_path: Path, ctx: RunContext) -> None:
    write_folder(_images(), CLASSES, tmp_path / "synth")
    _fit(tmp_path / "synth", ctx)
    (tmp_path / "synth" / "normal" / "000000.png").unlink()
    messages: list[str] = []
    gen = Folder(root=str(tmp_path / "synth"))
    gen.load(ctx.workdir, ctx.child(log=messages.append))
    assert any("changed since it was validated" in m for m in messages)
    assert len(gen.sample([4, 4], seed=0, ctx=ctx)) == 8  # still the validated images
