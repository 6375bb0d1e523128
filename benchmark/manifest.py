"""The run manifest: software, hardware and code versions behind a results file.

What the manifest may claim: a run repeated with the same suite, the same code, the same thread
count **and the same float stack** gives the same numbers. The float stack is everything that
decides how floats are computed — the CPU type and its vector extensions (OpenBLAS, MKL, oneDNN
and torch pick kernels per CPU at run time, and kernels of different widths sum in different
orders), the GPU and its compute capability, the numerical libraries and their BLAS, cuDNN and
the C library's libm. ``manifest["float_stack"]`` records it and ``manifest["float_stack_id"]``
is a short hash of that block: two results with the same id came from the same hardware and
stack; with different ids their last digits may differ. ``manifest["codecs"]`` records the image
codec libraries, which decide the mean-image sizes of the variety metric.

Every probe returns None (or leaves a field None) when it cannot answer; none raises.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "codec_versions",
    "collect_manifest",
    "cpu_info",
    "float_stack",
    "float_stack_id",
    "git_commit",
]

# Read through this name so tests can point it at a fixture.
CPUINFO = Path("/proc/cpuinfo")
# CPU flags that select float kernels (x86 "flags", AArch64 "Features" in /proc/cpuinfo).
_KERNEL_FLAGS = frozenset({
    "sse4_2", "fma", "avx", "avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni",
    "avx_vnni", "amx_bf16", "amx_tile", "amx_int8", "amx_fp16",
    "asimd", "asimdhp", "sve", "sve2", "bf16", "i8mm", "sme",
})
_TORCH_CONFIG = {  # torch.__config__.show() line → key
    "mkl": re.compile(r"Math Kernel Library Version ([0-9][0-9.]*)"),
    "onednn": re.compile(r"MKL-DNN v([0-9][0-9.]*)"),
    "openblas": re.compile(r"OpenBLAS ([^\s,]+)"),
    "blas_info": re.compile(r"BLAS_INFO=([^\s,]+)"),
    "lapack_info": re.compile(r"LAPACK_INFO=([^\s,]+)"),
}
_T = TypeVar("_T")


def _probe(fn: Callable[[], _T]) -> _T | None:
    """``fn()``, or None when it fails in any way (a manifest never stops a run)."""
    try:
        return fn()
    except Exception:  # probes of foreign libraries fail in foreign ways
        return None


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the git checkout holding the medsynbench sources (None outside git)."""
    where = start or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _cpuinfo_fields(text: str) -> dict[str, str]:
    """The first value of every ``key : value`` line (the first processor describes all)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def cpu_info(cpuinfo_text: str | None = None) -> dict[str, Any]:
    """CPU model, vendor, architecture and the kernel-relevant ISA flags.

    ``cpuinfo_text`` defaults to the contents of :data:`CPUINFO` (Linux); elsewhere the model
    comes from :func:`platform.processor`. On AArch64 NEON (Advanced SIMD) is architectural,
    so ``neon`` is true there whatever the flags say.
    """
    if cpuinfo_text is None:
        cpuinfo_text = _probe(lambda: CPUINFO.read_text(encoding="utf-8", errors="replace"))
    fields = _cpuinfo_fields(cpuinfo_text or "")
    machine = _probe(platform.machine) or None
    flags_line = fields.get("flags") or fields.get("Features") or ""
    present = set(flags_line.split())
    model = fields.get("model name") or fields.get("Model") or fields.get("Processor")
    if not model and platform.system() == "Darwin":
        model = _probe(lambda: subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip())
    arm = (machine or "").lower() in ("arm64", "aarch64") or "asimd" in present
    return {
        "model": model or _probe(platform.processor) or None,
        "vendor": fields.get("vendor_id") or fields.get("CPU implementer"),
        # x86 family/model/stepping, or ARM part/variant/revision: which microarchitecture.
        "family": fields.get("cpu family") or fields.get("CPU architecture"),
        "model_id": fields.get("model") or fields.get("CPU part"),
        "stepping": fields.get("stepping") or fields.get("CPU revision"),
        "machine": machine,
        "flags": sorted(present & _KERNEL_FLAGS) if flags_line else None,
        "neon": True if arm else (False if machine else None),
    }


def _torch_blas() -> dict[str, Any] | None:
    import torch

    config = _probe(torch.__config__.show) or ""
    found: dict[str, Any] = {}
    for key, pattern in _TORCH_CONFIG.items():
        match = pattern.search(config)
        found[key] = match.group(1) if match else None
    found["mkldnn_available"] = _probe(torch.backends.mkldnn.is_available)
    # The kernel family torch dispatches to on this CPU (e.g. "AVX512", "AVX2", "DEFAULT").
    found["cpu_capability"] = _probe(torch.backends.cpu.get_cpu_capability)
    return found


def _build_blas(show_config: Callable[..., Any]) -> dict[str, Any] | None:
    """BLAS/LAPACK name and version from numpy's or scipy's ``show_config(mode="dicts")``."""
    config = show_config(mode="dicts")
    deps = config.get("Build Dependencies", {})
    out: dict[str, Any] = {}
    for lib in ("blas", "lapack"):
        info = deps.get(lib) or {}
        out[lib] = {"name": info.get("name"), "version": info.get("version")}
    return out


def _numpy_blas() -> dict[str, Any] | None:
    import numpy as np

    return _build_blas(np.show_config)


def _scipy_blas() -> dict[str, Any] | None:
    import scipy

    return _build_blas(scipy.show_config)


def _runtime_blas() -> list[dict[str, Any]] | None:
    """Loaded BLAS libraries and the kernel set each chose on this CPU (OpenBLAS built with
    DYNAMIC_ARCH picks e.g. "SkylakeX" or "Zen" at load time) — through threadpoolctl."""
    import scipy.linalg  # noqa: F401 - load scipy's BLAS too, so the list is import-order free
    from threadpoolctl import threadpool_info

    keep = ("internal_api", "prefix", "version", "architecture", "threading_layer")
    libs = [
        {k: info.get(k) for k in keep}
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    return sorted(libs, key=lambda lib: json.dumps(lib, sort_keys=True, default=str))


def _gpu(device: str) -> dict[str, Any] | None:
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    index = torch.device(device).index or 0
    major, minor = torch.cuda.get_device_capability(index)
    return {
        "name": torch.cuda.get_device_name(index),
        "compute_capability": f"{major}.{minor}",
        "cuda": torch.version.cuda,
        "cudnn": _probe(torch.backends.cudnn.version),
    }


def _version(module: str) -> str | None:
    return str(__import__(module).__version__)


def float_stack(device: str) -> dict[str, Any]:
    """The hardware and libraries that decide a run's floats (see the module docstring)."""
    libc = _probe(platform.libc_ver)
    return {
        "device": device.split(":")[0],
        "cpu": _probe(cpu_info),
        "gpu": _probe(lambda: _gpu(device)),
        "libc": " ".join(libc) if libc and libc[0] else None,
        "torch": _probe(lambda: _version("torch")),
        "numpy": _probe(lambda: _version("numpy")),
        "scipy": _probe(lambda: _version("scipy")),
        "blas": {
            "numpy": _probe(_numpy_blas),
            "scipy": _probe(_scipy_blas),
            "torch": _probe(_torch_blas),
            "runtime": _probe(_runtime_blas),
        },
    }


