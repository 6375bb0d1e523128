"""Suites: TOML files describing one benchmark — dataset, generators, encoders, metrics, tasks.

Loading resolves ``include`` (a base file, merged underneath), expands ``~`` and ``${ENV}`` in
strings, checks every key against the suite schema (file, dotted key path, expected type and a
did-you-mean) and then lets every plugin validate its own parameters — all before any work.
A list in a generator's ``sample`` table, for a parameter the plugin declares sweepable,
expands into one entry per value (e.g. StyleGAN2 truncation).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import parse_checks
from .errors import MedSynBenchError, SuiteError
from .kinds import Encoder, Generator, Metric
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
    # "kind:plugin" → the plugin class's version, filled in from the registry when the suite is
    # built. Part of both hashes: a plugin whose computation changed bumps its version.
    plugin_versions: dict[str, str] = field(default_factory=dict)
    hash: str = field(default="")
    protocol_hash: str = field(default="")

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


def _expand(value: Any, where: str, file: Path) -> Any:
    if isinstance(value, str):

        def env(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in os.environ:
                raise SuiteError(f"{file}: {where}: environment variable ${{{var}}} is not set")
            return os.environ[var]

        value = _ENV.sub(env, value)
        return os.path.expanduser(value) if value.startswith("~") else value
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}" if where else k, file) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", file) for i, v in enumerate(value)]
    return value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value  # arrays of tables replace the base's arrays
    return merged


def read_suite_file(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Parse a suite file, resolve ``include`` and expand ``~``/``${ENV}``; no validation."""
    path = Path(path)
    if path.resolve() in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path.resolve()))
        raise SuiteError(f"{path}: include cycle: {chain}")
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"{path}: suite file not found") from None
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


def _check_keys(
    table: Mapping[str, Any], schema: Mapping[str, Any], where: str, file: Path
) -> None:
    for key, value in table.items():
        path = f"{where}.{key}" if where else key
        if key not in schema:
            raise SuiteError(
                f"{file}: {path}: unknown key{did_you_mean(key, schema)} "
                f"(allowed: {', '.join(sorted(schema))})"
            )
        expected = schema[key]
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
            raise SuiteError(
                f"{file}: {path}: expected {type_name(expected)}, "
                f"got {type(value).__name__} {value!r}"
            )


