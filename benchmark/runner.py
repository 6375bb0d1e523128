"""The runner: a suite → a plan of cached units → an executor builds them → results.

:meth:`Runner.plan` turns a validated suite into a :class:`~medsynbench.plan.Plan`: prepare
the data, fit and sample each entry, fit encoders, encode image sets, one unit per metric and
entry, one per task arm and seed — each with its content key and the units it reads. An
executor plugin (``local`` by default; ``ray``, ``slurm``) builds the pending units through
:meth:`Runner.build` (in this process) or :class:`UnitJob` (in a worker that rebuilds the
plan from the same suite and cache); the runner then reads every unit back from the cache
into results.json (:class:`~medsynbench.results.RunRecord`). A unit whose directory is
complete is never built again, so a killed run resumes where it stopped, and a run on a
cluster gives the numbers of a local one.

An entry whose unit raises is marked failed with that error (units that read it are skipped);
the other entries still run. An OS error while writing (a full disk) is not an entry failure:
it stops the run with one OutputError line and caches nothing of the unit. Warnings a unit
raises are kept with it and reported on the board as flags.
"""

from __future__ import annotations

import json
import socket
import statistics
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .cache import FileLock, StageCache, content_key, derive_seed, temp_name
from .data import DataSplits, ImageSet
from .devices import cpu_threads, resolve_device
from .errors import MedSynBenchError, OutputError
from .hygiene import audit_prepared
from .kinds import Dataset, Encoder, Executor, Generator, Metric, MetricInputs, RunContext, Task
from .mosaic import save_mosaic
from .plan import Needs, Plan, Unit, UnitOutcome
from .progress import ProgressUI
from .registry import PluginRegistry
from .results import EntryState, RunRecord, write_results
from .suite import EntrySpec, Suite, check_image_size

__all__ = ["STAGES", "EntryState", "Runner", "UnitJob", "resolve_device"]

STAGES = ("prepare", "fit", "sample", "encode", "metrics", "tasks")


@dataclass(frozen=True)
class UnitJob:
    """What a worker needs to build units of a run: the validated suite, the shared cache
    directory, the device and the entries. Picklable; :meth:`build` runs in the worker."""

    suite: Suite
    cache_dir: Path
    device: str
    only: tuple[str, ...] = ()
    data_parallel: int = 1

    def build(self, unit_id: str) -> UnitOutcome:
        """Build one unit of the plan into the shared cache (a no-op when complete)."""
        try:
            runner = _worker_runner(self)
            unit = runner.plan()[unit_id]
        except MedSynBenchError as exc:  # an unwritable cache, missing data on this node
            return UnitOutcome(unit_id, False, error=f"worker {socket.gethostname()}: {exc}",
                               fatal=True, host=socket.gethostname())
        except KeyError:
            return UnitOutcome(unit_id, False, error=f"the worker's plan has no unit {unit_id!r}: "
                               "the suite or cache differs between the driver and the worker",
                               fatal=True, host=socket.gethostname())
        with cpu_threads(self.suite.cpu_threads if self.device == "cpu" else None):
            return runner.build(unit)


_WORKER_RUNNERS: dict[tuple[str, str, str, str, tuple[str, ...], int], Runner] = {}


def _worker_runner(job: UnitJob) -> Runner:
    """One runner per job and worker process: its plan, data and encoders are reused across the
    units the worker builds."""
    key = (job.suite.hash, str(job.suite.path), str(job.cache_dir), job.device, job.only,
           job.data_parallel)
    if key not in _WORKER_RUNNERS:
        from .registry import get_registry

        _WORKER_RUNNERS.clear()
        _WORKER_RUNNERS[key] = Runner(job.suite, get_registry(), job.cache_dir, job.cache_dir,
                                      job.device, only=job.only, worker=True,
                                      data_parallel=job.data_parallel)
    return _WORKER_RUNNERS[key]


