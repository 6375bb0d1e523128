"""vqvae2: tiny preset fits and samples on CPU; determinism, reload and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from medsynbench import ImageSet, RunContext
from medsynbench.errors import GeneratorError, ParameterError
from medsynbench.plugins.generators import PLUGINS
from medsynbench.plugins.generators.pixelcnn import GatedPixelCNN
from medsynbench.plugins.generators.vqvae2 import VQVAE2
from medsynbench.testing import make_toy_splits

FAST = {"preset": "tiny", "vq_steps": 40, "prior_steps": 30}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[VQVAE2, RunContext, Any, Any]:
    torch.set_num_threads(1)
    splits = make_toy_splits(n_per_class=16, size=16, channels=3)
    workdir = tmp_path_factory.mktemp("vqvae2")
    ctx = RunContext(device="cpu", seed=0, workdir=workdir)
    generator = VQVAE2(**FAST)
    facts = generator.fit(splits.train, splits.class_names, workdir, ctx)
    return generator, ctx, facts, splits


def test_registered() -> None:
    assert VQVAE2 in PLUGINS


def test_fit_reports_training_facts(fitted: Any) -> None:
    _, _, facts, _ = fitted
    assert facts["steps"] == 2 * (40 + 30 + 30)  # two classes × three stages
    assert facts["train_seconds"] > 0 and np.isfinite(facts["final_loss"])
    assert (fitted[1].workdir / "vqvae2.pt").is_file()


def test_sample_shapes_labels_and_determinism(fitted: Any) -> None:
    generator, ctx, _, _ = fitted
    out = generator.sample([3, 2], seed=5, ctx=ctx)
    assert isinstance(out, ImageSet)
    assert out.images.shape == (5, 3, 16, 16) and out.images.dtype == np.uint8
    assert out.labels.tolist() == [0, 0, 0, 1, 1]
    again = generator.sample([3, 2], seed=5, ctx=ctx)
    assert np.array_equal(out.images, again.images)
    other = generator.sample([3, 2], seed=6, ctx=ctx)
    assert not np.array_equal(out.images, other.images)
    # per-class models learned their class: dark class 0 vs bright class 1
    assert out.images[:3].mean() < out.images[3:].mean()
    only_second = generator.sample([0, 2], seed=5, ctx=ctx)
    assert only_second.labels.tolist() == [1, 1]


def test_reload_gives_identical_samples(fitted: Any) -> None:
    generator, ctx, _, _ = fitted
    reloaded = VQVAE2(**FAST)
    reloaded.load(ctx.workdir, ctx)
    a = generator.sample([2, 2], seed=1, ctx=ctx)
    b = reloaded.sample([2, 2], seed=1, ctx=ctx)
    assert np.array_equal(a.images, b.images)


def test_refit_resumes_without_retraining(fitted: Any) -> None:
    _, ctx, facts, splits = fitted
    again = VQVAE2(**FAST)
    refit = again.fit(splits.train, splits.class_names, ctx.workdir, ctx)
    assert refit["steps"] == facts["steps"]
    assert refit["train_seconds"] == pytest.approx(facts["train_seconds"])


def test_sample_before_fit() -> None:
    with pytest.raises(GeneratorError, match="before fit"):
        VQVAE2(**FAST).sample([1, 1], seed=0, ctx=RunContext())


def test_zero_images_and_wrong_class_count(fitted: Any) -> None:
    generator, ctx, _, _ = fitted
    with pytest.raises(GeneratorError, match="0 images in total"):
        generator.sample([0, 0], seed=0, ctx=ctx)
    with pytest.raises(GeneratorError, match="fitted on 2 classes"):
        generator.sample([1, 1, 1], seed=0, ctx=ctx)


def test_checkpoint_from_different_config(fitted: Any) -> None:
    _, ctx, _, _ = fitted
    other = VQVAE2(**{**FAST, "codebook_size": 64})
    with pytest.raises(GeneratorError, match="different configuration") as info:
        other.load(ctx.workdir, ctx)
    assert "codebook_size: checkpoint=32 current=64" in str(info.value)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="no checkpoint"):
        VQVAE2(**FAST).load(tmp_path, RunContext())


def test_divergence_is_reported(tmp_path: Path) -> None:
    splits = make_toy_splits(n_per_class=4, size=16, channels=1)
    generator = VQVAE2(preset="tiny", vq_lr=1e30, vq_steps=20, prior_steps=5)
    ctx = RunContext(workdir=tmp_path)
    with pytest.raises(GeneratorError, match=r"diverged at step \d+"):
        generator.fit(splits.train, splits.class_names, tmp_path, ctx)


def test_bad_parameters_and_sizes(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="must be > 0"):
        VQVAE2(preset="tiny", vq_steps=0)
    with pytest.raises(ParameterError, match="not one of"):
        VQVAE2(preset="huge")
    splits = make_toy_splits(n_per_class=4, size=12, channels=1)
    with pytest.raises(GeneratorError, match=r"12×12 images do not fit.*multiple of 8"):
        VQVAE2(**FAST).fit(splits.train, splits.class_names, tmp_path, RunContext())


def test_conditional_single_model(tmp_path: Path) -> None:
    splits = make_toy_splits(n_per_class=8, size=16, channels=1)
    generator = VQVAE2(preset="tiny", per_class=False, vq_steps=10, prior_steps=5)
    ctx = RunContext(workdir=tmp_path)
    facts = generator.fit(splits.train, splits.class_names, tmp_path, ctx)
    assert facts["steps"] == 20
    out = generator.sample([1, 2], seed=0, ctx=ctx, temperature=0.5)
    assert out.images.shape == (3, 1, 16, 16) and out.labels.tolist() == [0, 1, 1]
    eff = generator.efficiency(ctx, (1, 16, 16))
    assert eff["peak_gpu_memory_mb_8"] is None and eff["seconds_per_1000"] > 0


def test_pixelcnn_is_causal() -> None:
    torch.manual_seed(0)
    prior = GatedPixelCNN(10, 16, 4, n_classes=3, cond_codes=7, cond_scale=2).eval()
    codes = torch.randint(0, 10, (2, 6, 6))
    cond = torch.randint(0, 7, (2, 3, 3))
    labels = torch.tensor([0, 2])
    base = prior(codes, labels, cond)
    changed = codes.clone()
    changed[:, 2, 3] = (changed[:, 2, 3] + 1) % 10
    diff = (prior(changed, labels, cond) - base).abs().amax(1)
    flat = diff.flatten(1)
    position = 2 * 6 + 3
    assert flat[:, : position + 1].max() == 0  # nothing at or before (2, 3) sees it
    assert flat[:, position + 1 :].max() > 0  # later positions do


def test_pixelcnn_strip_logits_equal_the_whole_map() -> None:
    """Sampling runs the network on the ``reach`` rows above a position and the head on that
    pixel: the logits must be the whole map's, and rows above the strip must not matter."""
    torch.manual_seed(0)
    prior = GatedPixelCNN(10, 16, 3, n_classes=3, cond_codes=7, cond_scale=2).eval()
    codes = torch.randint(0, 10, (2, 12, 8))
    labels = torch.tensor([1, 2])
    cond = prior._condition(labels, torch.randint(0, 7, (2, 6, 4)))
    with torch.no_grad():
        full = prior._logits(codes, cond)
        for i in range(12):
            top = max(0, i - prior.reach)
            for j in range(8):
                strip = prior._logits(codes[:, top : i + 1], cond, top, j)[:, :, 0, 0]
                torch.testing.assert_close(strip, full[:, :, i, j], rtol=1e-5, atol=1e-5)
        # reach is tight: the row just inside the strip does reach position (i, 0)
        i = 11
        changed = codes.clone()
        changed[:, i - prior.reach] = (changed[:, i - prior.reach] + 1) % 10
        assert (prior._logits(changed, cond)[:, :, i] - full[:, :, i]).abs().max() > 0
        changed = codes.clone()
        changed[:, : i - prior.reach] = (changed[:, : i - prior.reach] + 1) % 10
        assert torch.equal(prior._logits(changed, cond)[:, :, i], full[:, :, i])


