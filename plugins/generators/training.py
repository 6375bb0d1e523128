"""Shared machinery for trained generators: checkpoints, resumable training, seeding, AMP.

Every trained generator (vqvae2, ldm, stylegan2) builds on these pieces so that they behave
alike:

- :func:`save_checkpoint` / :func:`load_checkpoint` write ``torch.save`` files that record the
  generator's configuration and are read back with ``weights_only=True``; a checkpoint written
  under another configuration is refused with a :class:`GeneratorError` naming both.
- :class:`Trainer` runs a step function for a number of steps with a rich progress bar showing
  the losses, a NaN/inf guard (``diverged at step N, loss=nan``), AMP autocast + GradScaler on
  CUDA, a periodic resume checkpoint in ``ctx.workdir`` and resumption from it after a kill.
- :func:`check_counts`, :func:`require_fitted`, :func:`torch_generator` and :func:`class_seed`
  make ``sample(counts, seed)`` validate its request and be deterministic for a seed.
- The :class:`Trainer`'s resume checkpoints hold the global RNG states (:mod:`.rng`), so a fit
  run under :func:`~.rng.fit_rng` resumes exactly as an uninterrupted one would have run on.
- :func:`measure_sampling` is the common efficiency probe (peak GPU memory for 8 images,
  seconds per 1000 images).
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from medsynbench.devices import shared_tensor, torch_device
from medsynbench.errors import GeneratorError
from medsynbench.kinds import RunContext
from medsynbench.params import Param, positive
from torch import nn

from .rng import rng_state, set_rng_state

__all__ = [
    "TimeBudget",
    "Trainer",
    "autocast",
    "batch_indices",
    "batch_iterator",
    "check_counts",
    "check_finite",
    "class_seed",
    "from_unit",
    "load_checkpoint",
    "measure_sampling",
    "prepare_module",
    "require_fitted",
    "resolve_device",
    "resolve_preset",
    "save_checkpoint",
    "shared_tensor",
    "to_unit",
    "torch_generator",
    "use_amp",
]

FORMAT = 1  # bump when the checkpoint layout changes


# --------------------------------------------------------------------------- requests & seeds
def check_counts(counts: Sequence[int], n_classes: int | None = None, name: str = "") -> list[int]:
    """Validate a per-class request; GeneratorError for negatives, wrong length or 0 in total."""
    who = f"generator {name!r}: " if name else ""
    values = [int(c) for c in counts]
    if n_classes is not None and len(values) != n_classes:
        raise GeneratorError(
            f"{who}counts has {len(values)} entries but the model was fitted on {n_classes} "
            "classes; pass one count per class"
        )
    if any(c < 0 for c in values):
        raise GeneratorError(f"{who}counts must be >= 0 per class, got {values}")
    if sum(values) == 0:
        raise GeneratorError(
            f"{who}requested 0 images in total (counts={values}); ask for at least one image"
        )
    return values


def require_fitted(model: object | None, name: str) -> None:
    """GeneratorError when ``sample`` is called before ``fit`` or ``load``."""
    if model is None:
        raise GeneratorError(
            f"generator {name!r}: sample() called before fit() or load(); fit it on a training "
            "split or load a checkpoint written by fit() first"
        )


def class_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed derived from ``seed`` and integer keys (class index, chunk...)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *(int(k) for k in keys)])
    return int(state.generate_state(2, dtype=np.uint32).astype(np.uint64) @ [1, 1 << 31]) >> 1


def torch_generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``seed`` and keys.

    Random numbers are drawn on the CPU and moved to the device so a seed gives the same
    noise on every device.
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(class_seed(seed, *keys))
    return gen


# --------------------------------------------------------------------------- devices & AMP
def resolve_device(ctx: RunContext) -> torch.device:
    """The torch device named by ``ctx.device`` ("auto" → cuda when available)."""
    return torch_device(ctx.device or "cpu")

def use_amp(device: torch.device) -> bool:
    """AMP (float16 autocast + GradScaler) is used on CUDA only."""
    return device.type == "cuda"


def autocast(device: torch.device) -> AbstractContextManager[Any]:
    """float16 autocast on CUDA, a no-op elsewhere."""
    if use_amp(device):
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return nullcontext()


def prepare_module(module: nn.Module, device: torch.device) -> nn.Module:
    """Move a module to ``device``; channels-last memory format on CUDA."""
    module.to(device)
    if device.type == "cuda":
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return module


def to_unit(images: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 N×C×H×W → float32 in [-1, 1] on ``device`` (channels-last on CUDA)."""
    tensor = shared_tensor(images) if isinstance(images, np.ndarray) else images
    out = tensor.to(device=device, dtype=torch.float32).div_(127.5).sub_(1.0)
    if device.type == "cuda":
        out = out.contiguous(memory_format=torch.channels_last)
    return out


