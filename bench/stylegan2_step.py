"""Seconds and op count of one StyleGAN2 training step: this checkout vs a git revision.

Both implementations are driven through the plugin's own ``fit`` (the step function it hands
to the Trainer is captured and run here), on the same random uint8 images, configuration,
seed, device and thread count, so the figures compare code, not set-ups. The default
configuration is the one ``bench/generator_evidence.py`` trains at 64 px. R1 runs every
``r1_interval`` steps, so a plain step and an R1 step are timed and profiled separately and
combined as ``((interval - 1) * plain + r1) / interval``. "ops" are the top-level events
torch.profiler records per step (aten calls from Python plus one per autograd node).

    python bench/stylegan2_step.py                       # CPU, 1 thread, vs eae3a3b
    python bench/stylegan2_step.py --device cuda --batch 64 \
        --baseline .gpu_carry/genb/baseline_eae3a3b          # no git on the GPU machine
    python bench/stylegan2_step.py --rev HEAD --size 32 --batch 16
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from _checkout import REPO, ensure_medsynbench  # bench/ is sys.path[0] when run
from generator_evidence import EVIDENCE_PARAMS

ensure_medsynbench()
from medsynbench import ImageSet, RunContext  # noqa: E402

# The implementation before the step was reworked (per-step syncs, per-parameter Adam...).
BASELINE_REV = "eae3a3b"
# generator_evidence.py's StyleGAN2 settings (the baseline has no `augment`; the working
# tree runs without DiffAugment too unless --augment is given).
GPU_SCRIPT_PARAMS: dict[str, Any] = {
    k: v for k, v in EVIDENCE_PARAMS["stylegan2"].items() if k not in ("augment", "kimg")}


def load_generators(root: Path, alias: str) -> ModuleType:
    """Import the stylegan2 module of an extracted ``root`` as package ``alias`` (its relative
    imports stay inside the extracted copy)."""
    init = root / "__init__.py"
    init.write_text("")  # skip the package's plugin list (other families, optional deps)
    spec = importlib.util.spec_from_file_location(alias, init,
                                                  submodule_search_locations=[str(root)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[alias] = package
    spec.loader.exec_module(package)
    return importlib.import_module(f"{alias}.stylegan2")


def checkout_revision(rev: str, into: Path) -> Path:
    """``plugins/generators`` as of ``rev`` (git archive; the working tree is not touched)."""
    tar = subprocess.run(["git", "-C", str(REPO), "archive", rev, "plugins/generators"],
                         check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into / "plugins" / "generators"


class _Measured(Exception):
    def __init__(self, figures: dict[str, Any]) -> None:
        self.figures = figures


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(module: ModuleType, params: dict[str, Any], images: ImageSet, device: str,
            repeats: int) -> dict[str, Any]:
    """Seconds and profiler events for a plain step and an R1 step of ``module.StyleGAN2``."""
    base = module.Trainer

    class Probe(base):  # type: ignore[misc, valid-type]
        def run(self, step_fn: Any) -> dict[str, Any]:
            for m in self.modules.values():
                m.train()
            interval = int(params.get("r1_interval") or 16)

            def one(i: int) -> None:
                # what Trainer.run does with the returned losses (a host sync per tensor)
                for value in step_fn(i).values():
                    if isinstance(value, torch.Tensor):
                        float(value.detach().float().item())

            one(0)  # warm-up: an R1 step and a plain one (allocator, autotuning)
            one(1)
            figures: dict[str, Any] = {}
            for kind, steps in (("plain", [2 + r for r in range(repeats + 1)]),
                                ("r1", [interval * (1 + r) for r in range(repeats + 1)])):
                times = []
                for i in steps[:-1]:
                    _sync(self.device)
                    start = time.perf_counter()
                    one(i)
                    _sync(self.device)
                    times.append(time.perf_counter() - start)
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
                    one(steps[-1])
                events = p.events()
                figures[kind] = {
                    "seconds": min(times),
                    "ops": sum(1 for e in events if e.cpu_parent is None),
                    "aten_calls": sum(1 for e in events if e.name.startswith("aten::")),
                }
            figures["per_step"] = {
                key: ((interval - 1) * figures["plain"][key] + figures["r1"][key]) / interval
                for key in ("seconds", "ops", "aten_calls")
            }
            raise _Measured(figures)

    module.Trainer = Probe
    try:
        with tempfile.TemporaryDirectory() as work:
            ctx = RunContext(device=device, seed=0, workdir=Path(work))
            accepted = {k: v for k, v in params.items() if k in module.StyleGAN2.parameters}
            gen = module.StyleGAN2(**accepted)
            gen.fit(images, [f"c{i}" for i in range(5)], Path(work), ctx)
    except _Measured as done:
        return done.figures
    finally:
        module.Trainer = base
    raise RuntimeError("fit finished without running a step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default=BASELINE_REV, help="git revision to compare with")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a folder holding that revision's stylegan2.py, "
                             "stylegan2_networks.py and training.py (where git is unavailable)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=GPU_SCRIPT_PARAMS["batch_size"])
    parser.add_argument("--repeats", type=int, default=2, help="timed steps of each kind (best)")
    parser.add_argument("--augment", default="",
                        help="DiffAugment policy for the working tree (e.g. color,cutout)")
    parser.add_argument("--channel-max", type=int, default=GPU_SCRIPT_PARAMS["channel_max"],
                        help="e.g. 8: so little arithmetic that the per-op overhead is the step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    images = ImageSet(rng.integers(0, 256, (256, 3, args.size, args.size), dtype=np.uint8),
                      np.arange(256) % 5)
    params = {**GPU_SCRIPT_PARAMS, "batch_size": args.batch, "channel_max": args.channel_max,
              "augment": args.augment}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline is not None:
            root = Path(tmp) / "generators"
            shutil.copytree(args.baseline, root)
        else:
            root = checkout_revision(args.rev, Path(tmp))
        old = load_generators(root, "_sg2_baseline")
        new = importlib.import_module("medsynbench.plugins.generators.stylegan2")
        for label, module in ((args.rev, old), ("working tree", new)):
            rows[label] = measure(module, params, images, args.device, args.repeats)
    print(f"StyleGAN2 training step, {args.size} px, batch {args.batch}, channel_max "
          f"{args.channel_max}, augment {args.augment!r}, device {args.device}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    print(f"{'implementation':>14} {'s/step':>8} {'plain s':>8} {'R1 s':>8} "
          f"{'ops/step':>9} {'aten/step':>10}")
    for label, fig in rows.items():
        print(f"{label:>14} {fig['per_step']['seconds']:8.3f} {fig['plain']['seconds']:8.3f} "
              f"{fig['r1']['seconds']:8.3f} {fig['per_step']['ops']:9.0f} "
              f"{fig['per_step']['aten_calls']:10.0f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
