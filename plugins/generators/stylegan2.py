"""Conditional StyleGAN2 (pure PyTorch): the GAN of both reference studies.

Training follows StyleGAN2 (config F without path-length regularisation): non-saturating
logistic loss, lazy R1 regularisation on real images every ``r1_interval`` steps (weighted by
the interval and folded into that step's discriminator update, so no extra optimiser step and
no Adam correction), style mixing, an EMA copy of the generator used for sampling (half-life
``ema_kimg`` thousand images, ramped up early), AMP (bfloat16 where supported) and
channels-last on CUDA. DiffAugment (``augment``: colour, translation, cutout; on in ``paper``)
transforms every image the discriminator sees, real or fake, which keeps it from memorising a
small training set (a few thousand images or fewer). The class label enters the mapping
network as an embedding the width of z, and the discriminator as a projection. Sampling
supports truncation ψ toward the *per-class* mean w (``truncation`` is sweepable: the privacy
study uses ψ ∈ {0, .2, .4, .6, .8, 1}). Noise inputs are drawn per image from the sampling seed
by default (``noise_mode = "random"``, as stylegan2-ada computes its metrics): with one fixed
noise map per layer (``"const"``) every image of a class shares the fine structure the
generator places through the noise (nuclei, early in training), which looks like mode collapse
and inflates FID; ``"const"`` with ψ = 0 gives exactly one image per class.

Presets: ``tiny`` fits a 16–32 px toy set on a CPU in seconds (tests); ``paper`` is StyleGAN2 at
the studies' scale (512-d z and w, 8 mapping layers, up to 512 feature maps; GPU). Any preset
value can be overridden (``kimg``, ``batch_size``, ``channel_max``...). For small data sets
stylegan2-ada's "auto" settings are a good start: ``r1_gamma`` = 0.0002 · side² / batch,
``mapping_layers`` = 2.

Throughput: at 32–64 px a step is a couple of thousand small ops, so on a GPU it is bound by
the per-op launch cost, not by arithmetic; a larger ``batch_size`` buys images per second
nearly for free. The step avoids host synchronisation (losses are read back every
``_LOG_EVERY`` steps; the NaN guard fires at most that late), uses fused Adam and a foreach
EMA, and judges fakes and reals in one discriminator call (``bench/stylegan2_step.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from medsynbench import Generator, ImageSet, Param, RunContext
from medsynbench.errors import GeneratorError
from medsynbench.kinds import ImageSize
from medsynbench.params import in_range, nonnegative

from . import stylegan2_networks as nets
from .rng import fit_rng
from .training import (
    Trainer,
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
    shared_tensor,
    to_unit,
    torch_generator,
)

__all__ = ["PRESETS", "StyleGAN2"]

_PROBABILITY = in_range(0, 1)

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "kimg": 0.4, "batch_size": 8, "z_dim": 32, "mapping_layers": 2, "channel_base": 512,
        "channel_max": 32, "lr": 0.0025, "r1_gamma": 0.1, "r1_interval": 4, "ema_kimg": 0.05,
        "style_mixing": 0.0, "augment": "",
    },
    "paper": {
        "kimg": 5000.0, "batch_size": 32, "z_dim": 512, "mapping_layers": 8,
        "channel_base": 32768, "channel_max": 512, "lr": 0.0025, "r1_gamma": 1.0,
        "r1_interval": 16, "ema_kimg": 10.0, "style_mixing": 0.9,
        "augment": "color,translation,cutout",
    },
}
_CHECKPOINT = "stylegan2.pt"
_SAMPLE_BATCH = 64
_LOG_EVERY = 10  # steps between reading the losses back from the device


def _policy(value: str) -> tuple[str, ...]:
    """``"color,translation"`` → ("color", "translation"); "" or "none" → ()."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    return () if names == ["none"] else tuple(names)


def _augment_check(value: str | None) -> str | None:
    if value is None:
        return None
    unknown = [name for name in _policy(value) if name not in nets.AUGMENTATIONS]
    if unknown:
        return (f"unknown DiffAugment transform(s) {unknown}; use a comma-separated subset of "
                f"{', '.join(nets.AUGMENTATIONS)}, or '' for none")
    return None


def _whole(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"must be a whole number of steps >= 1, got {value!r}"
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "r1_gamma": nonnegative, "style_mixing": _PROBABILITY, "augment": _augment_check,
    "r1_interval": _whole,
}