class Runner:
    """Runs one validated suite. Construct, then call :meth:`run` (or :meth:`plan`)."""

    def __init__(
        self,
        suite: Suite,
        registry: PluginRegistry,
        out_dir: Path,
        cache_dir: Path | None = None,
        device: str = "auto",
        force: tuple[str, ...] = (),
        only: tuple[str, ...] = (),
        ui: ProgressUI | None = None,
        debug: bool = False,
        executor: Executor | None = None,
        worker: bool = False,
        data_parallel: int = 1,
    ) -> None:
        self.suite = suite
        self.registry = registry
        self.out_dir = out_dir
        self.device = resolve_device(device)
        self.ui = ui or ProgressUI(enabled=False)
        self.debug = debug
        self.worker = worker
        first_forced = min((STAGES.index(s) for s in force), default=len(STAGES))
        self.forced = set(STAGES[first_forced:])  # forcing a stage recomputes everything after it
        self.cache = StageCache(cache_dir or out_dir / "cache")
        unknown = [name for name in only if name not in {e.name for e in suite.entries}]
        if unknown:
            from .params import did_you_mean

            names = [e.name for e in suite.entries]
            raise MedSynBenchError(
                f"--only {unknown[0]!r}: no such entry{did_you_mean(unknown[0], names)}; "
                f"entries: {', '.join(names)}"
            )
        self.only = tuple(only)
        self.entries: list[EntrySpec] = [e for e in suite.entries if not only or e.name in only]
        if executor is None:
            spec = suite.executor
            made = registry.create("executor", spec.plugin, spec.params, spec.where)
            assert isinstance(made, Executor)
            executor = made
        self.executor = executor
        self.data_parallel = _check_data_parallel(data_parallel, self.device, worker)
        self.base_seed = suite.seeds[0]
        self.data: DataSplits | None = None
        self.prepare_key = ""
        self._plan: Plan | None = None
        self._encoders: dict[str, Encoder] = {}
        self._encoder_keys: dict[str, str] = {}

    # ----------------------------------------------------------------- plumbing
    def _ctx(self, seed: int, workdir: Path) -> RunContext:
        return RunContext(
            device=self.device,
            seed=seed,
            workdir=workdir,
            progress=self.ui.task,
            log=self.ui.print,
            registry=self.registry,
            cache_dir=self.cache.root,
            data=self.data,  # None until the prepare unit has been read
        )

    def _needs(self, devices: int = 1) -> Needs:
        return Needs(cpus=self.suite.cpu_threads or 1,
                     gpus=devices if self.device == "cuda" else 0)

    def task_devices(self) -> tuple[str, ...]:
        """The devices of one task unit: ``data_parallel`` GPUs, or as many CPU processes."""
        if self.data_parallel == 1:
            return ()
        if self.device == "cuda":
            return tuple(f"cuda:{i}" for i in range(self.data_parallel))
        return ("cpu",) * self.data_parallel

    def job(self) -> UnitJob:
        """What a worker needs to build this run's units (:class:`UnitJob`)."""
        return UnitJob(self.suite, self.cache.root, self.device, self.only, self.data_parallel)

    def build(self, unit: Unit) -> UnitOutcome:
        """Build ``unit`` into the cache unless it is complete; never raises for the unit's own
        errors (they come back in the outcome, ``fatal`` for a full disk).

        Another process building the same unit is waited for, then its result is reused.
        Warnings raised by the work are kept with the unit (``flags.json``).
        """
        start = time.perf_counter()
        cached = self.cache.is_complete(unit.stage, unit.key)
        try:
            if not cached:

                def waiting(owner: str) -> None:
                    self.ui.print(
                        f"{unit.stage} {unit.label}: waiting for {owner}, which is computing it")

                with self.cache.lock(unit.stage, unit.key, on_wait=waiting):
                    cached = self.cache.is_complete(unit.stage, unit.key)
                    if not cached:
                        self._build_now(unit, start)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            if isinstance(exc, MedSynBenchError):
                error = str(exc)
            else:
                error = f"{type(exc).__name__}: {exc}"
            if self.debug:
                error += "\n" + traceback.format_exc()
            first = error.splitlines()[0]
            self.ui.status(False, unit.stage, f"{unit.entry or unit.label}: {first}")
            return UnitOutcome(unit.id, False, time.perf_counter() - start, error=error,
                               fatal=isinstance(exc, OutputError), host=socket.gethostname())
        seconds = time.perf_counter() - start
        took = "cached" if cached else f"{seconds:.1f}s"
        self.ui.status(True, unit.stage, f"{unit.label} ({took})")
        return UnitOutcome(unit.id, True, seconds, cached, host=socket.gethostname())

    def _build_now(self, unit: Unit, start: float) -> None:
        work = self._work(unit)
        with self.cache.build(unit.stage, unit.key, dict(unit.args.get("meta", {})),
                              unit.label) as workdir:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                info = work(workdir) or {}
            raised = list(dict.fromkeys(str(w.message) for w in caught))
            for message in raised:
                self.ui.print(f"warning: {unit.label}: {message}")
            (workdir / "flags.json").write_text(json.dumps(raised))
            (workdir / "info.json").write_text(json.dumps(info, indent=2, default=float))
            (workdir / "unit.json").write_text(json.dumps(
                {"seconds": round(time.perf_counter() - start, 3), "host": socket.gethostname()}))

    def _read(self, unit: Unit) -> tuple[Path, dict[str, Any], list[str]]:
        """A complete unit's directory, info and warnings."""
        path = self.cache.path(unit.stage, unit.key)
        info = json.loads((path / "info.json").read_text())
        flags_file = path / "flags.json"
        flags = json.loads(flags_file.read_text()) if flags_file.is_file() else []
        return path, info, flags

    def _discard(self, unit: Unit) -> None:
        with self.cache.lock(unit.stage, unit.key):
            self.cache.discard(unit.stage, unit.key)

    # ------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        """Plan, execute and collect the suite; return the results document (also on disk).

        The output folder is locked for the whole run: a second run into it is refused with an
        OutputError naming the running one. Runs into different folders may share a cache.
        """
        with self._check_output_dir():
            return self._run()

    def _run(self) -> dict[str, Any]:
        from .manifest import collect_manifest

        started = time.perf_counter()
        plugins = {
            spec.plugin: self.registry.get(kind, spec.plugin).version
            for kind, spec in self._all_specs()
        }
        manifest = collect_manifest(self.device, self.suite.hash, plugins)
        self.registry.hook.run_started(suite=self.suite, manifest=manifest)
        manifest["cpu_threads"] = self.suite.cpu_threads if self.device == "cpu" else None
        manifest["executor"] = self.executor.name
        manifest["data_parallel"] = self.data_parallel
        with cpu_threads(manifest["cpu_threads"]):  # same CPU numbers on any core count
            self.ui.heading("prepare")
            prepared = self.prepare()
            plan = self.plan()
            for unit in plan.pending:
                if unit.stage in self.forced:
                    self._discard(unit)
            outcomes = {"prepare": prepared}
            outcomes.update(self.executor.execute(plan, self))
        fatal = next((o for o in outcomes.values() if o.fatal), None)
        if fatal is not None:
            raise OutputError(fatal.error or f"unit {fatal.id} could not be written")
        record, stage_seconds, stage_units = self.collect(plan, outcomes)
        manifest["wall_seconds"] = round(time.perf_counter() - started, 3)
        manifest["stage_seconds"] = {k: round(v, 3) for k, v in stage_seconds.items()}
        manifest["stage_units"] = stage_units
        results = write_results(record, manifest)
        self.registry.hook.run_finished(results=results, out_dir=self.out_dir)
        return results

    def _all_specs(self) -> list[tuple[str, Any]]:
        s = self.suite
        return [
            ("dataset", s.dataset),
            *(("generator", e) for e in s.entries),
            *(("encoder", e) for e in s.encoders.values()),
            *(("metric", m) for m in s.metrics),
            *(("task", t) for t in s.tasks),
        ]

    @contextmanager
    def _check_output_dir(self) -> Iterator[None]:
        """Check the output folder is writable and hold its lock (``.medsynbench-run.lock``)."""
        probe = temp_name(self.out_dir / ".write-test")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            probe.write_text("ok")
            lock = FileLock(self.out_dir / ".medsynbench-run.lock")
            free = lock.acquire(blocking=False)
        except OSError as exc:
            raise OutputError(
                f"output directory {self.out_dir} is not writable ({exc.strerror}); pass --out DIR"
            ) from None
        finally:
            with suppress(OSError):
                probe.unlink(missing_ok=True)
        if not free:
            raise OutputError(
                f"output directory {self.out_dir} is in use by another run ({lock.owner()}); "
                "wait for it to finish or pass another --out DIR (runs may share --cache-dir)"
            )
        try:
            yield
        finally:
            lock.release()

    # ----------------------------------------------------------------- prepare
    def _prepare_unit(self) -> Unit:
        spec = self.suite.dataset
        cls = self.registry.get("dataset", spec.plugin)
        seed = derive_seed(self.base_seed, "prepare")
        self.prepare_key = content_key(
            stage="prepare", plugin=spec.plugin, version=cls.version, params=spec.params, seed=seed
        )
        return Unit("prepare", "prepare", self.prepare_key, spec.plugin, needs=Needs(),
                    args={"kind": "prepare", "seed": seed, "meta": {"plugin": spec.plugin}})

    def prepare(self) -> UnitOutcome:
        """Build (or read) the prepared data — every other unit's key depends on it — and check
        that the entries' splits exist. Raises the dataset's error: without data nothing runs."""
        unit = self._prepare_unit()
        if "prepare" in self.forced and not self.worker:
            self._discard(unit)
            self.forced.discard("prepare")  # once per run
        outcome = self.build(unit)
        if not outcome.ok:
            if outcome.fatal:
                raise OutputError(outcome.error or "the prepared data could not be written")
            raise MedSynBenchError(outcome.error or "the dataset could not be prepared")
        self.data = DataSplits.load(self.cache.path("prepare", self.prepare_key))
        self._check_splits()
        return outcome

    def _work_prepare(self, unit: Unit) -> Callable[[Path], dict[str, Any]]:
        spec = self.suite.dataset

        def work(workdir: Path) -> dict[str, Any]:
            dataset = self.registry.create("dataset", spec.plugin, spec.params)
            assert isinstance(dataset, Dataset)
            splits = dataset.load(self._ctx(unit.args["seed"], workdir))
            splits.save(workdir)
            counts = {n: s.counts(splits.n_classes).tolist() for n, s in splits.splits.items()}
            # Every plugin's splits are audited; cross-split copies warn (see audit_prepared).
            return {"counts": counts, "duplicates": audit_prepared(splits)}

        return work

    def _check_splits(self) -> None:
        """Every split an entry reads must exist — checked before any entry is fitted."""
        data = self._data()
        problems = []
        for spec in self.entries:
            if spec.split not in data.splits:
                problems.append(f"{spec.where}.split: dataset has no split {spec.split!r}")
            for split in self._generator(spec).splits_needed():
                if split not in data.splits:
                    problems.append(
                        f"{spec.where}: generator {spec.plugin!r} draws from split "
                        f"{split!r}, which the dataset lacks"
                    )
        if problems:
            from .errors import DataError

            raise DataError(
                f"{self.suite.path}: " + "; ".join(problems)
                + f" (dataset {self.suite.dataset.plugin!r} has splits "
                f"{', '.join(data.splits)}); choose one of those or give the dataset the "
                "split (e.g. n_val for the phantoms); nothing was fitted"
            )
        # Datasets that learn their image size only when read: generators' size rules here.
        check_image_size(self.suite, self.registry, data.image_shape)

    def _data(self) -> DataSplits:
        if self.data is None:
            raise RuntimeError("the prepare unit has not been read yet: call prepare() first")
        return self.data

    # -------------------------------------------------------------------- plan
    def plan(self) -> Plan:
        """The graph of every unit of this run (prepares the data first: keys depend on it)."""
        if self._plan is not None:
            return self._plan
        if self.data is None:
            self.prepare()
        needs = self._needs()
        prep = self._prepare_unit()
        units: list[Unit] = [Unit(prep.id, prep.stage, prep.key, prep.label, needs=prep.needs,
                                  args=prep.args)]
        fit_keys: dict[str, str] = {}
        sample_keys: dict[str, str] = {}
        for spec in self.entries:
            cls = self.registry.get("generator", spec.plugin)
            seed = derive_seed(self.base_seed, "fit")
            fit_keys[spec.name] = content_key(
                stage="fit", plugin=spec.plugin, version=cls.version, params=spec.train,
                split=spec.split, upstream=self.prepare_key, seed=seed,
            )
            units.append(Unit(f"fit:{spec.name}", "fit", fit_keys[spec.name], spec.name,
                              ("prepare",), spec.name, needs,
                              args={"kind": "fit", "entry": spec.name, "seed": seed,
                                    "group": f"fit:{spec.plugin}",
                                    "meta": {"plugin": spec.plugin}}))
        for spec in self.entries:
            cls = self.registry.get("generator", spec.plugin)
            seed = derive_seed(self.base_seed, "sample")
            counts = self.sample_counts(spec)
            sample_keys[spec.name] = content_key(
                stage="sample", plugin=spec.plugin, version=cls.version, params=spec.sample,
                counts=counts, upstream=fit_keys[spec.name], seed=seed,
            )
            units.append(Unit(f"sample:{spec.name}", "sample", sample_keys[spec.name], spec.name,
                              (f"fit:{spec.name}",), spec.name, needs,
                              args={"kind": "sample", "entry": spec.name, "seed": seed,
                                    "counts": counts, "group": f"sample:{spec.plugin}",
                                    "meta": {"plugin": spec.plugin}}))
        # Encoders: one (optional) fit unit, the real splits the metrics read, every entry.
        encode_ids: dict[tuple[str, str], str] = {}
        for name in sorted({m.encoder for m in self.suite.metrics if m.encoder}):
            encoder_key, fit_unit = self._encoder_key(name)
            base: tuple[str, ...] = ("prepare",)
            if fit_unit is not None:
                units.append(Unit(fit_unit[0], "encode", encoder_key, f"fit {name}",
                                  ("prepare",), None, needs, args=fit_unit[1]))
                base = (fit_unit[0],)
            for split in sorted({e.split for e in self.entries} | {"test"}):
                uid = f"encode:{name}:real:{split}"
                encode_ids[(name, f"real:{split}")] = uid
                units.append(Unit(
                    uid, "encode",
                    content_key(stage="encode", encoder=encoder_key,
                                source=f"{self.prepare_key}/{split}"),
                    f"{name} ← real {split}", base, None, needs,
                    args={"kind": "encode", "encoder": name, "split": split,
                          "group": f"encode:{name}", "meta": {"encoder": name}}))
            for spec in self.entries:
                uid = f"encode:{name}:{spec.name}"
                encode_ids[(name, spec.name)] = uid
                units.append(Unit(
                    uid, "encode",
                    content_key(stage="encode", encoder=encoder_key, source=sample_keys[spec.name]),
                    f"{name} ← {spec.name}", (*base, f"sample:{spec.name}"), spec.name, needs,
                    args={"kind": "encode", "encoder": name, "entry": spec.name,
                          "group": f"encode:{name}", "meta": {"encoder": name}}))
        for spec in self.entries:
            for metric in self.suite.metrics:
                cls = self.registry.get("metric", metric.plugin)
                if metric.encoder is None:
                    sources = [f"{self.prepare_key}/{spec.split}", sample_keys[spec.name]]
                    after: tuple[str, ...] = (f"sample:{spec.name}",)
                else:
                    sources = [self._encoder_keys[metric.encoder], self.prepare_key, spec.split,
                               sample_keys[spec.name]]
                    after = (f"sample:{spec.name}",
                             encode_ids[(metric.encoder, f"real:{spec.split}")],
                             encode_ids[(metric.encoder, spec.name)],
                             encode_ids[(metric.encoder, "real:test")])
                key = content_key(stage="metrics", plugin=metric.plugin, version=cls.version,
                                  params=metric.params, sources=sources)
                units.append(Unit(
                    f"metrics:{metric.name}:{spec.name}", "metrics", key,
                    f"{metric.name} {spec.name}", after, spec.name, needs,
                    args={"kind": "metric", "metric": metric.name, "entry": spec.name,
                          "group": f"metrics:{metric.name}", "meta": {"metric": metric.name}}))
        for task in self.suite.tasks:
            cls = self.registry.get("task", task.plugin)

            def arm(seed: int, upstream: str, entry: str | None, task: Any = task,
                    cls: Any = cls) -> Unit:
                # Data-parallel training changes the numbers (per-rank BatchNorm): its own key.
                parallel = {"data_parallel": self.data_parallel} if self.data_parallel > 1 else {}
                key = content_key(stage="tasks", plugin=task.plugin, version=cls.version,
                                  params=task.params, data=self.prepare_key, synthetic=upstream,
                                  seed=seed, **parallel)
                who = entry or "real-only"
                return Unit(
                    f"tasks:{task.name}:{who}:{seed}", "tasks", key,
                    f"{task.name} {who} seed={seed}",
                    ("prepare",) if entry is None else (f"sample:{entry}",), entry,
                    self._needs(self.data_parallel),
                    args={"kind": "task", "task": task.name, "entry": entry, "seed": seed,
                          "group": f"tasks:{task.name}", "meta": {"task": task.name}})

            units += [arm(seed, "", None) for seed in self.suite.seeds]
            for spec in self.entries:
                units += [arm(seed, sample_keys[spec.name], spec.name) for seed in self.suite.seeds]
        self._plan = Plan(self._with_state(units))
        return self._plan

    def _with_state(self, units: list[Unit]) -> list[Unit]:
        """Mark cached units (forced stages count as not cached) and estimate costs: a cached
        unit's own build time; a pending one, the median of its group's cached units."""
        seconds: dict[str, float | None] = {}
        cached: dict[str, bool] = {}
        for unit in units:
            done = self.cache.is_complete(unit.stage, unit.key)
            cached[unit.id] = done and (unit.stage not in self.forced or unit.id == "prepare")
            path = self.cache.path(unit.stage, unit.key)
            seconds[unit.id] = _built_seconds(path) if done else None
        by_group: dict[str, list[float]] = {}
        for unit in units:
            value = seconds[unit.id]
            if value is not None and "group" in unit.args:
                by_group.setdefault(unit.args["group"], []).append(value)
        out = []
        for unit in units:
            cost = seconds[unit.id]
            if cost is None and unit.args.get("group") in by_group:
                cost = round(statistics.median(by_group[unit.args["group"]]), 3)
            out.append(Unit(unit.id, unit.stage, unit.key, unit.label, unit.after, unit.entry,
                            unit.needs, cost, cached[unit.id], unit.args))
        return out

    def sample_counts(self, spec: EntrySpec) -> list[int]:
        """Images per class to sample: the entry's ``count``; else what the suite's tasks add
        (e.g. synthetic_ratio × the real training split, so entries fitted on splits of
        different sizes add equally many); else the size of the entry's fit split."""
        data = self._data()
        if spec.count:
            return [spec.count] * data.n_classes
        train = [int(c) for c in data.train.counts(data.n_classes)]
        wanted = []
        for spec_ in self.suite.tasks:
            task = self.registry.create("task", spec_.plugin, spec_.params)
            assert isinstance(task, Task)
            if (needed := task.synthetic_counts(train)) is not None:
                wanted.append(needed)
        if wanted:
            return [max(int(column[c]) for column in wanted) for c in range(len(train))]
        return [int(c) for c in data[spec.split].counts(data.n_classes)]

    # ------------------------------------------------------------ unit work
    def _work(self, unit: Unit) -> Callable[[Path], dict[str, Any]]:
        builders: Mapping[str, Callable[[Unit], Callable[[Path], dict[str, Any]]]] = {
            "prepare": self._work_prepare, "fit": self._work_fit, "sample": self._work_sample,
            "encoder-fit": self._work_encoder_fit, "encode": self._work_encode,
            "metric": self._work_metric, "task": self._work_task,
        }
        return builders[unit.args["kind"]](unit)

    def _spec(self, name: str) -> EntrySpec:
        return next(e for e in self.entries if e.name == name)

    def _generator(self, spec: EntrySpec) -> Generator:
        gen = self.registry.create("generator", spec.plugin, spec.train)
        assert isinstance(gen, Generator)
        return gen

    def _unit_dir(self, unit_id: str) -> Path:
        unit = self.plan()[unit_id]
        return self.cache.path(unit.stage, unit.key)

    def _synthetic(self, entry: str) -> ImageSet:
        return ImageSet.load(self._unit_dir(f"sample:{entry}"))

    def _work_fit(self, unit: Unit) -> Callable[[Path], dict[str, Any]]:
        spec, seed = self._spec(unit.args["entry"]), unit.args["seed"]

        def work(workdir: Path) -> dict[str, Any]:
            generator = self._generator(spec)
            started = time.perf_counter()
            info = dict(generator.fit(self._data()[spec.split], self._data().class_names,
                                      workdir, self._ctx(seed, workdir)) or {})
            info.setdefault("train_seconds", round(time.perf_counter() - started, 3))
            return info

        return work

    def _work_sample(self, unit: Unit) -> Callable[[Path], dict[str, Any]]:
        spec, seed, counts = self._spec(unit.args["entry"]), unit.args["seed"], unit.args["counts"]

        def work(workdir: Path) -> dict[str, Any]:
            generator = self._generator(spec)
            ctx = self._ctx(seed, workdir)
            generator.load(self._unit_dir(f"fit:{spec.name}"), ctx)
            started = time.perf_counter()
            synthetic = generator.sample(counts, seed, ctx, **spec.sample)
            seconds = time.perf_counter() - started
            _check_synthetic(synthetic, counts, self._data().image_shape, spec.name)
            synthetic.save(workdir)
            save_mosaic(synthetic.images, synthetic.labels, workdir / "mosaic.png")
            measured: dict[str, float | None] = {
                "sample_seconds": round(seconds, 3),
                "seconds_per_1000": round(1000 * seconds / max(len(synthetic), 1), 3),
            }
            # The generator's own probe (e.g. GPU memory for 8 images) first; the sampling time
            # measured here on the whole set wins over a probe's estimate of the same quantity.
            probe = generator.efficiency(ctx, self._data().image_shape)
            return {"efficiency": {**probe, **measured}}

        return work

    def _encoder_key(self, name: str) -> tuple[str, tuple[str, dict[str, Any]] | None]:
        """The encoder entry's key, and (id, args) of its fit unit when it needs one."""
        spec = self.suite.encoders[name]
        cls = self.registry.get("encoder", spec.plugin)
        key = content_key(
            stage="encoder", plugin=spec.plugin, version=cls.version, params=spec.params
        )
        encoder = self.registry.create("encoder", spec.plugin, spec.params)
        assert isinstance(encoder, Encoder)
        fit_unit = None
        if encoder.needs_fit:
            seed = derive_seed(self.base_seed, "encoder-fit", name)
            key = content_key(
                stage="encoder-fit", encoder=key, upstream=self.prepare_key, seed=seed
            )
            fit_unit = (f"encoder-fit:{name}", {"kind": "encoder-fit", "encoder": name,
                                                "seed": seed, "meta": {"encoder": name}})
        self._encoder_keys[name] = key
        return key, fit_unit

    def _encoder(self, name: str) -> Encoder:
        """The encoder instance of an encoder entry, loaded from its fit unit when it has one."""
        if name not in self._encoders:
            spec = self.suite.encoders[name]
            encoder = self.registry.create("encoder", spec.plugin, spec.params)
            assert isinstance(encoder, Encoder)
            if encoder.needs_fit:
                fit_unit = self.plan()[f"encoder-fit:{name}"]
                path = self.cache.path(fit_unit.stage, fit_unit.key)
                encoder.load(path, self._ctx(fit_unit.args["seed"], path))
            self._encoders[name] = encoder
        return self._encoders[name]

    def _work_encoder_fit(self, unit: Unit) -> Callable[[Path], dict[str, Any]]:
        name, seed = unit.args["encoder"], unit.args["seed"]

        def work(workdir: Path) -> dict[str, Any]:
            spec = self.suite.encoders[name]
            encoder = self.registry.create("encoder", spec.plugin, spec.params)
            assert isinstance(encoder, Encoder)
            encoder.fit(self._data().train, workdir, self._ctx(seed, workdir))
            return {}

        return work

    def _work_encode(self, unit: Unit) -> Callable[[Path], dict[str, Any]]:
        name = unit.args["encoder"]

        def work(workdir: Path) -> dict[str, Any]:
            if "split" in unit.args:
                images = self._data()[unit.args["split"]].images
            else:
                images = self._synthetic(unit.args["entry"]).images
            features = self._encoder(name).encode(images, self._ctx(self.base_seed, workdir))
            np.save(workdir / "features.npy", features)
            return {}

        return work

    def _features(self, encoder: str, source: str) -> np.ndarray:
        path = self._unit_dir(f"encode:{encoder}:{source}")
        features: np.ndarray = np.load(path / "features.npy", mmap_mode="r")
        return features

    def _work_metric(self, unit: Unit) -> Callable[[Path], dict[str, Any]]:
        spec = next(m for m in self.suite.metrics if m.name == unit.args["metric"])
        entry = self._spec(unit.args["entry"])

        def work(workdir: Path) -> dict[str, Any]:
            metric = self.registry.create("metric", spec.plugin, spec.params)
            assert isinstance(metric, Metric)
            data, split = self._data(), entry.split
            synthetic_set = self._synthetic(entry.name)
            if spec.encoder is None:
                real, synthetic = data[split].images, synthetic_set.images
                heldout = data.test.images
                representation: Literal["features", "codes", "images"] = "images"
            else:
                real = self._features(spec.encoder, f"real:{split}")
                synthetic = self._features(spec.encoder, entry.name)
                heldout = self._features(spec.encoder, "real:test")
                encoder_cls = self.registry.get("encoder", self.suite.encoders[spec.encoder].plugin)
                assert issubclass(encoder_cls, Encoder)
                representation = encoder_cls.output
            inputs = MetricInputs(
                real=np.asarray(real), synthetic=np.asarray(synthetic),
                heldout=np.asarray(heldout), real_labels=data[split].labels,
                synthetic_labels=synthetic_set.labels, class_names=data.class_names,
                representation=representation, encoder=spec.encoder,
            )
            values = metric.compute(inputs, self._ctx(self.base_seed, workdir))
            return {k: float(v) for k, v in values.items()}

        return work

    def _work_task(self, unit: Unit) -> Callable[[Path], dict[str, Any]]:
        spec = next(t for t in self.suite.tasks if t.name == unit.args["task"])
        seed, entry = unit.args["seed"], unit.args["entry"]

        def work(workdir: Path) -> dict[str, Any]:
            task = self.registry.create("task", spec.plugin, spec.params)
            assert isinstance(task, Task)
            synthetic = None if entry is None else self._synthetic(entry)
            ctx = self._ctx(seed, workdir).child(devices=self.task_devices())
            return task.run_seed(self._data(), synthetic, seed, ctx)

        return work

    # ----------------------------------------------------------------- collect
    def collect(
        self, plan: Plan, outcomes: Mapping[str, UnitOutcome]
    ) -> tuple[RunRecord, dict[str, float], dict[str, dict[str, int]]]:
        """Read every built unit back from the cache into a :class:`RunRecord`; an entry with a
        failed (or skipped) unit is marked failed with the error that caused it. Also returns
        seconds and computed/cached counts per stage."""
        data = self._data()
        states = {spec.name: EntryState(spec) for spec in self.entries}
        stage_seconds = dict.fromkeys(STAGES, 0.0)
        stage_units = {s: {"computed": 0, "cached": 0} for s in STAGES}
        real_only: dict[str, list[dict[str, Any]]] = {}
        arms: dict[tuple[str, str], list[dict[str, Any]]] = {}
        data_flags: list[str] = []
        shared_task_flags: dict[str, list[str]] = {}
        encoder_flags: dict[str, list[str]] = {}
        counts: dict[str, list[int]] = {}
        duplicates: dict[str, Any] | None = None
        for unit in plan:
            outcome = outcomes.get(unit.id)
            if outcome is None:  # an executor need not return units that were complete
                outcome = (UnitOutcome(unit.id, True, cached=True) if unit.cached else
                           UnitOutcome(unit.id, False, error="the executor did not build it"))
            stage_seconds[unit.stage] += outcome.seconds
            if outcome.ok:
                stage_units[unit.stage]["cached" if outcome.cached else "computed"] += 1
            self.registry.hook.stage_finished(stage=unit.stage, entry=unit.entry, key=unit.key,
                                              seconds=outcome.seconds, cached=outcome.cached)
            state = states.get(unit.entry) if unit.entry else None
            if state is not None:
                state.timings[unit.stage] = state.timings.get(unit.stage, 0.0) + outcome.seconds
            if not outcome.ok:
                # A shared unit (an encoder, a real split) fails the entries through their own
                # units, which were skipped; a real-only arm fails every entry (no Δ without it).
                real_only_arm = unit.entry is None and unit.args.get("kind") == "task"
                hit = [state] if state is not None else (
                    list(states.values()) if real_only_arm else [])
                stage, error = self._cause(plan, outcomes, unit.id)
                for failed in (s for s in hit if s.ok):
                    failed.status, failed.failed_stage, failed.error = "failed", stage, error
                continue
            path, info, flags = self._read(unit)
            kind, args = unit.args["kind"], unit.args
            if kind == "prepare":
                counts, duplicates, data_flags = info["counts"], info.get("duplicates"), flags
            elif kind == "encoder-fit":
                encoder_flags[args["encoder"]] = self._encoder(args["encoder"]).flags()
            elif state is None and kind == "task":
                real_only.setdefault(args["task"], []).append(info)
                _merge_flags(shared_task_flags.setdefault(args["task"], []), flags)
            elif state is not None:
                where = {"metric": f"metrics:{args.get('metric')}",
                         "task": f"tasks:{args.get('task')}"}.get(kind, unit.stage)
                _merge_flags(state.flags.setdefault(where, []), flags)
                if kind in ("fit", "sample"):
                    state.units[kind] = unit.key
                if kind == "fit":
                    state.fit_info = info
                elif kind == "sample":
                    state.efficiency = {**info["efficiency"],
                                        "fit_seconds": state.fit_info.get("train_seconds"),
                                        "fit_steps": state.fit_info.get("steps")}
                    state.mosaic = path / "mosaic.png"
                elif kind == "metric":
                    state.metrics[args["metric"]] = info
                elif kind == "task":
                    arms.setdefault((args["task"], state.spec.name), []).append(info)
        for name in self.suite.encoders:
            if name not in encoder_flags and any(m.encoder == name for m in self.suite.metrics):
                with suppress(Exception):  # a broken encoder already failed its entries
                    encoder_flags[name] = self._encoder(name).flags()
        real_only_scores: dict[str, list[dict[str, float]]] = {}
        real_only_correct: dict[str, list[list[int]] | None] = {}
        for name, found in real_only.items():
            if len(found) == len(self.suite.seeds):
                real_only_scores[name], real_only_correct[name] = _split_correct(found)
        for state in states.values():
            if not state.ok:
                continue
            for task in self.suite.tasks:
                found = arms.get((task.name, state.spec.name), [])
                state.task_scores[task.name], state.task_correct[task.name] = _split_correct(found)
                _merge_flags(state.flags.setdefault(f"tasks:{task.name}", []),
                             shared_task_flags.get(task.name, []))
        record = RunRecord(
            suite=self.suite, registry=self.registry, out_dir=self.out_dir,
            entries=list(states.values()), class_names=data.class_names, modality=data.modality,
            data_counts=counts, data_duplicates=duplicates, data_flags=data_flags,
            prepare_key=self.prepare_key,
            real_only=real_only_scores, real_only_correct=real_only_correct,
            encoder_flags=encoder_flags,
        )
        return record, stage_seconds, stage_units

    @staticmethod
    def _cause(plan: Plan, outcomes: Mapping[str, UnitOutcome], unit_id: str) -> tuple[str, str]:
        """(stage, error) of the failed unit behind ``unit_id`` (itself, or an input of it)."""
        seen: set[str] = set()
        todo = [unit_id]
        while todo:
            current = todo.pop(0)
            if current in seen:
                continue
            seen.add(current)
            outcome = outcomes.get(current)
            if outcome is not None and not outcome.ok and outcome.error and not outcome.skipped:
                return plan[current].stage, outcome.error
            todo.extend(plan[current].after)
        return plan[unit_id].stage, "not built (the executor returned no outcome for it)"