def test_pixelcnn_sample_draws_what_the_whole_map_draws() -> None:
    torch.manual_seed(1)
    prior = GatedPixelCNN(10, 16, 3, n_classes=2).eval()
    labels = torch.tensor([0, 1, 1])
    drawn = prior.sample(3, (9, 7), torch.Generator().manual_seed(5), torch.device("cpu"), labels)
    # the same inverse-CDF draws on the whole map, position by position
    gen = torch.Generator().manual_seed(5)
    uniforms = torch.rand(3, 9, 7, generator=gen, dtype=torch.float64)
    codes = torch.zeros(3, 9, 7, dtype=torch.long)
    with torch.no_grad():
        for i in range(9):
            for j in range(7):
                probs = torch.softmax(prior(codes, labels)[:, :, i, j].double(), dim=1)
                codes[:, i, j] = (probs.cumsum(1) < uniforms[:, i, j, None]).sum(1).clamp_max(9)
    assert torch.equal(drawn, codes)


@pytest.mark.gpu
def test_cuda_amp_fit_and_deterministic_sample(tmp_path: Path) -> None:
    splits = make_toy_splits(n_per_class=16, size=16, channels=3)
    ctx = RunContext(device="cuda", seed=0, workdir=tmp_path)
    generator = VQVAE2(**FAST)
    generator.fit(splits.train, splits.class_names, tmp_path, ctx)
    a = generator.sample([2, 2], seed=3, ctx=ctx)
    b = generator.sample([2, 2], seed=3, ctx=ctx)
    assert np.array_equal(a.images, b.images)
    eff = generator.efficiency(ctx, (3, 16, 16))
    assert eff["peak_gpu_memory_mb_8"] is not None and eff["peak_gpu_memory_mb_8"] > 0
