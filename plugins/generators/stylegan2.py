"""Conditional StyleGAN2 (pure PyTorch): the GAN of both reference studies.

Training follows StyleGAN2 (config F without path-length regularisation): non-saturating
logistic loss, lazy R1 regularisation on real images every ``r1_interval`` steps (with the
matching Adam correction), style mixing, an EMA copy of the generator used for sampling
(half-life ``ema_kimg`` thousand images, ramped up early), AMP and channels-last on CUDA.
The class label enters the mapping network as an embedding the width of z, and the
discriminator as a projection. Sampling supports truncation ψ toward the *per-class* mean w
(``truncation`` is sweepable: the privacy study uses ψ ∈ {0, .2, .4, .6, .8, 1}); noise inputs
are fixed per layer by default (``noise_mode = "const"``) so ψ = 0 gives one image per class.

Presets: ``tiny`` fits a 16–32 px toy set on a CPU in seconds (tests); ``paper`` is StyleGAN2 at
the studies' scale (512-d z and w, 8 mapping layers, up to 512 feature maps; GPU). Any preset
value can be overridden (``kimg``, ``batch_size``, ``channel_max``...).

Throughput: this eager implementation issues ~10⁴ small ops per training step, so at 64 px a
step costs 0.2–0.3 s on an H100 almost independently of the network width (measured: batch 64
with 256 feature maps, 0.30 s/step; batch 32 with ≤ 256, 0.20 s/step). Under a short time
budget, a larger ``batch_size`` buys images per second nearly for free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from medsynbench import Generator, ImageSet, Param, RunContext
from medsynbench.errors import GeneratorError

from . import stylegan2_networks as nets
from .training import (
    Trainer,
    autocast,
    batch_indices,
    check_counts,
    from_unit,
    load_checkpoint,
    measure_sampling,
    prepare_module,
    preset_parameters,
    require_fitted,
    resolve_device,
    resolve_preset,
    save_checkpoint,
    to_unit,
    torch_generator,
)

__all__ = ["PRESETS", "StyleGAN2"]

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "kimg": 0.4, "batch_size": 8, "z_dim": 32, "mapping_layers": 2, "channel_base": 512,
        "channel_max": 32, "lr": 0.0025, "r1_gamma": 0.1, "r1_interval": 4, "ema_kimg": 0.05,
        "style_mixing": 0.0,
    },
    "paper": {
        "kimg": 5000.0, "batch_size": 32, "z_dim": 512, "mapping_layers": 8,
        "channel_base": 32768, "channel_max": 512, "lr": 0.0025, "r1_gamma": 1.0,
        "r1_interval": 16, "ema_kimg": 10.0, "style_mixing": 0.9,
    },
}
_CHECKPOINT = "stylegan2.pt"
_SAMPLE_BATCH = 64




def _nonnegative(value: float) -> str | None:
    return None if value >= 0 else f"must be >= 0, got {value}"


def _probability(value: float) -> str | None:
    return None if 0 <= value <= 1 else f"must be in [0, 1], got {value}"


_CHECKS = {"r1_gamma": _nonnegative, "style_mixing": _probability}


def _amp(device: torch.device) -> AbstractContextManager[Any]:
    """bfloat16 autocast where supported (no overflow, so no GAN-specific fp16 clamping
    tricks are needed); otherwise the shared float16 autocast (a no-op on CPU)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return autocast(device)


