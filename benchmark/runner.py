"""The runner: prepare data → fit → sample → encode → metrics → tasks → results.

Every unit of work (one stage for one entry, encoder, seed...) runs through
:meth:`Runner._unit`, which skips it when its content-keyed cache directory is complete, so a
killed run resumes where it stopped. An entry whose generator (or later stage) raises is marked
failed with its error; the other entries still run. An OS error while writing (a full disk) is
not an entry failure: it stops the run with one OutputError line and caches nothing of the unit.
Warnings a unit raises are kept with it and reported on the board as flags.
"""

from __future__ import annotations

import json
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .cache import FileLock, StageCache, content_key, derive_seed, temp_name
from .data import DataSplits, ImageSet
from .devices import cpu_threads, resolve_device
from .errors import MedSynBenchError, OutputError
from .hygiene import audit_prepared
from .kinds import Dataset, Encoder, Generator, Metric, MetricInputs, RunContext, Task
from .mosaic import save_mosaic
from .progress import ProgressUI
from .registry import PluginRegistry
from .suite import EntrySpec, MetricSpec, Suite, check_image_size

__all__ = ["STAGES", "EntryState", "Runner", "resolve_device"]

STAGES = ("prepare", "fit", "sample", "encode", "metrics", "tasks")


@dataclass
class EntryState:
    """What the run learned about one entry."""

    spec: EntrySpec
    status: str = "ok"
    error: str | None = None
    failed_stage: str | None = None
    fit_key: str = ""
    sample_key: str = ""
    fit_info: dict[str, Any] = field(default_factory=dict)
    efficiency: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    task_scores: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    # per task, per seed: 0/1 per evaluation image (None when the task keeps none)
    task_correct: dict[str, list[list[int]] | None] = field(default_factory=dict)
    # "<stage>[:<metric or task>]" → warnings raised while computing it (shown on the board)
    flags: dict[str, list[str]] = field(default_factory=dict)
    synthetic: ImageSet | None = None
    mosaic: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _EntryFailed(Exception):
    pass


