"""``vqvae-codes``: integer code maps from a VQ-VAE fitted on the real training split.

The privacy study (Xing et al.) measures fidelity F, privacy P and F^p with k-nearest
neighbours in normalised Hamming distance between VQ-VAE code maps. This encoder fits a
one-level VQ autoencoder (the shared :class:`~medsynbench.plugins.generators.vq.VQAutoencoder`:
strided conv encoder, EMA codebook with dead-code restart, conv decoder) on the real training
images, then maps every image to its code map at 1/``downsample`` resolution (1/8 by
default), flattened row-major to N×L int32 with L = (resolution / downsample)².

Input handling: the model keeps the training data's channel count (1 or 3); a grayscale image
given to a model fitted on RGB is repeated to 3 channels (an RGB image given to a grayscale
model is refused). Images are scaled to [-1, 1] and resized (antialiased bilinear) to
``resolution`` (default: the training images' own size; it must be a multiple of
``downsample``).

The fit is seeded by ``ctx.seed`` (initialisation, batch order, code restarts) and saved to
``workdir/vqvae_codes.pt`` (``torch.save``; :meth:`load` reads it with ``weights_only=True``
and refuses a checkpoint written with other parameters).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from medsynbench.data import ImageSet
from medsynbench.errors import DataError, ParameterError, WeightsError
from medsynbench.kinds import Encoder, RunContext
from medsynbench.params import Param, nonnegative, positive, positive_int
from medsynbench.plugins.generators.vq import VQAutoencoder

from ._common import check_images, encode_batched, resolve_device, to_unit_rgb

__all__ = ["CHECKPOINT", "VQVAECodes"]

CHECKPOINT = "vqvae_codes.pt"
FORMAT = 1
# parameters that shape the network or its training; a checkpoint must match all of them
_ARCHITECTURE = ("codebook_size", "code_dim", "channels", "res_channels", "n_res", "downsample")
_TRAINING = ("steps", "batch_size", "lr", "decay", "commitment")


def _power_of_two(value: int) -> str | None:
    if value >= 1 and value & (value - 1) == 0:
        return None
    return f"must be a power of two, got {value}"


class VQVAECodes(Encoder):
    """Code maps (N×L integers) from a VQ-VAE fitted on the real training split."""

    name: ClassVar[str] = "vqvae-codes"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = (
        "integer code maps (1/8 resolution, codebook 512) of a VQ-VAE fitted on the real "
        "training split, for Hamming-space fidelity/privacy"
    )
    output: ClassVar[Literal["features", "codes"]] = "codes"
    needs_fit: ClassVar[bool] = True
    parameters: ClassVar[dict[str, Param]] = {
        "codebook_size": Param(512, int, "number of codes", check=positive_int),
        "downsample": Param(8, int, "code map is 1/downsample of the input", check=_power_of_two),
        "code_dim": Param(64, int, "size of each code vector", check=positive_int),
        "channels": Param(128, int, "encoder/decoder width", check=positive_int),
        "res_channels": Param(32, int, "hidden width of the residual blocks", check=positive_int),
        "n_res": Param(2, int, "residual blocks in encoder and decoder", check=nonnegative),
        "steps": Param(3000, int, "training steps", check=positive_int),
        "batch_size": Param(64, int, "images per training / encoding batch", check=positive_int),
        "lr": Param(3e-4, float, "Adam learning rate", check=positive),
        "decay": Param(0.99, float, "EMA decay of the codebook",
                       check=lambda v: None if 0 < v < 1 else f"must be in (0, 1), got {v}"),
        "commitment": Param(0.25, float, "commitment loss weight", check=positive),
        "resolution": Param(None, int, "input size; default the training images' own size",
                            nullable=True, check=positive_int),
    }

    def check(self) -> None:
        """The resolution (when given) must be a multiple of ``downsample``."""
        resolution, factor = self.params["resolution"], self.params["downsample"]
        if resolution is not None and resolution % factor:
            raise ParameterError(
                f"encoder vqvae-codes: resolution {resolution} is not a multiple of "
                f"downsample {factor}"
            )

    # ------------------------------------------------------------------ model and config
    def _config(self, in_channels: int, resolution: int) -> dict[str, Any]:
        keys = _ARCHITECTURE + _TRAINING
        return {"in_channels": in_channels, "resolution": resolution,
                **{k: self.params[k] for k in keys}}

    def _build(self, config: dict[str, Any]) -> VQAutoencoder:
        return VQAutoencoder(
            in_channels=config["in_channels"], channels=config["channels"],
            res_channels=config["res_channels"], n_res=config["n_res"],
            downsample=config["downsample"], codebook_size=config["codebook_size"],
            code_dim=config["code_dim"], decay=config["decay"], commitment=config["commitment"],
        )

    def _resolution_for(self, image_size: tuple[int, int]) -> int:
        if self.params["resolution"] is not None:
            return int(self.params["resolution"])
        height, width = image_size
        factor = int(self.params["downsample"])
        if height != width or height % factor:
            raise DataError(
                f"encoder vqvae-codes: training images are {height}×{width}; they must be square "
                f"with a size divisible by {factor}, or set the `resolution` parameter "
                f"(e.g. resolution = {factor * max(1, math.ceil(max(height, width) / factor))})"
            )
        return height

    def _prepare(self, batch: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
        """uint8 batch → float in [-1, 1] with the model's channels and size."""
        if config["in_channels"] == 3:
            x = to_unit_rgb(batch, config["resolution"])
        else:
            if batch.shape[1] != 1:
                raise DataError(
                    "encoder vqvae-codes: the VQ-VAE was fitted on grayscale images but got "
                    f"{batch.shape[1]}-channel images"
                )
            x = batch.float().div_(255.0)
            size = config["resolution"]
            if tuple(x.shape[-2:]) != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                  antialias=True)
        return x.mul(2.0).sub(1.0)

    # ------------------------------------------------------------------ fit / load
    def fit(self, train: ImageSet, workdir: Path, ctx: RunContext) -> None:
        """Train the VQ-VAE on ``train`` and save it to ``workdir/vqvae_codes.pt``."""
        images = train.images
        check_images(images, self.name)
        if len(images) == 0:
            raise DataError("encoder vqvae-codes: cannot fit on an empty training split")
        device = resolve_device(ctx.device)
        config = self._config(int(images.shape[1]), self._resolution_for(images.shape[2:]))
        steps, batch_size = int(config["steps"]), min(int(config["batch_size"]), len(images))
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(ctx.seed)
            model = self._build(config).to(device).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=float(config["lr"]))
            order = torch.Generator().manual_seed(ctx.seed)
            use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
            losses: list[float] = []
            with ctx.progress(f"fit {self.name}", total=steps) as task:
                for step in range(steps):
                    pick = torch.randperm(len(images), generator=order)[:batch_size]
                    chunk = np.ascontiguousarray(images[np.sort(pick.numpy())])
                    x = self._prepare(torch.from_numpy(chunk).to(device), config)
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                        enabled=use_bf16):
                        recon, vq_loss, _ = model(x)
                        loss = F.mse_loss(recon.float(), x) + vq_loss
                    value = loss.item()
                    if not math.isfinite(value):
                        raise DataError(
                            f"encoder vqvae-codes: training diverged at step {step} "
                            f"(loss={value}); lower `lr` (now {config['lr']})"
                        )
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    losses.append(value)
                    task.advance(1)
        window = max(1, steps // 10)
        initial_loss = float(np.mean(losses[:window]))
        final_loss = float(np.mean(losses[-window:]))
        ctx.log(f"vqvae-codes: fitted {steps} steps, loss {initial_loss:.4f} → {final_loss:.4f}")
        workdir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(
            {"format": FORMAT, "config": config, "state_dict": state,
             "initial_loss": initial_loss, "final_loss": final_loss},
            workdir / CHECKPOINT,
        )
        self._set_model(model.eval(), config)

    def load(self, workdir: Path, ctx: RunContext) -> None:
        """Restore the VQ-VAE saved by :meth:`fit`."""
        path = workdir / CHECKPOINT
        if not path.is_file():
            raise WeightsError(
                f"encoder vqvae-codes: no fitted model at {path}; it is written by fit() on the "
                f"real training split (re-run the suite to fit it)"
            )
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise WeightsError(f"encoder vqvae-codes: cannot read {path}: {exc}") from exc
        config = saved.get("config", {}) if isinstance(saved, dict) else {}
        expected = {k: self.params[k] for k in _ARCHITECTURE + _TRAINING}
        different = {k: (config.get(k), v) for k, v in expected.items() if config.get(k) != v}
        if self.params["resolution"] is not None and config.get("resolution") != self.params[
            "resolution"
        ]:
            different["resolution"] = (config.get("resolution"), self.params["resolution"])
        if saved.get("format") != FORMAT or different:
            detail = ", ".join(f"{k}: saved {a!r} vs now {b!r}" for k, (a, b) in different.items())
            raise WeightsError(
                f"encoder vqvae-codes: {path} was fitted with other parameters "
                f"({detail or 'checkpoint format ' + repr(saved.get('format'))}); re-fit it"
            )
        model = self._build(config)
        model.load_state_dict(saved["state_dict"])
        self._set_model(model.eval(), config)

    def _set_model(self, model: VQAutoencoder, config: dict[str, Any]) -> None:
        self._model = model
        self._fitted_config = config

    # ------------------------------------------------------------------ encode
    @property
    def code_length(self) -> int:
        """L, the number of codes per image (after fit/load)."""
        config = self._require()[1]
        return int((config["resolution"] // config["downsample"]) ** 2)

    def _require(self) -> tuple[VQAutoencoder, dict[str, Any]]:
        model = getattr(self, "_model", None)
        if model is None:
            raise WeightsError(
                "encoder vqvae-codes: not fitted; call fit(train, workdir, ctx) or "
                "load(workdir, ctx) before encode()"
            )
        return model, self._fitted_config

    def encode(self, images: np.ndarray, ctx: RunContext) -> np.ndarray:
        """uint8 N×C×H×W → int32 N×L code indices (row-major code map)."""
        model, config = self._require()
        model = model.to(resolve_device(ctx.device))

        def forward(batch: torch.Tensor) -> torch.Tensor:
            return model.encode(self._prepare(batch, config)).flatten(1)

        return encode_batched(
            images, forward, ctx, name=self.name, batch_size=int(self.params["batch_size"]),
            out_dim=self.code_length, amp=False, out_dtype=np.int32,
        )
