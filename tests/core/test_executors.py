"""A suite as a graph of units (``medsynbench plan``), built by the ``local``, ``ray`` and
``slurm`` (submitit's local executor) executors with identical results, retried when a worker
dies, and one clear error for each bad setting."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from medsynbench import hookimpl
from medsynbench.errors import ExecutorError, MedSynBenchError, UnknownPluginError
from medsynbench.plan import Needs, Plan, Unit, UnitOutcome, build_in_order
from medsynbench.runner import Runner, UnitJob
from medsynbench.suite import load_suite

from .conftest import toy_suite_text


def _suite(tmp_path: Path, beta_extra: str = "", seeds: str = "[0, 1, 2]") -> Path:
    path = tmp_path / "s.toml"
    text = toy_suite_text(tmp_path, beta_extra).replace("seeds = [0, 1, 2, 3, 4, 5, 6]",
                                                        f"seeds = {seeds}")
    path.write_text(text)
    return path


def _cli(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medsynbench.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _comparable(results: dict) -> dict:
    """What must not depend on where units ran: every entry's numbers, the real-only arm."""
    drop = {"timings", "efficiency", "fit", "params", "units"}  # params (so keys): logs, markers
    entries = [{k: v for k, v in e.items() if k not in drop} for e in results["entries"]]
    return {"entries": entries, "real_only": results["real_only"],
            "dataset": results["dataset"]}


def test_plan_lists_every_unit_with_inputs_needs_and_waves(cli_env, tmp_path):
    path = _suite(tmp_path)
    args = ["plan", str(path), "--json", "--allow-underpowered"]
    proc = _cli(args, cli_env)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    ids = [u["id"] for u in plan["units"]]
    # prepare, 2 fits, 2 samples, the toy-pixels encoder over the real splits and both entries,
    # one metric per entry, and 3 seeds × (real-only + 2 entries) task arms
    assert ids[:5] == ["prepare", "fit:alpha", "fit:beta", "sample:alpha", "sample:beta"]
    assert "encode:toy-pixels:real:train" in ids and "encode:toy-pixels:beta" in ids
    assert "metrics:toy-gap:alpha" in ids and "tasks:toy-centroid:real-only:2" in ids
    assert len(ids) == 1 + 2 + 2 + 4 + 2 + 9
    by_id = {u["id"]: u for u in plan["units"]}
    assert by_id["sample:beta"]["after"] == ["fit:beta"]
    assert set(by_id["metrics:toy-gap:beta"]["after"]) == {
        "sample:beta", "encode:toy-pixels:real:train", "encode:toy-pixels:beta",
        "encode:toy-pixels:real:test"}
    assert by_id["fit:alpha"]["needs"] == {"cpus": 1, "gpus": 0, "memory_gb": None}
    # prepare ran (every other key depends on the data); nothing else did
    assert by_id["prepare"]["cached"] and plan["cached"] == 1 and plan["pending"] == len(ids) - 1
    assert not (tmp_path / "alpha.log").exists()
    # waves: the 2 fits and the 3 real-only arms and the 2 real encodes first, ...
    assert plan["waves"][0] == ["fit:alpha", "fit:beta", "encode:toy-pixels:real:test",
                                "encode:toy-pixels:real:train",
                                "tasks:toy-centroid:real-only:0",
                                "tasks:toy-centroid:real-only:1",
                                "tasks:toy-centroid:real-only:2"]
    assert plan["parallel"] == max(len(w) for w in plan["waves"])
    # after a run every unit is cached and has its measured cost
    assert _cli(["run", str(path), "--quiet", "--allow-underpowered"], cli_env).returncode == 0
    again = json.loads(_cli(args, cli_env).stdout)
    assert again["pending"] == 0 and again["waves"] == []
    assert all(u["cost_seconds"] is not None for u in again["units"])
    text = _cli(["plan", str(path), "--allow-underpowered"], cli_env)
    assert text.returncode == 0 and "0 to run" in text.stdout and "fit:alpha" in text.stdout


def test_pending_unit_costs_come_from_cached_units_of_its_group(registry, tmp_path):
    path = _suite(tmp_path)
    suite = load_suite(path, registry, allow_underpowered=True)
    Runner(suite, registry, tmp_path / "out", device="cpu").run()
    suite = load_suite(_suite(tmp_path, seeds="[0, 1, 2, 7]"), registry, allow_underpowered=True)
    plan = Runner(suite, registry, tmp_path / "out", device="cpu").plan()
    new_arm = plan["tasks:toy-centroid:alpha:7"]
    assert not new_arm.cached and new_arm.cost_seconds is not None  # median of seeds 0–2
    assert plan["fit:alpha"].cached


