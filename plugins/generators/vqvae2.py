"""``vqvae2``: two-level VQ-VAE-2 (Razavi et al. 2019) with gated PixelCNN priors.

As in the pathology study (Nan et al.), one model is fitted per class by default
(``per_class = true``); ``per_class = false`` fits one model with class-conditional priors.
Each model is trained in three stages, each resumable: the autoencoder (bottom codes at 1/4,
top codes at 1/8 of the image size, EMA codebooks), the top prior p(top), and the bottom prior
p(bottom | top). Sampling draws new code maps from the priors and decodes them, so samples
are new images, not reconstructions.

Presets: ``tiny`` (CPU, a few seconds on a 16-32 px toy set) and ``paper``: the common VQ-VAE-2
reference settings (128 channels, 2 residual blocks of 32 channels, 512 codes of 64 dims, Adam
3e-4, batch 64), with 12-layer gated PixelCNN priors standing in for PixelSNAIL; step counts
are for 256 px on one GPU. Any parameter given explicitly overrides the preset;
``max_train_seconds`` caps the whole fit, split over the stages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from medsynbench.data import ImageSet
from medsynbench.errors import GeneratorError
from medsynbench.kinds import Generator, ImageSize, RunContext
from medsynbench.params import Param, positive
from torch import nn

from .pixelcnn import GatedPixelCNN
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
from .vq import ConvDecoder, ConvEncoder, VectorQuantizerEMA

__all__ = ["VQVAE2", "VQVAE2Model", "dihedral"]

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "channels": 32,
        "res_channels": 8,
        "n_res": 1,
        "codebook_size": 32,
        "code_dim": 16,
        "vq_steps": 80,
        "vq_lr": 2e-3,
        "prior_channels": 24,
        "prior_layers": 3,
        "prior_steps": 60,
        "prior_lr": 3e-3,
        "batch_size": 16,
    },
    "paper": {
        "channels": 128,
        "res_channels": 32,
        "n_res": 2,
        "codebook_size": 512,
        "code_dim": 64,
        "vq_steps": 20000,
        "vq_lr": 3e-4,
        "prior_channels": 128,
        "prior_layers": 12,
        "prior_steps": 20000,
        "prior_lr": 3e-4,
        "batch_size": 64,
    },
}


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/90° rotations of a batch (k in 0..7); label-preserving for tissue."""
    out = torch.rot90(x, k % 4, dims=(-2, -1))
    return out.flip(-1) if k >= 4 else out


class VQVAE2Model(nn.Module):
    """Top/bottom VQ-VAE-2 autoencoder; ``forward`` → (reconstruction, vq loss)."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        res_channels: int,
        n_res: int,
        codebook_size: int,
        code_dim: int,
    ) -> None:
        super().__init__()
        self.enc_b = ConvEncoder(in_channels, channels, res_channels, n_res, 4)
        self.enc_t = ConvEncoder(channels, channels, res_channels, n_res, 2)
        self.pre_t = nn.Conv2d(channels, code_dim, 1)
        self.quant_t = VectorQuantizerEMA(codebook_size, code_dim)
        self.dec_t = ConvDecoder(code_dim, code_dim, channels, res_channels, n_res, 2)
        self.pre_b = nn.Conv2d(code_dim + channels, code_dim, 1)
        self.quant_b = VectorQuantizerEMA(codebook_size, code_dim)
        self.up_t = nn.ConvTranspose2d(code_dim, code_dim, 4, stride=2, padding=1)
        self.dec = ConvDecoder(2 * code_dim, in_channels, channels, res_channels, n_res, 4)

    def encode(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(top quant, bottom quant, vq loss, top codes, bottom codes)."""
        h_b = self.enc_b(x)
        h_t = self.enc_t(h_b)
        q_t, loss_t, codes_t, _ = self.quant_t(self.pre_t(h_t))
        h_b = torch.cat([self.dec_t(q_t).to(h_b.dtype), h_b], dim=1)
        q_b, loss_b, codes_b, _ = self.quant_b(self.pre_b(h_b))
        return q_t, q_b, loss_t + loss_b, codes_t, codes_b

    def decode(self, q_t: torch.Tensor, q_b: torch.Tensor) -> torch.Tensor:
        return self.dec(torch.cat([self.up_t(q_t), q_b], dim=1))

    def decode_codes(self, codes_t: torch.Tensor, codes_b: torch.Tensor) -> torch.Tensor:
        """Images from top and bottom code maps."""
        return self.decode(self.quant_t.embed(codes_t), self.quant_b.embed(codes_b))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q_t, q_b, loss, _, _ = self.encode(x)
        return self.decode(q_t, q_b), loss


