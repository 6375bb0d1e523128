"""ldm: tiny preset fits and samples on CPU; determinism, DDIM, reload and bad input; the
diffusers networks and LDM schedule; checkpoints of the hand-written networks are refused."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from medsynbench import ImageSet, RunContext
from medsynbench.errors import GeneratorError, ParameterError, PluginError
from medsynbench.plugins.generators import PLUGINS
from medsynbench.plugins.generators.ldm import LDM, ddim_scheduler
from medsynbench.plugins.generators.training import save_checkpoint
from medsynbench.plugins.generators.vq import VQAutoencoder
from medsynbench.testing import make_toy_splits

diffusers = pytest.importorskip("diffusers")

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


def test_networks_vq_8x_first_stage_and_class_conditional_diffusers_unet(fitted: Any) -> None:
    generator, _, _ = fitted
    models = generator.models
    assert isinstance(models["ae"], VQAutoencoder)
    assert isinstance(models["unet"], diffusers.UNet2DModel)
    assert isinstance(models["ema"], diffusers.UNet2DModel)
    latents = models["ae"].encode_latent(torch.zeros(2, 3, 16, 16))
    assert latents.shape == (2, 4, 2, 2)  # 8× compression, code_dim channels
    assert models["unet"].class_embedding.num_embeddings == 3  # 2 classes + the null class


def test_ddim_is_ldm_uniform_discretisation_over_scaled_linear_betas() -> None:
    scheduler = ddim_scheduler(1000, 5)
    assert scheduler.timesteps.tolist() == [801, 601, 401, 201, 1]  # LDM: range(0, T, T/n) + 1
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    expected = torch.cumprod(1 - betas, 0)
    assert torch.allclose(scheduler.alphas_cumprod.double(), expected, rtol=1e-5)
    assert float(scheduler.final_alpha_cumprod) == pytest.approx(float(expected[0]), rel=1e-6)
    assert len(ddim_scheduler(10, 50).timesteps) == 9  # capped: offset 1 would reach t = T


def test_checkpoint_of_the_hand_written_unet_is_refused(tmp_path: Path) -> None:
    # The configuration ldm 0.2.0 wrote for FAST on 16 px RGB, two classes (and a state of
    # its hand-written UNet's names): refused by the configuration check, not by torch.
    old_config = {
        "ae_channels": 32, "ae_res_channels": 8, "ae_n_res": 1, "codebook_size": 64,
        "code_dim": 4, "ae_steps": 40, "ae_lr": 2e-3, "unet_channels": 32,
        "unet_mults": [1, 2], "unet_res_blocks": 1, "unet_attention": [1], "unet_steps": 40,
        "unet_lr": 1e-3, "batch_size": 16, "timesteps": 1000, "ema_decay": 0.99,
        "cond_dropout": 0.1, "preset": "tiny", "max_train_seconds": None, "augment": True,
        "image_shape": [3, 16, 16], "n_classes": 2,
    }
    state = {"unet.stem.weight": torch.zeros(32, 4, 3, 3), "latent_scale": torch.ones(())}
    save_checkpoint(tmp_path / "ldm.pt", "ldm", old_config, {"state": state})
    with pytest.raises(GeneratorError, match="different configuration") as info:
        LDM(**FAST).load(tmp_path, RunContext(workdir=tmp_path))
    message = str(info.value)
    assert message.count("checkpoint=") == 1  # the one difference: the networks
    assert "networks: checkpoint='<absent>' current='vq.VQAutoencoder + diffusers UNet2DModel'" \
        in message


def test_missing_diffusers_is_one_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers → ImportError
    with pytest.raises(PluginError, match=r"generator 'ldm' needs the `diffusers` package .*"
                       r"pip install 'medsynbench\[diffusion\]'"):
        LDM(**FAST)


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
