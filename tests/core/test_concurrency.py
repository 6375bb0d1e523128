"""Several processes on one cache: unit locks, unique temporary names, one run per output folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from medsynbench.cache import FileLock, StageCache, temp_name, write_atomic
from medsynbench.errors import OutputError
from medsynbench.runner import Runner
from medsynbench.suite import load_suite

from .conftest import toy_suite_text

_HOLD = """
import sys, time
from pathlib import Path
from medsynbench.cache import StageCache
cache = StageCache(Path(sys.argv[1]))
with cache.build("fit", "k", {}) as work:
    (work / "checkpoint.pt").write_bytes(b"step 100")
    print("building", flush=True)
    time.sleep(600)
"""


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _comparable(results: dict) -> list[dict]:
    """The entries without what legitimately differs between runs (timings, file paths)."""
    drop = {"timings", "efficiency", "fit"}
    return [{k: v for k, v in e.items() if k not in drop} for e in results["entries"]]


def test_two_runs_on_one_cache_build_each_unit_once_and_agree(cli_env, tmp_path):
    release = tmp_path / "release"
    path = tmp_path / "s.toml"
    path.write_text(toy_suite_text(tmp_path, beta_extra=f', wait_for = "{release}"'))
    cache = tmp_path / "shared-cache"
    stderr_files = [tmp_path / f"run{i}.log" for i in (1, 2)]
    runs = []
    for i, log in enumerate(stderr_files, 1):
        with open(log, "w") as handle:
            runs.append(subprocess.Popen(
                [sys.executable, "-m", "medsynbench.cli", "run", str(path),
                 "--out", str(tmp_path / f"out{i}"), "--cache-dir", str(cache)],
                env=cli_env, stdout=subprocess.DEVNULL, stderr=handle))

    def logs() -> list[str]:
        return [" ".join(f.read_text().split()) for f in stderr_files]  # undo rich's wrapping

    deadline = time.monotonic() + 120
    while not any("fit beta: waiting for pid" in log for log in logs()):  # both are at beta
        assert time.monotonic() < deadline and all(r.poll() is None for r in runs), logs()
        time.sleep(0.05)
    release.write_text("go")
    for run, log in zip(runs, stderr_files, strict=True):
        assert run.wait(timeout=300) == 0, log.read_text()
        assert "FileNotFoundError" not in log.read_text() and "failed" not in log.read_text()
    # the run that reached beta's fit second said whom it waited for, then reused the unit
    waited = [log for log in logs() if "fit beta: waiting for pid" in log]
    assert len(waited) == 1, logs()
    assert any(f"waiting for pid {r.pid} on " in waited[0] for r in runs)
    assert "fit beta (cached)" in waited[0]
    # every unit was built by exactly one process: one fit and one sample per entry
    assert (tmp_path / "alpha.log").read_text().splitlines() == ["fit", "sample"]
    assert (tmp_path / "beta.log").read_text().splitlines() == ["fit", "sample"]
    first, second = (json.loads((tmp_path / n / "results.json").read_text())
                     for n in ("out1", "out2"))
    assert _comparable(first) == _comparable(second)
    assert first["real_only"] == second["real_only"]
    assert all(e["status"] == "ok" for e in first["entries"])
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp-" in p.name or p.name.endswith(".partial")]
    assert leftovers == []


def test_second_run_into_one_output_folder_is_refused_naming_the_first(cli_env, tmp_path):
    release = tmp_path / "release"
    path = tmp_path / "s.toml"
    path.write_text(toy_suite_text(tmp_path, beta_extra=f', wait_for = "{release}"'))
    first = _start(["-m", "medsynbench.cli", "run", str(path), "--quiet"], cli_env)
    try:
        beta_log, deadline = tmp_path / "beta.log", time.monotonic() + 120
        while not (beta_log.exists() and "fit" in beta_log.read_text()):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        second = subprocess.run(
            [sys.executable, "-m", "medsynbench.cli", "run", str(path), "--quiet"],
            env=cli_env, capture_output=True, text=True, timeout=120,
        )
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"is in use by another run (pid {first.pid} on " in lines[0]
        assert "pass another --out DIR" in lines[0]
    finally:
        release.write_text("go")
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    # the lock went with the first run: a third run proceeds (fully cached)
    third = subprocess.run([sys.executable, "-m", "medsynbench.cli", "run", str(path), "--quiet"],
                           env=cli_env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr


def test_killed_builder_releases_its_lock_and_the_waiter_resumes_its_partial(tmp_path):
    cache = StageCache(tmp_path)
    holder = _start(["-c", _HOLD, str(tmp_path)])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "building"
        lock = FileLock(tmp_path / ".locks" / "fit-k.lock")
        assert not lock.acquire(blocking=False)
        assert lock.owner().startswith(f"pid {holder.pid} on ")
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate()
    waited: list[str] = []
    with cache.lock("fit", "k", on_wait=waited.append):  # no staleness to judge: free at once
        assert not cache.is_complete("fit", "k")
        with cache.build("fit", "k", {}) as work:  # re-entrant; resumes the dead one's work
            assert (work / "checkpoint.pt").read_bytes() == b"step 100"
    assert waited == [] and cache.is_complete("fit", "k")


def test_waiter_reuses_the_unit_the_holder_finished(tmp_path):
    cache = StageCache(tmp_path)
    script = _HOLD.replace("time.sleep(600)", "time.sleep(1.0)")
    holder = _start(["-c", script, str(tmp_path)])
    assert holder.stdout is not None and holder.stdout.readline().strip() == "building"
    waited: list[str] = []
    with cache.lock("fit", "k", on_wait=waited.append):
        complete = cache.is_complete("fit", "k")
    holder.communicate(timeout=60)
    assert holder.returncode == 0
    assert complete  # the lock was only granted after the holder renamed its unit into place
    assert len(waited) == 1 and waited[0].startswith(f"pid {holder.pid} on ")


def test_temp_names_are_unique_per_process_and_call(tmp_path):
    names = {temp_name(tmp_path / "results.json") for _ in range(50)}
    assert len(names) == 50
    assert all(f".tmp-{os.getpid()}-" in n.name and n.name.startswith(".results.json")
               for n in names)


def test_save_checkpoint_temp_name_has_the_pid(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from medsynbench.plugins.generators.training import save_checkpoint

    seen: list[str] = []

    def spy(obj, handle, *args, **kwargs):
        seen.append(Path(handle.name).name)
        return real_save(obj, handle, *args, **kwargs)

    real_save = torch.save
    monkeypatch.setattr(torch, "save", spy)
    save_checkpoint(tmp_path / "model.pt", "toy", {}, {"step": 1})
    assert len(seen) == 1 and f".tmp-{os.getpid()}-" in seen[0]
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_write_atomic_removes_its_temp_file_when_writing_fails(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(target, 12345)  # type: ignore[arg-type]
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_in_process_runs_release_the_output_lock(registry, toy_suite):
    suite = load_suite(toy_suite, registry)
    Runner(suite, registry, suite.output_dir, device="cpu").run()
    held = FileLock(suite.output_dir / ".medsynbench-run.lock")
    assert held.acquire(blocking=False)  # released after the run
    try:
        with pytest.raises(OutputError, match=rf"in use by another run \(pid {os.getpid()} on "):
            Runner(suite, registry, suite.output_dir, device="cpu").run()
    finally:
        held.release()


def test_owner_waits_for_the_holder_to_write_its_line(tmp_path):
    """A waiter can look in the instant between the holder's flock and its owner line."""
    import threading

    path = tmp_path / "unit.lock"
    path.write_text("")
    writer = threading.Timer(0.3, lambda: path.write_text("pid 7 on host since now"))
    writer.start()
    try:
        assert FileLock(path).owner() == "pid 7 on host since now"
    finally:
        writer.cancel()
    path.write_text("")
    assert FileLock(path).owner(patience=0.1) == "another process"  # released: nobody wrote
