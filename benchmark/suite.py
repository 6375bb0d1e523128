"""Suites: TOML files describing one benchmark — dataset, generators, encoders, metrics, tasks.

Loading resolves ``include`` (a base file, merged underneath), expands ``~`` and ``${ENV}`` in
strings, checks every key against the suite schema (file, dotted key path, expected type and a
did-you-mean) and then lets every plugin validate its own parameters — all before any work.
Every problem of a suite is collected (one table's failure does not hide the next table's), and
what can be checked across tables is: a dataset's counts known from its parameters
(``planned_splits``: two classes, two training and one test image per class, memory), k-NN
``k`` against the reference set, split names, the sizes of sampled sets, and every generator's
:class:`~medsynbench.kinds.ImageSize` against the dataset's image size when its parameters fix
it (:func:`check_image_size` does it for the runner once data whose size only the files tell
is prepared).
A list in a generator's ``sample`` table, for a parameter the plugin declares sweepable,
expands into one entry per value (e.g. StyleGAN2 truncation).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import parse_checks
from .data import SplitPlan, format_bytes, memory_bytes
from .errors import MedSynBenchError, SuiteError, UnknownPluginError
from .kinds import Dataset, Encoder, Generator, ImageSize, Metric, Plugin
from .params import did_you_mean, type_name
from .registry import PluginRegistry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "EntrySpec",
    "MetricSpec",
    "PluginSpec",
    "Suite",
    "build_suite",
    "check_image_size",
    "executor_spec",
    "load_suite",
    "power_report",
    "read_suite_file",
]

# Runner-level keys of each table. Plugin tables accept these plus the plugin's parameters.
_TOP = {
    "include": (str, list),
    "suite": dict,
    "dataset": dict,
    "generators": list,
    "encoders": list,
    "metrics": list,
    "tasks": list,
    "output": dict,
    "checks": list,
    "executor": dict,
}
_SUITE = {
    "name": str,
    "description": str,
    "reference": str,
    "version": str,
    "seeds": list,
    "device": str,
    "cpu_threads": int,
}
_OUTPUT = {"dir": str, "cache_dir": str}
_GENERATOR = {"plugin": str, "name": str, "split": str, "count": int, "train": dict, "sample": dict}
_DEVICES = ("auto", "cpu", "cuda")
# Parameters that locate files on one machine: excluded from the suite hash so that two users'
# runs of the same suite compare, while still part of every cache key.
_LOCAL_KEYS = frozenset({"root", "file", "path", "dir", "weights", "cache_dir"})
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# More torch threads than this is a typo, not a machine (cpu_threads = 100000).
MAX_CPU_THREADS = 1024


@dataclass(frozen=True)
class PluginSpec:
    """A validated plugin table: entry name, plugin name and its complete parameters."""

    name: str
    plugin: str
    params: dict[str, Any]
    where: str


@dataclass(frozen=True)
class MetricSpec(PluginSpec):
    """A metric table plus the encoder entry it reads (None for image metrics)."""

    encoder: str | None = None


@dataclass(frozen=True)
class EntrySpec:
    """One leaderboard entry: a generator, its fit split, train and (expanded) sample params."""

    name: str
    plugin: str
    split: str
    count: int | None
    train: dict[str, Any]
    sample: dict[str, Any]
    where: str


@dataclass
class Suite:
    """A validated suite, ready to run."""

    path: Path
    name: str
    description: str
    reference: str
    version: str
    seeds: list[int]
    device: str
    dataset: PluginSpec
    entries: list[EntrySpec]
    encoders: dict[str, PluginSpec]
    metrics: list[MetricSpec]
    tasks: list[PluginSpec]
    output_dir: Path
    cache_dir: Path | None
    # torch's CPU thread count for the whole run on the CPU (None: torch's default). Float
    # reductions depend on it, so a fixed count makes a CPU run reproducible on the same CPU
    # type and software stack (manifest float_stack_id; float kernels differ across CPUs).
    cpu_threads: int | None = None
    # Known-answer checks (medsynbench.checks): assertions about the board, not the protocol.
    checks: list[dict[str, str]] = field(default_factory=list)
    # Things that will work but not as the user may expect (printed by validate and run).
    warnings: list[str] = field(default_factory=list)
    # "kind:plugin" → the plugin class's version, filled in from the registry when the suite is
    # built. Part of both hashes: a plugin whose computation changed bumps its version.
    plugin_versions: dict[str, str] = field(default_factory=dict)
    hash: str = field(default="")
    protocol_hash: str = field(default="")
    # Where the units run ([executor] table; ``--executor`` overrides it). Not part of either
    # hash: an executor changes where a unit runs, never its numbers.
    executor: PluginSpec = field(
        default_factory=lambda: PluginSpec("local", "local", {}, "executor"))

    def _version(self, kind: str, plugin: str) -> str | None:
        return self.plugin_versions.get(f"{kind}:{plugin}")

    def protocol(self) -> dict[str, Any]:
        """What makes two results comparable: name, version, seeds, and the dataset, encoders,
        metrics and tasks with their plugin versions and parameters (machine-local paths and
        the device excluded). ``protocol_hash`` is the hash of this document; two results with
        different hashes differ in at least one of its top-level fields."""
        return {k: v for k, v in self.canonical().items() if k != "entries"}

    def canonical(self) -> dict[str, Any]:
        """:meth:`protocol` plus the entries (generators with their versions and parameters):
        what ``hash`` identifies."""

        def portable(params: Mapping[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in params.items() if k not in _LOCAL_KEYS}

        return {
            "name": self.name,
            "version": self.version,
            "seeds": self.seeds,
            "dataset": [
                self.dataset.plugin,
                self._version("dataset", self.dataset.plugin),
                portable(self.dataset.params),
            ],
            "entries": [
                [e.name, e.plugin, self._version("generator", e.plugin), e.split, e.count,
                 portable(e.train), portable(e.sample)]
                for e in self.entries
            ],
            "encoders": {
                k: [v.plugin, self._version("encoder", v.plugin), portable(v.params)]
                for k, v in self.encoders.items()
            },
            "metrics": [
                [m.name, m.plugin, self._version("metric", m.plugin), m.encoder,
                 portable(m.params)]
                for m in self.metrics
            ],
            "tasks": [
                [t.name, t.plugin, self._version("task", t.plugin), portable(t.params)]
                for t in self.tasks
            ],
        }



class _UnsetVariable(SuiteError):
    """``${VAR}`` in a suite names an unset environment variable (load_suite adds the fix)."""

    def __init__(self, message: str, variable: str, value: str, plugin: str | None) -> None:
        super().__init__(message)
        self.variable, self.value, self.plugin = variable, value, plugin


def _expand(value: Any, where: str, file: Path, plugin: str | None = None) -> Any:
    if isinstance(value, str):

        def env(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in os.environ:
                raise _UnsetVariable(
                    f"{file}: {where}: environment variable ${{{var}}} is not set; "
                    f"export {var}=/path/to/folder or replace {value!r} with a path",
                    var, value, plugin,
                )
            return os.environ[var]

        value = _ENV.sub(env, value)
        return os.path.expanduser(value) if value.startswith("~") else value
    if isinstance(value, dict):
        owner = value.get("plugin") if isinstance(value.get("plugin"), str) else plugin
        return {k: _expand(v, f"{where}.{k}" if where else k, file, owner)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", file, plugin) for i, v in enumerate(value)]
    return value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value  # arrays of tables replace the base's arrays
    return merged


def _read_text(path: Path) -> str:
    """The file's text, or one SuiteError line saying why it cannot be read and what to do."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SuiteError(f"{path}: suite file not found") from None
    except IsADirectoryError:
        raise SuiteError(
            f"{path}: is a directory, not a suite file; give a .toml file, e.g. "
            f"{path / 'suite.toml'}"
        ) from None
    except PermissionError:
        raise SuiteError(
            f"{path}: no permission to read the suite file; make it readable "
            f"(chmod u+r {path}) or run as its owner"
        ) from None
    except UnicodeDecodeError as exc:
        raise SuiteError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "TOML files must be UTF-8 — re-save it as UTF-8"
        ) from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite file: {exc.strerror or exc}") from None


