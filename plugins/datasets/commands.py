"""``medsynbench data info`` and ``medsynbench data prepare`` (added via ``register_commands``).

``data info NAME [--root P] [--set key=value ...] [--out DIR]`` loads a dataset, prints
its provenance, its splits with counts per class (flagging class imbalance), a "Duplicates"
section (exact and near-duplicate pairs within and across splits, examples by name: the
dataset's own report when it made one, else an audit of the loaded splits) and writes a sample
mosaic (one row per class) under ``DIR`` (default ``runs/data-info/``; a ``.png`` path is used
as given). ``data prepare NAME`` fills the prepared cache (``--cache-dir`` or
``$MEDSYNBENCH_CACHE``); ``data prepare bcss-lizard --slides S --masks M --out D`` cuts the
pathology study's 6-class patches from BCSS-style slides and masks.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from medsynbench import Dataset, DataSplits, RunContext, hookimpl
from medsynbench.errors import DataError, ParameterError
from medsynbench.hygiene import DuplicateReport, audit

__all__ = [
    "cmd_info",
    "cmd_prepare",
    "duplicate_report",
    "format_duplicates",
    "format_info",
    "mosaic_path",
    "parse_settings",
    "register_commands",
]

IMBALANCE_RATIO = 1.5  # largest / smallest class count above which `data info` warns


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``["resolution=64", "classes=3"]`` → typed dict (JSON values, else strings)."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ParameterError(f"--set {pair!r}: expected key=value")
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    return settings


def _create(name: str, root: str | None, settings: dict[str, Any]) -> Dataset:
    from medsynbench.registry import get_registry

    params = dict(settings)
    if root is not None:
        cls = get_registry().get("dataset", name)
        if "root" not in cls.parameters:
            raise ParameterError(f"dataset {name!r} reads no files: --root does not apply")
        params["root"] = root
    plugin = get_registry().create("dataset", name, params, where=f"dataset {name}")
    assert isinstance(plugin, Dataset)
    return plugin


def _context(cache_dir: str | None) -> tuple[RunContext, Any]:
    from medsynbench.progress import ProgressUI

    ui = ProgressUI()
    ctx = RunContext(progress=ui.task, log=ui.print,
                     cache_dir=Path(cache_dir) if cache_dir else None)
    return ctx, ui


def duplicate_report(data: DataSplits) -> DuplicateReport:
    """The dataset's own duplicate report (``info["duplicates"]``), else an audit of its splits."""
    stored = data.info.get("duplicates")
    if isinstance(stored, dict) and "cluster_list" in stored:
        return DuplicateReport.from_json(stored)
    return audit(data.splits)


def format_duplicates(report: DuplicateReport, examples: int = 3) -> list[str]:
    """The "Duplicates" section of ``data info``."""
    lines = [
        "Duplicates",
        f"  exact = same decoded pixels; near = pHash within {report.threshold} bits and "
        f"thumbnail correlation ≥ {report.correlation:g}"
        + (" (also rotated/flipped)" if report.dihedral else "")
        + f"; policy {report.policy!r}",
    ]
    for split, pairs in report.within.items():
        lines.append(f"  within {split:<14}{pairs['exact']:>6} exact pairs {pairs['near']:>6} near")
    for key, pairs in report.across.items():
        lines.append(f"  across {key:<14}{pairs['exact']:>6} exact pairs {pairs['near']:>6} near")
    if not report.across:
        lines.append("  across splits: none")
    lines.append(f"  clusters: {len(report.clusters)} ({len(report.cross_split)} across splits)")
    for split, names in report.removed.items():
        lines.append(f"  dropped by the policy from {split}: {len(names)}, e.g. "
                     + ", ".join(names[:examples]))
    shown = report.cross_split[:examples] or report.clusters[:examples]
    for cluster in shown:
        members = ", ".join(n if f"{s}/" in n or n.startswith(f"{s}[") else f"{s}:{n}"
                            for s, n in cluster.members[:4])
        more = f" (+{len(cluster.members) - 4})" if len(cluster.members) > 4 else ""
        lines.append(f"  e.g. {cluster.kind}: {members}{more}")
    return lines


def format_info(dataset: Dataset, data: DataSplits,
                duplicates: DuplicateReport | None = None) -> list[str]:
    """The lines ``data info`` prints: provenance, a table of splits × classes, duplicates."""
    lines = [
        f"dataset      {dataset.name} {dataset.version}",
        f"modality     {data.modality}",
        f"image shape  {'×'.join(str(v) for v in data.image_shape)} (C×H×W, uint8)",
        f"citation     {dataset.citation}",
        f"license      {dataset.license}",
    ]
    if "root" in dataset.params:
        lines.append(f"root         {data.info.get('root', dataset.params.get('root'))}")
    width = max(12, *(len(c) for c in data.class_names))
    lines.append("")
    lines.append(f"{'split':<14}{'total':>8}  " + "  ".join(f"{c:>{width}}" for c in
                                                          data.class_names))
    warnings = []
    for name, split in data.splits.items():
        counts = split.counts(data.n_classes)
        row = "  ".join(f"{int(n):>{width}}" for n in counts)
        groups = "" if split.groups is None else f"   ({len(np.unique(split.groups))} groups)"
        lines.append(f"{name:<14}{len(split):>8}  {row}{groups}")
        present = counts[counts > 0]
        if len(present) > 1 and present.max() / present.min() > IMBALANCE_RATIO:
            big = int(counts.argmax())
            small = int(np.flatnonzero(counts == present.min())[0])
            warnings.append(
                f"class imbalance in {name!r}: largest/smallest class = "
                f"{present.max() / present.min():.2f} ({data.class_names[big]} "
                f"{int(counts[big])} vs {data.class_names[small]} {int(counts[small])})"
            )
        if len(present) < data.n_classes and len(split):
            missing = [data.class_names[i] for i in np.flatnonzero(counts == 0)]
            warnings.append(f"split {name!r} has no images of {', '.join(missing)}")
    skipped = data.info.get("skipped_files") or []
    if skipped:
        warnings.append(f"{len(skipped)} unreadable files were skipped, e.g. {skipped[0]}")
    if data.info.get("upsampled"):
        warnings.append(f"{data.info['upsampled']} images were upsampled to the resolution")
    if duplicates is not None:
        lines.append("")
        lines.extend(format_duplicates(duplicates))
        if duplicates.cross_split:
            warnings.append(f"{len(duplicates.cross_split)} cluster(s) of duplicate images "
                            "straddle splits (see Duplicates)")
    if warnings:
        lines.append("")
        lines.extend(f"warning: {w}" for w in warnings)
    return lines