def _check_data_parallel(n: int, device: str, worker: bool) -> int:
    """``--data-parallel N``: at least 1, and on the GPU no more than the visible GPUs (a worker
    sees the GPUs its scheduler gave it, so it is not checked there)."""
    if n < 1:
        raise MedSynBenchError(f"--data-parallel {n}: must be ≥ 1 (devices per task unit)")
    if n > 1 and device == "cuda" and not worker:
        import torch

        visible = torch.cuda.device_count()
        if visible < n:
            raise MedSynBenchError(
                f"--data-parallel {n}: only {visible} GPU(s) are visible here; lower it, or run "
                "on a cluster executor that gives each task unit that many GPUs"
            )
    return n


def _built_seconds(path: Path) -> float | None:
    try:
        value = json.loads((path / "unit.json").read_text()).get("seconds")
    except (OSError, ValueError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _merge_flags(kept: list[str], new: list[str]) -> None:
    kept.extend(f for f in new if f not in kept)


def _split_correct(
    arms: list[dict[str, Any]],
) -> tuple[list[dict[str, float]], list[list[int]] | None]:
    """Per-seed scores without ``"correct"``, and the per-seed correctness (None if absent)."""
    scores = [{k: v for k, v in a.items() if k != "correct"} for a in arms]
    correct = [a.get("correct") for a in arms]
    if all(isinstance(c, list) for c in correct):
        return scores, [[int(v) for v in c] for c in correct]  # type: ignore[union-attr]
    return scores, None


def _check_synthetic(
    synthetic: ImageSet, counts: list[int], shape: tuple[int, int, int], name: str
) -> None:
    from .errors import GeneratorError

    if not isinstance(synthetic, ImageSet):
        raise GeneratorError(
            f"{name}: sample() must return an ImageSet, got {type(synthetic).__name__}"
        )
    if synthetic.image_shape != shape:
        raise GeneratorError(
            f"{name}: sampled images are {synthetic.image_shape}, the dataset's are {shape}"
        )
    got = synthetic.counts(len(counts)).tolist()
    if got != list(counts) or len(synthetic) != sum(counts):
        raise GeneratorError(
            f"{name}: asked for {counts} images per class, sample() returned {got}"
        )