def float_stack_id(stack: dict[str, Any]) -> str:
    """A 12-hex-digit hash of a :func:`float_stack` block (equal ids: same hardware + stack)."""
    text = json.dumps(stack, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def codec_versions() -> dict[str, Any]:
    """Pillow and the codec libraries behind it: libjpeg(-turbo) for JPEG, zlib (or zlib-ng,
    whose deflate output differs from zlib's) for PNG."""
    from PIL import features

    def feature(name: str) -> str | None:
        return _probe(lambda: features.version(name))

    return {
        "pillow": _probe(lambda: _version("PIL")),
        "libjpeg": feature("jpg"),
        "libjpeg_turbo": feature("libjpeg_turbo"),
        "zlib": feature("zlib"),
        "zlib_ng": feature("zlib_ng"),
    }


def collect_manifest(
    device: str, suite_hash: str, plugin_versions: dict[str, str]
) -> dict[str, Any]:
    """Python/torch/CUDA/GPU versions, git commit, suite hash, plugin versions, the float
    stack (with its id) and the image codec versions."""
    import torch

    from . import __version__

    cuda = torch.version.cuda if torch.cuda.is_available() else None
    gpu = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else None
    stack = float_stack(device)
    return {
        "medsynbench": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": cuda,
        "gpu": gpu,
        "device": device,
        "platform": _probe(platform.platform),
        "cpu_count": os.cpu_count(),
        "float_stack": stack,
        "float_stack_id": float_stack_id(stack),
        "codecs": _probe(codec_versions),
        "git_commit": git_commit(),
        "suite_hash": suite_hash,
        "plugins": plugin_versions,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