DEFAULT_INFO_OUT = Path("runs") / "data-info"


def mosaic_path(out: str | None, name: str, split: str | None) -> Path:
    """Where ``data info`` writes its mosaic: ``--out`` as a folder (or a ``.png`` file),
    by default under ``runs/data-info/`` — never into the working directory itself."""
    file_name = f"{name.replace(':', '_')}-{split or 'train'}-mosaic.png"
    if out is None:
        return DEFAULT_INFO_OUT / file_name
    path = Path(out).expanduser()
    return path if path.suffix.lower() == ".png" else path / file_name


def cmd_info(args: argparse.Namespace) -> int:
    """Handler of ``data info``: print counts per split and class, write a mosaic PNG."""
    from medsynbench.mosaic import save_mosaic

    dataset = _create(args.name, args.root, parse_settings(args.set))
    ctx, ui = _context(args.cache_dir)
    with ui:
        data = dataset.load(ctx)
    for line in format_info(dataset, data, duplicate_report(data)):
        print(line)
    split = data[args.split] if args.split else data.train
    out = mosaic_path(args.out, args.name, args.split)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_mosaic(np.asarray(split.images), split.labels, out, per_class=args.per_class)
    print(f"\nmosaic ({args.split or 'train'}, rows = {', '.join(data.class_names)}): {out}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """Handler of ``data prepare``: patch extraction for bcss-lizard, else fill the cache."""
    if args.name == "bcss-lizard" and args.slides:
        from .bcss_prepare import load_mapping, prepare_bcss_lizard

        if not args.masks or not args.out:
            raise ParameterError("data prepare bcss-lizard --slides needs --masks and --out")
        ctx, ui = _context(None)
        with ui:
            counts = prepare_bcss_lizard(
                Path(args.slides), Path(args.masks), Path(args.out), ctx,
                patch=args.patch, min_fraction=args.min_fraction, seed=args.seed,
                paper_sizes=not args.all_patches,
                mapping=load_mapping(Path(args.mapping) if args.mapping else None),
            )
        for split, per_class in counts.items():
            print(f"{split:<8}" + "  ".join(f"{c}={n}" for c, n in per_class.items()))
        print(f"patches written under {args.out}; load them with root = \"{args.out}\"")
        return 0
    if not (args.cache_dir or os.environ.get("MEDSYNBENCH_CACHE")):
        raise DataError("data prepare NAME needs --cache-dir DIR (or $MEDSYNBENCH_CACHE)")
    dataset = _create(args.name, args.root, parse_settings(args.set))
    ctx, ui = _context(args.cache_dir)
    with ui:
        data = dataset.load(ctx)
    print(f"{args.name}: prepared {', '.join(f'{k}={len(v)}' for k, v in data.splits.items())}")
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    """Add ``data info`` and ``data prepare``."""
    data = subparsers.add_parser("data", help="inspect and prepare datasets")
    sub = data.add_subparsers(dest="data_command", required=True)

    info = sub.add_parser("info", help="counts per split and class, provenance, sample mosaic")
    info.add_argument("name", help="dataset plugin name (see `medsynbench list datasets`)")
    info.add_argument("--root", help="dataset folder (default: the plugin's lookup)")
    info.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="dataset parameter (repeatable), e.g. --set resolution=64")
    info.add_argument("--out", help="output folder of the mosaic PNG, or a .png path "
                      f"(default: {DEFAULT_INFO_OUT}/NAME-SPLIT-mosaic.png)")
    info.add_argument("--split", help="split shown in the mosaic (default: train)")
    info.add_argument("--per-class", type=int, default=8, help="mosaic images per class")
    info.add_argument("--cache-dir", help="prepared-data cache (default: $MEDSYNBENCH_CACHE)")
    info.set_defaults(func=cmd_info)

    prepare = sub.add_parser("prepare", help="fill the prepared cache, or cut bcss-lizard patches")
    prepare.add_argument("name")
    prepare.add_argument("--root")
    prepare.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    prepare.add_argument("--cache-dir")
    prepare.add_argument("--slides", help="bcss-lizard: folder of slide/ROI images")
    prepare.add_argument("--masks", help="bcss-lizard: folder of label masks (same file stems)")
    prepare.add_argument("--out", help="bcss-lizard: output root of the class-folder patches")
    prepare.add_argument("--patch", type=int, default=256, help="patch side in pixels")
    prepare.add_argument("--min-fraction", type=float, default=0.5,
                         help="share of a patch its majority class must cover")
    prepare.add_argument("--seed", type=int, default=0)
    prepare.add_argument("--mapping", help="bcss-lizard: JSON class → mask codes (default: BCSS "
                         "codes; Lizard codes when every mask is a Lizard .mat label file)")
    prepare.add_argument("--all-patches", action="store_true",
                         help="keep every patch instead of the paper's split sizes")
    prepare.set_defaults(func=cmd_prepare)
