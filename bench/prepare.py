"""Time dataset preparation (decode + antialiased resize + split + cache write) on 10k PNGs.

Writes ``--n`` noisy grayscale PNGs of ``--size`` px into two class folders under a temporary
directory (not timed), then times the ``imagefolder`` plugin preparing them at
``--resolution`` with one decoding thread and with one per core, then a second load that hits
the prepared cache (memory-mapped arrays).

    python bench/prepare.py                       # 10,000 PNGs of 256 px → 64 px
    python bench/prepare.py --n 2000 --size 128   # quick
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
from medsynbench import RunContext
from medsynbench.plugins.datasets import imageio
from medsynbench.plugins.datasets.folders import ImageFolder
from PIL import Image


def write_pngs(root: Path, n: int, size: int) -> None:
    """``n`` PNGs split over ``root/a`` and ``root/b``."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(size, size), dtype=np.uint8)
    for i in range(n):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        image = np.roll(base, i, axis=1) // (1 + i % 2)
        Image.fromarray(image).save(folder / f"{i:06d}.png", compress_level=1)


def timed_load(root: Path, resolution: int, cache: Path | None, workers: int | None) -> float:
    """Seconds for one ``imagefolder`` load with ``workers`` decoding threads."""
    ctx = RunContext(cache_dir=cache)
    original = imageio.read_images

    def patched(*args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["workers"] = workers
        return original(*args, **kwargs)

    start = time.perf_counter()
    with mock.patch("medsynbench.plugins.datasets.files.read_images", patched):
        data = ImageFolder(root=str(root), channels=1, resolution=resolution).load(ctx)
    elapsed = time.perf_counter() - start
    assert sum(len(s) for s in data.splits.values()) > 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--resolution", type=int, default=64)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "pngs", Path(tmp) / "cache"
        write_pngs(root, args.n, args.size)
        one = timed_load(root, args.resolution, None, 1)
        many = timed_load(root, args.resolution, cache, cores)
        cached = timed_load(root, args.resolution, cache, cores)
    print(f"{args.n} PNGs {args.size}px → {args.resolution}px on {cores} cores")
    print(f"  1 thread        {one:7.2f} s  ({args.n / one:8.0f} images/s)")
    print(f"  {cores:2d} threads      {many:7.2f} s  ({args.n / many:8.0f} images/s, "
          f"incl. cache write; speed-up {one / many:.2f}×)")
    print(f"  prepared cache  {cached:7.2f} s")


if __name__ == "__main__":
    main()
