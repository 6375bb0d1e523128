"""The ``medsynbench`` command line.

    medsynbench run SUITE.toml [--out DIR] [--device auto|cpu|cuda] [--force STAGE] [--only ENTRY]
                               [--executor local|ray|slurm] [--address HOST:PORT] [--set KEY=VALUE]
    medsynbench plan SUITE.toml [--json]
    medsynbench validate SUITE.toml...
    medsynbench plugins [--json]
    medsynbench list KIND
    medsynbench leaderboard RESULTS.json... --out DIR      (and: leaderboard publish)
    medsynbench reader-study build RUN_DIR --out DIR      (and: reader-study score)

Plugins add commands through the ``register_commands`` hook (e.g. ``medsynbench data info``).
User errors print one message and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .errors import MedSynBenchError
from .params import did_you_mean
from .registry import get_registry

__all__ = ["build_parser", "main"]


def _executor_override(args: argparse.Namespace, suite: Any, registry: Any) -> None:
    """``--executor``/``--address``/``--set`` replace the suite's ``[executor]`` table (settings
    given on the command line are added to the suite's when the executor is the same)."""
    from .suite import executor_spec

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    if not (args.executor or args.address or args.set):
        return
    plugin = args.executor or suite.executor.plugin
    table: dict[str, Any] = {"plugin": plugin}
    if plugin == suite.executor.plugin:
        defaults = registry.get("executor", plugin).parameters
        table |= {k: v for k, v in suite.executor.params.items() if v != defaults[k].default}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise MedSynBenchError(f"--set {item!r}: expected KEY=VALUE, e.g. --set partition=gpu")
        try:
            value: Any = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text  # a bare word: a string
        table[key.strip()] = value
    if args.address:
        table["address"] = args.address
    suite.executor = executor_spec(table, registry, "--executor")


def _runner(args: argparse.Namespace, ui: Any = None) -> Any:
    """The suite of ``args`` and a Runner for it, with the command line's overrides."""
    from .devices import resolve_device
    from .runner import STAGES, Runner
    from .suite import load_suite

    bad = [s for s in getattr(args, "force", []) if s not in STAGES]
    if bad:
        raise MedSynBenchError(
            f"--force {bad[0]!r}: unknown stage{did_you_mean(bad[0], STAGES)}; "
            f"stages: {', '.join(STAGES)}"
        )
    registry = get_registry()
    suite = load_suite(args.suite, registry, args.allow_underpowered)
    _executor_override(args, suite, registry)
    out_dir = Path(args.out).expanduser() if args.out else suite.output_dir
    cache_dir = Path(args.cache_dir).expanduser() if args.cache_dir else suite.cache_dir
    # Resolved here, where it is known whether the flag or the suite asked for the device.
    source = "--device" if args.device else f"{suite.path}: suite.device"
    device = resolve_device(args.device or suite.device, source)
    return Runner(suite, registry, out_dir, cache_dir, device,
                  tuple(getattr(args, "force", ())), tuple(args.only), ui,
                  getattr(args, "debug", False), data_parallel=args.data_parallel)


def _cmd_run(args: argparse.Namespace) -> int:
    from .progress import ProgressUI

    console = Console(stderr=True)
    with ProgressUI(console, enabled=not args.quiet) as ui:
        runner = _runner(args, ui)
        suite, out_dir = runner.suite, runner.out_dir
        for warning in suite.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}", markup=True, highlight=False)
        results = runner.run()
    failed = [e for e in results["entries"] if e["status"] != "ok"]
    console.print(
        f"[bold]{suite.name}[/bold]: {len(results['entries'])} entries, "
        f"wall {results['manifest']['wall_seconds']:.1f}s → {out_dir / 'results.json'}"
    )
    print((out_dir / "leaderboard.md").read_text())
    from .checks import evaluate_checks
    from .leaderboard import rank_entries

    broken = [
        c for c in evaluate_checks(suite.checks, rank_entries(results["entries"]))
        if c["passed"] is not True
    ]
    for check in broken:
        console.print(
            f"[red]check failed:[/red] {check['entry']} {check['value']} {check['expect']} "
            f"(observed {check['observed']})",
            markup=True,
        )
    if failed:
        console.print(f"[red]{len(failed)} entr{'y' if len(failed) == 1 else 'ies'} failed:[/red]")
        for entry in failed:
            console.print(
                f"  - {entry['name']} ({entry['failed_stage']}): {entry['error'].splitlines()[0]}",
                markup=False,
            )
        return 1
    return 1 if broken else 0


