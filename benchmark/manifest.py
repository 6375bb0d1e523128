"""The run manifest: software, hardware and code versions behind a results file."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["collect_manifest", "git_commit"]


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


def collect_manifest(
    device: str, suite_hash: str, plugin_versions: dict[str, str]
) -> dict[str, Any]:
    """Python/torch/CUDA/GPU versions, git commit, suite hash and plugin versions."""
    import torch

    from . import __version__

    cuda = torch.version.cuda if torch.cuda.is_available() else None
    gpu = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else None
    return {
        "medsynbench": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": cuda,
        "gpu": gpu,
        "device": device,
        "platform": platform.platform(),
        "cpu_count": __import__("os").cpu_count(),
        "git_commit": git_commit(),
        "suite_hash": suite_hash,
        "plugins": plugin_versions,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
