"""Data-parallel training of a utility classifier over several devices (DDP).

When a task unit is given more than one device (``RunContext.devices``, from
``medsynbench run --data-parallel N``), :func:`~.training.train_classifier` hands the loop to
:func:`train_data_parallel`: one process per device (``torch.multiprocessing.spawn``), a
process group over a rendezvous file (NCCL on GPUs, gloo on the CPU), and
``DistributedDataParallel`` around the model. Every rank draws the same global batches from a
copy of the data-order generator and trains on its strided share of each
(``index[rank::world]``); its loss is the *sum* of its share's losses over the global batch size
times the world size, so DDP's gradient average is exactly the gradient of the global batch's
mean loss, for uneven shares too. A batch too small to give every rank two images (BatchNorm
cannot train on one) is given whole to every rank with loss weight 1, which averages to the same
gradient. The step budget, learning-rate schedule and data order are those of one device.

What differs from one device: BatchNorm normalises each share with its own batch statistics
during training (``SyncBatchNorm`` needs CUDA; on GPUs the model's BatchNorm layers are converted
to it), so the weights agree with a one-device run only to floating-point tolerance for models
without BatchNorm (tested on the CPU with gloo and 2 processes) and statistically for others.
After training, the parent process recalibrates the BatchNorm statistics over the whole set, as
for one device.

Why not ``torchrun``: a task unit is one Python call inside a run (or a Ray/SLURM worker);
spawning its own process group keeps it self-contained. A generator that wants the same reads
``ctx.devices`` and does likewise (see docs/cluster.md).
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from medsynbench.errors import TaskError

if TYPE_CHECKING:
    from .classifiers import Classifier
    from .training import TrainConfig

__all__ = ["train_data_parallel"]


def train_data_parallel(
    model: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: TrainConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """Train ``model`` in place over ``cfg.devices`` (module docstring); return the facts of
    :func:`~.training.train_classifier` plus ``world_size``. ``generator`` ends in the state a
    one-device run leaves it in."""
    import torch.multiprocessing as mp

    world = len(cfg.devices)
    kinds = {d.type for d in cfg.devices}
    if len(kinds) != 1:
        raise TaskError(f"{cfg.label}: data-parallel devices must be all CUDA or all CPU, got "
                        f"{', '.join(str(d) for d in cfg.devices)}")
    with tempfile.TemporaryDirectory(prefix="medsynbench-ddp-") as tmp:
        out = Path(tmp) / "rank0.pt"
        mp.spawn(
            _rank,
            args=(world, str(Path(tmp) / "rendezvous"), model.cpu(), images.cpu(), labels.cpu(),
                  cfg, generator.get_state(), str(out)),
            nprocs=world,
            join=True,
        )
        result = torch.load(out, weights_only=False)
    model.load_state_dict(result["state"])
    generator.set_state(result["generator"])
    if result.get("error"):
        raise TaskError(result["error"])
    facts: dict[str, float] = result["facts"]
    return facts


def _rank(
    rank: int, world: int, rendezvous: str, model: Classifier, images: torch.Tensor,
    labels: torch.Tensor, cfg: TrainConfig, generator_state: torch.Tensor, out: str,
) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from .training import _autocast, _input, batch_schedule, batches_per_pass

    device = cfg.devices[rank]
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"file://{rendezvous}", rank=rank,
                            world_size=world)
    try:
        torch.set_num_threads(max(1, torch.get_num_threads() // world) if device.type == "cpu"
                              else torch.get_num_threads())
        # spawn hands every rank the *same* shared-memory parameters: each rank needs its own
        # copy, or every optimizer step would be applied once per rank
        model = copy.deepcopy(model)
        if device.type == "cuda":
            torch.cuda.set_device(device)
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(device)
        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None)
        generator = torch.Generator()
        generator.set_state(generator_state)
        images, labels = images.to(device), labels.to(device)
        n = int(images.shape[0])
        total = cfg.steps if cfg.steps is not None else cfg.epochs * batches_per_pass(
            n, cfg.batch_size)
        optimizer = torch.optim.Adam(ddp.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        ddp.train()
        start = time.perf_counter()
        sums = torch.zeros(3, dtype=torch.float64)  # loss × images of the last pass, images, steps
        last_pass, error = 0, ""
        for pass_, step, index in batch_schedule(n, cfg.batch_size, total, generator):
            if pass_ != last_pass:
                sums[:2], last_pass = 0.0, pass_
            sharded = len(index) >= 2 * world
            mine = index[rank::world] if sharded else index
            mine = mine.to(device)
            with _autocast(cfg):
                logits = ddp(_input(images[mine], model, cfg))
                losses = F.cross_entropy(logits.float(), labels[mine], reduction="none")
            weight = world / len(index) if sharded else 1 / len(index)
            loss = losses.sum() * weight
            bad = torch.tensor([0.0 if math.isfinite(float(loss.detach())) else 1.0])
            dist.all_reduce(bad)  # every rank stops at once: a lone rank would hang the others
            if bad.item():
                error = (f"{cfg.label} diverged: loss is non-finite at step {step + 1} of "
                         f"{total} (pass {pass_ + 1}, lr = {cfg.lr:g}); lower the task's `lr` "
                         "or check the training images")
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            share = float(losses.detach().sum()) if sharded or rank == 0 else 0.0
            counted = len(mine) if sharded or rank == 0 else 0
            sums += torch.tensor([share, counted, 1.0 if rank == 0 else 0.0], dtype=torch.float64)
        dist.all_reduce(sums)
        if rank == 0:  # SyncBatchNorm keeps BatchNorm's state-dict keys: the caller loads it
            torch.save({
                "state": {k: v.cpu() for k, v in ddp.module.state_dict().items()},
                "generator": generator.get_state(),
                "error": error,
                "facts": {
                    "final_train_loss": float(sums[0] / max(float(sums[1]), 1.0)),
                    "train_seconds": time.perf_counter() - start,
                    "train_images": float(n),
                    "optimisation_steps": float(sums[2]),
                    "world_size": float(world),
                },
            }, out)
    finally:
        dist.destroy_process_group()
