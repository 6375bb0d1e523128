"""Device names → torch devices, shared by every plugin that runs torch code."""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import MedSynBenchError, ParameterError

if TYPE_CHECKING:
    import torch

__all__ = [
    "available_cpus",
    "cpu_threads",
    "prefer_passive_openmp",
    "resolve_device",
    "reuse_cpu_memory",
    "shared_tensor",
    "torch_device",
]


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


def resolve_device(requested: str, source: str = "--device") -> str:
    """The runner's device: map auto|cpu|cuda to the device to use; refuse cuda without a GPU.

    ``source`` says where the request came from, for the message: ``"--device"`` (the flag)
    or the suite's key, e.g. ``"suites/x.toml: suite.device"``.
    """
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    flag = source == "--device"
    if requested == "cuda" and not torch.cuda.is_available():
        fix = ("use --device cpu (or auto)" if flag else
               'set device = "auto" (or "cpu") there, or pass --device cpu to override it')
        asked = "--device cuda was requested" if flag else f'{source} = "cuda" asks for a GPU'
        raise MedSynBenchError(f"{asked} but torch sees no CUDA GPU; {fix}")
    if requested not in ("cpu", "cuda"):
        raise MedSynBenchError(f"{source}: unknown device {requested!r}; use auto, cpu or cuda")
    return requested


def available_cpus() -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup v2 CPU quota.

    ``os.cpu_count()`` (and torch's default thread count) see every core of the node; a SLURM
    job, a container or ``taskset`` may allow far fewer, and threads beyond them only wait.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as limits:
            quota, period = limits.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(count, 1)


def prefer_passive_openmp() -> None:
    """Let idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``).

    With the default (active) policy, threads of a process that wait for each other spin on
    their core; when other processes share the cores (a busy node, CI, two runs at once) each
    spinning thread steals the time the others need and a CPU run collapses (the issue measured
    a 4-minute fit taking 34 minutes). Waiting policy changes scheduling only, never results.
    Must run before torch is imported (OpenMP reads it once); a user's ``OMP_WAIT_POLICY`` or
    ``GOMP_SPINCOUNT`` wins (``bench/busy_cpu.py`` measures the trade-off).
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Pin torch's intra-op CPU thread count to ``n`` for the duration (None: at most the
    CPUs this process may use, :func:`available_cpus`).

    Small CPU models gain little from threads but lose a lot (10× measured) when the cores
    are oversubscribed, and a fixed count keeps float reductions — hence results — the same
    on machines with different core counts.
    """
    import torch

    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    elif previous > (usable := available_cpus()):
        torch.set_num_threads(usable)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# glibc mallopt parameters (malloc.h) and the values restored after reuse_cpu_memory.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
GLIBC_MMAP_MAX = 65536  # glibc's default
TRIM_AFTER = 64 << 20  # what glibc's dynamic rule reaches (2 × its 32 MiB mmap threshold cap)
_libc: Any = None  # the process's glibc (ctypes), False where there is none
_depth = 0
_lock = threading.Lock()


def _glibc() -> Any:
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(None)
                if hasattr(lib, "gnu_get_libc_version"):  # glibc, not musl
                    lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                    lib.malloc_trim.argtypes = [ctypes.c_size_t]
                    _libc = lib
            except (OSError, AttributeError):
                pass
    return _libc or None


@contextmanager
def reuse_cpu_memory(device: Any = "cpu") -> Iterator[None]:
    """Keep freed CPU tensor memory in the heap for reuse during a batched loop on the CPU.

    glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh
    ``mmap`` and unmaps it on free, so a loop whose activations exceed it (an encoder at
    224 px, a classifier batch) page-faults its whole working set in again at every batch:
    most of the time goes to the kernel (measured: 2/3 of an efficientnet-lite0 CPU pass).
    Inside this context ``mmap`` is off and the heap is not trimmed, so the second batch
    reuses the first one's pages; on leaving, ``mmap`` is allowed again (glibc's default
    count), the trim threshold is set to 64 MiB and free memory is returned to the system
    (``malloc_trim``). Nested uses act once. A no-op off glibc, for a CUDA device, or with
    ``MEDSYNBENCH_MALLOC=default`` in the environment.

    Used by the encoders' batched pass and each task seed. Not by generator training: on a
    VQ-VAE-2 fit, whose tensors mostly stay under the threshold, it measured ~7 % slower.
    """
    global _depth
    kind = getattr(device, "type", str(device)).split(":")[0]
    lib = _glibc() if kind == "cpu" and os.environ.get("MEDSYNBENCH_MALLOC") != "default" \
        else None
    if lib is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            lib.mallopt(M_MMAP_MAX, 0)
            lib.mallopt(M_TRIM_THRESHOLD, -1)  # (size_t)-1: never trim
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                lib.mallopt(M_MMAP_MAX, GLIBC_MMAP_MAX)
                lib.mallopt(M_TRIM_THRESHOLD, TRIM_AFTER)
                lib.malloc_trim(0)


def shared_tensor(array: Any) -> torch.Tensor:
    """A CPU tensor sharing a numpy array's memory, also when the array is read-only.

    The runner hands plugins memory-mapped (read-only) splits and cached features; copying them
    to silence torch's "not writable" warning would double the memory of a 30,000-image set.
    Nothing that calls this writes to the tensor (it is read, indexed, copied to a device). The
    warning would otherwise fire once per process — so on a cluster once per worker — and be
    recorded as a flag of whichever unit hit it first.
    """
    import warnings

    import numpy as np
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(np.asarray(array))
