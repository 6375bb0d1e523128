"""Global random-number state of a fit, for exact resume.

Training draws from torch's global RNG (codebook restarts in :mod:`.vq`, z, noise, style mixing
and DiffAugment in StyleGAN2, dropout in any network) as well as from its own generators. A
resume checkpoint therefore holds every global RNG state (:func:`rng_state`) and restores it
(:func:`set_rng_state`); :func:`fit_rng` makes each fit start from the same states, whatever ran
before it in the process, and gives the caller its own states back afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

__all__ = ["fit_rng", "rng_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    """The states of torch's CPU and CUDA, numpy's and python's global RNGs.

    Tensors and plain values only, so a checkpoint holding them loads with
    ``weights_only=True``. CUDA states are captured only once CUDA is initialised (before that
    nothing can have drawn from them).
    """
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    cuda_ready = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if cuda_ready else [],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "python": {
            "version": int(py_version),
            "internal": torch.tensor(py_internal, dtype=torch.int64),
            "gauss": py_gauss,
        },
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore global RNG states captured by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    np_state = state["numpy"]
    np.random.set_state((
        "MT19937",
        np_state["keys"].numpy().astype(np.uint32),
        int(np_state["pos"]),
        int(np_state["has_gauss"]),
        float(np_state["gauss"]),
    ))
    py_state = state["python"]
    random.setstate((
        int(py_state["version"]),
        tuple(int(v) for v in py_state["internal"].tolist()),
        py_state["gauss"],
    ))


@contextmanager
def fit_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's (CPU and CUDA), numpy's and python's global RNGs with ``seed`` for a fit;
    give the caller its own states back afterwards.

    Inside, the global RNGs belong to the fit: initial weights are drawn from them, and the
    :class:`~.training.Trainer` checkpoints and restores them. Outside, a fit that ran,
    resumed or was skipped (cached) leaves the process's random state alike.
    """
    devices: list[int] = []
    if device.type == "cuda":
        devices = [torch.cuda.current_device() if device.index is None else device.index]
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)  # every CUDA device too
        np.random.seed(seed & 0xFFFFFFFF)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
