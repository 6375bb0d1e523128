"""ldm: tiny preset fits and samples on CPU; determinism, DDIM, reload and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from medsynbench import ImageSet, RunContext
from medsynbench.errors import GeneratorError, ParameterError
from medsynbench.plugins.generators import PLUGINS
from medsynbench.plugins.generators.ldm import LDM
from medsynbench.plugins.generators.unet import Diffusion, UNet
from medsynbench.testing import make_toy_splits

FAST = {"preset": "tiny", "ae_steps": 40, "unet_steps": 40}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[LDM, RunContext, Any]:
    torch.set_num_threads(1)
    splits = make_toy_splits(n_per_class=16, size=16, channels=3)
    workdir = tmp_path_factory.mktemp("ldm")
    ctx = RunContext(device="cpu", seed=0, workdir=workdir)
    generator = LDM(**FAST)
    facts = generator.fit(splits.train, splits.class_names, workdir, ctx)
    return generator, ctx, facts


def test_registered() -> None:
    assert LDM in PLUGINS


def test_fit_reports_training_facts(fitted: Any) -> None:
    _, ctx, facts = fitted
    assert facts["steps"] == 80 and facts["unet_steps"] == 40
    assert facts["train_seconds"] > 0 and np.isfinite(facts["final_loss"])
    assert (ctx.workdir / "ldm.pt").is_file()


def test_sample_shapes_labels_and_determinism(fitted: Any) -> None:
    generator, ctx, _ = fitted
    out = generator.sample([2, 3], seed=4, ctx=ctx, ddim_steps=5)
    assert isinstance(out, ImageSet)
    assert out.images.shape == (5, 3, 16, 16) and out.images.dtype == np.uint8
    assert out.labels.tolist() == [0, 0, 1, 1, 1]
    again = generator.sample([2, 3], seed=4, ctx=ctx, ddim_steps=5)
    assert np.array_equal(out.images, again.images)
    other = generator.sample([2, 3], seed=5, ctx=ctx, ddim_steps=5)
    assert not np.array_equal(out.images, other.images)
    guided = generator.sample([2, 3], seed=4, ctx=ctx, ddim_steps=5, guidance=3.0, eta=0.5)
    assert guided.images.shape == out.images.shape
    assert not np.array_equal(out.images, guided.images)


def test_reload_gives_identical_samples(fitted: Any) -> None:
    generator, ctx, _ = fitted
    reloaded = LDM(**FAST)
    reloaded.load(ctx.workdir, ctx)
    a = generator.sample([1, 2], seed=2, ctx=ctx, ddim_steps=4)
    b = reloaded.sample([1, 2], seed=2, ctx=ctx, ddim_steps=4)
    assert np.array_equal(a.images, b.images)
    eff = reloaded.efficiency(ctx, (3, 16, 16))
    assert eff["peak_gpu_memory_mb_8"] is None and eff["seconds_per_1000"] > 0


def test_sample_before_fit() -> None:
    with pytest.raises(GeneratorError, match="before fit"):
        LDM(**FAST).sample([1, 1], seed=0, ctx=RunContext())


def test_zero_images(fitted: Any) -> None:
    generator, ctx, _ = fitted
    with pytest.raises(GeneratorError, match="0 images in total"):
        generator.sample([0, 0], seed=0, ctx=ctx)


def test_checkpoint_from_different_config(fitted: Any) -> None:
    _, ctx, _ = fitted
    other = LDM(**{**FAST, "unet_channels": 16})
    with pytest.raises(GeneratorError, match="different configuration") as info:
        other.load(ctx.workdir, ctx)
    assert "unet_channels: checkpoint=32 current=16" in str(info.value)


def test_divergence_is_reported(tmp_path: Path) -> None:
    splits = make_toy_splits(n_per_class=4, size=16, channels=1)
    generator = LDM(preset="tiny", ae_lr=1e30, ae_steps=20, unet_steps=5)
    with pytest.raises(GeneratorError, match=r"diverged at step \d+"):
        generator.fit(splits.train, splits.class_names, tmp_path, RunContext(workdir=tmp_path))


def test_bad_parameters_and_sizes(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="must be > 0"):
        LDM(preset="tiny", unet_mults=[1, 0])
    with pytest.raises(ParameterError, match="ddim_steps"):
        LDM.validate_sample({"ddim_steps": 0})
    splits = make_toy_splits(n_per_class=4, size=8, channels=1)
    with pytest.raises(GeneratorError, match=r"8×8 images do not fit.*multiple of 16"):
        LDM(**FAST).fit(splits.train, splits.class_names, tmp_path, RunContext())


def test_unet_shapes_and_ddim_is_deterministic() -> None:
    torch.manual_seed(0)
    unet = UNet(4, 16, (1, 2), 1, (1,), n_classes=3).eval()
    x = torch.randn(2, 4, 8, 8)
    out = unet(x, torch.tensor([0, 999]), torch.tensor([0, 3]))
    assert out.shape == x.shape
    diffusion = Diffusion(100)
    y = torch.tensor([1, 2])
    gen = torch.Generator().manual_seed(0)
    a = diffusion.ddim_sample(unet, (2, 4, 8, 8), y, gen, torch.device("cpu"), steps=3)
    gen = torch.Generator().manual_seed(0)
    b = diffusion.ddim_sample(unet, (2, 4, 8, 8), y, gen, torch.device("cpu"), steps=3)
    assert torch.equal(a, b) and torch.isfinite(a).all()
    assert 0.0 < float(diffusion.alphas_cumprod[-1]) < float(diffusion.alphas_cumprod[0]) < 1.0


@pytest.mark.gpu
def test_cuda_amp_fit_and_deterministic_sample(tmp_path: Path) -> None:
    splits = make_toy_splits(n_per_class=16, size=16, channels=3)
    ctx = RunContext(device="cuda", seed=0, workdir=tmp_path)
    generator = LDM(**FAST)
    generator.fit(splits.train, splits.class_names, tmp_path, ctx)
    a = generator.sample([2, 2], seed=3, ctx=ctx, ddim_steps=5)
    b = generator.sample([2, 2], seed=3, ctx=ctx, ddim_steps=5)
    assert np.array_equal(a.images, b.images)
    eff = generator.efficiency(ctx, (3, 16, 16))
    assert eff["peak_gpu_memory_mb_8"] is not None and eff["peak_gpu_memory_mb_8"] > 0
