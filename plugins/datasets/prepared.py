"""Cache of prepared (decoded, resized, split) datasets, keyed by source listing and parameters.

The runner caches stages by plugin parameters, but it cannot know that files under a dataset
root changed. File-based datasets therefore cache their own preparation under
``<cache_dir>/prepared/<dataset>/<key>/`` where the key hashes the dataset name and version,
its parameters, and the listing of source files (relative path, size, modification time).
Entries are written to a temporary folder and renamed into place after a ``COMPLETE`` marker
is written, so a killed preparation never leaves a half entry. Arrays are loaded memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from medsynbench import DataSplits, RunContext

__all__ = ["cached_splits", "listing_digest"]

_MARKER = "COMPLETE"


def listing_digest(paths: Iterable[Path], root: Path) -> str:
    """sha256 over (relative path, size, mtime_ns) of every file in ``paths``."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        stat = path.stat()
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.as_posix()
        digest.update(f"{rel}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cache_root(ctx: RunContext) -> Path | None:
    if ctx.cache_dir is not None:
        return Path(ctx.cache_dir) / "prepared"
    env = os.environ.get("MEDSYNBENCH_CACHE")
    return Path(env).expanduser() / "prepared" if env else None


def cached_splits(
    ctx: RunContext,
    dataset: str,
    version: str,
    params: Mapping[str, Any],
    source_digest: str,
    build: Callable[[], DataSplits],
) -> DataSplits:
    """Return the cached preparation for this key, or ``build()`` it and cache the result.

    Without a cache directory (``ctx.cache_dir`` unset and no ``$MEDSYNBENCH_CACHE``) the data
    is simply built.
    """
    root = _cache_root(ctx)
    if root is None:
        return build()
    blob = json.dumps(
        {"dataset": dataset, "version": version, "params": dict(params), "source": source_digest},
        sort_keys=True, default=str,
    )
    key = hashlib.sha256(blob.encode()).hexdigest()[:24]
    final = root / dataset / key
    if (final / _MARKER).exists():
        ctx.log(f"{dataset}: using prepared cache {final}")
        return DataSplits.load(final)
    data = build()
    tmp = final.with_name(f"{key}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        tmp.mkdir(parents=True)
        data.save(tmp)
        (tmp / "key.json").write_text(blob)
        (tmp / _MARKER).write_text("ok\n")
    except BaseException:  # a full disk or a kill: leave no half-written folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        tmp.rename(final)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return DataSplits.load(final)