class _Part(nn.Module):
    """One fitted unit: the autoencoder and its two priors."""

    def __init__(self, cfg: Mapping[str, Any], in_channels: int, n_classes: int) -> None:
        super().__init__()
        k = cfg["codebook_size"]
        self.vae = VQVAE2Model(
            in_channels, cfg["channels"], cfg["res_channels"], cfg["n_res"], k, cfg["code_dim"]
        )
        dim, layers = cfg["prior_channels"], cfg["prior_layers"]
        self.top = GatedPixelCNN(k, dim, layers, n_classes=n_classes)
        self.bottom = GatedPixelCNN(k, dim, layers, n_classes=n_classes, cond_codes=k)


class VQVAE2(Generator):
    """Two-level VQ-VAE-2 with PixelCNN priors; one model per class by default."""

    name = "vqvae2"
    version = "0.2.0"  # 0.2: exact resume (RNG states in resume checkpoints)
    description = "VQ-VAE-2 (top/bottom EMA codebooks) + gated PixelCNN priors, one per class"
    parameters: ClassVar[Mapping[str, Param]] = {
        **preset_parameters(PRESETS),
        "per_class": Param(True, bool, "one model per class (Nan et al.) or one conditional"),
        "augment": Param(True, bool, "random flips/90° rotations while training"),
    }
    sample_parameters: ClassVar[Mapping[str, Param]] = {
        "temperature": Param(
            1.0, float, "prior softmax temperature", check=positive, sweepable=True
        ),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.config = resolve_preset(PRESETS, self.params)
        self.parts: nn.ModuleList | None = None
        self.meta: dict[str, Any] = {}

    # ------------------------------------------------------------------ fit
    def _config(self, image_shape: Sequence[int], n_classes: int) -> dict[str, Any]:
        return {**self.config, "image_shape": list(image_shape), "n_classes": n_classes}

    def image_size(self) -> ImageSize:
        """Sides a multiple of 8: three stride-2 stages down to the top codes, three back up
        (28 px gives 7×7 bottom codes but 3×3 top codes, which decode to 6×6: no match)."""
        return ImageSize(multiple=8, reason="the top codes are at 1/8 of the image side")

    def _build(self, image_shape: Sequence[int], n_classes: int) -> nn.ModuleList:
        c, h, w = image_shape
        self.require_image_size(h, w)
        n_parts = n_classes if self.config["per_class"] else 1
        cond = 0 if self.config["per_class"] else n_classes
        return nn.ModuleList([_Part(self.config, c, cond) for _ in range(n_parts)])

    def fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> Mapping[str, Any]:
        with fit_rng(ctx.seed, resolve_device(ctx)):  # weights, codebook restarts
            return self._fit(train, class_names, Path(workdir), ctx)

    def _fit(
        self, train: ImageSet, class_names: Sequence[str], workdir: Path, ctx: RunContext
    ) -> Mapping[str, Any]:
        n_classes = len(class_names)
        cfg = self._config(train.image_shape, n_classes)
        device = resolve_device(ctx)
        parts = self._build(train.image_shape, n_classes)
        prepare_module(parts, device)
        work = ctx.child(workdir=workdir)
        steps, seconds, losses = 0, 0.0, {}  # losses: "<class>.<stage>.<loss>" → value
        budget = TimeBudget(self.config["max_train_seconds"], 3 * len(parts))
        for index, part in enumerate(parts):
            if self.config["per_class"]:
                subset = train.subset(np.flatnonzero(train.labels == index))
                if len(subset) == 0:
                    raise GeneratorError(
                        f"generator 'vqvae2': class {class_names[index]!r} has no training images "
                        "but per_class = true needs some; drop the class or set per_class = false"
                    )
            else:
                subset = train
            tag = f"class{index}" if self.config["per_class"] else "all"
            for stage in self._stages(part, subset, cfg, work, device, tag, budget):
                steps += stage["steps"]
                seconds += stage["seconds"]
                losses.update(
                    {f"{tag}.{stage['stage']}.{k}": v for k, v in stage["losses"].items()}
                )
        self.parts, self.meta = parts, {"config": cfg}
        save_checkpoint(workdir / "vqvae2.pt", self.name, cfg, {"state": parts.state_dict()})
        final = float(np.mean([v for k, v in losses.items() if k.endswith("recon")] or [0.0]))
        return {
            "steps": steps,
            "train_seconds": seconds,
            "final_loss": final,
            "final_losses": losses,
        }

    def _stages(
        self,
        part: _Part,
        subset: ImageSet,
        cfg: Mapping[str, Any],
        ctx: RunContext,
        device: torch.device,
        tag: str,
        budget: TimeBudget,
    ) -> list[dict[str, Any]]:
        c = self.config
        images = shared_tensor(subset.images)
        labels = torch.as_tensor(subset.labels)
        conditional = not c["per_class"]
        vae_opt = torch.optim.Adam(part.vae.parameters(), lr=c["vq_lr"])
        vae_trainer = Trainer(
            self.name,
            cfg,
            ctx,
            {"vae": part.vae},
            {"vae": vae_opt},
            c["vq_steps"],
            tag=f"{tag}-vqvae",
            max_seconds=budget.next_limit(),
            description=f"vqvae2 {tag} autoencoder",
        )

        def vae_step(step: int) -> dict[str, torch.Tensor]:
            idx = vae_trainer.batch(step, len(images), c["batch_size"])
            x = to_unit(images[idx], device)
            if c["augment"]:
                x = dihedral(x, int(torch.randint(8, (1,), generator=vae_trainer.data_rng)))
            with vae_trainer.autocast():
                recon, vq_loss = part.vae(x)
                recon_loss = F.mse_loss(recon.float(), x)
                loss = recon_loss + vq_loss
            vae_trainer.backward(loss, vae_opt)
            return {"recon": recon_loss, "vq": vq_loss}

        results = [{"stage": "vqvae", **vae_trainer.run(vae_step)}]
        budget.spend(results[-1]["seconds"])
        codes_t, codes_b, code_labels = self._encode_all(part.vae, images, labels, device)
        for which, prior in (("top", part.top), ("bottom", part.bottom)):
            opt = torch.optim.Adam(prior.parameters(), lr=c["prior_lr"])
            trainer = Trainer(
                self.name,
                cfg,
                ctx,
                {which: prior},
                {which: opt},
                c["prior_steps"],
                tag=f"{tag}-{which}",
                max_seconds=budget.next_limit(),
                description=f"vqvae2 {tag} {which} prior",
            )

            def prior_step(
                step: int,
                which: str = which,
                prior: GatedPixelCNN = prior,
                opt: torch.optim.Optimizer = opt,
                trainer: Trainer = trainer,
            ) -> dict[str, torch.Tensor]:
                idx = trainer.batch(step, len(codes_t), c["batch_size"])
                y = code_labels[idx].to(device) if conditional else None
                t = codes_t[idx].to(device)
                with trainer.autocast():
                    if which == "top":
                        loss = prior.loss(t, y)
                    else:
                        loss = prior.loss(codes_b[idx].to(device), y, t)
                trainer.backward(loss, opt, clip=1.0)
                return {"nll": loss}

            results.append({"stage": which, **trainer.run(prior_step)})
            budget.spend(results[-1]["seconds"])
        return results

    @torch.no_grad()
    def _encode_all(
        self, vae: VQVAE2Model, images: torch.Tensor, labels: torch.Tensor, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Code maps of the training images (all 8 dihedral views when augmenting)."""
        vae.eval()
        views = range(8) if self.config["augment"] else range(1)
        tops, bottoms, ys = [], [], []
        for start in range(0, len(images), 256):
            x = to_unit(images[start : start + 256], device)
            for k in views:
                with autocast(device):
                    _, _, _, t, b = vae.encode(dihedral(x, k))
                tops.append(t.cpu())
                bottoms.append(b.cpu())
                ys.append(labels[start : start + 256])
        return torch.cat(tops), torch.cat(bottoms), torch.cat(ys)

    # ------------------------------------------------------------------ load / sample
    def load(self, workdir: Path, ctx: RunContext) -> None:
        parts, cfg = restore_module(Path(workdir) / "vqvae2.pt", self.name, self._config,
                                    self._build, ctx)
        self.parts = parts  # type: ignore[assignment]
        self.meta = {"config": cfg}

    @torch.no_grad()
    def _sample_class(
        self,
        cls: int,
        n: int,
        seed: int,
        device: torch.device,
        temperature: float,
        batch: int = 256,
    ) -> np.ndarray:
        assert self.parts is not None
        cfg = self.meta["config"]
        _, h, w = cfg["image_shape"]
        part: _Part = self.parts[cls if cfg["per_class"] else 0]  # type: ignore[assignment]
        out = []
        for chunk, start in enumerate(range(0, n, batch)):
            size = min(batch, n - start)
            gen = torch_generator(seed, cls, chunk)
            y = None if cfg["per_class"] else torch.full((size,), cls, device=device)
            with autocast(device):
                top = part.top.sample(
                    size, (h // 8, w // 8), gen, device, y, temperature=temperature
                )
                bottom = part.bottom.sample(
                    size, (h // 4, w // 4), gen, device, y, top, temperature=temperature
                )
                out.append(from_unit(part.vae.decode_codes(top, bottom)))
        return np.concatenate(out)

    def sample(
        self, counts: Sequence[int], seed: int, ctx: RunContext, **sample_params: Any
    ) -> ImageSet:
        require_fitted(self.parts, self.name)
        params = self.validate_sample(sample_params)
        n_classes = int(self.meta["config"]["n_classes"])
        counts = check_counts(counts, n_classes, self.name)
        device = resolve_device(ctx)
        self.parts.to(device).eval()  # type: ignore[union-attr]
        images, labels = [], []
        with ctx.progress("vqvae2 sampling", total=sum(counts)) as task:
            for cls, n in enumerate(counts):
                if n:
                    images.append(self._sample_class(cls, n, seed, device, params["temperature"]))
                    labels.append(np.full(n, cls, dtype=np.int64))
                    task.advance(n)
        return ImageSet(np.concatenate(images), np.concatenate(labels))

    def efficiency(self, ctx: RunContext, image_shape: tuple[int, int, int]) -> dict[str, float]:
        """Peak GPU memory (MB) to sample 8 images and seconds per 1000 images."""
        require_fitted(self.parts, self.name)
        device = resolve_device(ctx)
        self.parts.to(device)  # type: ignore[union-attr]
        result = measure_sampling(
            lambda n: self._sample_class(0, n, 0, device, 1.0),
            device,
            n_timed=64 if device.type == "cuda" else 8,
        )
        return result  # type: ignore[return-value]  # memory is None on CPU