def _split_plugin_table(
    table: Any, runner_keys: Mapping[str, Any], where: str, file: Path
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Return (plugin, runner-level values, plugin parameters) of a plugin table."""
    if not isinstance(table, dict):
        raise SuiteError(f"{file}: {where}: expected a table, got {type(table).__name__}")
    plugin = table.get("plugin")
    if not isinstance(plugin, str) or not plugin:
        raise SuiteError(
            f"{file}: {where}.plugin: required (a plugin name, see `medsynbench list`)"
        )
    runner = {k: v for k, v in table.items() if k in runner_keys}
    _check_keys(runner, runner_keys, where, file)
    params = {k: v for k, v in table.items() if k not in runner_keys}
    return plugin, runner, params


def _sweep(
    cls: type[Generator], sample: dict[str, Any], where: str, file: Path
) -> list[dict[str, Any]]:
    combos: list[dict[str, Any]] = [{}]
    for key, value in sample.items():
        spec = cls.sample_parameters.get(key)
        values = (
            value if isinstance(value, list) and spec is not None and spec.sweepable else [value]
        )
        if not values:
            raise SuiteError(f"{file}: {where}.sample.{key}: empty list sweeps over nothing")
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

    A suite whose seeds cannot reach p < 0.05 for its number of entries
    (:func:`power_report`) is refused unless ``allow_underpowered``.
    """
    file = Path(path)
    raw = read_suite_file(file)
    _check_keys(raw, _TOP, "", file)
    try:
        suite = _build(raw, file, registry)
    except SuiteError:
        raise
    except MedSynBenchError as exc:  # plugin messages already carry the key path
        raise type(exc)(f"{file}: {exc}") from None
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


def _build(raw: dict[str, Any], file: Path, registry: PluginRegistry) -> Suite:
    meta = raw.get("suite")
    if meta is None:
        raise SuiteError(f"{file}: [suite] table is missing (needs at least name and seeds)")
    _check_keys(meta, _SUITE, "suite", file)
    for required in ("name", "seeds"):
        if required not in meta:
            raise SuiteError(f"{file}: suite.{required}: required key is missing")
    seeds = meta["seeds"]
    if not seeds:
        raise SuiteError(
            f"{file}: suite.seeds: empty — give at least one seed, e.g. seeds = [0, 1, 2]"
        )
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise SuiteError(f"{file}: suite.seeds: expected a list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f"{file}: suite.seeds: duplicate seeds in {seeds!r}")
    device = meta.get("device", "auto")
    if device not in _DEVICES:
        raise SuiteError(f"{file}: suite.device: {device!r} is not one of {', '.join(_DEVICES)}")
    threads = meta.get("cpu_threads")
    if threads is not None and threads < 1:
        raise SuiteError(f"{file}: suite.cpu_threads: must be a positive integer, got {threads}")

    if "dataset" not in raw:
        raise SuiteError(f"{file}: [dataset] table is missing")
    ds_plugin, _, ds_params = _split_plugin_table(raw["dataset"], {"plugin": str}, "dataset", file)
    dataset = registry.create("dataset", ds_plugin, ds_params, f"{file}: dataset")
    dataset_spec = PluginSpec(ds_plugin, ds_plugin, dataset.params, "dataset")

    entries = _entries(raw.get("generators", []), file, registry)
    encoders = _encoders(raw.get("encoders", []), file, registry)
    metrics = _metrics(raw.get("metrics", []), encoders, file, registry)
    tasks = []
    for i, table in enumerate(raw.get("tasks", [])):
        where = f"tasks[{i}]"
        plugin, runner, params = _split_plugin_table(
            table, {"plugin": str, "name": str}, where, file
        )
        task = registry.create("task", plugin, params, f"{file}: {where}")
        tasks.append(PluginSpec(runner.get("name", plugin), plugin, task.params, where))
    _unique([t.name for t in tasks], "tasks", file)

    output = raw.get("output", {})
    _check_keys(output, _OUTPUT, "output", file)
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
        seeds=list(seeds),
        device=device,
        dataset=dataset_spec,
        entries=entries,
        encoders=encoders,
        metrics=metrics,
        tasks=tasks,
        output_dir=out_dir,
        cache_dir=cache_dir,
        cpu_threads=threads,
        checks=parse_checks(raw.get("checks", []), [e.name for e in entries], file),
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


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _unique(names: list[str], table: str, file: Path) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise SuiteError(
                f"{file}: {table}: two entries are named {name!r}; give each a distinct `name`"
            )
        seen.add(name)


def _entries(tables: list[Any], file: Path, registry: PluginRegistry) -> list[EntrySpec]:
    if not tables:
        raise SuiteError(
            f"{file}: generators: the suite has zero generators — add a [[generators]] table"
        )
    entries = []
    for i, table in enumerate(tables):
        where = f"generators[{i}]"
        plugin, runner, extra = _split_plugin_table(table, _GENERATOR, where, file)
        if extra:
            key = next(iter(extra))
            raise SuiteError(
                f"{file}: {where}.{key}: unknown key{did_you_mean(key, _GENERATOR)} — generator "
                f"parameters go in {where}.train or {where}.sample"
            )
        cls = registry.get("generator", plugin)
        assert issubclass(cls, Generator)
        generator = registry.create(
            "generator", plugin, runner.get("train", {}), f"{file}: {where}.train"
        )
        if runner.get("count", 1) < 1:
            raise SuiteError(f"{file}: {where}.count: must be ≥ 1 images per class")
        sample_table = runner.get("sample", {})
        swept = [
            k
            for k, v in sample_table.items()
            if isinstance(v, list)
            and k in cls.sample_parameters
            and cls.sample_parameters[k].sweepable
        ]
        for sample in _sweep(cls, sample_table, where, file):
            sample_params = cls.validate_sample(sample, f"{file}: {where}.sample")
            entries.append(
                EntrySpec(
                    name=_entry_name(runner.get("name", plugin), sample, swept),
                    plugin=plugin,
                    split=runner.get("split", "train"),
                    count=runner.get("count"),
                    train=generator.params,
                    sample=sample_params,
                    where=where,
                )
            )
    _unique([e.name for e in entries], "generators", file)
    return entries


def _encoders(tables: list[Any], file: Path, registry: PluginRegistry) -> dict[str, PluginSpec]:
    encoders: dict[str, PluginSpec] = {}
    for i, table in enumerate(tables):
        where = f"encoders[{i}]"
        plugin, runner, params = _split_plugin_table(
            table, {"plugin": str, "name": str}, where, file
        )
        encoder = registry.create("encoder", plugin, params, f"{file}: {where}")
        name = runner.get("name", plugin)
        if name in encoders:
            raise SuiteError(f"{file}: {where}.name: encoder {name!r} is defined twice")
        encoders[name] = PluginSpec(name, plugin, encoder.params, where)
    return encoders


def _metrics(
    tables: list[Any], encoders: dict[str, PluginSpec], file: Path, registry: PluginRegistry
) -> list[MetricSpec]:
    metrics = []
    for i, table in enumerate(tables):
        where = f"metrics[{i}]"
        plugin, runner, params = _split_plugin_table(
            table, {"plugin": str, "name": str, "encoder": str}, where, file
        )
        metric = registry.create("metric", plugin, params, f"{file}: {where}")
        assert isinstance(metric, Metric)
        encoder_name = None
        if metric.input != "images":
            encoder_name = runner.get("encoder") or metric.default_encoder
            if encoder_name is None:
                raise SuiteError(f"{file}: {where}.encoder: metric {plugin!r} needs an encoder")
            if encoder_name not in encoders:  # a plugin name used directly: default parameters
                enc = registry.create("encoder", encoder_name, {}, f"{file}: {where}.encoder")
                encoders[encoder_name] = PluginSpec(
                    encoder_name, encoder_name, enc.params, f"{where}.encoder"
                )
            enc_cls = registry.get("encoder", encoders[encoder_name].plugin)
            assert issubclass(enc_cls, Encoder)
            if metric.input != "any" and enc_cls.output != metric.input:
                raise SuiteError(
                    f"{file}: {where}.encoder: metric {plugin!r} needs {metric.input}, but encoder "
                    f"{encoder_name!r} produces {enc_cls.output}"
                )
        elif "encoder" in runner:
            raise SuiteError(
                f"{file}: {where}.encoder: metric {plugin!r} reads images; remove `encoder`"
            )
        default_name = encoder_name in (None, metric.default_encoder)
        name = runner.get("name") or (plugin if default_name else f"{plugin}@{encoder_name}")
        metrics.append(MetricSpec(name, plugin, metric.params, where, encoder_name))
    _unique([m.name for m in metrics], "metrics", file)
    return metrics