def _amp_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where supported (no overflow, so no GAN-specific fp16 clamping or loss
    scaling is needed), float16 on older GPUs, float32 elsewhere."""
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _amp(device: torch.device) -> AbstractContextManager[Any]:
    dtype = _amp_dtype(device)
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


class _TrainingStep:
    """One StyleGAN2 training step (the Trainer's step function), written to keep the device
    busy: no host synchronisation except on logging steps, one generator call for both
    updates, one discriminator call for fakes and reals together, R1 folded into every
    ``r1_interval``-th discriminator step."""

    def __init__(
        self, config: Mapping[str, Any], mirror: bool, g: nets.Generator,
        d: nets.Discriminator, g_ema: nets.Generator, train: ImageSet, trainer: Trainer,
        device: torch.device,
    ) -> None:
        self.cfg, self.mirror, self.g, self.d, self.trainer = config, mirror, g, d, trainer
        self.device, self.seed = device, trainer.ctx.seed
        self.images = shared_tensor(train.images).to(device)
        self.labels_cpu = torch.as_tensor(np.asarray(train.labels), dtype=torch.long)
        self.labels = self.labels_cpu.to(device)
        self.policy = _policy(config["augment"])
        self.ema_params: list[torch.Tensor] = list(g_ema.parameters())
        self.g_params: list[torch.Tensor] = list(g.parameters())
        self.last_r1 = torch.zeros([], device=device)
        self.epoch, self.epoch_batches = -1, torch.empty(0)
        self.total_steps, self.logged_once = trainer.total_steps, False

    def _indices(self, i: int) -> torch.Tensor:
        # Exactly batch_indices(i, ...) (so a resumed run sees the same data), computed for a
        # whole epoch at once and moved to the device once per epoch instead of every step.
        n, batch = len(self.images), self.cfg["batch_size"]
        per_epoch = n // min(batch, n)
        epoch = i // per_epoch
        if epoch != self.epoch:
            first = epoch * per_epoch
            self.epoch_batches = torch.stack([
                batch_indices(first + k, n, batch, self.seed, key=0x5647)
                for k in range(per_epoch)
            ]).to(self.device, non_blocking=True)
            self.epoch = epoch
        return self.epoch_batches[i % per_epoch]

    def _reals(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = self._indices(i)
        x = to_unit(self.images[index], self.device)
        if self.mirror:  # drawn from the resumable data RNG; copied without a host sync
            flips = torch.rand(2, len(index), 1, 1, 1, generator=self.trainer.data_rng)
            flips = flips.to(self.device, non_blocking=True) < 0.5
            x = torch.where(flips[0], x.flip(3), x)
            x = torch.where(flips[1], x.flip(2), x)
        return x, self.labels[index]

    def _fake_labels(self, n: int) -> torch.Tensor:
        # Labels drawn as often as they occur in the training split.
        pick = torch.randint(len(self.labels_cpu), (n,), generator=self.trainer.data_rng)
        return self.labels_cpu[pick].to(self.device, non_blocking=True)

    def __call__(self, i: int) -> dict[str, torch.Tensor | float]:
        cfg, g, d, device, policy = self.cfg, self.g, self.d, self.device, self.policy
        interval, gamma, mixing = cfg["r1_interval"], cfg["r1_gamma"], cfg["style_mixing"]
        real, c_real = self._reals(i)
        n = real.shape[0]
        # One batch of fakes serves both updates: detached for the discriminator's, then
        # through the updated discriminator for the generator's (G has not changed between).
        c_fake = self._fake_labels(n)
        with _amp(device):
            fake = g(torch.randn(n, g.z_dim, device=device), c_fake, mixing=mixing)
        # Discriminator: logistic loss on fakes and reals in one call; R1 on the reals
        # (computed on the un-augmented images, in float32) every `interval` steps, weighted
        # by `interval` as in StyleGAN2's lazy regularisation.
        regularise = gamma > 0 and i % interval == 0
        if regularise:
            real = real.detach().requires_grad_(True)
        with nullcontext() if regularise else _amp(device):
            both = nets.diff_augment(torch.cat([fake.detach().to(real.dtype), real]), policy)
            logits = d(both, torch.cat([c_fake, c_real]), parts=2).float()
        loss_d = F.softplus(logits[:n]).mean() + F.softplus(-logits[n:]).mean()
        total = loss_d
        if regularise:
            (grad,) = torch.autograd.grad(logits[n:].sum(), real, create_graph=True)
            self.last_r1 = grad.square().sum(dim=(1, 2, 3)).mean()
            total = loss_d + self.last_r1 * (gamma / 2 * interval)
        self.trainer.backward(total, self.trainer.optimizers["d"])
        # Generator: non-saturating loss through the (frozen) discriminator.
        d.requires_grad_(False)
        with _amp(device):
            loss_g = F.softplus(-d(nets.diff_augment(fake, policy), c_fake).float()).mean()
        self.trainer.backward(loss_g, self.trainer.optimizers["g"])
        d.requires_grad_(True)
        # EMA of the generator, half-life ema_kimg (ramped up over the first images).
        # (Buffers need no averaging: noise_const is fixed, w_mean is set after training.)
        ema_nimg = min(cfg["ema_kimg"] * 1000, (i + 1) * n * 0.05)
        beta = 0.5 ** (n / max(ema_nimg, 1e-8))
        with torch.no_grad():
            torch._foreach_lerp_(self.ema_params, self.g_params, 1 - beta)
        # Reading a loss back waits for the device; do it only every _LOG_EVERY steps (the
        # Trainer's NaN guard then fires at most that many steps late). Other steps repeat
        # the last values read.
        if i % _LOG_EVERY == 0 or i == self.total_steps - 1 or not self.logged_once:
            self.logged_once = True
            return {"loss_g": loss_g, "loss_d": loss_d, "r1": self.last_r1}
        return dict(self.trainer.last_losses)


class StyleGAN2(Generator):
    """Class-conditional StyleGAN2 with R1, EMA generator and per-class truncation ψ."""

    name: ClassVar[str] = "stylegan2"
    version: ClassVar[str] = "0.3.0"  # 0.3: exact resume (RNG states in checkpoints)
    description: ClassVar[str] = "conditional StyleGAN2 (pure PyTorch), truncation ψ sweepable"
    parameters: ClassVar[Mapping[str, Param]] = {
        **preset_parameters(PRESETS, _CHECKS),
        "mirror": Param(False, bool, "random horizontal+vertical flips of real images (only "
                        "where flipped images are valid, e.g. histology)"),
    }
    sample_parameters: ClassVar[Mapping[str, Param]] = {
        "truncation": Param(1.0, float, "truncation ψ toward the class's mean w (1 = none, "
                            "0 = the class mean only)", check=nonnegative, sweepable=True),
        "noise_mode": Param("random", str, "noise inputs: 'random' (per image, from the "
                            "seed), 'const' (one fixed map per layer) or 'none'",
                            choices=("random", "const", "none")),
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.config = resolve_preset(PRESETS, self.params)
        self._g: nets.Generator | None = None
        self._data: dict[str, Any] = {}

    # ------------------------------------------------------------------ model
    def image_size(self) -> ImageSize:
        """Square, a power-of-two side ≥ 8: the synthesis network doubles a 4×4 constant (a
        28 px dataset would get 16 px fakes) and the discriminator halves back to 4×4."""
        return ImageSize(power_of_two=True, square=True, min_side=8,
                         reason="the synthesis network doubles a 4×4 constant")

    def _build(self, image_shape: Sequence[int], n_classes: int) -> nets.Generator:
        c, h, w = (int(v) for v in image_shape)
        self.require_image_size(h, w)
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
        benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed shapes: autotune convs
        try:
            result, g_ema = self._fit(train, n_classes, Path(workdir), ctx, device)
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
        device: torch.device,
    ) -> tuple[dict[str, Any], nets.Generator]:
        with fit_rng(ctx.seed, device):  # initial weights, z, noise, style mixing, DiffAugment
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
        fused = True if device.type in ("cuda", "cpu") else None  # one op per update
        opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=cfg["lr"], betas=(0.0, 0.99),
                                         eps=1e-8, fused=fused) for m in (g, d))
        trainer_config = {**self._hyper(), "image_shape": list(train.image_shape),
                          "n_classes": g.n_classes, "mirror": self.params["mirror"]}
        trainer = Trainer(self.name, trainer_config, ctx, {"g": g, "d": d, "g_ema": g_ema},
                          {"g": opt_g, "d": opt_d}, self._total_steps(),
                          description="stylegan2", checkpoint_every=1000,
                          max_seconds=cfg["max_train_seconds"])
        if _amp_dtype(device) != torch.float16:
            # bfloat16 or float32: nothing to scale, and an enabled GradScaler reads found-inf
            # back to the host at every optimiser step.
            trainer.scaler = torch.amp.GradScaler("cuda", enabled=False)
        step = _TrainingStep(self.config, self.params["mirror"], g, d, g_ema, train, trainer,
                             device)
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

    def efficiency(
        self, ctx: RunContext, image_shape: tuple[int, int, int]
    ) -> dict[str, float | None]:
        """Peak GPU memory (MB) to sample 8 images (None on CPU) and seconds per 1000 images
        (EMA generator; an untrained network of the same architecture when none is loaded)."""
        device = resolve_device(ctx)
        g = self._g if self._g is not None else self._build(image_shape, 1)
        g = prepare_module(g, device).eval()  # type: ignore[assignment]

        def sample_n(n: int) -> np.ndarray:
            z = torch.randn(n, g.z_dim, generator=torch_generator(0))
            return self._generate(g, z, 0, 1.0, "const", None, device)

        return measure_sampling(sample_n, device, n_timed=64 if device.type == "cuda" else 8)
