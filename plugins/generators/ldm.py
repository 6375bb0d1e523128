"""``ldm``: class-conditional latent diffusion (Rombach et al. 2022): a VQ first stage, and
diffusers' UNet and schedulers.

The studies' design: a VQ first stage with 8× spatial compression, a class-conditional UNet
trained with the DDPM ε-prediction loss on the first stage's latents, DDIM sampling.

- Stage 1, :class:`~.vq.VQAutoencoder` (this package's, shared with ``vqvae2`` and the
  ``vqvae-codes`` encoder): 8× compression, EMA codebook with dead-code restarts, trained with
  L1 + MSE. Diffusion runs on its continuous pre-quantisation latents and decoding quantises
  them, as Rombach et al.'s VQ-regularised (VQ-f8) models do.
- Stage 2, ``diffusers.UNet2DModel`` with ``num_class_embeds = classes + 1`` (the extra one is
  the "null" class of condition dropout, for classifier-free guidance), scale-shift norm,
  attention at the ``unet_attention`` levels; ``diffusers.DDPMScheduler`` adds the noise (LDM's
  "scaled linear" betas 0.00085 → 0.012); an EMA copy of the UNet is kept for sampling.
- Sampling: ``diffusers.DDIMScheduler`` with LDM's own discretisation ("leading" spacing,
  offset 1, final ᾱ = ᾱ₀), ``ddim_steps``, ``eta``, ``guidance``.

**Why diffusers rather than MONAI.** diffusers' UNet2DModel and DDIM scheduler are the
maintained ports of CompVis's latent-diffusion code the studies' LDMs come from, and its DDIM
step draws η-noise from the caller's CPU generator on any device (a seed gives the same images
on CPU and CUDA). MONAI's ``DDIMScheduler`` steps back by T // steps from linspace-spaced
timesteps (not to the timestep it evaluates next) and draws η-noise on the model's device,
which a CPU generator cannot feed on CUDA.

**Why the first stage is not diffusers' ``VQModel``** (the LDM VQ-f8 autoencoder), although it
was the first choice (commit d3f4aa1; ``python bench/ldm_libraries.py --old-rev d3f4aa1``
compares it): on LC25000 64 px at the ``lc25000-lite`` budget (tiny preset, 600 steps) its
gradient-trained codebook is under-used (42 of 64 codes on the held-out tiles) and it
reconstructs them worse (L1 0.255 vs 0.160 in [-1, 1]) at 11-16× the CPU time per step; LDM
trains it for days with perceptual and GAN losses that cannot be used offline. MONAI's
``VQVAE`` would add the ``[monai]`` extra to ``[diffusion]`` for what the shared EMA VQ already
does. Needs ``pip install 'medsynbench[diffusion]'``.

Both stages are resumable from ``ctx.workdir``. Presets: ``tiny`` (CPU tests) and ``paper``:
the LDM VQ-f8 first stage (4-dim latents, 16384 codes) with a 192-channel UNet (multipliers
1-2-4, attention at the two coarser levels), AdamW 1e-4, batch 64, EMA 0.9999 — Rombach et
al.'s settings scaled to one GPU. Explicit parameters override the preset. The first stage is
trained without the perceptual and GAN losses (no pretrained network may be downloaded), so
decoded samples are softer than the original LDM's. Checkpoints of the former hand-written
UNet (ldm < 0.3) are refused with the configuration-mismatch error (they lack ``networks``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from medsynbench.data import ImageSet
from medsynbench.kinds import Generator, ImageSize, RunContext
from medsynbench.params import Param, in_range, positive
from torch import nn

from .byo import require_module
from .rng import fit_rng
from .training import (
    TimeBudget,
    Trainer,
    autocast,
    check_counts,
    from_unit,
    measure_sampling,
    prepare_module,
    preset_parameters,
    require_fitted,
    resolve_device,
    resolve_preset,
    restore_module,
    save_checkpoint,
    shared_tensor,
    to_unit,
    torch_generator,
)
from .vq import VQAutoencoder
from .vqvae2 import dihedral

__all__ = ["LDM", "ddim_scheduler"]

_FRACTION = in_range(0, 1, high_open=True)

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "ae_channels": 32,
        "ae_res_channels": 8,
        "ae_n_res": 1,
        "codebook_size": 64,
        "code_dim": 4,
        "ae_steps": 80,
        "ae_lr": 2e-3,
        "unet_channels": 32,
        "unet_mults": [1, 2],
        "unet_res_blocks": 1,
        "unet_attention": [1],
        "unet_steps": 80,
        "unet_lr": 1e-3,
        "batch_size": 16,
        "timesteps": 1000,
        "ema_decay": 0.99,
        "cond_dropout": 0.1,
    },
    "paper": {
        "ae_channels": 128,
        "ae_res_channels": 64,
        "ae_n_res": 2,
        "codebook_size": 16384,
        "code_dim": 4,
        "ae_steps": 20000,
        "ae_lr": 2e-4,
        "unet_channels": 192,
        "unet_mults": [1, 2, 4],
        "unet_res_blocks": 2,
        "unet_attention": [1, 2],
        "unet_steps": 50000,
        "unet_lr": 1e-4,
        "batch_size": 64,
        "timesteps": 1000,
        "ema_decay": 0.9999,
        "cond_dropout": 0.1,
    },
}
DOWNSAMPLE = 8  # the first stage's spatial compression (LDM "f8")
# Written into every checkpoint's configuration: checkpoints of the hand-written UNet
# (ldm < 0.3) lack it and are refused by the configuration check before any weight is read.
NETWORKS = "vq.VQAutoencoder + diffusers UNet2DModel"
# LDM's noise schedule and DDIM discretisation (ldm/models/diffusion/ddim.py "uniform").
SCHEDULE = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
DDIM = {"timestep_spacing": "leading", "steps_offset": 1, "set_alpha_to_one": False,
        "clip_sample": False}


def _levels(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, int) and v >= 0 for v in value)
    return None if value is None or ok else f"must be a list of level indices >= 0, got {value!r}"


def _groups(channels: int) -> int:
    """GroupNorm groups for a UNet whose widths are multiples of ``channels``: the largest
    divisor of ``channels`` up to min(32, channels / 4), i.e. 4 or more channels a group."""
    cap = max(1, min(32, channels // 4))
    return max(g for g in range(1, cap + 1) if channels % g == 0)


def _diffusers() -> Any:
    return require_module("diffusers", "diffusion", "ldm", "its UNet and schedulers")


def ddim_scheduler(timesteps: int, steps: int, device: torch.device | None = None) -> Any:
    """diffusers' DDIMScheduler over LDM's schedule, set to ``steps`` steps (at most
    ``timesteps`` − 1: with offset 1, LDM's spacing would reach timestep T at T steps)."""
    scheduler = _diffusers().DDIMScheduler(num_train_timesteps=timesteps, **SCHEDULE, **DDIM)
    scheduler.set_timesteps(max(1, min(steps, timesteps - 1)), device=device)
    return scheduler


class LDM(Generator):
    """Latent diffusion: VQ-f8 first stage, class-conditional diffusers ``UNet2DModel``, DDPM
    training, DDIM sampling (diffusers' schedulers)."""

    name = "ldm"
    # 0.3.1: first stage back to the shared EMA VQ (0.3.0 briefly used diffusers' VQModel under
    #        the same version: a new number so no cache serves those units)
    # 0.3: diffusers' UNet2DModel and DDPM/DDIM schedulers replace the hand-written ones
    # 0.2: exact resume (RNG states in resume checkpoints)
    version = "0.3.1"
    description = "latent diffusion (VQ 8× first stage, diffusers class-conditional UNet, DDIM)"
    parameters: ClassVar[Mapping[str, Param]] = {
        **preset_parameters(
            PRESETS,
            {"unet_attention": _levels, "ema_decay": _FRACTION, "cond_dropout": _FRACTION},
        ),
        "augment": Param(True, bool, "random flips/90° rotations while training"),
    }
    sample_parameters: ClassVar[Mapping[str, Param]] = {
        "ddim_steps": Param(50, int, "DDIM sampling steps", check=positive, sweepable=True),
        "eta": Param(0.0, float, "DDIM stochasticity (0 = deterministic DDIM)"),
        "guidance": Param(
            1.0, float, "classifier-free guidance scale (1 = none)", check=positive, sweepable=True
        ),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.config = resolve_preset(PRESETS, self.params)
        self.models: nn.ModuleDict | None = None
        self.meta: dict[str, Any] = {}

    def check(self) -> None:
        """Fail before any work when diffusers is not installed (the error names the extra)."""
        _diffusers()

    def _config(self, image_shape: Sequence[int], n_classes: int) -> dict[str, Any]:
        return {**self.config, "image_shape": list(image_shape), "n_classes": n_classes,
                "networks": NETWORKS}

    def image_size(self) -> ImageSize:
        """Sides a multiple of 8 · 2^(levels − 1): the 8× first stage, then one stride-2 UNet
        stage per level after the first (the up path must meet every skip at its size)."""
        mults = self.config["unet_mults"]
        factor = DOWNSAMPLE * 2 ** (len(mults) - 1)
        fix = (f"give unet_mults fewer levels (now {mults}; each level removed halves the "
               "multiple)") if len(mults) > 1 else ""
        return ImageSize(multiple=factor, reason=f"{DOWNSAMPLE}× first stage, then "
                         f"{len(mults) - 1} UNet downsamplings from unet_mults = {mults}",
                         fix=fix)

    def _build(self, image_shape: Sequence[int], n_classes: int) -> nn.ModuleDict:
        c, h, w = image_shape
        cfg = self.config
        self.require_image_size(h, w)
        ae = VQAutoencoder(
            c,
            cfg["ae_channels"],
            cfg["ae_res_channels"],
            cfg["ae_n_res"],
            DOWNSAMPLE,
            cfg["codebook_size"],
            cfg["code_dim"],
        )
        width, levels = cfg["unet_channels"], range(len(cfg["unet_mults"]))
        attention = set(cfg["unet_attention"])
        unet = _diffusers().UNet2DModel(
            sample_size=(h // DOWNSAMPLE, w // DOWNSAMPLE),
            in_channels=cfg["code_dim"],
            out_channels=cfg["code_dim"],
            block_out_channels=tuple(width * m for m in cfg["unet_mults"]),
            layers_per_block=cfg["unet_res_blocks"],
            down_block_types=tuple(
                "AttnDownBlock2D" if i in attention else "DownBlock2D" for i in levels),
            up_block_types=tuple(
                "AttnUpBlock2D" if i in attention else "UpBlock2D" for i in reversed(levels)),
            norm_num_groups=_groups(width),
            attention_head_dim=math.gcd(width, 32),
            resnet_time_scale_shift="scale_shift",  # Dhariwal & Nichol's adaptive norm
            num_class_embeds=n_classes + 1,  # + the null class (condition dropout)
            num_train_timesteps=cfg["timesteps"],
        )
        ema = copy.deepcopy(unet).requires_grad_(False)
        models = nn.ModuleDict({"ae": ae, "unet": unet, "ema": ema})
        models.register_buffer("latent_scale", torch.ones(()))
        return models

    # ------------------------------------------------------------------ fit
    def fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> Mapping[str, Any]:
        with fit_rng(ctx.seed, resolve_device(ctx)):  # weights, codebook restarts
            return self._fit(train, class_names, Path(workdir), ctx)

    def _fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> Mapping[str, Any]:
        cfg = self._config(train.image_shape, len(class_names))
        c = self.config
        device = resolve_device(ctx)
        models = prepare_module(self._build(train.image_shape, len(class_names)), device)
        ae, unet, ema = models["ae"], models["unet"], models["ema"]
        work = ctx.child(workdir=workdir)
        budget = TimeBudget(c["max_train_seconds"], 2)
        images = shared_tensor(train.images)
        labels = torch.as_tensor(train.labels)

        ae_opt = torch.optim.Adam(ae.parameters(), lr=c["ae_lr"])
        ae_trainer = Trainer(
            self.name,
            cfg,
            work,
            {"ae": ae},
            {"ae": ae_opt},
            c["ae_steps"],
            tag="autoencoder",
            max_seconds=budget.next_limit(),
            description="ldm autoencoder",
        )

        def ae_step(step: int) -> dict[str, torch.Tensor]:
            x = to_unit(images[ae_trainer.batch(step, len(images), c["batch_size"])], device)
            if c["augment"]:
                x = dihedral(x, int(torch.randint(8, (1,), generator=ae_trainer.data_rng)))
            with ae_trainer.autocast():
                recon, vq_loss, _ = ae(x)
                recon_loss = F.mse_loss(recon.float(), x) + F.l1_loss(recon.float(), x)
                loss = recon_loss + vq_loss
            ae_trainer.backward(loss, ae_opt)
            return {"recon": recon_loss, "vq": vq_loss}

        ae_result = ae_trainer.run(ae_step)
        budget.spend(ae_result["seconds"])
        latents, latent_labels = self._encode_all(ae, images, labels, device)
        models.latent_scale.fill_(1.0 / float(latents.float().std().clamp_min(1e-6)))
        latents = latents * models.latent_scale.cpu()

        noising = _diffusers().DDPMScheduler(num_train_timesteps=c["timesteps"], **SCHEDULE)
        opt = torch.optim.AdamW(unet.parameters(), lr=c["unet_lr"], weight_decay=0.0)
        trainer = Trainer(
            self.name,
            cfg,
            work,
            {"unet": unet, "ema": ema},
            {"unet": opt},
            c["unet_steps"],
            tag="unet",
            max_seconds=budget.next_limit(),
            description="ldm latent UNet",
        )
        n_classes = len(class_names)
        ema_params, unet_params = list(ema.parameters()), list(unet.parameters())

        def unet_step(step: int) -> dict[str, torch.Tensor]:
            idx = trainer.batch(step, len(latents), c["batch_size"])
            z = latents[idx].to(device)
            y = latent_labels[idx].clone()
            drop = torch.rand(len(y), generator=trainer.data_rng) < c["cond_dropout"]
            y[drop] = n_classes  # the null class, for classifier-free guidance
            # timesteps and noise from the trainer's CPU generator: resumable, device-independent
            t = torch.randint(0, c["timesteps"], (len(z),), generator=trainer.data_rng)
            noise = torch.randn(z.shape, generator=trainer.data_rng).to(device)
            noisy = noising.add_noise(z, noise, t.to(device))
            with trainer.autocast():
                eps = unet(noisy, t.to(device), class_labels=y.to(device)).sample
                loss = F.mse_loss(eps.float(), noise)
            trainer.backward(loss, opt, clip=1.0)
            decay = min(c["ema_decay"], (1 + step) / (10 + step))
            with torch.no_grad():
                torch._foreach_lerp_(ema_params, unet_params, 1 - decay)
            return {"eps_mse": loss}

        unet_result = trainer.run(unet_step)
        self.models, self.meta = models.eval(), {"config": cfg}
        save_checkpoint(workdir / "ldm.pt", self.name, cfg, {"state": models.state_dict()})
        return {
            "steps": ae_result["steps"] + unet_result["steps"],
            "train_seconds": ae_result["seconds"] + unet_result["seconds"],
            "final_loss": unet_result["losses"].get("eps_mse", float("nan")),
            "final_losses": {**ae_result["losses"], **unet_result["losses"]},
            "autoencoder_steps": ae_result["steps"],
            "unet_steps": unet_result["steps"],
        }

    @torch.no_grad()
    def _encode_all(
        self, ae: VQAutoencoder, images: torch.Tensor, labels: torch.Tensor, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Continuous latents of the training images (all 8 dihedral views when augmenting)."""
        ae.eval()
        views = range(8) if self.config["augment"] else range(1)
        out, ys = [], []
        for start in range(0, len(images), 256):
            x = to_unit(images[start : start + 256], device)
            for k in views:
                with autocast(device):
                    out.append(ae.encode_latent(dihedral(x, k)).float().cpu())
                ys.append(labels[start : start + 256])
        return torch.cat(out), torch.cat(ys)

    # ------------------------------------------------------------------ load / sample
    def load(self, workdir: Path, ctx: RunContext) -> None:
        models, cfg = restore_module(Path(workdir) / "ldm.pt", self.name, self._config,
                                     self._build, ctx)
        self.models = models  # type: ignore[assignment]
        self.meta = {"config": cfg}

    @torch.no_grad()
    def _sample_class(
        self,
        cls: int,
        n: int,
        seed: int,
        device: torch.device,
        params: Mapping[str, Any],
        batch: int = 256,
    ) -> np.ndarray:
        assert self.models is not None
        cfg = self.meta["config"]
        _, h, w = cfg["image_shape"]
        unet, ae = self.models["ema"], self.models["ae"]
        scheduler = ddim_scheduler(cfg["timesteps"], params["ddim_steps"], device)
        guided = params["guidance"] != 1.0
        out = []
        for chunk, start in enumerate(range(0, n, batch)):
            size = min(batch, n - start)
            gen = torch_generator(seed, cls, chunk)  # CPU: the same images on every device
            y = torch.full((size,), cls, device=device, dtype=torch.long)
            labels = torch.cat([y, torch.full_like(y, int(cfg["n_classes"]))]) if guided else y
            shape = (size, cfg["code_dim"], h // DOWNSAMPLE, w // DOWNSAMPLE)
            z = torch.randn(shape, generator=gen).to(device) * scheduler.init_noise_sigma
            with autocast(device):
                for t in scheduler.timesteps:
                    if guided:  # classifier-free guidance: conditional and null class at once
                        cond, uncond = unet(torch.cat([z, z]), t, class_labels=labels
                                            ).sample.float().chunk(2)
                        eps = uncond + params["guidance"] * (cond - uncond)
                    else:
                        eps = unet(z, t, class_labels=labels).sample.float()
                    z = scheduler.step(eps, t, z, eta=params["eta"], generator=gen).prev_sample
                images = ae.decode_latent(z / self.models.latent_scale)  # quantises, decodes
            out.append(from_unit(images))
        return np.concatenate(out)

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        require_fitted(self.models, self.name)
        params = self.validate_sample(sample_params)
        counts = check_counts(counts, int(self.meta["config"]["n_classes"]), self.name)
        device = resolve_device(ctx)
        self.models.to(device).eval()  # type: ignore[union-attr]
        images, labels = [], []
        with ctx.progress("ldm sampling", total=sum(counts)) as task:
            for cls, n in enumerate(counts):
                if n:
                    images.append(self._sample_class(cls, n, seed, device, params))
                    labels.append(np.full(n, cls, dtype=np.int64))
                    task.advance(n)
        return ImageSet(np.concatenate(images), np.concatenate(labels))

    def efficiency(self, ctx: RunContext, image_shape: tuple[int, int, int]) -> dict[str, float]:
        """Peak GPU memory (MB) to sample 8 images and seconds per 1000 images (default DDIM)."""
        require_fitted(self.models, self.name)
        device = resolve_device(ctx)
        self.models.to(device)  # type: ignore[union-attr]
        params = self.validate_sample({})
        result = measure_sampling(
            lambda n: self._sample_class(0, n, 0, device, params),
            device,
            n_timed=64 if device.type == "cuda" else 8,
        )
        return result  # type: ignore[return-value]  # memory is None on CPU