def _cmd_plan(args: argparse.Namespace) -> int:
    """Print the run's graph of units: cached or to run, needs, cost, waves."""
    runner = _runner(args)
    plan = runner.plan()
    if args.json:
        doc = {"suite": runner.suite.name, "suite_hash": runner.suite.hash,
               "executor": runner.suite.executor.plugin, "cache_dir": str(runner.cache.root),
               **plan.as_dict()}
        print(json.dumps(doc, indent=2))
        return 0
    table = Table("unit", "stage", "after", "needs", "cost", "state", title=(
        f"{runner.suite.name}: {len(plan)} units, {len(plan.pending)} to run, "
        f"{len(plan) - len(plan.pending)} cached; up to {plan.parallel} at once "
        f"(executor {runner.suite.executor.plugin}, cache {runner.cache.root})"))
    for unit in plan:
        needs = f"{unit.needs.cpus} cpu" + (f", {unit.needs.gpus} gpu" if unit.needs.gpus else "")
        cost = "?" if unit.cost_seconds is None else f"{unit.cost_seconds:.1f}s"
        after = ", ".join(unit.after) if len(unit.after) <= 2 else f"{len(unit.after)} units"
        table.add_row(unit.id, unit.stage, after, needs, cost,
                      "cached" if unit.cached else "to run")
    Console(width=max(120, Console().width)).print(table)
    waves = plan.waves()
    print(f"waves of units that can run at once: {[len(w) for w in waves]}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .suite import load_suite, power_report

    registry = get_registry()
    status = 0
    for path in args.suites:
        try:
            suite = load_suite(path, registry, args.allow_underpowered)
        except MedSynBenchError as exc:
            print(f"✗ {exc}", file=sys.stderr)
            status = 2
            continue
        print(
            f"✓ {path}: suite {suite.name!r}, {len(suite.entries)} entries, "
            f"{len(suite.metrics)} metrics, {len(suite.tasks)} tasks, hash {suite.hash[:12]}"
        )
        for warning in suite.warnings:
            print(f"  warning: {warning}")
        for row in power_report(suite, registry):
            print(
                f"  power: {row['task']}, {row['size']} {row['family']}, {row['seeds']} seeds → "
                f"smallest Holm p {row['min_adjusted_p']:.3g} "
                f"({'can' if row['reachable'] else 'CANNOT'} reach 0.05; "
                f"needs ≥ {row['seeds_needed']} seeds)"
            )
    return status


def _cmd_plugins(args: argparse.Namespace) -> int:
    infos = get_registry().infos()
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=2))
        return 0
    table = Table("kind", "name", "version", "distribution", "description")
    for info in infos:
        table.add_row(
            info.kind,
            info.name,
            info.version,
            f"{info.distribution} {info.distribution_version}",
            info.description,
        )
    Console().print(table)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    kind = args.kind[:-1] if args.kind.endswith("s") else args.kind
    registry = get_registry()
    registry.names(kind)  # raises with a did-you-mean for an unknown kind
    for info in registry.infos([kind]):
        print(f"{info.name:<24} {info.description}")
    return 0


def _executor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", help="where units run: local (default), ray, slurm "
                        "(overrides the suite's [executor] table)")
    parser.add_argument("--address", help="ray: an existing cluster, 'auto' or HOST:PORT")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an executor setting, e.g. --set partition=gpu (repeatable)")
    parser.add_argument("--data-parallel", type=int, default=1, metavar="N",
                        help="train each utility classifier data-parallel on N GPUs (DDP; on "
                        "the CPU: N gloo processes); numbers agree with one device only to "
                        "tolerance")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, including commands added by plugins."""
    parser = argparse.ArgumentParser(
        prog="medsynbench", description="Is this synthetic medical image data useful?"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="run a suite and write results.json, results.csv, leaderboard.md"
    )
    run.add_argument("suite", type=Path)
    run.add_argument("--out", help="output directory (default: [output] dir of the suite)")
    run.add_argument("--cache-dir", help="stage cache (default: OUT/cache)")
    run.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), help="default: the suite's device"
    )
    run.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="STAGE",
        help="recompute STAGE and every later stage (repeatable)",
    )
    run.add_argument(
        "--only", action="append", default=[], metavar="ENTRY", help="run only ENTRY (repeatable)"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    underpowered = (
        "run even when the suite's seeds cannot reach p < 0.05 for its number of entries"
    )
    run.add_argument("--allow-underpowered", action="store_true", help=underpowered)
    _executor_arguments(run)
    run.set_defaults(func=_cmd_run)

    plan = sub.add_parser("plan", help="print a suite's graph of units: cached, to run, waves")
    plan.add_argument("suite", type=Path)
    plan.add_argument("--json", action="store_true", help="the plan as JSON")
    plan.add_argument("--out", help="output directory (default: [output] dir of the suite)")
    plan.add_argument("--cache-dir", help="stage cache (default: OUT/cache)")
    plan.add_argument("--device", choices=("auto", "cpu", "cuda"))
    plan.add_argument("--only", action="append", default=[], metavar="ENTRY")
    plan.add_argument("--allow-underpowered", action="store_true", help=underpowered)
    _executor_arguments(plan)
    plan.set_defaults(func=_cmd_plan)

    validate = sub.add_parser("validate", help="check suite files without running them")
    validate.add_argument("suites", nargs="+", type=Path)
    validate.add_argument("--allow-underpowered", action="store_true", help=underpowered)
    validate.set_defaults(func=_cmd_validate)

    plugins = sub.add_parser("plugins", help="list every plugin with its distribution and version")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=_cmd_plugins)

    lister = sub.add_parser(
        "list", help="list plugins of one kind (datasets, generators, encoders, metrics, tasks)"
    )
    lister.add_argument("kind")
    lister.set_defaults(func=_cmd_list)

    from .leaderboard import cli as leaderboard_cli

    leaderboard_cli.add_parser(sub)
    from .reader_study import cli as reader_study_cli

    reader_study_cli.add_parser(sub)
    get_registry().hook.register_commands(subparsers=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    from .devices import prefer_passive_openmp

    prefer_passive_openmp()  # before anything imports torch
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        args = build_parser().parse_args(args_list)
        result: Any = args.func(args)
        return int(result or 0)
    except MedSynBenchError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted — re-run the same command to resume from the completed stages",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