class StyleGAN2(Generator):
    """Class-conditional StyleGAN2 with R1, EMA generator and per-class truncation ψ."""

    name: ClassVar[str] = "stylegan2"
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = "conditional StyleGAN2 (pure PyTorch), truncation ψ sweepable"
    parameters: ClassVar[Mapping[str, Param]] = {
        **preset_parameters(PRESETS, _CHECKS),
        "mirror": Param(False, bool, "random horizontal+vertical flips of real images (only "
                        "where flipped images are valid, e.g. histology)"),
    }
    sample_parameters: ClassVar[Mapping[str, Param]] = {
        "truncation": Param(1.0, float, "truncation ψ toward the class's mean w (1 = none, "
                            "0 = the class mean only)", check=_nonnegative, sweepable=True),
        "noise_mode": Param("const", str, "noise inputs: 'const' (fixed per layer), 'random' "
                            "(seeded) or 'none'", choices=("const", "random", "none")),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.config = resolve_preset(PRESETS, self.params)
        self._g: nets.Generator | None = None
        self._data: dict[str, Any] = {}

    # ------------------------------------------------------------------ model
    def _build(self, image_shape: Sequence[int], n_classes: int) -> nets.Generator:
        c, h, w = (int(v) for v in image_shape)
        if h != w or h < 8 or h & (h - 1):
            raise GeneratorError(
                f"generator 'stylegan2': images must be square with a power-of-two side ≥ 8, "
                f"got {h}×{w}; set the dataset's resolution to 32, 64, 128, 256..."
            )
        cfg = self.config
        return nets.Generator(h, c, n_classes, cfg["z_dim"], cfg["z_dim"],
                              cfg["mapping_layers"], cfg["channel_base"], cfg["channel_max"])

    def _hyper(self) -> dict[str, Any]:
        """The configuration a checkpoint must match (every resolved parameter)."""
        return {k: v for k, v in self.config.items() if k != "max_train_seconds"}

    # ------------------------------------------------------------------ fit
    def fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> Mapping[str, Any]:
        """Train on ``train``; resumes from ``workdir/train.resume.pt`` after a kill."""
        if len(train) == 0:
            raise GeneratorError("generator 'stylegan2': the training split is empty")
        device = resolve_device(ctx)
        n_classes = len(class_names)
        devices = [device.index or 0] if device.type == "cuda" else []
        benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed shapes: autotune convs
        try:
            result, g_ema = self._fit(train, n_classes, Path(workdir), ctx, device, devices)
        finally:
            torch.backends.cudnn.benchmark = benchmark
        self._g = g_ema
        self._data = {"image_shape": list(train.image_shape), "class_names": list(class_names)}
        save_checkpoint(Path(workdir) / _CHECKPOINT, self.name, self._hyper(),
                        {"g_ema": g_ema.state_dict(), "data": self._data})
        losses = result["losses"]
        return {
            "steps": result["steps"],
            "kimg": result["steps"] * self.config["batch_size"] / 1000.0,
            "train_seconds": result["seconds"],
            "final_loss": losses.get("loss_g", float("nan")),
            "final_loss_g": losses.get("loss_g", float("nan")),
            "final_loss_d": losses.get("loss_d", float("nan")),
            "stopped_early": result["steps"] < self._total_steps(),
        }

    def _fit(
        self, train: ImageSet, n_classes: int, workdir: Path, ctx: RunContext,
        device: torch.device, devices: list[int],
    ) -> tuple[dict[str, Any], nets.Generator]:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(ctx.seed)  # initial weights, training noise, style mixing
            g = self._build(train.image_shape, n_classes)
            d = nets.Discriminator(train.image_shape[1], train.image_shape[0], n_classes,
                                   self.config["channel_base"], self.config["channel_max"])
            g_ema = self._build(train.image_shape, n_classes)
            g_ema.load_state_dict(g.state_dict())
            g_ema.requires_grad_(False)
            for module in (g, d, g_ema):
                prepare_module(module, device)
            result = self._train(g, d, g_ema, train, ctx.child(workdir=workdir), device)
            g_ema.eval()
            g_ema.compute_w_mean(2048 if self.config["preset"] == "paper" else 256,
                                 torch_generator(ctx.seed, 0x3EA7))
        return result, g_ema

    def _total_steps(self) -> int:
        return max(1, math.ceil(self.config["kimg"] * 1000 / self.config["batch_size"]))

    def _train(
        self, g: nets.Generator, d: nets.Discriminator, g_ema: nets.Generator,
        train: ImageSet, ctx: RunContext, device: torch.device,
    ) -> dict[str, Any]:
        cfg = self.config
        batch, interval, gamma = cfg["batch_size"], cfg["r1_interval"], cfg["r1_gamma"]
        ratio = interval / (interval + 1)  # lazy regularisation: Adam lr/betas corrected
        opt_g = torch.optim.Adam(g.parameters(), lr=cfg["lr"], betas=(0.0, 0.99), eps=1e-8)
        opt_d = torch.optim.Adam(d.parameters(), lr=cfg["lr"] * ratio,
                                 betas=(0.0, 0.99**ratio), eps=1e-8)
        trainer_config = {**self._hyper(), "image_shape": list(train.image_shape),
                          "n_classes": g.n_classes, "mirror": self.params["mirror"]}
        trainer = Trainer(self.name, trainer_config, ctx, {"g": g, "d": d, "g_ema": g_ema},
                          {"g": opt_g, "d": opt_d}, self._total_steps(),
                          description="stylegan2", checkpoint_every=1000,
                          max_seconds=cfg["max_train_seconds"])
        images = torch.as_tensor(np.asarray(train.images)).to(device)
        labels = torch.as_tensor(train.labels).to(device)
        seed = ctx.seed
        ema_params, g_params = list(g_ema.parameters()), list(g.parameters())
        ema_nimg = cfg["ema_kimg"] * 1000

        def reals(i: int) -> tuple[torch.Tensor, torch.Tensor]:
            # Batch i is a function of (seed, i) alone, so a resumed run sees the same data.
            index = batch_indices(i, len(train), batch, seed, key=0x5647).to(device)
            x = to_unit(images[index], device)
            if self.params["mirror"]:
                flips = torch.rand(2, len(index), 1, 1, 1, generator=trainer.data_rng).to(device)
                x = torch.where(flips[0] < 0.5, x.flip(3), x)
                x = torch.where(flips[1] < 0.5, x.flip(2), x)
            return x, labels[index]

        def fake_labels(n: int) -> torch.Tensor:
            pick = torch.randint(len(train), (n,), generator=trainer.data_rng)
            return labels[pick.to(device)]

        last_r1 = torch.zeros([], device=device)

        def step(i: int) -> dict[str, torch.Tensor | float]:
            nonlocal last_r1
            real, c_real = reals(i)
            n = real.shape[0]
            # Discriminator: logistic loss on fakes and reals, plus lazy R1 on reals.
            z, c_fake = torch.randn(n, g.z_dim, device=device), fake_labels(n)
            with torch.no_grad(), _amp(device):
                fake = g(z, c_fake, mixing=cfg["style_mixing"])
            with _amp(device):
                loss_fake = F.softplus(d(fake, c_fake).float()).mean()
            if gamma > 0 and i % interval == 0:
                real = real.detach().requires_grad_(True)
                real_logits = d(real, c_real).float()  # float32: R1 needs exact gradients
                (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
                last_r1 = grad.square().sum(dim=(1, 2, 3)).mean()
                penalty = last_r1 * (gamma / 2) * interval
            else:
                with _amp(device):
                    real_logits = d(real, c_real).float()
                penalty = torch.zeros([], device=device)
            loss_d = loss_fake + F.softplus(-real_logits).mean()
            trainer.backward(loss_d + penalty, opt_d)
            # Generator: non-saturating loss.
            d.requires_grad_(False)
            z, c_fake = torch.randn(n, g.z_dim, device=device), fake_labels(n)
            with _amp(device):
                loss_g = F.softplus(-d(g(z, c_fake, mixing=cfg["style_mixing"]), c_fake)
                                    .float()).mean()
            trainer.backward(loss_g, opt_g)
            d.requires_grad_(True)
            # EMA of the generator, half-life ema_kimg (ramped up over the first images).
            beta = 0.5 ** (n / max(min(ema_nimg, (i + 1) * n * 0.05), 1e-8))
            # (Buffers need no averaging: noise_const is fixed, w_mean is set after training.)
            with torch.no_grad():
                torch._foreach_lerp_(ema_params, g_params, 1 - beta)
            return {"loss_g": loss_g, "loss_d": loss_d, "r1": last_r1}

        return trainer.run(step)

    # ------------------------------------------------------------------ load / sample
    def load(self, workdir: Path, ctx: RunContext) -> None:
        """Restore the EMA generator from ``workdir/stylegan2.pt`` (config must match)."""
        data = load_checkpoint(Path(workdir) / _CHECKPOINT, self.name, self._hyper())
        meta = data["data"]
        g = self._build(meta["image_shape"], len(meta["class_names"]))
        g.load_state_dict(data["g_ema"])
        self._g = prepare_module(g, resolve_device(ctx)).eval()  # type: ignore[assignment]
        self._data = meta

    @torch.no_grad()
    def _generate(
        self, g: nets.Generator, z: torch.Tensor, label: int, psi: float, noise: str,
        gen: torch.Generator | None, device: torch.device,
    ) -> np.ndarray:
        labels = torch.full((len(z),), label, dtype=torch.long, device=device)
        return from_unit(g(z.to(device), labels, psi=psi, noise=noise, gen=gen))

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        """``counts[c]`` images of class ``c``; class ``c``'s images depend only on (seed, c)."""
        require_fitted(self._g, self.name)
        assert self._g is not None
        params = self.validate_sample(sample_params)
        values = check_counts(counts, len(self._data["class_names"]), self.name)
        device = resolve_device(ctx)
        g = self._g.to(device)
        parts = []
        for c, n in enumerate(values):
            if n == 0:
                continue
            z = torch.randn(n, g.z_dim, generator=torch_generator(seed, c))
            noise_gen = torch_generator(seed, c, 1)
            for start in range(0, n, _SAMPLE_BATCH):
                parts.append(self._generate(g, z[start:start + _SAMPLE_BATCH], c,
                                            params["truncation"], params["noise_mode"],
                                            noise_gen, device))
        labels = np.repeat(np.arange(len(values), dtype=np.int64), values)
        return ImageSet(np.concatenate(parts), labels)

    def efficiency(self, ctx: RunContext, image_shape: tuple[int, int, int]) -> dict[str, float]:
        """Peak GPU memory (MB) to sample 8 images and seconds per 1000 images (EMA generator;
        an untrained network of the same architecture when none is loaded)."""
        device = resolve_device(ctx)
        g = self._g if self._g is not None else self._build(image_shape, 1)
        g = prepare_module(g, device).eval()  # type: ignore[assignment]

        def sample_n(n: int) -> np.ndarray:
            z = torch.randn(n, g.z_dim, generator=torch_generator(0))
            return self._generate(g, z, 0, 1.0, "const", None, device)

        measured = measure_sampling(sample_n, device, n_timed=64 if device.type == "cuda" else 8)
        return {k: float(v) for k, v in measured.items() if v is not None}