def from_unit(images: torch.Tensor) -> np.ndarray:
    """float in [-1, 1] → uint8 N×C×H×W numpy (rounded, clipped)."""
    scaled = (images.detach().float().clamp(-1, 1) + 1.0) * 127.5
    return scaled.round().to(torch.uint8).cpu().contiguous().numpy()


def batch_iterator(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless random mini-batch indices (reshuffled each epoch) drawn from ``gen``.

    Its position within an epoch is not part of a resume checkpoint, so a resumed run sees
    different batches than an uninterrupted one; prefer :meth:`Trainer.batch`, which is exact.
    """
    if n <= 0:
        raise GeneratorError("cannot train on an empty training split")
    size = min(batch_size, n)
    while True:
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - size + 1, size):
            yield order[start : start + size]


def batch_indices(step: int, n: int, batch_size: int, seed: int, key: int = 0) -> torch.Tensor:
    """Indices of mini-batch number ``step`` over ``n`` items.

    Each epoch is a fresh permutation drawn from (seed, key, epoch) alone, so a resumed run
    draws exactly the batches an uninterrupted run would have drawn.
    """
    if n <= 0:
        raise GeneratorError("cannot train on an empty training split")
    size = min(batch_size, n)
    epoch, position = divmod(step, n // size)
    order = torch.randperm(n, generator=torch_generator(seed, key, epoch))
    return order[position * size : (position + 1) * size]


def preset_parameters(
    presets: Mapping[str, Mapping[str, Any]],
    checks: Mapping[str, Callable[[Any], str | None]] | None = None,
) -> dict[str, Param]:
    """The parameter block every trained generator declares: ``preset`` (a key of ``presets``),
    ``max_train_seconds``, and one nullable override per value of the paper preset (checked by
    ``checks[key]``, else :func:`positive`). :func:`resolve_preset` merges them at fit time."""
    checks = checks or {}
    return {
        "preset": Param("paper", str, "tiny (CPU tests) or paper (GPU)", choices=tuple(presets)),
        "max_train_seconds": Param(
            None, float, "stop training early after this many seconds", nullable=True,
            check=positive,
        ),
        **{
            key: Param(
                None,
                float if isinstance(value, float) else type(value),
                f"overrides the preset's {key} (tiny {presets['tiny'][key]}, paper {value})",
                nullable=True,
                check=checks.get(key, positive),
            )
            for key, value in presets["paper"].items()
        },
    }


def resolve_preset(
    presets: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any], preset_key: str = "preset"
) -> dict[str, Any]:
    """Merge a preset's values with explicitly given parameters (``None`` = use the preset)."""
    merged = dict(presets[params[preset_key]])
    for key, value in params.items():
        if value is not None or key not in merged:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- checkpoints
def _config_diff(saved: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    keys = sorted(set(saved) | set(current))
    diffs = [
        f"{k}: checkpoint={saved.get(k, '<absent>')!r} current={current.get(k, '<absent>')!r}"
        for k in keys
        if saved.get(k, "<absent>") != current.get(k, "<absent>")
    ]
    return "; ".join(diffs)


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-like copy (tuples → lists) so saved and current configs compare equal."""

    def conv(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [conv(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): conv(v) for k, v in value.items()}
        return value

    return {str(k): conv(v) for k, v in config.items()}


def save_checkpoint(
    path: Path, name: str, config: Mapping[str, Any], payload: Mapping[str, Any]
) -> None:
    """Atomically write ``payload`` (state dicts, tensors, plain values) with its config."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "generator": name, "config": _plain(config), **payload}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")  # per process
    with open(tmp, "wb") as handle:
        torch.save(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Read a checkpoint (``weights_only=True``) and check it was written for ``config``."""
    data = read_checkpoint(path, name)
    check_config(data, path, name, config)
    return data


def restore_module(
    path: Path,
    name: str,
    config_for: Callable[[Sequence[int], int], Mapping[str, Any]],
    build: Callable[[Sequence[int], int], nn.Module],
    ctx: RunContext,
) -> tuple[nn.Module, dict[str, Any]]:
    """Restore a fitted generator's network from the checkpoint ``fit`` wrote (read once).

    The configuration is rebuilt from the image shape and class count stored in the checkpoint
    and must equal the stored one; the module is built, loaded and moved to ``ctx``'s device.
    """
    data = read_checkpoint(path, name)
    saved = data.get("config", {})
    shape, n_classes = saved.get("image_shape"), saved.get("n_classes")
    if shape is None or n_classes is None:
        raise GeneratorError(f"generator {name!r}: {path} lacks image_shape/n_classes")
    config = config_for(shape, int(n_classes))
    check_config(data, path, name, config)
    module = build(shape, int(n_classes))
    module.load_state_dict(data["state"])
    return prepare_module(module, resolve_device(ctx)).eval(), dict(config)


def read_checkpoint(path: Path, name: str) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` for generator ``name``."""
    if not path.is_file():
        raise GeneratorError(
            f"generator {name!r}: no checkpoint at {path}; run fit() first (it writes this file)"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise GeneratorError(
            f"generator {name!r}: cannot read checkpoint {path} ({exc}); delete it and fit again"
        ) from exc
    if not isinstance(data, dict) or data.get("generator") != name:
        found = data.get("generator") if isinstance(data, dict) else type(data).__name__
        raise GeneratorError(
            f"generator {name!r}: {path} is not a {name} checkpoint (written by {found!r})"
        )
    if data.get("format") != FORMAT:
        raise GeneratorError(
            f"generator {name!r}: {path} has checkpoint format {data.get('format')}, this "
            f"version reads format {FORMAT}; fit again"
        )
    return data


def check_config(data: Mapping[str, Any], path: Path, name: str, config: Mapping[str, Any]) -> None:
    """Refuse a checkpoint written with another configuration, naming both."""
    saved, current = data.get("config", {}), _plain(config)
    if saved != current:
        raise GeneratorError(
            f"generator {name!r}: checkpoint {path} was written with a different configuration "
            f"({_config_diff(saved, current)}). Checkpoint config: {saved}. Current config: "
            f"{current}. Fit again with the current parameters or use the checkpoint's."
        )


# --------------------------------------------------------------------------- training loop
def check_finite(losses: Mapping[str, float], step: int, name: str = "") -> None:
    """GeneratorError ``diverged at step N, loss=nan`` when any loss is NaN or infinite."""
    for key, value in losses.items():
        if not math.isfinite(value):
            who = f"generator {name!r}: " if name else ""
            raise GeneratorError(
                f"{who}training diverged at step {step}, {key}={value} (loss={value}); lower "
                "the learning rate or check the training images"
            )


class TimeBudget:
    """Splits an optional total training time over stages run one after another.

    Each stage may use what is left of the total divided by the number of stages still to
    run, so time a quick stage does not use goes to the later ones.
    """

    def __init__(self, total_seconds: float | None, stages: int) -> None:
        self.total, self.stages_left, self.spent = total_seconds, max(1, stages), 0.0

    def next_limit(self) -> float | None:
        """Seconds the next stage may use (None: unlimited)."""
        if self.total is None:
            return None
        return max(0.0, self.total - self.spent) / max(1, self.stages_left)

    def spend(self, seconds: float) -> None:
        """Record a finished stage."""
        self.spent += seconds
        self.stages_left = max(1, self.stages_left - 1)


StepFn = Callable[[int], Mapping[str, torch.Tensor | float]]


class Trainer:
    """Runs ``step_fn(step)`` for ``total_steps`` steps with checkpoints, guards and progress.

    The step function computes losses under :meth:`autocast` and calls :meth:`backward` for
    each optimiser; it returns the losses to display (tensors or floats). Every
    ``checkpoint_every`` steps (and at the end) the modules, optimisers, scaler, the RNG for
    augmentations (``data_rng``), the global RNG states (:func:`~.rng.rng_state`; codebook
    restarts, noise and dropout draw from them) and elapsed time are saved to
    ``ctx.workdir/<tag>.resume.pt``; a later run with the same configuration resumes from
    there bit for bit (same device and thread count), provided the step function keeps no
    other state across steps and the fit runs under :func:`~.rng.fit_rng`, so the global RNGs
    start each fit alike. A checkpoint without RNG states (an older version's) is refused.
    ``max_seconds`` stops early (counted across resumes; the first step of each run, which
    pays for CUDA/cuDNN warm-up, is not counted).
    """

    def __init__(
        self,
        name: str,
        config: Mapping[str, Any],
        ctx: RunContext,
        modules: Mapping[str, nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        total_steps: int,
        *,
        tag: str = "train",
        description: str = "",
        checkpoint_every: int = 500,
        max_seconds: float | None = None,
        extra_state: Mapping[str, Any] | None = None,
    ) -> None:
        self.name, self.config, self.ctx = name, dict(config), ctx
        self.modules, self.optimizers = dict(modules), dict(optimizers)
        self.total_steps, self.tag = int(total_steps), tag
        self.description = description or f"{name} {tag}"
        self.checkpoint_every, self.max_seconds = max(1, checkpoint_every), max_seconds
        self.device = resolve_device(ctx)
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp(self.device))
        self.data_rng = torch_generator(ctx.seed, 0xDA7A, zlib.crc32(tag.encode()))
        self.extra_state = dict(extra_state or {})
        self.step, self.elapsed, self.last_losses = 0, 0.0, {}  # type: ignore[var-annotated]
        self.resume_path = Path(ctx.workdir) / f"{tag}.resume.pt"

    def batch(self, step: int, n: int, batch_size: int) -> torch.Tensor:
        """Mini-batch indices for ``step`` (see :func:`batch_indices`; resumable)."""
        return batch_indices(step, n, batch_size, self.ctx.seed, zlib.crc32(self.tag.encode()))

    def autocast(self) -> AbstractContextManager[Any]:
        """AMP context for the forward pass (no-op on CPU)."""
        return autocast(self.device)

    def backward(
        self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, clip: float | None = None
    ) -> None:
        """Scaled backward, optional grad-norm clipping, optimiser step, zero grads."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if clip is not None:
            self.scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip)
        self.scaler.step(optimizer)
        self.scaler.update()

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "data_rng": self.data_rng.get_state(),
            "rng": rng_state(),
            "extra": self.extra_state,
        }

    def save(self) -> None:
        """Write the resume checkpoint now."""
        save_checkpoint(self.resume_path, self.name, self.config, self._state())

    def try_resume(self) -> bool:
        """Restore from the resume checkpoint when one exists; True when resumed."""
        if not self.resume_path.is_file():
            return False
        data = load_checkpoint(self.resume_path, self.name, self.config)
        if "rng" not in data:
            raise GeneratorError(
                f"generator {self.name!r}: resume checkpoint {self.resume_path} was written by "
                "an earlier version that did not save the random-number state, so resuming "
                "from it would not reproduce an uninterrupted fit; delete it (or its work "
                "directory) and fit again"
            )
        for key, module in self.modules.items():
            module.load_state_dict(data["modules"][key])
        for key, opt in self.optimizers.items():
            opt.load_state_dict(data["optimizers"][key])
        self.scaler.load_state_dict(data["scaler"])
        self.data_rng.set_state(data["data_rng"])
        set_rng_state(data["rng"])
        self.extra_state.update(data.get("extra", {}))
        self.step, self.elapsed = int(data["step"]), float(data["elapsed"])
        self.ctx.log(f"{self.name}: resuming {self.tag} from step {self.step} ({self.resume_path})")
        return True

    def run(self, step_fn: StepFn) -> dict[str, Any]:
        """Train to ``total_steps`` (or ``max_seconds``); return steps, seconds, final losses."""
        self.try_resume()
        for module in self.modules.values():
            module.train()
        start = time.perf_counter() - self.elapsed
        # The first step of a run pays for CUDA/cuDNN initialisation and autotuning; it is not
        # counted against max_seconds so a short stage is not stopped after one step.
        warmup: float | None = None
        with self.ctx.progress(self.description, total=self.total_steps) as task:
            task.advance(self.step)
            while self.step < self.total_steps:
                if (
                    self.max_seconds is not None
                    and self.elapsed - (warmup or 0.0) > self.max_seconds
                ):
                    break  # e.g. a resumed stage that had already used its time
                raw = step_fn(self.step)
                losses = {
                    k: float(v.detach().float().item()) if isinstance(v, torch.Tensor) else float(v)
                    for k, v in raw.items()
                }
                check_finite(losses, self.step, self.name)
                self.step += 1
                self.last_losses = losses
                before, self.elapsed = self.elapsed, time.perf_counter() - start
                if warmup is None:
                    warmup = self.elapsed - before
                task.advance(1)
                if self.step % 10 == 0 or self.step == self.total_steps:
                    task.update(**{k: f"{v:.4g}" for k, v in losses.items()})
                out_of_time = (
                    self.max_seconds is not None and self.elapsed - warmup >= self.max_seconds
                )
                if self.step % self.checkpoint_every == 0 or out_of_time:
                    self.save()
                if out_of_time:
                    self.ctx.log(
                        f"{self.name}: {self.tag} stopped at step {self.step} (time limit)"
                    )
                    break
        for module in self.modules.values():
            module.eval()
        self.save()
        return {"steps": self.step, "seconds": self.elapsed, "losses": dict(self.last_losses)}


# --------------------------------------------------------------------------- efficiency
def measure_sampling(
    sample_fn: Callable[[int], object], device: torch.device, n_timed: int = 64
) -> dict[str, float | None]:
    """Peak GPU memory (MB) to sample 8 images and seconds per 1000 images.

    ``sample_fn(n)`` must generate ``n`` images. On CPU the memory is ``None``.
    """
    sample_fn(2)  # warm-up: kernels, allocator, lazy init
    memory: float | None = None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        sample_fn(8)
        torch.cuda.synchronize(device)
        memory = torch.cuda.max_memory_allocated(device) / 2**20
    start = time.perf_counter()
    sample_fn(n_timed)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"peak_gpu_memory_mb_8": memory, "seconds_per_1000": seconds * 1000.0 / n_timed}