def read_suite_file(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Parse a suite file, resolve ``include`` and expand ``~``/``${ENV}``; no validation."""
    path = Path(path)
    if path.resolve() in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path.resolve()))
        raise SuiteError(f"{path}: include cycle: {chain}")
    try:
        raw: dict[str, Any] = tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: TOML syntax error: {exc}") from None
    includes = raw.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise SuiteError(f"{path}: include: expected a file name or a list of file names")
    merged: dict[str, Any] = {}
    for name in includes:
        base_path = (path.parent / os.path.expanduser(name)).resolve()
        merged = _merge(merged, read_suite_file(base_path, (*_seen, path.resolve())))
    expanded: dict[str, Any] = _expand(_merge(merged, raw), "", path)
    return expanded


def _unset_hint(error: _UnsetVariable, registry: PluginRegistry) -> str:
    """What to download and where, for an unset variable in a dataset's table."""
    if error.plugin is None:
        return ""
    try:
        cls = registry.get("dataset", error.plugin)
    except MedSynBenchError:
        return ""
    download = getattr(cls, "download", "")
    if not download:
        return ""
    return (
        f"\n{error.variable} is the folder that holds your datasets (e.g. export "
        f"{error.variable}=$HOME/data). Dataset {error.plugin!r} needs: {download}\n"
        f"Put it at {error.value} (the path this key names); "
        f"`medsynbench data info {error.plugin}` then checks the layout."
    )


class _Problems:
    """Every problem found in one suite, each a key path and a message; raised all at once."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.found: list[tuple[type[MedSynBenchError], str]] = []

    def add(self, where: str, message: str, kind: type[MedSynBenchError] = SuiteError) -> None:
        prefix = f"{self.file}: "
        while message.startswith(prefix):  # messages built with the file name keep it once
            message = message[len(prefix):]
        if where and not message.startswith((f"{where}.", f"{where}:", f"{where}[")):
            message = f"{where}: {message}"
        self.found.append((kind, message))

    @contextmanager
    def section(self, where: str) -> Iterator[None]:
        """Record a MedSynBenchError raised inside as a problem of ``where`` and go on."""
        try:
            yield
        except MedSynBenchError as exc:
            for line in exc.problems or (str(exc),):
                self.add(where, line, type(exc))

    def __bool__(self) -> bool:
        return bool(self.found)

    def raise_all(self) -> None:
        if not self.found:
            return
        if len(self.found) == 1:
            kind, line = self.found[0]
            raise kind(f"{self.file}: {line}", problems=[line])
        lines = [line for _, line in self.found]
        listing = "\n".join("  - " + line.replace("\n", "\n    ") for line in lines)
        raise SuiteError(f"{self.file}: {len(lines)} problems:\n{listing}", problems=lines)


def _check_keys(table: Mapping[str, Any], schema: Mapping[str, Any], where: str) -> None:
    """SuiteError listing every unknown or mistyped key of ``table``."""
    found = []
    for key, value in table.items():
        path = f"{where}.{key}" if where else key
        if key not in schema:
            found.append(
                f"{path}: unknown key{did_you_mean(key, schema)} "
                f"(allowed: {', '.join(sorted(schema))})"
            )
            continue
        expected = schema[key]
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
            found.append(
                f"{path}: expected {type_name(expected)}, got {type(value).__name__} {value!r}"
            )
    if found:
        raise SuiteError(problems=found)


def _name(runner: Mapping[str, Any], default: str, where: str) -> str:
    """The table's ``name`` (default: the plugin name); refuse an empty or blank one."""
    name = runner.get("name", default)
    if not isinstance(name, str) or not name.strip():
        raise SuiteError(
            f"{where}.name: {name!r} is empty; give a name (shown on the board and used in "
            f"results.json), or remove the key to use the plugin name {default!r}"
        )
    return name


def _plugin_class(registry: PluginRegistry, kind: str, plugin: str, where: str) -> type[Plugin]:
    try:
        return registry.get(kind, plugin)
    except UnknownPluginError as exc:
        raise UnknownPluginError(f"{where}: {exc}") from None


def _split_plugin_table(
    table: Any, runner_keys: Mapping[str, Any], where: str
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Return (plugin, runner-level values, plugin parameters) of a plugin table."""
    if not isinstance(table, dict):
        raise SuiteError(f"{where}: expected a table, got {type(table).__name__}")
    plugin = table.get("plugin")
    if not isinstance(plugin, str) or not plugin:
        raise SuiteError(f"{where}.plugin: required (a plugin name, see `medsynbench list`)")
    runner = {k: v for k, v in table.items() if k in runner_keys}
    _check_keys(runner, runner_keys, where)
    params = {k: v for k, v in table.items() if k not in runner_keys}
    return plugin, runner, params


def _sweep(
    cls: type[Generator], sample: dict[str, Any], where: str
) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{}]
    for key, value in sample.items():
        spec = cls.sample_parameters.get(key)
        values = (
            value if isinstance(value, list) and spec is not None and spec.sweepable else [value]
        )
        if not values:
            raise SuiteError(f"{where}.sample.{key}: empty list sweeps over nothing")
        combos = [{**combo, key: v} for combo in combos for v in values]
    return combos


def _entry_name(base: str, sample: dict[str, Any], swept: list[str]) -> str:
    if not swept:
        return base
    return base + "[" + ",".join(f"{k}={sample[k]}" for k in swept) + "]"


def load_suite(
    path: str | Path, registry: PluginRegistry, allow_underpowered: bool = False
) -> Suite:
    """Read and fully validate a suite; every plugin checks its parameters here.

    Every problem is collected: a suite with several raises one SuiteError listing them all
    (``.problems``); a single problem keeps its own error type (ParameterError, DataError...).
    A suite whose seeds cannot reach p < 0.05 for its number of entries
    (:func:`power_report`) is refused unless ``allow_underpowered``.
    """
    file = Path(path)
    try:
        raw = read_suite_file(file)
    except _UnsetVariable as exc:
        raise SuiteError(f"{exc}{_unset_hint(exc, registry)}") from None
    return build_suite(raw, file, registry, allow_underpowered)


def build_suite(
    raw: dict[str, Any], file: Path, registry: PluginRegistry, allow_underpowered: bool = False
) -> Suite:
    """Validate a suite document as :func:`load_suite` does (``raw``: what
    :func:`read_suite_file` returns, possibly edited, e.g. by ``medsynbench.testing``);
    ``file`` is the path messages name."""
    problems = _Problems(file)
    with problems.section(""):
        _check_keys(raw, _TOP, "")
    suite = _build(raw, file, registry, problems)
    problems.raise_all()
    assert suite is not None
    if not allow_underpowered:
        short = [row for row in power_report(suite, registry) if not row["reachable"]]
        if short:
            row = max(short, key=lambda r: r["seeds_needed"])
            raise SuiteError(
                f"{file}: suite.seeds: {row['seeds']} seeds cannot reach p < {ALPHA:g} for "
                f"{row['size']} {row['family']} of task {row['task']!r} (smallest Holm-adjusted "
                f"exact Wilcoxon p = {row['size']} × 2/2^{row['seeds']} = "
                f"{row['min_adjusted_p']:.3g}); give at least {row['seeds_needed']} seeds, e.g. "
                f"seeds = {list(range(row['seeds_needed']))}, or pass --allow-underpowered"
            )
    return suite


ALPHA = 0.05


def power_report(suite: Suite, registry: PluginRegistry) -> list[dict[str, Any]]:
    """For each task and multiplicity family (ranked entries, reference rows): its size, the
    smallest Holm-adjusted p the suite's seeds allow, and the seeds needed to reach α."""
    from .stats import min_adjusted_p, seeds_needed

    references = sum(
        1 for e in suite.entries
        if getattr(registry.get("generator", e.plugin), "reference", None)
    )
    families = (("ranked entries", len(suite.entries) - references),
                ("reference rows", references))
    rows = []
    for task in suite.tasks:
        for family, size in families:
            if size == 0:
                continue
            smallest = min_adjusted_p(len(suite.seeds), size)
            rows.append({
                "task": task.name, "family": family, "size": size, "seeds": len(suite.seeds),
                "min_adjusted_p": smallest, "reachable": smallest < ALPHA,
                "seeds_needed": seeds_needed(size, ALPHA),
            })
    return rows


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; os.cpu_count() where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _meta(raw: dict[str, Any], problems: _Problems) -> dict[str, Any]:
    """The [suite] table, checked; what failed is recorded and left out."""
    meta = raw.get("suite")
    if not isinstance(meta, dict):
        problems.add("suite", "[suite] table is missing (needs at least name and seeds)")
        return {}
    with problems.section("suite"):
        _check_keys(meta, _SUITE, "suite")
    for required in ("name", "seeds"):
        if required not in meta:
            problems.add(f"suite.{required}", "required key is missing")
    name = meta.get("name")
    if isinstance(name, str) and not name.strip():
        problems.add("suite.name", f"{name!r} is empty; give the suite a name (it names the "
                     "output folder and the board), e.g. name = \"my-suite\"")
    seeds = meta.get("seeds")
    if isinstance(seeds, list):
        if not seeds:
            problems.add("suite.seeds", "empty — give at least one seed, e.g. seeds = [0, 1, 2]")
        elif not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            problems.add("suite.seeds", f"expected a list of integers, got {seeds!r}")
        elif len(set(seeds)) != len(seeds):
            problems.add("suite.seeds", f"duplicate seeds in {seeds!r}")
    device = meta.get("device", "auto")
    if device not in _DEVICES:
        problems.add("suite.device", f"{device!r} is not one of {', '.join(_DEVICES)}")
    threads = meta.get("cpu_threads")
    if isinstance(threads, int) and not isinstance(threads, bool):
        if threads < 1:
            problems.add("suite.cpu_threads", f"must be a positive integer, got {threads}")
        elif threads > MAX_CPU_THREADS:
            problems.add("suite.cpu_threads", f"{threads} threads is more than any machine this "
                         f"runs on (limit {MAX_CPU_THREADS}); use at most the CPUs you have "
                         f"(here: {usable_cpus()})")
    return meta


def _build(
    raw: dict[str, Any], file: Path, registry: PluginRegistry, problems: _Problems
) -> Suite | None:
    meta = _meta(raw, problems)
    dataset: Dataset | None = None
    dataset_spec: PluginSpec | None = None
    if "dataset" not in raw:
        problems.add("dataset", "[dataset] table is missing")
    else:
        with problems.section("dataset"):
            ds_plugin, _, ds_params = _split_plugin_table(raw["dataset"], {"plugin": str},
                                                          "dataset")
            _plugin_class(registry, "dataset", ds_plugin, "dataset.plugin")
            made = registry.create("dataset", ds_plugin, ds_params, "dataset")
            assert isinstance(made, Dataset)
            dataset = made
            dataset_spec = PluginSpec(ds_plugin, ds_plugin, made.params, "dataset")

    failed_before = len(problems.found)
    entries = _entries(raw.get("generators", []), registry, problems)
    entries_ok = len(problems.found) == failed_before
    encoders, failed_encoders = _encoders(raw.get("encoders", []), registry, problems)
    metrics = _metrics(raw.get("metrics", []), encoders, failed_encoders, registry, problems)
    tasks = []
    for i, table in enumerate(raw.get("tasks", [])):
        where = f"tasks[{i}]"
        with problems.section(where):
            plugin, runner, params = _split_plugin_table(
                table, {"plugin": str, "name": str}, where
            )
            name = _name(runner, plugin, where)
            _plugin_class(registry, "task", plugin, f"{where}.plugin")
            task = registry.create("task", plugin, params, where)
            tasks.append(PluginSpec(name, plugin, task.params, where))
    with problems.section("tasks"):
        _unique([t.name for t in tasks], "tasks")

    executor = None
    with problems.section("executor"):
        executor = executor_spec(raw.get("executor", {"plugin": "local"}), registry)

    output = raw.get("output", {})
    with problems.section("output"):
        _check_keys(output, _OUTPUT, "output")
    checks: list[dict[str, str]] = []
    if entries_ok:
        with problems.section("checks"):
            checks = parse_checks(raw.get("checks", []), [e.name for e in entries], file)

    plan = _plan(dataset, problems)
    if plan is not None:
        _cross_check(plan, entries, metrics, tasks, registry, problems)
    if dataset is not None and dataset_spec is not None:
        size = None
        with problems.section("dataset"):
            size = dataset.planned_image_size()
        if size is not None:
            _check_image_size(entries, dataset_spec.plugin, size, registry, problems)
    if problems or dataset_spec is None or executor is None:
        return None

    out_dir = Path(output.get("dir", f"runs/{meta['name']}"))
    if not out_dir.is_absolute():
        out_dir = Path.cwd() / out_dir
    cache_dir = Path(output["cache_dir"]) if "cache_dir" in output else None
    suite = Suite(
        path=file,
        name=meta["name"],
        description=meta.get("description", ""),
        reference=meta.get("reference", ""),
        version=meta.get("version", "1"),
        seeds=list(meta["seeds"]),
        device=meta.get("device", "auto"),
        dataset=dataset_spec,
        entries=entries,
        encoders=encoders,
        metrics=metrics,
        tasks=tasks,
        output_dir=out_dir,
        cache_dir=cache_dir,
        cpu_threads=meta.get("cpu_threads"),
        checks=checks,
        warnings=_warnings(meta),
        executor=executor,
    )
    uses = [("dataset", dataset_spec.plugin)]
    uses += [("generator", e.plugin) for e in entries]
    uses += [("encoder", e.plugin) for e in encoders.values()]
    uses += [("metric", m.plugin) for m in metrics] + [("task", t.plugin) for t in tasks]
    suite.plugin_versions = {
        f"{kind}:{plugin}": registry.get(kind, plugin).version for kind, plugin in uses
    }
    suite.hash = _sha256(suite.canonical())
    # The protocol (data, encoders, metrics, tasks, seeds and their plugin versions) without
    # the entries: results of different generators on one protocol compare, so leaderboards
    # merge and publish by this hash. Generator versions belong to the entries (``hash``).
    suite.protocol_hash = _sha256(suite.protocol())
    return suite


def executor_spec(
    table: Any, registry: PluginRegistry, where: str = "executor"
) -> PluginSpec:
    """The validated ``[executor]`` table (``plugin`` plus the executor's parameters)."""
    plugin, _, params = _split_plugin_table(table, {"plugin": str}, where)
    _plugin_class(registry, "executor", plugin, f"{where}.plugin")
    made = registry.create("executor", plugin, params, where)
    return PluginSpec(plugin, plugin, made.params, where)


def _warnings(meta: Mapping[str, Any]) -> list[str]:
    """Settings that work but slowly. ``cpu_threads`` above the usable CPUs is a warning, not
    an error: a fixed count is what makes CPU results reproducible across machines (float
    reductions depend on it), so a suite pinned on a big machine must still run — slowly —
    on a small one to reproduce its numbers."""
    threads = meta.get("cpu_threads")
    cpus = usable_cpus()
    if isinstance(threads, int) and threads > cpus:
        return [
            f"suite.cpu_threads = {threads} but this process may use {cpus} CPU(s) "
            f"(os.sched_getaffinity): threads will wait on each other and CPU stages run "
            f"several times slower; results stay those of {threads} threads. Lower it to "
            f"{cpus} unless you are reproducing a {threads}-thread run."
        ]
    return []


def _plan(dataset: Dataset | None, problems: _Problems) -> SplitPlan | None:
    """The dataset's split plan (when its parameters determine its counts), checked."""
    planner = getattr(dataset, "planned_splits", None)
    if planner is None:
        return None
    plan = planner()
    if not isinstance(plan, SplitPlan):
        return None
    for key, message in plan.problems():
        problems.add(f"dataset.{key}", message)
    return plan


def _cross_check(
    plan: SplitPlan, entries: list[EntrySpec], metrics: list[MetricSpec],
    tasks: list[PluginSpec], registry: PluginRegistry, problems: _Problems,
) -> None:
    """Checks across tables that the dataset's planned counts allow before any work."""
    splits = plan.splits
    memory = memory_bytes()
    c, h, w = plan.image_shape
    for entry in entries:
        if entry.split not in splits:
            problems.add(f"{entry.where}.split", f"{entry.split!r} is not a split of the dataset "
                         f"(splits: {', '.join(splits)}){did_you_mean(entry.split, splits)}")
        if entry.count is not None and memory is not None:
            need = entry.count * len(plan.class_names) * c * h * w
            if need > memory:
                problems.add(f"{entry.where}.count", f"{entry.count:,} images per class × "
                             f"{len(plan.class_names)} classes of {c}×{h}×{w} need at least "
                             f"{format_bytes(need)} of memory, but this machine has "
                             f"{format_bytes(memory)}; lower count")
    fit_splits = sorted({e.split for e in entries if e.split in splits}) or ["train"]
    # Reference sizes are only worth comparing once the dataset's own counts are sane.
    for metric in metrics if not plan.problems(memory) else []:
        cls = registry.get("metric", metric.plugin)
        for key, spec in cls.parameters.items():
            value = metric.params.get(key)
            if not spec.extra.get("below_reference") or not isinstance(value, int):
                continue
            for split in fit_splits:
                n = plan.size(split)
                if n <= value:
                    dkey = plan.keys.get(split, split)
                    problems.add(f"{metric.where}.{key}", f"{key} = {value} but the reference "
                                 f"set (the {split!r} split) has {n} images; {key} must be "
                                 f"smaller — set {key} ≤ {n - 1} or raise "
                                 f"dataset.{dkey}")
                    break
    for task in tasks:
        cls = registry.get("task", task.plugin)
        for key, spec in cls.parameters.items():
            value = task.params.get(key)
            if spec.extra.get("split") and isinstance(value, str) and value not in splits:
                problems.add(f"{task.where}.{key}", f"{value!r} is not a split of the dataset "
                             f"(splits: {', '.join(splits)}){did_you_mean(value, splits)}; "
                             f"set {key} to one of them")


def check_image_size(
    suite: Suite, registry: PluginRegistry, image_shape: tuple[int, int, int]
) -> None:
    """Raise SuiteError naming every entry whose generator cannot be fitted on images of
    ``image_shape`` (C, H, W), with the fix. :func:`load_suite` checks this already when the
    dataset's parameters fix its size; the runner calls it once the data is prepared, for
    datasets whose size only the files tell — either way before any fit."""
    problems = _Problems(suite.path)
    _check_image_size(suite.entries, suite.dataset.plugin, image_shape[1:], registry, problems)
    problems.raise_all()


_MAX_SIDE = 4096  # the largest square side suggested as a fix (datasets' resolution limit)


def _check_image_size(
    entries: list[EntrySpec], dataset: str, size: tuple[int, int], registry: PluginRegistry,
    problems: _Problems,
) -> None:
    """Record a problem for every generator table whose ImageSize refuses ``size``; the fix
    is one square side that every generator of the suite accepts."""
    height, width = size
    rules: dict[str, tuple[str, ImageSize]] = {}
    for entry in entries:  # a swept table gives several entries with one train table
        if entry.where in rules:
            continue
        with problems.section(entry.where):
            generator = registry.create("generator", entry.plugin, entry.train,
                                        f"{entry.where}.train")
            assert isinstance(generator, Generator)
            rules[entry.where] = (entry.plugin, generator.image_size())
    refused = {w: pr for w, pr in rules.items() if not pr[1].accepts(height, width)}
    if not refused:
        return
    fix = _size_fix(max(height, width), [rule for _, rule in rules.values()],
                    "resolution" in registry.get("dataset", dataset).parameters)
    for where, (plugin, rule) in refused.items():
        why = f" ({rule.reason})" if rule.reason else ""
        also = f"; or {rule.fix}" if rule.fix else ""
        problems.add(where, f"generator {plugin!r} cannot be fitted on the dataset's "
                     f"{height}×{width} images: it needs {rule.describe()}{why}, but "
                     f"{'; '.join(rule.problems(height, width))}; {fix}{also}")


def _size_fix(side: int, rules: list[ImageSize], has_resolution: bool) -> str:
    """'set dataset.resolution = 32 (or 16)': the nearest square sides above and below
    ``side`` that every rule accepts."""
    fits = [s for s in range(8, _MAX_SIDE + 1) if all(r.accepts(s, s) for r in rules)]
    up = next((s for s in fits if s >= side), None)
    down = next((s for s in reversed(fits) if s < side), None)
    if up is None and down is None:
        return (f"no square side up to {_MAX_SIDE} px suits every generator of this suite; "
                "move the generators that refuse it to a suite of their own")
    sides = " or ".join(str(s) for s in (up, down) if s is not None)
    if has_resolution:
        return f"set dataset.resolution = {sides} (a side every generator of this suite accepts)"
    return (f"resize the dataset's images to a square side of {sides} px (one every "
            "generator of this suite accepts)")


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _unique(names: list[str], table: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise SuiteError(
                f"{table}: two entries are named {name!r}; give each a distinct `name`"
            )
        seen.add(name)


def _entries(tables: list[Any], registry: PluginRegistry, problems: _Problems
             ) -> list[EntrySpec]:
    if not tables:
        problems.add("generators", "the suite has zero generators — add a [[generators]] table")
    entries: list[EntrySpec] = []
    for i, table in enumerate(tables):
        where = f"generators[{i}]"
        with problems.section(where):
            entries += _entry(table, where, registry, problems)
    with problems.section("generators"):
        _unique([e.name for e in entries], "generators")
    return entries


def _entry(table: Any, where: str, registry: PluginRegistry, problems: _Problems
           ) -> list[EntrySpec]:
    plugin, runner, extra = _split_plugin_table(table, _GENERATOR, where)
    for key in extra:
        problems.add(f"{where}.{key}", f"unknown key{did_you_mean(key, _GENERATOR)} — generator "
                     f"parameters go in {where}.train or {where}.sample")
    base_name = _name(runner, plugin, where)
    cls = _plugin_class(registry, "generator", plugin, f"{where}.plugin")
    assert issubclass(cls, Generator)
    if runner.get("count", 1) < 1:
        problems.add(f"{where}.count", "must be ≥ 1 images per class")
    generator = registry.create("generator", plugin, runner.get("train", {}), f"{where}.train")
    sample_table = runner.get("sample", {})
    swept = [
        k
        for k, v in sample_table.items()
        if isinstance(v, list) and k in cls.sample_parameters and cls.sample_parameters[k].sweepable
    ]
    entries = []
    for sample in _sweep(cls, sample_table, where):
        sample_params = cls.validate_sample(sample, f"{where}.sample")
        entries.append(
            EntrySpec(
                name=_entry_name(base_name, sample, swept),
                plugin=plugin,
                split=runner.get("split", "train"),
                count=runner.get("count"),
                train=generator.params,
                sample=sample_params,
                where=where,
            )
        )
    return entries


def _encoders(tables: list[Any], registry: PluginRegistry, problems: _Problems
              ) -> tuple[dict[str, PluginSpec], set[str]]:
    """Declared encoders by name, and the names of those that failed validation."""
    encoders: dict[str, PluginSpec] = {}
    failed: set[str] = set()
    for i, table in enumerate(tables):
        where = f"encoders[{i}]"
        if isinstance(table, dict):
            name = table.get("name", table.get("plugin"))
            failed |= {name} if isinstance(name, str) else set()
        with problems.section(where):
            plugin, runner, params = _split_plugin_table(
                table, {"plugin": str, "name": str}, where
            )
            name = _name(runner, plugin, where)
            _plugin_class(registry, "encoder", plugin, f"{where}.plugin")
            encoder = registry.create("encoder", plugin, params, where)
            if name in encoders:
                raise SuiteError(f"{where}.name: encoder {name!r} is defined twice")
            encoders[name] = PluginSpec(name, plugin, encoder.params, where)
            failed.discard(name)
    return encoders, failed


def _metrics(
    tables: list[Any], encoders: dict[str, PluginSpec], failed_encoders: set[str],
    registry: PluginRegistry, problems: _Problems,
) -> list[MetricSpec]:
    metrics: list[MetricSpec] = []
    for i, table in enumerate(tables):
        where = f"metrics[{i}]"
        with problems.section(where):
            spec = _metric(table, where, encoders, failed_encoders, registry)
            if spec is not None:
                metrics.append(spec)
    with problems.section("metrics"):
        _unique([m.name for m in metrics], "metrics")
    return metrics


def _metric(
    table: Any, where: str, encoders: dict[str, PluginSpec], failed_encoders: set[str],
    registry: PluginRegistry,
) -> MetricSpec | None:
    plugin, runner, params = _split_plugin_table(
        table, {"plugin": str, "name": str, "encoder": str}, where
    )
    if "name" in runner:
        _name(runner, plugin, where)
    _plugin_class(registry, "metric", plugin, f"{where}.plugin")
    metric = registry.create("metric", plugin, params, where)
    assert isinstance(metric, Metric)
    encoder_name = None
    if metric.input != "images":
        encoder_name = runner.get("encoder") or metric.default_encoder
        if encoder_name is None:
            raise SuiteError(f"{where}.encoder: metric {plugin!r} needs an encoder")
        if encoder_name in failed_encoders:
            return None  # its own table's problem is already reported
        if encoder_name not in encoders:  # a plugin name used directly: default parameters
            if encoder_name not in registry.names("encoder") and ":" not in encoder_name:
                declared = ", ".join(encoders) or "none"
                raise UnknownPluginError(
                    f"{where}.encoder: {encoder_name!r} is neither a declared [[encoders]] "
                    f"name (declared: {declared}) nor an encoder plugin"
                    f"{did_you_mean(encoder_name, [*encoders, *registry.names('encoder')])}; "
                    f"add an [[encoders]] table named {encoder_name!r} or use a plugin from "
                    "`medsynbench list encoders`"
                )
            _plugin_class(registry, "encoder", encoder_name, f"{where}.encoder")
            enc = registry.create("encoder", encoder_name, {}, f"{where}.encoder")
            encoders[encoder_name] = PluginSpec(
                encoder_name, encoder_name, enc.params, f"{where}.encoder"
            )
        enc_cls = registry.get("encoder", encoders[encoder_name].plugin)
        assert issubclass(enc_cls, Encoder)
        if metric.input != "any" and enc_cls.output != metric.input:
            raise SuiteError(
                f"{where}.encoder: metric {plugin!r} needs {metric.input}, but encoder "
                f"{encoder_name!r} produces {enc_cls.output}"
            )
    elif "encoder" in runner:
        raise SuiteError(f"{where}.encoder: metric {plugin!r} reads images; remove `encoder`")
    default_name = encoder_name in (None, metric.default_encoder)
    name = runner.get("name") or (plugin if default_name else f"{plugin}@{encoder_name}")
    return MetricSpec(name, plugin, metric.params, where, encoder_name)