@pytest.mark.slow
def test_local_ray_and_slurm_give_identical_results_and_retry_a_killed_worker(cli_env, tmp_path):
    """One run per executor, each in its own folder. On ray and slurm the first attempt at
    beta's fit kills its own worker (SIGKILL) after writing part of its work directory: the
    executor retries it, the retry resumes that directory, and every number equals local's."""
    results = {}
    settings = {"local": [], "ray": ["--set", "num_cpus=2"],
                "slurm": ["--set", "cluster=local", "--set", "units_per_job=20"]}
    for executor, extra in settings.items():
        where = tmp_path / executor
        where.mkdir()
        marker = where / "died"
        path = _suite(where, "" if executor == "local" else f', die_once = "{marker}"')
        proc = _cli(["run", str(path), "--quiet", "--allow-underpowered", "--executor", executor,
                     *extra], cli_env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[executor] = json.loads((where / "out" / "results.json").read_text())
        assert results[executor]["manifest"]["executor"] == executor
        units = results[executor]["manifest"]["stage_units"]
        assert units["tasks"] == {"computed": 9, "cached": 0}, units
        cache = where / "out" / "cache"
        assert not list(cache.rglob("*.partial")) and not list(cache.rglob("*.tmp-*"))
        if executor != "local":
            assert marker.exists()  # the first attempt died inside beta's fit
            assert (where / "beta.log").read_text().splitlines() == ["fit", "fit", "sample"]
            resumed = [p for p in (cache / "fit").iterdir() if (p / "half-written.npy").exists()]
            assert len(resumed) == 1  # the retry resumed the dead attempt's work directory
    for executor in ("ray", "slurm"):
        assert _comparable(results[executor]) == _comparable(results["local"]), executor


def test_failed_unit_fails_its_entry_and_skips_what_reads_it(registry, tmp_path):
    suite = load_suite(_suite(tmp_path, beta_extra=", fail_on_fit = true"), registry,
                       allow_underpowered=True)
    runner = Runner(suite, registry, tmp_path / "out", device="cpu")
    results = runner.run()
    alpha, beta = results["entries"]
    assert alpha["status"] == "ok" and beta["status"] == "failed"
    assert beta["failed_stage"] == "fit" and "boom" in beta["error"]
    outcomes = build_in_order(runner.plan(), runner.build)
    sample = outcomes["sample:beta"]
    assert sample.skipped and sample.error == "input fit:beta failed"
    assert outcomes["tasks:toy-centroid:beta:0"].skipped


def test_third_party_executor_registers_through_the_hook(registry, tmp_path):
    built: list[str] = []

    class Recording:
        name = "recording"
        description = "builds in plan order and remembers what it built"

        def execute(self, plan, runner):
            def build(unit):
                built.append(unit.id)
                return runner.build(unit)

            return build_in_order(plan, build)

    from medsynbench.kinds import Executor

    cls = type("RecordingExecutor", (Executor,), dict(vars(Recording)))
    module = SimpleNamespace(__name__="third_party",
                             register_executors=hookimpl(lambda register: register(cls)))
    registry.add_module(module, "third-party-dist")
    path = _suite(tmp_path)
    path.write_text(path.read_text() + '\n[executor]\nplugin = "recording"\n')
    suite = load_suite(path, registry, allow_underpowered=True)
    results = Runner(suite, registry, tmp_path / "out", device="cpu").run()
    assert results["manifest"]["executor"] == "recording"
    assert built[:2] == ["fit:alpha", "fit:beta"] and len(built) == 19  # all but prepare


# --------------------------------------------------------------------------- bad input
def test_unknown_executor_suggests_the_closest(cli_env, tmp_path):
    proc = _cli(["run", str(_suite(tmp_path)), "--executor", "rey", "--allow-underpowered"],
                cli_env)
    assert proc.returncode == 2
    assert "unknown executor plugin 'rey'" in proc.stderr and 'did you mean "ray"' in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_unknown_executor_in_the_suite_table(registry, tmp_path):
    path = _suite(tmp_path)
    path.write_text(path.read_text() + '\n[executor]\nplugin = "slurn"\n')
    expected = "executor.plugin: unknown executor plugin 'slurn' — did you mean \"slurm\""
    with pytest.raises(UnknownPluginError, match=re.escape(expected)):
        load_suite(path, registry, allow_underpowered=True)


@pytest.mark.parametrize("plugin, module, extra", [("ray", "ray", "ray"),
                                                    ("slurm", "submitit", "slurm")])
def test_missing_extra_is_one_clear_error(registry, monkeypatch, plugin, module, extra):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == module else real(name, *a))
    with pytest.raises(ExecutorError, match=rf"needs .*not installed here: pip install "
                                            rf"'medsynbench\[{extra}\]'"):
        registry.create("executor", plugin, {})


