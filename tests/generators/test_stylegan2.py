"""StyleGAN2 tiny preset on CPU: resumable fit, deterministic sampling, truncation, bad input;
the networks' maths against plain reference formulas; DiffAugment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from medsynbench import DataSplits, ImageSet, RunContext
from medsynbench.errors import GeneratorError, ParameterError
from medsynbench.plugins.generators import stylegan2_networks as nets
from medsynbench.plugins.generators.stylegan2 import StyleGAN2
from medsynbench.plugins.generators.training import read_checkpoint, save_checkpoint
from medsynbench.testing import make_toy_splits


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    """One intra-op thread: on a shared 2-core CI box, oversubscribed threads are ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy() -> DataSplits:
    return make_toy_splits(n_per_class=24, size=16, channels=1)


@pytest.fixture(scope="module")
def fitted(toy: DataSplits, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny StyleGAN2 whose fit is interrupted by its time limit, then resumed."""
    workdir = tmp_path_factory.mktemp("stylegan2")
    messages: list[str] = []
    ctx = RunContext(device="cpu", seed=0, workdir=workdir, log=messages.append)
    first = StyleGAN2(preset="tiny", max_train_seconds=1e-3).fit(
        toy.train, toy.class_names, workdir, ctx
    )
    gen = StyleGAN2(preset="tiny")
    second = gen.fit(toy.train, toy.class_names, workdir, ctx)
    return {"gen": gen, "ctx": ctx, "first": first, "second": second, "log": messages}


def test_fit_is_resumable_and_reports_training_facts(fitted: dict[str, Any]) -> None:
    first, second = fitted["first"], fitted["second"]
    assert first["stopped_early"] and 1 <= first["steps"] <= 3  # time limit, not step count
    assert any("resuming" in m and f"step {first['steps']}" in m for m in fitted["log"])
    assert second["steps"] == 50 and not second["stopped_early"]  # tiny: 0.4 kimg / batch 8
    assert second["train_seconds"] > 0 and np.isfinite(second["final_loss"])
    assert {"final_loss_g", "final_loss_d", "kimg"} <= set(second)


def test_sampling_is_deterministic_and_class_conditional(fitted: dict[str, Any]) -> None:
    gen, ctx = fitted["gen"], fitted["ctx"]
    out = gen.sample([6, 6], seed=3, ctx=ctx)
    assert out.images.shape == (12, 1, 16, 16) and out.images.dtype == np.uint8
    assert out.labels.tolist() == [0] * 6 + [1] * 6
    np.testing.assert_array_equal(gen.sample([6, 6], seed=3, ctx=ctx).images, out.images)
    assert not np.array_equal(gen.sample([6, 6], seed=4, ctx=ctx).images, out.images)
    # A class's images depend only on (seed, class), not on the other classes' counts.
    np.testing.assert_array_equal(gen.sample([6, 1], seed=3, ctx=ctx).images[:6], out.images[:6])
    # A fresh instance restores the same generator from the checkpoint.
    loaded = StyleGAN2(preset="tiny")
    loaded.load(ctx.workdir, ctx)
    np.testing.assert_array_equal(loaded.sample([6, 6], seed=3, ctx=ctx).images, out.images)
    # The toy classes are dark (70) and bright (170): the label must steer the brightness.
    assert out.images[6:].mean() - out.images[:6].mean() > 30


def test_truncation_zero_gives_one_image_per_class(fitted: dict[str, Any]) -> None:
    gen, ctx = fitted["gen"], fitted["ctx"]
    out = gen.sample([4, 4], seed=0, ctx=ctx, truncation=0.0, noise_mode="const")
    for c in (0, 1):
        assert len({img.tobytes() for img in out.images[out.labels == c]}) == 1
    assert not np.array_equal(out.images[0], out.images[4])
    full = gen.sample([4, 4], seed=0, ctx=ctx, truncation=1.0, noise_mode="const")
    assert len({img.tobytes() for img in full.images}) == 8
    noisy = gen.sample([4, 4], seed=0, ctx=ctx)  # default: per-image noise, from the seed
    assert StyleGAN2.sample_parameters["noise_mode"].default == "random"
    assert not np.array_equal(noisy.images, full.images)
    np.testing.assert_array_equal(gen.sample([4, 4], seed=0, ctx=ctx).images, noisy.images)
    with pytest.raises(ParameterError, match="truncation"):
        gen.sample([1, 1], seed=0, ctx=ctx, truncation=-0.5)
    assert StyleGAN2.sample_parameters["truncation"].sweepable


def test_fit_is_deterministic_for_a_seed(toy: DataSplits, tmp_path: Path) -> None:
    states = []
    for run in ("a", "b"):
        ctx = RunContext(device="cpu", seed=7, workdir=tmp_path / run)
        gen = StyleGAN2(preset="tiny", kimg=0.024)
        gen.fit(toy.train, toy.class_names, ctx.workdir, ctx)
        states.append(gen.sample([2, 2], seed=0, ctx=ctx).images)
    np.testing.assert_array_equal(states[0], states[1])


def test_rgb_32px_shapes_with_diffaugment_and_style_mixing(tmp_path: Path) -> None:
    splits = make_toy_splits(n_per_class=4, size=32, channels=3)
    ctx = RunContext(device="cpu", seed=0, workdir=tmp_path)
    gen = StyleGAN2(preset="tiny", kimg=0.016, augment="color,translation,cutout",
                    style_mixing=0.5)
    assert gen.fit(splits.train, splits.class_names, tmp_path, ctx)["steps"] == 2
    assert gen.sample([1, 2], seed=0, ctx=ctx).images.shape == (3, 3, 32, 32)


def test_sample_before_fit(ctx: RunContext) -> None:
    with pytest.raises(GeneratorError, match="before fit"):
        StyleGAN2(preset="tiny").sample([1, 1], seed=0, ctx=ctx)


def test_zero_images_requested(fitted: dict[str, Any]) -> None:
    with pytest.raises(GeneratorError, match="0 images"):
        fitted["gen"].sample([0, 0], seed=0, ctx=fitted["ctx"])


def test_checkpoint_from_another_configuration(fitted: dict[str, Any]) -> None:
    other = StyleGAN2(preset="tiny", batch_size=4)
    with pytest.raises(GeneratorError, match=r"batch_size: checkpoint=8 current=4") as err:
        other.load(fitted["ctx"].workdir, fitted["ctx"])
    assert "stylegan2.pt" in str(err.value) and "Current config" in str(err.value)


def test_checkpoint_from_before_diffaugment_is_refused(
    fitted: dict[str, Any], tmp_path: Path
) -> None:
    # Version 0.1 had no `augment` parameter: its checkpoints lack the key.
    data = read_checkpoint(fitted["ctx"].workdir / "stylegan2.pt", "stylegan2")
    config = {k: v for k, v in data["config"].items() if k != "augment"}
    payload = {k: v for k, v in data.items() if k not in ("format", "generator", "config")}
    save_checkpoint(tmp_path / "stylegan2.pt", "stylegan2", config, payload)
    with pytest.raises(GeneratorError, match=r"augment: checkpoint='<absent>' current=''"):
        StyleGAN2(preset="tiny").load(tmp_path, fitted["ctx"])


def test_missing_checkpoint(tmp_path: Path, ctx: RunContext) -> None:
    with pytest.raises(GeneratorError, match=r"no checkpoint at .*stylegan2\.pt"):
        StyleGAN2(preset="tiny").load(tmp_path, ctx)


def test_divergence_to_nan_stops_with_generator_error(toy: DataSplits, ctx: RunContext) -> None:
    gen = StyleGAN2(preset="tiny", lr=1e30)
    with pytest.raises(GeneratorError, match="diverged at step"):
        gen.fit(toy.train, toy.class_names, ctx.workdir, ctx)


def test_resolution_must_be_a_power_of_two(ctx: RunContext) -> None:
    images = ImageSet(np.zeros((4, 1, 12, 12), np.uint8), np.array([0, 0, 1, 1]))
    with pytest.raises(GeneratorError, match=r"12×12 images do not fit.*power of two"):
        StyleGAN2(preset="tiny").fit(images, ("a", "b"), ctx.workdir, ctx)


def test_efficiency_on_cpu(fitted: dict[str, Any]) -> None:
    report = fitted["gen"].efficiency(fitted["ctx"], (1, 16, 16))
    assert report["seconds_per_1000"] > 0
    assert report["peak_gpu_memory_mb_8"] is None  # no GPU: not measured, not faked


def test_unknown_preset_and_bad_override() -> None:
    with pytest.raises(ParameterError, match="preset"):
        StyleGAN2(preset="huge")
    with pytest.raises(ParameterError, match="style_mixing"):
        StyleGAN2(style_mixing=1.5)
    for interval in (0, -16, 2.5):
        with pytest.raises(ParameterError, match="r1_interval"):
            StyleGAN2(r1_interval=interval)
    with pytest.raises(ParameterError, match=r"augment: unknown DiffAugment .*'blur'"):
        StyleGAN2(augment="color,blur")
    assert StyleGAN2(preset="paper").config["augment"] == "color,translation,cutout"
    assert StyleGAN2(preset="paper", augment="").config["augment"] == ""


def test_modulated_conv_matches_per_sample_weights() -> None:
    """The batched form equals convolving each sample with its own modulated, demodulated
    weight (StyleGAN2 eq. 1–3), plus bias, times the gain."""
    torch.manual_seed(0)
    x, weight = torch.randn(3, 4, 6, 6), torch.randn(5, 4, 3, 3)
    styles, bias = torch.randn(3, 4), torch.randn(5)
    for demodulate in (True, False):
        out = nets.modulated_conv2d(x, weight, styles, bias, demodulate=demodulate, gain=1.5)
        for i in range(3):
            w = weight * styles[i].view(1, -1, 1, 1)
            if demodulate:
                w = w / (w.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
            expected = (torch.nn.functional.conv2d(x[i:i + 1], w, padding=1)
                        + bias.view(1, -1, 1, 1)) * 1.5
            torch.testing.assert_close(out[i:i + 1], expected, rtol=1e-4, atol=1e-4)


def test_equal_linear_folds_the_activation_gain() -> None:
    torch.manual_seed(0)
    layer = nets.EqualLinear(6, 4, bias_init=0.3, lr_multiplier=0.01, activation=True)
    x = torch.randn(2, 6)
    pre = x @ (layer.weight * 0.01 / 6**0.5).t() + layer.bias * 0.01
    expected = torch.nn.functional.leaky_relu(pre, 0.2) * 2**0.5
    torch.testing.assert_close(layer(x), expected)


def test_discriminator_parts_do_not_share_minibatch_statistics() -> None:
    torch.manual_seed(0)
    d = nets.Discriminator(16, 3, 2, channel_base=128, channel_max=16)
    fakes, labels = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 0, 1])
    one = d(torch.cat([fakes, torch.randn(4, 3, 16, 16)]), labels.repeat(2), parts=2)
    two = d(torch.cat([fakes, torch.randn(4, 3, 16, 16) * 3]), labels.repeat(2), parts=2)
    torch.testing.assert_close(one[:4], two[:4])  # the fakes' logits ignore the reals
    torch.testing.assert_close(one[:4], d(fakes, labels))


def test_diffaugment_is_differentiable_and_identity_when_off() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 3, 16, 16, requires_grad=True)
    assert nets.diff_augment(x, ()) is x
    y = nets.diff_augment(x, nets.AUGMENTATIONS)
    assert y.shape == x.shape and not torch.equal(y, x)
    (grad,) = torch.autograd.grad((y * torch.randn_like(y)).sum(), x, create_graph=True)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    grad.square().sum().backward()  # R1 differentiates through it twice
    # translation moves whole pixels and fills with zeros
    moved = nets.diff_augment(x.detach(), ("translation",))
    values = set(x.detach().flatten().tolist()) | {0.0}
    assert set(moved.flatten().tolist()) <= values
    # ... exactly, at any size (a shift of dy, dx pixels), and keeps half precision
    side = 256
    big = torch.arange(1.0, side * side + 1).reshape(1, 1, side, side).repeat(4, 1, 1, 1)
    for image, out in zip(big, nets.diff_augment(big, ("translation",)), strict=True):
        y, x = (int(v) for v in torch.nonzero(out[0])[0])
        dy, dx = divmod(int(out[0, y, x]) - 1, side)
        dy, dx = dy - y, dx - x
        shifted = torch.zeros_like(image)
        src = image[0, max(dy, 0):side + min(dy, 0), max(dx, 0):side + min(dx, 0)]
        shifted[0, max(-dy, 0):side + min(-dy, 0), max(-dx, 0):side + min(-dx, 0)] = src
        torch.testing.assert_close(out, shifted)
        assert max(abs(dy), abs(dx)) <= side // 8
    half = torch.randn(2, 3, 16, 16, dtype=torch.bfloat16)
    assert nets.diff_augment(half, nets.AUGMENTATIONS).dtype == torch.bfloat16
    # cutout zeroes a square of half the side: 8×8 of 16×16 when it lies inside the image
    holes = (nets.diff_augment(torch.ones(64, 1, 16, 16), ("cutout",)) == 0).sum(dim=(1, 2, 3))
    assert holes.max() == 64 and holes.min() > 0


@pytest.mark.gpu
def test_gpu_fit_and_sample_amp_channels_last(toy: DataSplits, tmp_path: Path) -> None:
    ctx = RunContext(device="cuda", seed=0, workdir=tmp_path)
    gen = StyleGAN2(preset="tiny", kimg=0.08, augment="color,translation,cutout",
                    style_mixing=0.5)
    gen.fit(toy.train, toy.class_names, tmp_path, ctx)
    out = gen.sample([2, 2], seed=0, ctx=ctx)
    assert out.images.shape == (4, 1, 16, 16)
    assert gen.efficiency(ctx, (1, 16, 16))["peak_gpu_memory_mb_8"] > 0
    assert torch.cuda.is_available()
