"""Time one training epoch of the utility classifiers: ours vs a plain torchvision-style loop.

Ours (``medsynbench.plugins.tasks.training.train_classifier``, with freed CPU memory kept for
reuse as ``Task.run_seed`` does): the uint8 images go to the device once, are
resized/normalised per batch on the device; on CUDA with bfloat16 autocast and channels-last.
The peer is the loop a torchvision tutorial would write: a ``Dataset``
converting and resizing one image at a time (``torchvision.transforms.v2.functional``), a
``DataLoader`` (``--workers``; pinned memory on CUDA), a float32 batch copied to the device
per step, float32 training in the default memory format. Both use the same model, seed,
Adam optimiser, batch size and number of images; the timed epoch follows a short warm-up
(cuDNN algorithm search, allocator) and includes moving the images to the device; the best of
``--repeat`` epochs is reported (a shared CPU makes single epochs noisy). Our BatchNorm
recalibration (one no-grad forward pass per *training*, not per epoch) is left out of the epoch.

    python bench/classifier_epoch.py                       # CPU: small-cnn, 64 px, 1000 images
    python bench/classifier_epoch.py --device cuda         # GPU: small-cnn, resnet18, inception_v3
    python bench/classifier_epoch.py --classifiers resnet18 --size 224 --n 512
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from medsynbench.devices import reuse_cpu_memory
from medsynbench.plugins.tasks.classifiers import Classifier, build_classifier
from medsynbench.plugins.tasks.training import (
    TrainConfig,
    cpu_threads,
    seeded,
    to_device_tensor,
    train_classifier,
)
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as TF

# classifier → input side on CPU and on CUDA (inception_v3 needs ≥ 75; 299 is its native size)
SIZES = {"small-cnn": (64, 64), "resnet18": (64, 224), "inception_v3": (75, 299)}


def images(n: int, side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale uint8 images at the dataset's 64 px (classifiers resize) and binary labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    data = rng.normal(100, 30, size=(n, 1, side, side)) + 40 * labels[:, None, None, None]
    return np.clip(data, 0, 255).astype(np.uint8), labels


class PerImage(Dataset[tuple[torch.Tensor, int]]):
    """The peer's dataset: convert, resize and normalise one image per ``__getitem__``."""

    def __init__(self, data: np.ndarray, labels: np.ndarray, model: Classifier) -> None:
        self.data, self.labels, self.spec = data, labels, model.spec

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self.data[i]).float().div(255.0)
        if self.spec.channels == 3 and x.shape[0] == 1:
            x = x.expand(3, -1, -1)
        if isinstance(self.spec.size, int) and x.shape[-1] != self.spec.size:
            x = TF.resize(x, [self.spec.size, self.spec.size], antialias=True)
        x = TF.normalize(x, list(self.spec.mean), list(self.spec.std))
        return x, int(self.labels[i])


def peer_epoch(model: Classifier, loader: DataLoader[Any], device: torch.device, lr: float,
               max_steps: int | None = None) -> None:
    """The plain loop: float32 batches copied per step, no autocast, default memory format."""
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    for step, (x, y) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_one(name: str, side: int, n: int, batch: int, device: torch.device,
              workers: int, repeat: int, lr: float = 1e-3) -> dict[str, Any]:
    """Best of ``repeat`` timed epochs of ours and of the peer for ``name`` at input ``side``."""
    data, labels = images(n, 64)
    cfg = TrainConfig(epochs=1, batch_size=batch, lr=lr, device=device, amp=True, label=name)
    warm = min(n, 4 * batch)
    # ours, as a task runs it (Task.run_seed keeps freed CPU memory for reuse): warm up on a
    # few batches, then timed epochs
    with seeded(0) as order, reuse_cpu_memory(device):
        model, _ = build_classifier(name, 1, 2, image_size=side)
        train_classifier(model, to_device_tensor(data[:warm], device),
                         torch.from_numpy(labels[:warm]), cfg, order)
        ours = float("inf")
        for _ in range(repeat):
            sync(device)
            start = time.perf_counter()
            on_device = to_device_tensor(data, device)
            train_classifier(model, on_device, torch.from_numpy(labels), cfg, order,
                             recalibrate=False)
            sync(device)
            ours = min(ours, time.perf_counter() - start)
    with seeded(0) as order:  # peer: same model and seed
        model, _ = build_classifier(name, 1, 2, image_size=side)
        loader = DataLoader(PerImage(data, labels, model), batch_size=batch, shuffle=True,
                            num_workers=workers, pin_memory=device.type == "cuda",
                            generator=order, drop_last=False)
        peer_epoch(model, loader, device, lr, max_steps=4)
        peer = float("inf")
        for _ in range(repeat):
            sync(device)
            start = time.perf_counter()
            peer_epoch(model, loader, device, lr)
            sync(device)
            peer = min(peer, time.perf_counter() - start)
    return {
        "classifier": name, "input_px": side, "images": n, "batch_size": batch,
        "device": str(device), "ours_s": round(ours, 3), "peer_s": round(peer, 3),
        "ours_img_per_s": round(n / ours, 1), "peer_img_per_s": round(n / peer, 1),
        "peer_over_ours": round(peer / ours, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--classifiers", default=None,
                        help="comma-separated (default: small-cnn on CPU; all three on CUDA)")
    parser.add_argument("--n", type=int, default=None, help="images per epoch")
    parser.add_argument("--size", type=int, default=None, help="input side (default per model)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None, help="peer DataLoader workers")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (both loops)")
    parser.add_argument("--repeat", type=int, default=3, help="timed epochs; the best is kept")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    names = (args.classifiers or ("small-cnn,resnet18,inception_v3" if cuda else "small-cnn"))
    workers = args.workers if args.workers is not None else (8 if cuda else 0)
    rows = []
    with cpu_threads(args.threads):
        for name in names.split(","):
            side = args.size or SIZES[name][1 if cuda else 0]
            n = args.n or (2048 if cuda else 1000)
            row = bench_one(name, side, n, args.batch_size, device, workers, args.repeat)
            rows.append(row)
            print(f"{name:>13} {side:>4}px n={n} {row['device']}: ours {row['ours_s']:.2f}s "
                  f"({row['ours_img_per_s']:.0f} img/s)  peer {row['peer_s']:.2f}s "
                  f"({row['peer_img_per_s']:.0f} img/s)  peer/ours = {row['peer_over_ours']:.2f}",
                  flush=True)
    meta = {"torch": torch.__version__, "threads": args.threads, "peer_workers": workers,
            "gpu": torch.cuda.get_device_name(0) if cuda else None}
    print(json.dumps(meta))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"meta": meta, "rows": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
