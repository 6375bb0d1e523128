"""Content-addressed, atomically written stage outputs.

A stage unit's key is the sha256 of the canonical JSON of everything that determines its
output (stage, plugin name and version, parameters, upstream keys, seed). Its directory is
built under ``<key>.partial`` — which survives a killed run, so long fits can resume from
checkpoints there — and renamed to ``<key>`` only after the completion marker is written and
fsynced. A stage that raises is not cached: its partial directory is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import OutputError

__all__ = ["COMPLETE", "StageCache", "content_key", "derive_seed", "write_atomic"]

COMPLETE = "COMPLETE"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def content_key(**parts: Any) -> str:
    """sha256 hex digest of the canonical JSON of ``parts``."""
    return hashlib.sha256(_canonical(parts).encode()).hexdigest()


def derive_seed(base: int, *parts: Any) -> int:
    """A 31-bit seed derived deterministically from a base seed and a stage description."""
    digest = hashlib.sha256(_canonical([base, *parts]).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(tmp, mode) as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class StageCache:
    """Completed stage outputs under ``root/<stage>/<key>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise OutputError(
                f"cache directory {self.root} is not writable ({exc.strerror}); choose another "
                f"with --cache-dir or [output] cache_dir"
            ) from None

    def path(self, stage: str, key: str) -> Path:
        """Directory of a completed unit (it may not exist yet)."""
        return self.root / stage / key

    def is_complete(self, stage: str, key: str) -> bool:
        """True when the unit's completion marker exists."""
        return (self.path(stage, key) / COMPLETE).is_file()

    def meta(self, stage: str, key: str) -> dict[str, Any]:
        """The metadata stored with a completed unit."""
        result: dict[str, Any] = json.loads((self.path(stage, key) / COMPLETE).read_text())
        return result

    def discard(self, stage: str, key: str) -> None:
        """Remove a completed unit (used by ``--force``)."""
        shutil.rmtree(self.path(stage, key), ignore_errors=True)

    @contextmanager
    def build(self, stage: str, key: str, meta: dict[str, Any]) -> Iterator[Path]:
        """Yield a work directory; on success it becomes the unit, on error it is removed.

        The work directory persists across a killed process (no exception runs), so a later
        run can resume from what it holds.
        """
        final = self.path(stage, key)
        partial = final.with_name(f"{key}.partial")
        partial.mkdir(parents=True, exist_ok=True)
        try:
            yield partial
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                shutil.rmtree(partial, ignore_errors=True)
            raise
        write_atomic(partial / COMPLETE, _canonical({"stage": stage, "key": key, **meta}))
        if final.exists():  # a stale unit without marker, or --force: replace it
            shutil.rmtree(final)
        os.replace(partial, final)
        _fsync_dir(final.parent)
