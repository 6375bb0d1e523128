"""The runner: results files, caching, resume after SIGKILL, failures, --force/--only."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from medsynbench.errors import MedSynBenchError, OutputError
from medsynbench.runner import Runner
from medsynbench.stats import unpack_correct
from medsynbench.suite import load_suite

from .conftest import toy_suite_text


def run(registry, path: Path, **kwargs):
    suite = load_suite(path, registry)
    runner = Runner(suite, registry, suite.output_dir, device="cpu", **kwargs)
    return runner.run(), suite


def cli(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "medsynbench.cli", *args],
                          capture_output=True, text=True, env=env, **kwargs)


def test_run_writes_results_csv_and_leaderboard(registry, toy_suite, tmp_path):
    _results, suite = run(registry, toy_suite)
    out = tmp_path / "out"
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["schema_version"] == 2
    assert on_disk["suite"] == {**on_disk["suite"], "name": "toy", "hash": suite.hash,
                                "protocol_hash": suite.protocol_hash}
    alpha = on_disk["entries"][0]
    assert alpha["name"] == "alpha" and alpha["status"] == "ok" and alpha["reference"] is None
    assert set(alpha["metrics"]["toy-gap.gap"]) == {
        "value", "axis", "higher_is_better", "encoder", "flags"}
    # raw numbers only: per-seed scores of both arms and per-image correctness, no statistics
    utility = alpha["utility"]["toy-centroid"]
    assert utility["primary"] == "accuracy" and utility["seeds"] == suite.seeds
    assert len(utility["treated"]["accuracy"]) == 7 and len(utility["baseline"]["accuracy"]) == 7
    assert not {"delta_pp", "ci95_pp", "p_value", "p_value_adj", "significant"} & set(utility)
    n_eval = utility["n_eval"]
    assert n_eval == 40 and len(utility["baseline_correct"]) == 7
    for arm in ("baseline", "treated"):
        bits = [unpack_correct(p, n_eval) for p in utility[f"{arm}_correct"]]
        assert [b.mean() for b in bits] == pytest.approx(utility[arm]["accuracy"])
    assert (out / alpha["samples"]).is_file()
    manifest = on_disk["manifest"]
    assert manifest["suite_hash"] == suite.hash and manifest["torch"] and manifest["python"]
    assert set(manifest["stage_seconds"]) == {
        "prepare", "fit", "sample", "encode", "metrics", "tasks"}
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("entry,generator,reference,status") and len(csv_lines) == 3
    assert "toy-centroid.treated.seed6" in csv_lines[0]
    # the run's leaderboard.md is a board: Δ, Holm p and rank intervals computed over its entries
    board = (out / "leaderboard.md").read_text()
    rows = [line for line in board.splitlines()  # the ranked table (other tables follow)
            if re.match(r"\| =?\d \(", line) and (" alpha |" in line or " beta |" in line)]
    assert len(rows) == 2
    for row in rows:
        assert re.match(r"\| =?[12] \([12]–[12]\) \| (alpha|beta) \| [+-]\d+\.\d\d \[", row), row
    assert "Rank intervals: 2000 bootstrap replicates resampling 7 seeds and 40 test images" \
        in board


def test_rerun_is_fully_cached_and_identical(registry, toy_suite, tmp_path):
    first, _ = run(registry, toy_suite)
    second, _ = run(registry, toy_suite)
    assert all(c["computed"] == 0 for c in second["manifest"]["stage_units"].values())
    assert (tmp_path / "alpha.log").read_text().splitlines() == ["fit", "sample"]
    strip = lambda r: [{k: v for k, v in e.items() if k != "timings"} for e in r["entries"]]  # noqa: E731
    assert strip(first) == strip(second)


def test_changed_parameter_recomputes_only_downstream(registry, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(toy_suite_text(tmp_path))
    run(registry, path)
    path.write_text(toy_suite_text(tmp_path).replace("spread = 5.0", "spread = 6.0"))
    results, _ = run(registry, path)
    assert (tmp_path / "beta.log").read_text().splitlines() == ["fit", "sample", "sample"]
    assert results["manifest"]["stage_units"]["fit"] == {"computed": 0, "cached": 2}


def test_force_recomputes_stage_and_later(registry, toy_suite, tmp_path):
    run(registry, toy_suite)
    results, _ = run(registry, toy_suite, force=("sample",))
    assert (tmp_path / "alpha.log").read_text().splitlines() == ["fit", "sample", "sample"]
    units = results["manifest"]["stage_units"]
    assert units["fit"]["computed"] == 0 and units["tasks"]["cached"] == 0


def test_only_runs_one_entry(registry, toy_suite, tmp_path):
    results, _ = run(registry, toy_suite, only=("beta",))
    assert [e["name"] for e in results["entries"]] == ["beta"]
    assert not (tmp_path / "alpha.log").exists()
    with pytest.raises(MedSynBenchError, match='no such entry — did you mean "beta"'):
        run(registry, toy_suite, only=("betta",))


def test_unwritable_output_dir(registry, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = tmp_path / "s.toml"
    path.write_text(toy_suite_text(tmp_path).replace(str(tmp_path / "out"), str(blocker / "out")))
    with pytest.raises(OutputError, match="is not writable"):
        run(registry, path)
    assert not (tmp_path / "alpha.log").exists()  # no work started


def test_generator_raising_in_fit_is_recorded_and_others_run(cli_env, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(toy_suite_text(tmp_path, beta_extra=", fail_on_fit = true"))
    proc = cli(["run", str(path), "--quiet"], cli_env)
    assert proc.returncode == 1
    assert "1 entry failed" in proc.stderr and "beta (fit): RuntimeError: boom" in proc.stderr
    progress_lines = proc.stderr.split("1 entry failed")[0]  # printed while running
    assert "✗ fit      beta: RuntimeError: boom" in progress_lines
    assert "[/red]" in progress_lines  # shown as text: not parsed as rich markup (which raised)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    alpha, beta = results["entries"]
    assert alpha["status"] == "ok" and alpha["utility"]
    assert beta["status"] == "failed" and beta["failed_stage"] == "fit" and "boom" in beta["error"]
    fit_dir = tmp_path / "out" / "cache" / "fit"
    assert not [p for p in fit_dir.iterdir() if p.name.endswith(".partial")]  # failed: not cached


def test_sigkill_then_rerun_resumes_without_repeating_work(cli_env, tmp_path):
    release = tmp_path / "release"
    path = tmp_path / "s.toml"
    path.write_text(toy_suite_text(tmp_path, beta_extra=f', wait_for = "{release}"'))
    proc = subprocess.Popen([sys.executable, "-m", "medsynbench.cli", "run", str(path), "--quiet"],
                            env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    beta_log = tmp_path / "beta.log"
    deadline = time.monotonic() + 120
    while not (beta_log.exists() and "fit" in beta_log.read_text()):  # beta's fit has started
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    fit_dir = tmp_path / "out" / "cache" / "fit"
    complete = [p for p in fit_dir.iterdir() if (p / "COMPLETE").exists()]
    partial = [p for p in fit_dir.iterdir() if p.name.endswith(".partial")]
    assert len(complete) == 1 and len(partial) == 1  # alpha done; beta's work dir kept for resume
    assert not (tmp_path / "out" / "results.json").exists()

    release.write_text("go")
    rerun = cli(["run", str(path), "--quiet"], cli_env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert (tmp_path / "alpha.log").read_text().splitlines() == ["fit", "sample"]  # not repeated
    assert beta_log.read_text().splitlines() == ["fit", "fit", "sample"]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["manifest"]["stage_units"]["fit"] == {"computed": 1, "cached": 1}


def test_entry_names_with_brackets_print_as_text(registry, tmp_path):
    import io

    from medsynbench.progress import ProgressUI
    from rich.console import Console

    path = tmp_path / "s.toml"
    path.write_text(toy_suite_text(tmp_path).replace("spread = 5.0", "spread = [1.0, 2.0]"))
    suite = load_suite(path, registry)
    out = io.StringIO()
    ui = ProgressUI(Console(file=out, width=200), enabled=False)
    with ui:
        Runner(suite, registry, suite.output_dir, device="cpu", ui=ui).run()
    assert "sample   beta[spread=1.0] (" in out.getvalue()  # not swallowed as a style tag


def test_suite_cpu_threads_pin_torch_for_the_run(registry, tmp_path, monkeypatch):
    import torch

    seen: set[int] = set()
    build = Runner.build

    def spy(self: Runner, unit):
        seen.add(torch.get_num_threads())
        return build(self, unit)

    monkeypatch.setattr(Runner, "build", spy)
    path = tmp_path / "s.toml"
    path.write_text(toy_suite_text(tmp_path).replace('device = "cpu"',
                                                     'device = "cpu"\ncpu_threads = 3'))
    before = torch.get_num_threads()
    results, _ = run(registry, path)
    assert seen == {3} and torch.get_num_threads() == before  # every unit, then restored
    assert results["manifest"]["cpu_threads"] == 3


def test_duplicates_across_splits_are_reported_in_results_and_flags(registry, tmp_path):
    """The prepare stage audits every dataset plugin (here one that reads no files): test
    images that copy training images are counted in results.json and flagged with the unit."""
    path = tmp_path / "leaky.toml"
    path.write_text(toy_suite_text(tmp_path).replace("n_per_class = 20",
                                                     "n_per_class = 20\nleak = 2"))
    run(registry, path)
    text = (tmp_path / "out" / "results.json").read_text()
    duplicates = json.loads(text)["dataset"]["duplicates"]
    assert duplicates["exact_across"] == 2
    flags = json.loads(text)["dataset"]["flags"]  # the prepare unit's warning, kept for the board
    assert any("2 cluster(s) of duplicate images straddle splits" in f for f in flags)
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "**every entry** · data: 2 cluster(s) of duplicate images straddle splits" in board
    run(registry, toy_suite_text_path(tmp_path))
    clean_disk = json.loads((tmp_path / "clean" / "results.json").read_text())
    assert clean_disk["dataset"]["duplicates"]["exact_across"] == 0


def toy_suite_text_path(tmp_path: Path) -> Path:
    path = tmp_path / "clean.toml"
    path.write_text(toy_suite_text(tmp_path).replace(str(tmp_path / "out"),
                                                     str(tmp_path / "clean")))
    return path


def test_size_rules_are_checked_right_after_prepare_when_validate_could_not(registry, tmp_path):
    """The toy dataset's size is only known once loaded: a generator that cannot take it is
    refused after prepare, naming it, before any fit."""
    from medsynbench.errors import SuiteError

    path = tmp_path / "sized.toml"
    text = toy_suite_text(tmp_path).replace("n_per_class = 20", "n_per_class = 20\nsize = 12")
    text = text.replace('[[metrics]]', '[[generators]]\nplugin = "vqvae2"\n'
                        'train = { preset = "tiny" }\n\n[[metrics]]', 1)
    path.write_text(text)
    with pytest.raises(SuiteError, match=r"vqvae2.*12"):
        run(registry, path)
    assert not (tmp_path / "alpha.log").exists()  # nothing was fitted