def test_unreachable_ray_address_fails_fast_naming_it(cli_env, tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = _cli(["run", str(_suite(tmp_path)), "--executor", "ray", "--address",
                 f"127.0.0.1:{port}", "--allow-underpowered", "--quiet"], cli_env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"Ray address 127.0.0.1:{port} is unreachable" in proc.stderr
    assert "ray start --head" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "alpha.log").exists()  # nothing was fitted
    assert not (tmp_path / "out" / "results.json").exists()


def _gpu_plan() -> Plan:
    return Plan([Unit("prepare", "prepare", "p", "toy", cached=True),
                 Unit("fit:a", "fit", "f", "a", ("prepare",), "a", Needs(gpus=1))])


def test_units_needing_a_gpu_on_a_cluster_without_one(registry, tmp_path):
    fake_ray = SimpleNamespace(cluster_resources=lambda: {"CPU": 2.0})
    runner = SimpleNamespace(job=lambda: None)
    with pytest.raises(ExecutorError, match=r"1 units need a GPU .* the Ray cluster has 0 GPUs "
                                            r"\(CPUs 2\); add GPU nodes, or run with --device cpu"):
        registry.create("executor", "ray", {})._submit(_gpu_plan(), runner, fake_ray)
    job = UnitJob(load_suite(_suite(tmp_path), registry, allow_underpowered=True), tmp_path, "cuda")
    slurm = registry.create("executor", "slurm", {"gpus_per_node": 0, "cluster": "local"})
    with pytest.raises(ExecutorError, match="asks for gpus_per_node = 0; set gpus_per_node ≥ 1"):
        slurm._executor(_gpu_plan(), SimpleNamespace(job=lambda: job))


def test_cache_not_writable_from_a_worker_stops_the_run_naming_host_and_path(registry, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the worker expects the shared cache")
    suite = load_suite(_suite(tmp_path), registry, allow_underpowered=True)
    outcome = UnitJob(suite, blocker / "cache", "cpu").build("fit:alpha")
    assert not outcome.ok and outcome.fatal
    assert outcome.error is not None and outcome.error.startswith(f"worker {os.uname().nodename}: ")
    assert f"cache directory {blocker / 'cache'} is not writable" in outcome.error


def test_fatal_outcome_stops_the_run_with_its_message(registry, tmp_path):
    class Broken:
        name = "broken-disk"

        def execute(self, plan, runner):
            return {"fit:alpha": UnitOutcome("fit:alpha", False, error="worker n1: disk full",
                                             fatal=True)}

    from medsynbench.kinds import Executor

    cls = type("BrokenExecutor", (Executor,), dict(vars(Broken)))
    suite = load_suite(_suite(tmp_path), registry, allow_underpowered=True)
    with pytest.raises(MedSynBenchError, match="worker n1: disk full"):
        Runner(suite, registry, tmp_path / "out", device="cpu", executor=cls()).run()
    assert not (tmp_path / "out" / "results.json").exists()


def test_executor_settings_from_the_command_line_are_checked(cli_env, tmp_path):
    proc = _cli(["plan", str(_suite(tmp_path)), "--executor", "slurm", "--set", "units_per_job=0",
                 "--allow-underpowered"], cli_env)
    assert proc.returncode == 2 and "units_per_job" in proc.stderr and "must be > 0" in proc.stderr
    proc = _cli(["plan", str(_suite(tmp_path)), "--set", "partition", "--allow-underpowered"],
                cli_env)
    assert proc.returncode == 2 and "--set 'partition': expected KEY=VALUE" in proc.stderr


def test_a_suite_split_by_only_across_machines_merges_to_the_board_of_one_run(cli_env, tmp_path):
    """Two 'machines' (separate caches, no shared filesystem) each run one entry; their
    results.json files merge into exactly the board of one run: Δ, intervals, p-values, Holm
    correction and rank intervals included."""
    from medsynbench.leaderboard import build_site, read_results

    path = _suite(tmp_path)
    common = ["--quiet", "--allow-underpowered"]
    runs = {"all": [], "a": ["--only", "alpha"], "b": ["--only", "beta"]}
    for name, only in runs.items():
        proc = _cli(["run", str(path), *common, *only, "--out", str(tmp_path / name),
                     "--cache-dir", str(tmp_path / f"cache-{name}")], cli_env)
        assert proc.returncode == 0, proc.stderr[-2000:]

    def board(names: list[str], site: str) -> dict:
        loaded = [read_results(tmp_path / n / "results.json") for n in names]
        document = build_site(loaded, tmp_path / site)
        timing = ("efficiency", "timings", "source", "fit", "samples")
        return {
            "verdict": document["verdict"],
            "utility_tasks": document["utility_tasks"],
            "entries": [{k: v for k, v in e.items() if k not in timing and "seconds" not in k}
                        for e in document["entries"]],
        }

    one, split = board(["all"], "site-one"), board(["a", "b"], "site-split")
    assert [e["name"] for e in split["entries"]] == [e["name"] for e in one["entries"]]
    assert split == one


def test_data_parallel_task_units_have_their_own_keys_and_devices(registry, tmp_path, cli_env):
    suite = load_suite(_suite(tmp_path), registry, allow_underpowered=True)
    one = Runner(suite, registry, tmp_path / "out", device="cpu").plan()
    two = Runner(suite, registry, tmp_path / "out", device="cpu", data_parallel=2)
    assert two.task_devices() == ("cpu", "cpu") and two.job().data_parallel == 2
    plan = two.plan()
    for unit in one:
        assert (plan[unit.id].key == unit.key) == (unit.stage != "tasks"), unit.id
    proc = _cli(["plan", str(_suite(tmp_path)), "--data-parallel", "0", "--allow-underpowered"],
                cli_env)
    assert proc.returncode == 2 and "--data-parallel 0: must be ≥ 1" in proc.stderr
