"""Input checking and device handling shared by every metric function.

Every metric accepts numpy arrays or torch tensors. Features are N×d floating arrays; codes are
N×L integer arrays (or N×h×w code maps, flattened). Bad inputs raise :class:`DataError` naming
the argument and the fix; bad arguments (``k``, ``distance``, ``device``) raise
:class:`ParameterError`.

Dtype rule: both sets of one call must be of the same *kind* (both floating, or both integer
codes). Floats of different precision (float32 vs float64) are promoted to float64 — every
distance and covariance is computed in float64. An integer set next to a float set is refused,
because it almost always means features from one encoder were compared with codes from another.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from medsynbench.devices import shared_tensor, torch_device
from medsynbench.errors import DataError, ParameterError

__all__ = [
    "MetricWarning",
    "as_codes",
    "as_features",
    "check_dims",
    "check_k",
    "check_pair",
    "resolve_device",
    "to_tensor",
    "warn",
]

ArrayLike = Any  # numpy.ndarray | torch.Tensor


class MetricWarning(UserWarning):
    """A metric was computed but its value deserves caution (e.g. a rank-deficient covariance)."""


def warn(message: str) -> None:
    """Emit a :class:`MetricWarning` pointing at the user's call site."""
    warnings.warn(message, MetricWarning, stacklevel=4)


resolve_device = torch_device  # "auto"/None → cuda when available; ParameterError otherwise

def to_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    """Wrap a numpy array (zero-copy where possible) or pass a tensor through."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise DataError(f"{name}: dtype {x.dtype} is not numeric; pass float features or "
                            "integer codes")
        if x.dtype.byteorder not in "=|":
            x = x.astype(x.dtype.newbyteorder("="))
        # Read-only memory maps (cached features) are fine: metrics never write to inputs.
        return shared_tensor(np.ascontiguousarray(x))
    if isinstance(x, (list, tuple)):
        return to_tensor(np.asarray(x), name)
    raise DataError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")


def _nonempty(t: torch.Tensor, name: str) -> None:
    if t.shape[0] == 0:
        raise DataError(f"{name} is empty (0 samples); every metric needs at least one sample "
                        "per set — check the split or the number of synthetic images requested")


def as_features(x: ArrayLike, name: str, device: torch.device) -> torch.Tensor:
    """Validate N×d finite floating features; return them as float64 on ``device``."""
    t = to_tensor(x, name)
    if t.ndim != 2:
        raise DataError(f"{name}: features must be 2-D (N×d), got shape {tuple(t.shape)}")
    _nonempty(t, name)
    if t.dtype.is_complex:
        raise DataError(f"{name}: complex dtype {t.dtype} is not supported")
    t = t.to(device=device).to(torch.float64)
    # numpy's isfinite is ~15x faster than torch's on the CPU; on the GPU torch's is fast.
    finite = (np.isfinite(t.numpy()).all() if t.device.type == "cpu"
              else torch.isfinite(t).all())
    if not bool(finite):
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise DataError(f"{name}: {bad} of {t.shape[0]} rows contain NaN or inf; the encoder "
                        "produced non-finite features — check the input images and encoder")
    return t


def as_codes(x: ArrayLike, name: str, device: torch.device) -> torch.Tensor:
    """Validate integer codes (N×L, or N×h×w maps flattened); return them as float32 (exact
    for codes below 2^24) on ``device``, the form the Hamming kernel reads."""
    t = to_tensor(x, name)
    if t.dtype.is_floating_point or t.dtype.is_complex:
        raise DataError(f"{name}: Hamming distance needs integer codes, got {t.dtype}; use "
                        "distance='euclidean' for float features")
    if t.ndim < 2:
        raise DataError(f"{name}: codes must be N×L (or N×h×w), got shape {tuple(t.shape)}")
    _nonempty(t, name)
    t = t.reshape(t.shape[0], -1)
    if t.shape[1] == 0:
        raise DataError(f"{name}: code maps have zero positions")
    if int(t.max()) >= 2**24 or int(t.min()) <= -(2**24):
        raise DataError(f"{name}: codes must lie in (-2^24, 2^24) (codebook indices), got "
                        f"values from {int(t.min())} to {int(t.max())}")
    return t.to(device=device).to(torch.float32)


def check_pair(a: ArrayLike, b: ArrayLike, names: tuple[str, str]) -> None:
    """Refuse a floating set next to an integer set (see module docstring)."""
    kinds = []
    for x in (a, b):
        t = x if isinstance(x, torch.Tensor) else np.asarray(x)
        floating = (t.dtype.is_floating_point if isinstance(t, torch.Tensor)
                    else t.dtype.kind == "f")
        kinds.append("floating" if floating else "integer")
    if kinds[0] != kinds[1]:
        raise DataError(
            f"mixed dtypes: {names[0]} is {kinds[0]} but {names[1]} is {kinds[1]}; both sets "
            "must come from the same encoder (float features, or integer codes for Hamming)"
        )


def check_dims(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str], what: str) -> None:
    """Both sets must have the same number of columns."""
    if a.shape[1] != b.shape[1]:
        raise DataError(
            f"mismatched {what}: {names[0]} has {a.shape[1]} but {names[1]} has {b.shape[1]}; "
            "both sets must be encoded by the same encoder at the same resolution"
        )


def check_k(k: int, n: int, name: str) -> None:
    """k must be a positive int and the set must have at least k+1 points."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k={k!r}: must be a positive integer")
    if n < k + 1:
        raise DataError(f"{name} has {n} samples but k={k} nearest neighbours need at least "
                        f"k+1 = {k + 1}; use more samples or a smaller k")
