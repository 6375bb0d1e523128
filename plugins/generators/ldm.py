"""``ldm``: class-conditional latent diffusion (Rombach et al. 2022) with a VQ first stage.

Stage 1 trains a VQ autoencoder with 8× spatial compression (:class:`~.vq.VQAutoencoder`, EMA
codebook, L1 + MSE reconstruction). Stage 2 trains a class-conditional UNet (own compact
implementation, :mod:`.unet`; no diffusers dependency) with the DDPM ε-prediction loss on the
scaled continuous latents, with condition dropout so classifier-free guidance can be used.
Sampling runs DDIM (``ddim_steps``, ``eta``, ``guidance``) in latent space from the EMA UNet,
then quantises and decodes the latents, as the LDM VQ-f8 models do.

Both stages are resumable from ``ctx.workdir``. Presets: ``tiny`` (CPU tests) and ``paper``:
the LDM VQ-f8 first stage (4-dim latents, 16384 codes) with a 192-channel UNet (multipliers
1-2-4, attention at the two coarser levels), AdamW 1e-4, batch 64, EMA 0.9999 — Rombach et al.'s
settings scaled to one GPU. Explicit parameters override the preset. The first stage is trained
with L1 + MSE only (no perceptual/GAN loss: no pretrained network may be downloaded), so
decoded samples are softer than the original LDM's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from medsynbench.data import ImageSet
from medsynbench.kinds import Generator, ImageSize, RunContext
from medsynbench.params import Param
from torch import nn

from .rng import fit_rng
from .training import (
    TimeBudget,
    Trainer,
    autocast,
    check_counts,
    from_unit,
    measure_sampling,
    positive,
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
from .unet import Diffusion, UNet
from .vq import VQAutoencoder
from .vqvae2 import dihedral

__all__ = ["LDM"]

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




def _fraction(value: Any) -> str | None:
    return None if value is None or 0 <= value < 1 else f"must be in [0, 1), got {value!r}"




def _levels(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, int) and v >= 0 for v in value)
    return None if value is None or ok else f"must be a list of level indices >= 0, got {value!r}"


class LDM(Generator):
    """Latent diffusion: VQ-f8 first stage, conditional UNet, DDPM training, DDIM sampling."""

    name = "ldm"
    version = "0.2.0"  # 0.2: exact resume (RNG states in resume checkpoints)
    description = "latent diffusion (VQ 8× first stage, conditional UNet, DDIM sampling)"
    parameters: ClassVar[Mapping[str, Param]] = {
        **preset_parameters(
            PRESETS,
            {"unet_attention": _levels, "ema_decay": _fraction, "cond_dropout": _fraction},
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

    def _config(self, image_shape: Sequence[int], n_classes: int) -> dict[str, Any]:
        return {**self.config, "image_shape": list(image_shape), "n_classes": n_classes}

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
        unet = UNet(
            cfg["code_dim"],
            cfg["unet_channels"],
            cfg["unet_mults"],
            cfg["unet_res_blocks"],
            cfg["unet_attention"],
            n_classes,
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

        diffusion = Diffusion(c["timesteps"])
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
            with trainer.autocast():
                loss = diffusion.loss(unet, z, y.to(device), trainer.data_rng)
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
        diffusion = Diffusion(cfg["timesteps"])
        out = []
        for chunk, start in enumerate(range(0, n, batch)):
            size = min(batch, n - start)
            gen = torch_generator(seed, cls, chunk)
            y = torch.full((size,), cls, device=device, dtype=torch.long)
            with autocast(device):
                z = diffusion.ddim_sample(
                    self.models["ema"],
                    (size, cfg["code_dim"], h // DOWNSAMPLE, w // DOWNSAMPLE),
                    y,
                    gen,
                    device,
                    params["ddim_steps"],
                    params["eta"],
                    params["guidance"],
                    null_class=int(cfg["n_classes"]),
                )
                z = z / self.models.latent_scale
                out.append(from_unit(self.models["ae"].decode_latent(z)))
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
