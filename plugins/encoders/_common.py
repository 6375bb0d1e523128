"""Shared machinery of the image encoders: input checks, preprocessing and the batched loop.

Input handling, identical for every encoder unless its docstring says otherwise:

1. images must be uint8 N×C×H×W with C = 1 or 3 (anything else is a :class:`DataError`);
2. grayscale (C = 1) is repeated to 3 channels;
3. pixel values are scaled to [0, 1] (``x / 255``);
4. the image is resized to the encoder's square input size with
   ``torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False)``
   (no crop; a non-square image is stretched);
5. the encoder's own normalisation is applied (``(x - mean) / std``).

Batches are moved to ``ctx.device`` one at a time, so memory-mapped sets of any size work.
On CUDA the forward pass runs under ``torch.no_grad`` and, where the encoder allows it,
``torch.autocast`` (float16); outputs are always returned as float32 numpy arrays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from medsynbench.devices import reuse_cpu_memory, torch_device
from medsynbench.errors import DataError
from medsynbench.kinds import RunContext

__all__ = [
    "check_images",
    "encode_batched",
    "resolve_device",
    "sha256_of",
    "to_unit_rgb",
]


resolve_device = torch_device  # "auto" → cuda when available; ParameterError otherwise

def check_images(images: np.ndarray, encoder: str) -> None:
    """Raise DataError unless ``images`` is uint8 N×C×H×W with 1 or 3 channels."""
    if not isinstance(images, np.ndarray):
        raise DataError(
            f"encoder {encoder!r}: expected a numpy array of images, got {type(images).__name__}"
        )
    if images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(
            f"encoder {encoder!r}: images must be uint8 N×C×H×W, "
            f"got {images.dtype} with shape {images.shape}"
        )
    if images.shape[1] not in (1, 3):
        raise DataError(
            f"encoder {encoder!r}: images must have 1 or 3 channels (N×C×H×W), "
            f"got shape {images.shape}"
        )


def to_unit_rgb(batch: torch.Tensor, size: int | None, antialias: bool = True) -> torch.Tensor:
    """uint8 B×C×H×W → float32 B×3×size×size in [0, 1] (grayscale repeated, bilinear resize).

    ``size=None`` keeps the original size. ``antialias=False`` reproduces libraries that
    resize without it (pytorch-fid).
    """
    x = batch.float().div_(255.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=antialias)
    return x.contiguous()


def encode_batched(
    images: np.ndarray,
    forward: Callable[[torch.Tensor], torch.Tensor],
    ctx: RunContext,
    *,
    name: str,
    batch_size: int,
    out_dim: int,
    amp: bool = True,
    out_dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Run ``forward`` (uint8 batch on the device → B×out_dim tensor) over ``images``.

    Reports progress as "encode <name>". ``amp`` enables float16 autocast on CUDA only.
    """
    check_images(images, name)
    device = resolve_device(ctx.device)
    n = int(images.shape[0])
    out = np.empty((n, out_dim), dtype=out_dtype)
    use_amp = amp and device.type == "cuda"
    with ctx.progress(f"encode {name}", total=n) as task, torch.no_grad(), \
            reuse_cpu_memory(device):
        for start in range(0, n, batch_size):
            chunk = np.array(images[start : start + batch_size])  # writable copy of a memmap slice
            batch = torch.from_numpy(chunk).to(device, non_blocking=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                result = forward(batch)
            if result.ndim != 2 or result.shape[1] != out_dim:
                raise RuntimeError(
                    f"encoder {name!r} produced shape {tuple(result.shape)}, "
                    f"expected (B, {out_dim})"
                )
            if out.dtype.kind == "f":
                result = result.float()
            out[start : start + len(chunk)] = result.cpu().numpy()
            task.advance(len(chunk))
    return out


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()