class Runner:
    """Runs one validated suite. Construct, then call :meth:`run`."""

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
    ) -> None:
        self.suite = suite
        self.registry = registry
        self.out_dir = out_dir
        self.device = resolve_device(device)
        self.ui = ui or ProgressUI(enabled=False)
        self.debug = debug
        first_forced = min((STAGES.index(s) for s in force), default=len(STAGES))
        self.forced = set(STAGES[first_forced:])  # forcing a stage recomputes everything after it
        self._discarded: set[str] = set()
        self.cache = StageCache(cache_dir or out_dir / "cache")
        unknown = [name for name in only if name not in {e.name for e in suite.entries}]
        if unknown:
            from .params import did_you_mean

            names = [e.name for e in suite.entries]
            raise MedSynBenchError(
                f"--only {unknown[0]!r}: no such entry{did_you_mean(unknown[0], names)}; "
                f"entries: {', '.join(names)}"
            )
        specs = [e for e in suite.entries if not only or e.name in only]
        self.entries = [EntryState(spec) for spec in specs]
        self.stage_seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.stage_counts: dict[str, dict[str, int]] = {
            s: {"computed": 0, "cached": 0} for s in STAGES
        }
        self.base_seed = suite.seeds[0]
        self._encoders: dict[str, Encoder] = {}
        self._encoder_keys: dict[str, str] = {}
        self.real_only: dict[str, list[dict[str, float]]] = {}
        self.real_only_correct: dict[str, list[list[int]] | None] = {}
        self.real_only_flags: dict[str, list[str]] = {}
        self.flags: dict[str, list[str]] = {}

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
            data=getattr(self, "data", None),  # None until the prepare stage has run
        )

    def _unit(
        self,
        stage: str,
        key: str,
        label: str,
        meta: dict[str, Any],
        work: Callable[[Path], dict[str, Any] | None],
        entry: EntryState | None = None,
        flag_key: str | None = None,
    ) -> tuple[Path, dict[str, Any]]:
        """Run ``work`` into a cached unit directory unless it is complete; return (dir, info).

        Warnings raised by ``work`` are kept with the unit (``flags.json``), so a cached unit
        reports them again; they are added to ``entry.flags[flag_key or stage]``.
        """
        start = time.perf_counter()
        forcing = stage in self.forced and key not in self._discarded
        cached = not forcing and self.cache.is_complete(stage, key)
        if not cached:

            def waiting(owner: str) -> None:
                self.ui.print(f"{stage} {label}: waiting for {owner}, which is computing it")

            # Another process may be building this unit: wait for it, then reuse its result.
            with self.cache.lock(stage, key, on_wait=waiting):
                if forcing:
                    self._discarded.add(key)
                    self.cache.discard(stage, key)
                cached = self.cache.is_complete(stage, key)
                if not cached:
                    with self.cache.build(stage, key, meta, label) as workdir:
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always")
                            info = work(workdir) or {}
                        raised = list(dict.fromkeys(str(w.message) for w in caught))
                        for message in raised:
                            self.ui.print(f"warning: {label}: {message}")
                        (workdir / "flags.json").write_text(json.dumps(raised))
                        (workdir / "info.json").write_text(
                            json.dumps(info, indent=2, default=float)
                        )
        seconds = time.perf_counter() - start
        path = self.cache.path(stage, key)
        info = json.loads((path / "info.json").read_text())
        flags_file = path / "flags.json"
        unit_flags = json.loads(flags_file.read_text()) if flags_file.is_file() else []
        if unit_flags:
            if entry is not None:
                kept = entry.flags.setdefault(flag_key or stage, [])
                kept.extend(f for f in unit_flags if f not in kept)
            elif flag_key is not None:
                kept = self.real_only_flags.setdefault(flag_key, [])
                kept.extend(f for f in unit_flags if f not in kept)
        self.stage_seconds[stage] += seconds
        self.stage_counts[stage]["cached" if cached else "computed"] += 1
        if entry is not None:
            entry.timings[stage] = entry.timings.get(stage, 0.0) + seconds
        self.ui.status(True, stage, f"{label} ({'cached' if cached else f'{seconds:.1f}s'})")
        self.registry.hook.stage_finished(
            stage=stage,
            entry=entry.spec.name if entry else None,
            key=key,
            seconds=seconds,
            cached=cached,
        )
        return path, info

    def _fail(self, entry: EntryState, stage: str, exc: BaseException) -> None:
        if isinstance(exc, OutputError):  # a full disk is not the entry's fault: stop the run
            raise exc
        entry.status, entry.failed_stage = "failed", stage
        entry.error = (
            f"{type(exc).__name__}: {exc}" if not isinstance(exc, MedSynBenchError) else str(exc)
        )
        if self.debug:
            entry.error += "\n" + traceback.format_exc()
        self.ui.status(False, stage, f"{entry.spec.name}: {entry.error.splitlines()[0]}")

    def _per_entry(self, stage: str, step: Callable[[EntryState], None]) -> None:
        for entry in self.entries:
            if not entry.ok:
                continue
            try:
                step(entry)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # a broken entry must not stop the others
                self._fail(entry, stage, exc)

    # ------------------------------------------------------------------ stages
    def run(self) -> dict[str, Any]:
        """Execute every stage and return the results document (also written to disk).

        The output folder is locked for the whole run: a second run into it is refused with an
        OutputError naming the running one. Runs into different folders may share a cache.
        """
        with self._check_output_dir():
            return self._run()

    def _run(self) -> dict[str, Any]:
        from .manifest import collect_manifest
        from .results import write_results

        started = time.perf_counter()
        plugins = {
            spec.plugin: self.registry.get(kind, spec.plugin).version
            for kind, spec in self._all_specs()
        }
        manifest = collect_manifest(self.device, self.suite.hash, plugins)
        self.registry.hook.run_started(suite=self.suite, manifest=manifest)
        manifest["cpu_threads"] = self.suite.cpu_threads if self.device == "cpu" else None
        stages: dict[str, Callable[[], None]] = {
            "prepare": self._prepare, "fit": lambda: self._per_entry("fit", self._fit),
            "sample": lambda: self._per_entry("sample", self._sample),
            "encode": self._encode_all, "metrics": self._metrics_all, "tasks": self._tasks_all,
        }
        with cpu_threads(manifest["cpu_threads"]):  # same CPU numbers on any core count
            for stage, fn in stages.items():
                self.ui.heading(stage)
                fn()
        manifest["wall_seconds"] = round(time.perf_counter() - started, 3)
        manifest["stage_seconds"] = {k: round(v, 3) for k, v in self.stage_seconds.items()}
        manifest["stage_units"] = self.stage_counts
        results = write_results(self, manifest)
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

    def _prepare(self) -> None:
        spec = self.suite.dataset
        cls = self.registry.get("dataset", spec.plugin)
        seed = derive_seed(self.base_seed, "prepare")
        self.prepare_key = content_key(
            stage="prepare", plugin=spec.plugin, version=cls.version, params=spec.params, seed=seed
        )

        def work(workdir: Path) -> dict[str, Any]:
            dataset = self.registry.create("dataset", spec.plugin, spec.params)
            assert isinstance(dataset, Dataset)
            splits = dataset.load(self._ctx(seed, workdir))
            splits.save(workdir)
            counts = {n: s.counts(splits.n_classes).tolist() for n, s in splits.splits.items()}
            # Every plugin's splits are audited; cross-split copies warn (see audit_prepared).
            return {"counts": counts, "duplicates": audit_prepared(splits)}

        path, info = self._unit(
            "prepare", self.prepare_key, spec.plugin, {"plugin": spec.plugin}, work,
            flag_key="prepare",
        )
        self.data = DataSplits.load(path)
        self.data_counts: dict[str, list[int]] = info["counts"]
        self.data_duplicates: dict[str, Any] | None = info.get("duplicates")
        self._check_splits()

    def _check_splits(self) -> None:
        """Every split an entry reads must exist — checked before any entry is fitted."""
        problems = []
        for entry in self.entries:
            if entry.spec.split not in self.data.splits:
                problems.append(
                    f"{entry.spec.where}.split: dataset has no split {entry.spec.split!r}"
                )
            for split in self._generator(entry).splits_needed():
                if split not in self.data.splits:
                    problems.append(
                        f"{entry.spec.where}: generator {entry.spec.plugin!r} draws from split "
                        f"{split!r}, which the dataset lacks"
                    )
        if problems:
            from .errors import DataError

            raise DataError(
                f"{self.suite.path}: " + "; ".join(problems)
                + f" (dataset {self.suite.dataset.plugin!r} has splits "
                f"{', '.join(self.data.splits)}); choose one of those or give the dataset the "
                "split (e.g. n_val for the phantoms); nothing was fitted"
            )
        # Datasets that learn their image size only when read: generators' size rules here.
        check_image_size(self.suite, self.registry, self.data.image_shape)

    def _generator(self, entry: EntryState) -> Generator:
        gen = self.registry.create("generator", entry.spec.plugin, entry.spec.train)
        assert isinstance(gen, Generator)
        return gen

    def _fit(self, entry: EntryState) -> None:
        spec = entry.spec
        cls = self.registry.get("generator", spec.plugin)
        seed = derive_seed(self.base_seed, "fit")
        entry.fit_key = content_key(
            stage="fit",
            plugin=spec.plugin,
            version=cls.version,
            params=spec.train,
            split=spec.split,
            upstream=self.prepare_key,
            seed=seed,
        )

        def work(workdir: Path) -> dict[str, Any]:
            generator = self._generator(entry)
            started = time.perf_counter()
            info = dict(
                generator.fit(
                    self.data[spec.split], self.data.class_names, workdir, self._ctx(seed, workdir)
                )
                or {}
            )
            info.setdefault("train_seconds", round(time.perf_counter() - started, 3))
            return info

        _, entry.fit_info = self._unit(
            "fit", entry.fit_key, spec.name, {"plugin": spec.plugin}, work, entry
        )

    def sample_counts(self, spec: EntrySpec) -> list[int]:
        """Images per class to sample: the entry's ``count``; else what the suite's tasks add
        (e.g. synthetic_ratio × the real training split, so entries fitted on splits of
        different sizes add equally many); else the size of the entry's fit split."""
        if spec.count:
            return [spec.count] * self.data.n_classes
        train = [int(c) for c in self.data.train.counts(self.data.n_classes)]
        wanted = []
        for spec_ in self.suite.tasks:
            task = self.registry.create("task", spec_.plugin, spec_.params)
            assert isinstance(task, Task)
            if (needed := task.synthetic_counts(train)) is not None:
                wanted.append(needed)
        if wanted:
            return [max(int(column[c]) for column in wanted) for c in range(len(train))]
        return [int(c) for c in self.data[spec.split].counts(self.data.n_classes)]

    def _sample(self, entry: EntryState) -> None:
        spec = entry.spec
        cls = self.registry.get("generator", spec.plugin)
        seed = derive_seed(self.base_seed, "sample")
        counts = self.sample_counts(spec)
        entry.sample_key = content_key(
            stage="sample",
            plugin=spec.plugin,
            version=cls.version,
            params=spec.sample,
            counts=counts,
            upstream=entry.fit_key,
            seed=seed,
        )

        def work(workdir: Path) -> dict[str, Any]:
            generator = self._generator(entry)
            ctx = self._ctx(seed, workdir)
            generator.load(self.cache.path("fit", entry.fit_key), ctx)
            started = time.perf_counter()
            synthetic = generator.sample(counts, seed, ctx, **spec.sample)
            seconds = time.perf_counter() - started
            _check_synthetic(synthetic, counts, self.data.image_shape, spec.name)
            synthetic.save(workdir)
            save_mosaic(synthetic.images, synthetic.labels, workdir / "mosaic.png")
            measured: dict[str, float | None] = {
                "sample_seconds": round(seconds, 3),
                "seconds_per_1000": round(1000 * seconds / max(len(synthetic), 1), 3),
            }
            # The generator's own probe (e.g. GPU memory for 8 images) first; the sampling time
            # measured here on the whole set wins over a probe's estimate of the same quantity.
            probe = generator.efficiency(ctx, self.data.image_shape)
            return {"efficiency": {**probe, **measured}}

        path, info = self._unit(
            "sample", entry.sample_key, spec.name, {"plugin": spec.plugin}, work, entry
        )
        entry.synthetic = ImageSet.load(path)
        entry.mosaic = path / "mosaic.png"
        entry.efficiency = {
            **info["efficiency"],
            "fit_seconds": entry.fit_info.get("train_seconds"),
            "fit_steps": entry.fit_info.get("steps"),
        }

    # ----------------------------------------------------------- encode/metrics
    def _encoder(self, name: str) -> tuple[Encoder, str]:
        """The encoder instance for an encoder entry, fitted/loaded when needed, and its key."""
        if name in self._encoders:
            return self._encoders[name], self._encoder_keys[name]
        spec = self.suite.encoders[name]
        cls = self.registry.get("encoder", spec.plugin)
        key = content_key(
            stage="encoder", plugin=spec.plugin, version=cls.version, params=spec.params
        )
        encoder = self.registry.create("encoder", spec.plugin, spec.params)
        assert isinstance(encoder, Encoder)
        if encoder.needs_fit:
            seed = derive_seed(self.base_seed, "encoder-fit", name)
            key = content_key(
                stage="encoder-fit", encoder=key, upstream=self.prepare_key, seed=seed
            )

            def work(workdir: Path) -> dict[str, Any]:
                encoder.fit(self.data.train, workdir, self._ctx(seed, workdir))
                return {}

            path, _ = self._unit("encode", key, f"fit {name}", {"encoder": name}, work)
            encoder.load(path, self._ctx(seed, path))
        self._encoders[name] = encoder
        self._encoder_keys[name] = key
        self.flags[name] = encoder.flags()
        return encoder, key

    def _features(
        self,
        encoder_name: str,
        images: np.ndarray,
        source_key: str,
        label: str,
        entry: EntryState | None = None,
    ) -> np.ndarray:
        encoder, encoder_key = self._encoder(encoder_name)
        key = content_key(stage="encode", encoder=encoder_key, source=source_key)

        def work(workdir: Path) -> dict[str, Any]:
            np.save(
                workdir / "features.npy", encoder.encode(images, self._ctx(self.base_seed, workdir))
            )
            return {}

        path, _ = self._unit(
            "encode", key, f"{encoder_name} ← {label}", {"encoder": encoder_name}, work, entry
        )
        features: np.ndarray = np.load(path / "features.npy", mmap_mode="r")
        return features

    def _encode_all(self) -> None:
        self.representations: dict[tuple[str, str], np.ndarray] = {}
        names = {m.encoder for m in self.suite.metrics if m.encoder}
        for name in sorted(names):
            for split in sorted({e.spec.split for e in self.entries if e.ok} | {"test"}):
                self.representations[(name, f"real:{split}")] = self._features(
                    name, self.data[split].images, f"{self.prepare_key}/{split}", f"real {split}"
                )

            def encode(entry: EntryState, name: str = name) -> None:
                assert entry.synthetic is not None
                self.representations[(name, entry.spec.name)] = self._features(
                    name, entry.synthetic.images, entry.sample_key, entry.spec.name, entry
                )

            self._per_entry("encode", encode)

    def _metric(self, entry: EntryState, spec: MetricSpec) -> None:
        """Compute one metric for one entry (a cached unit) and store it on the entry."""
        cls = self.registry.get("metric", spec.plugin)
        metric = self.registry.create("metric", spec.plugin, spec.params)
        assert isinstance(metric, Metric) and entry.synthetic is not None
        data, split = self.data, entry.spec.split
        if spec.encoder is None:
            real, synthetic, heldout = data[split].images, entry.synthetic.images, data.test.images
            representation: Literal["features", "codes", "images"] = "images"
            sources = [f"{self.prepare_key}/{split}", entry.sample_key]
        else:
            reps = self.representations
            real = reps[(spec.encoder, f"real:{split}")]
            synthetic = reps[(spec.encoder, entry.spec.name)]
            heldout = reps[(spec.encoder, "real:test")]
            encoder_cls = self.registry.get("encoder", self.suite.encoders[spec.encoder].plugin)
            assert issubclass(encoder_cls, Encoder)
            representation = encoder_cls.output
            sources = [self._encoder_keys[spec.encoder], self.prepare_key, split, entry.sample_key]
        inputs = MetricInputs(
            real=np.asarray(real),
            synthetic=np.asarray(synthetic),
            heldout=np.asarray(heldout),
            real_labels=data[split].labels,
            synthetic_labels=entry.synthetic.labels,
            class_names=data.class_names,
            representation=representation,
            encoder=spec.encoder,
        )
        key = content_key(
            stage="metrics",
            plugin=spec.plugin,
            version=cls.version,
            params=spec.params,
            sources=sources,
        )
        _, values = self._unit(
            "metrics",
            key,
            f"{spec.name} {entry.spec.name}",
            {"metric": spec.name},
            lambda workdir: {
                k: float(v)
                for k, v in metric.compute(inputs, self._ctx(self.base_seed, workdir)).items()
            },
            entry,
            f"metrics:{spec.name}",
        )
        entry.metrics[spec.name] = values

    def _metrics_all(self) -> None:
        for entry in self.entries:
            for spec in self.suite.metrics:
                if not entry.ok:
                    break
                try:
                    self._metric(entry, spec)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:
                    self._fail(entry, "metrics", exc)

    def _tasks_all(self) -> None:
        for spec in self.suite.tasks:
            cls = self.registry.get("task", spec.plugin)
            task = self.registry.create("task", spec.plugin, spec.params)
            assert isinstance(task, Task)

            def arm(
                seed: int,
                synthetic: ImageSet | None,
                upstream: str,
                label: str,
                entry: EntryState | None,
                task: Task = task,
                spec: Any = spec,
                version: str = cls.version,
            ) -> dict[str, Any]:
                key = content_key(
                    stage="tasks",
                    plugin=spec.plugin,
                    version=version,
                    params=spec.params,
                    data=self.prepare_key,
                    synthetic=upstream,
                    seed=seed,
                )

                def work(workdir: Path) -> dict[str, Any]:
                    return task.run_seed(self.data, synthetic, seed, self._ctx(seed, workdir))

                _, scores = self._unit(
                    "tasks",
                    key,
                    f"{spec.name} {label} seed={seed}",
                    {"task": spec.name},
                    work,
                    entry,
                    f"tasks:{spec.name}",
                )
                return scores

            arms = [arm(s, None, "", "real-only", None) for s in self.suite.seeds]
            self.real_only[spec.name], self.real_only_correct[spec.name] = _split_correct(arms)

            def run_entry(
                entry: EntryState, arm: Any = arm, task: Task = task, name: str = spec.name
            ) -> None:
                assert entry.synthetic is not None
                task.check_synthetic(self.data, entry.synthetic)
                arms = [
                    arm(s, entry.synthetic, entry.sample_key, entry.spec.name, entry)
                    for s in self.suite.seeds
                ]
                entry.task_scores[name], entry.task_correct[name] = _split_correct(arms)
                kept = entry.flags.setdefault(f"tasks:{name}", [])
                shared = self.real_only_flags.get(f"tasks:{name}", [])
                kept.extend(f for f in shared if f not in kept)

            self._per_entry("tasks", run_entry)


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
