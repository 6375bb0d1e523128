"""CPU feature extraction: our encoder pass vs the plain PyTorch loop feature libraries run.

Ours: ``EfficientNetLite0.encode`` (``plugins/encoders/_common.encode_batched``), which keeps
freed tensor memory for reuse during the pass (``medsynbench.devices.reuse_cpu_memory``).
The peer is the loop pytorch-fid and torch-fidelity run: per batch, uint8 → float, resize,
normalise, forward, copy the features out — the same model object, preprocessing, batch size
and thread count, under glibc's default allocator settings. Both passes must give the same
features (checked). Reported: seconds and minor page faults per pass (best of ``--repeat``,
each side timed after one warm-up batch), and the ratio.

    python bench/encoder_cpu.py                      # 512 images, 64 px → 224 px, batch 64
    python bench/encoder_cpu.py --n 256 --size 128 --batch 16 --threads 1
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np
import torch
from _checkout import ensure_medsynbench  # bench/ is sys.path[0] when run

ensure_medsynbench()
from medsynbench import RunContext  # noqa: E402
from medsynbench.plugins.encoders._common import to_unit_rgb  # noqa: E402
from medsynbench.plugins.encoders.efficientnet_lite import EfficientNetLite0  # noqa: E402


def timed(fn: object) -> tuple[float, int, np.ndarray]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    out = fn()  # type: ignore[operator]
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=512, help="images")
    parser.add_argument("--size", type=int, default=64, help="image side before resizing")
    parser.add_argument("--resolution", type=int, default=224, help="encoder input side")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--repeat", type=int, default=2, help="passes per side (best)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images = np.random.default_rng(0).integers(0, 256, (args.n, 3, args.size, args.size),
                                               dtype=np.uint8)
    encoder = EfficientNetLite0(resolution=args.resolution, batch_size=args.batch)
    ctx = RunContext(device="cpu")
    model = encoder.model().eval()

    def ours() -> np.ndarray:
        return encoder.encode(images, ctx)

    def peer() -> np.ndarray:
        out = np.empty((len(images), 1280), np.float32)
        with torch.no_grad():
            for start in range(0, len(images), args.batch):
                batch = torch.from_numpy(images[start:start + args.batch])
                x = to_unit_rgb(batch, args.resolution)
                out[start:start + len(batch)] = model(x.sub_(0.5).div_(0.5)).numpy()
        return out

    results = {}
    for name, fn in (("peer", peer), ("ours", ours)):
        warm = images[: args.batch]
        if name == "ours":
            encoder.encode(warm, ctx)
        else:
            with torch.no_grad():
                model(to_unit_rgb(torch.from_numpy(warm), args.resolution))
        runs = [timed(fn) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r[0])
        results[name] = {"seconds": best[0], "page_faults": best[1], "features": best[2]}
    equal = np.array_equal(results["ours"]["features"], results["peer"]["features"])
    print(f"efficientnet-lite0 on CPU: {args.n} images {args.size} px → {args.resolution} px, "
          f"batch {args.batch}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    for name in ("ours", "peer"):
        r = results[name]
        print(f"  {name}: {r['seconds']:.2f} s, {r['page_faults']:,} page faults, "
              f"{args.n / r['seconds']:.1f} img/s")
    ratio = results["peer"]["seconds"] / results["ours"]["seconds"]
    print(f"  speed-up: {ratio:.2f}x; features {'equal' if equal else 'DIFFERENT'}")
    print(json.dumps({k: {"seconds": v["seconds"], "page_faults": v["page_faults"]}
                      for k, v in results.items()} | {"ratio": ratio, "equal": equal}))
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
