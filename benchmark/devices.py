"""Device names → torch devices, shared by every plugin that runs torch code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import MedSynBenchError, ParameterError

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device", "torch_device"]


def torch_device(device: Any = "auto") -> torch.device:
    """"auto" (or None) → cuda when available, else cpu; "cpu", "cuda", "cuda:1" as given.

    Raises ParameterError for a name torch does not know, or for CUDA without a GPU.
    """
    import torch  # the core imports torch only where it is used

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ParameterError(
            f"device {device!r} is not a valid torch device ({error}): not a device torch "
            "knows; use 'cpu', 'cuda' or 'auto'"
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} requested but CUDA is not available; use 'cpu'")
    return resolved


def resolve_device(requested: str) -> str:
    """The runner's ``--device``: map auto|cpu|cuda to the device to use; refuse cuda without
    a GPU."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise MedSynBenchError(
            "--device cuda was requested but torch sees no CUDA GPU; use --device cpu"
        )
    if requested not in ("cpu", "cuda"):
        raise MedSynBenchError(f"unknown device {requested!r}; use auto, cpu or cuda")
    return requested
