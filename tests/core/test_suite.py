"""Suite loading and validation: every bad input gives one clear message, nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from medsynbench.errors import DataError, ParameterError, SuiteError, UnknownPluginError
from medsynbench.suite import load_suite

from .conftest import toy_suite_text


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_suite_loads_with_defaults(registry, toy_suite):
    suite = load_suite(toy_suite, registry)
    assert [e.name for e in suite.entries] == ["alpha", "beta"]
    assert suite.entries[0].sample == {"spread": 10.0}  # default filled in
    assert suite.metrics[0].encoder == "toy-pixels"  # the metric's default encoder
    assert len(suite.hash) == 64


def test_unknown_top_level_key_names_file_and_suggestion(registry, tmp_path):
    path = write(tmp_path, toy_suite_text(tmp_path).replace("[[metrics]]", "[[metricz]]"))
    with pytest.raises(SuiteError) as err:
        load_suite(path, registry)
    message = str(err.value)
    assert str(path) in message and "metricz" in message and 'did you mean "metrics"' in message


def test_unknown_plugin_parameter_has_dotted_path(registry, tmp_path):
    text = toy_suite_text(tmp_path).replace("n_per_class = 20", "n_per_clas = 20")
    with pytest.raises(ParameterError) as err:
        load_suite(write(tmp_path, text), registry)
    assert "dataset.n_per_clas" in str(err.value) and 'did you mean "n_per_class"' in str(err.value)


def test_unknown_sample_key_in_generator(registry, tmp_path):
    text = toy_suite_text(tmp_path).replace("spread = 5.0", "spraed = 5.0")
    with pytest.raises(ParameterError,
                       match=r"generators\[1\]\.sample\.spraed.*did you mean \"spread\""):
        load_suite(write(tmp_path, text), registry)


def test_wrong_value_type(registry, tmp_path):
    text = toy_suite_text(tmp_path).replace("n_per_class = 20", 'n_per_class = "twenty"')
    with pytest.raises(ParameterError,
                       match=r"dataset\.n_per_class: .* expects int, got str 'twenty'"):
        load_suite(write(tmp_path, text), registry)


def test_wrong_type_of_runner_key(registry, tmp_path):
    text = toy_suite_text(tmp_path).replace('name = "toy"\n', "name = 3\n", 1)
    with pytest.raises(SuiteError, match=r"suite\.name: expected str, got int 3"):
        load_suite(write(tmp_path, text), registry)


def test_toml_syntax_error_reports_line_and_column(registry, tmp_path):
    path = write(tmp_path, '[suite]\nname = "x"\nseeds = [0, 1]\ndevice = cpu\n')
    with pytest.raises(SuiteError, match=r"TOML syntax error: .*line 4, column 10"):
        load_suite(path, registry)


def test_missing_dataset_path(registry, tmp_path):
    text = toy_suite_text(tmp_path).replace("n_per_class = 20", f'root = "{tmp_path}/nowhere"')
    with pytest.raises(DataError, match="nowhere does not exist"):
        load_suite(write(tmp_path, text), registry)


def test_unknown_plugin_lists_available_and_suggests(registry, tmp_path):
    text = toy_suite_text(tmp_path).replace('plugin = "toy-gap"', 'plugin = "toy-gapp"')
    with pytest.raises(UnknownPluginError) as err:
        load_suite(write(tmp_path, text), registry)
    assert 'did you mean "toy-gap"' in str(err.value) and "available:" in str(err.value)


def test_zero_generators(registry, tmp_path):
    text = toy_suite_text(tmp_path)
    start, end = text.index("[[generators]]"), text.index("[[metrics]]")
    with pytest.raises(SuiteError, match="zero generators"):
        load_suite(write(tmp_path, text[:start] + text[end:]), registry)


def test_empty_seeds(registry, tmp_path):
    text = toy_suite_text(tmp_path).replace("seeds = [0, 1, 2, 3, 4, 5, 6]", "seeds = []")
    with pytest.raises(SuiteError, match=r"suite\.seeds: empty"):
        load_suite(write(tmp_path, text), registry)


def test_duplicate_entry_names(registry, tmp_path):
    text = toy_suite_text(tmp_path).replace('name = "beta"', 'name = "alpha"')
    with pytest.raises(SuiteError, match="two entries are named 'alpha'"):
        load_suite(write(tmp_path, text), registry)


def test_include_env_and_home_expansion(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_N", "7")
    monkeypatch.setenv("HOME", str(tmp_path))
    base = toy_suite_text(tmp_path).replace("n_per_class = 20", "n_per_class = 20\nroot = \"~\"")
    write(tmp_path, base, "base.toml")
    child_text = 'include = "base.toml"\n[suite]\nname = "child-${TOY_N}"\n'
    child = write(tmp_path, child_text, "child.toml")
    suite = load_suite(child, registry)
    assert suite.name == "child-7"  # overrides the base, keeps the base's seeds
    assert suite.seeds == [0, 1, 2, 3, 4, 5, 6]
    assert suite.dataset.params["root"] == str(tmp_path)


def test_unset_environment_variable(registry, tmp_path):
    text = toy_suite_text(tmp_path).replace('name = "toy"\n',
                                            'name = "${NOT_SET_ANYWHERE_42}"\n', 1)
    with pytest.raises(SuiteError, match=r"suite\.name: environment variable "
                                         r"\$\{NOT_SET_ANYWHERE_42\} is not set"):
        load_suite(write(tmp_path, text), registry)


def test_include_cycle(registry, tmp_path):
    write(tmp_path, 'include = "b.toml"\n', "a.toml")
    write(tmp_path, 'include = "a.toml"\n', "b.toml")
    with pytest.raises(SuiteError, match="include cycle"):
        load_suite(tmp_path / "a.toml", registry)


def test_sweepable_list_expands_into_entries(registry, tmp_path):
    text = toy_suite_text(tmp_path).replace("spread = 5.0", "spread = [1.0, 2.0, 4.0]")
    # 4 ranked entries: Holm over 4 exact Wilcoxon tests needs 8 seeds (4 × 2/2^7 ≥ 0.05)
    with pytest.raises(SuiteError, match="give at least 8 seeds"):
        load_suite(write(tmp_path, text), registry)
    text = text.replace("seeds = [0, 1, 2, 3, 4, 5, 6]", "seeds = [0, 1, 2, 3, 4, 5, 6, 7]")
    suite = load_suite(write(tmp_path, text), registry)
    names = [e.name for e in suite.entries]
    assert names == ["alpha", "beta[spread=1.0]", "beta[spread=2.0]", "beta[spread=4.0]"]
    assert [e.sample["spread"] for e in suite.entries[1:]] == [1.0, 2.0, 4.0]
    assert len({e.train["log"] for e in suite.entries[1:]}) == 1  # one fit shared by the sweep


def test_hash_ignores_local_paths_but_not_parameters(registry, tmp_path):
    a = load_suite(write(tmp_path, toy_suite_text(tmp_path), "a.toml"), registry)
    moved = toy_suite_text(tmp_path).replace(str(tmp_path / "out"), str(tmp_path / "elsewhere"))
    b = load_suite(write(tmp_path, moved, "b.toml"), registry)
    changed_text = toy_suite_text(tmp_path).replace("20", "21")
    changed = load_suite(write(tmp_path, changed_text, "c.toml"), registry)
    assert a.hash == b.hash
    assert a.hash != changed.hash


def test_validate_command_reports_and_writes_nothing(cli_env, tmp_path):
    good = write(tmp_path, toy_suite_text(tmp_path), "good.toml")
    bad = write(tmp_path, toy_suite_text(tmp_path).replace("[[tasks]]", "[[taks]]"), "bad.toml")
    command = [sys.executable, "-m", "medsynbench.cli", "validate", str(good), str(bad)]
    proc = subprocess.run(command, capture_output=True, text=True, env=cli_env)
    assert proc.returncode == 2
    assert "✓" in proc.stdout and "good.toml" in proc.stdout
    assert "bad.toml: taks: unknown key" in proc.stderr and 'did you mean "tasks"' in proc.stderr
    assert not (tmp_path / "out").exists()


def test_bad_suite_run_prints_one_line_and_writes_nothing(cli_env, tmp_path):
    bad = write(tmp_path,
                toy_suite_text(tmp_path).replace("seeds = [0, 1, 2, 3, 4, 5, 6]", "seeds = []"))
    proc = subprocess.run([sys.executable, "-m", "medsynbench.cli", "run", str(bad)],
                          capture_output=True, text=True, env=cli_env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("value", "message"), [
    ("0", r"suite\.cpu_threads: must be a positive integer, got 0"),
    ("true", r"suite\.cpu_threads: expected int, got bool"),
    ('"2"', r"suite\.cpu_threads: expected int, got str"),
])
def test_bad_cpu_threads(registry, tmp_path, value, message):
    text = toy_suite_text(tmp_path).replace('device = "cpu"',
                                            f'device = "cpu"\ncpu_threads = {value}')
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, text), registry)


def test_cpu_threads_is_a_compute_setting_not_part_of_the_hash(registry, tmp_path):
    plain = load_suite(write(tmp_path, toy_suite_text(tmp_path), "a.toml"), registry)
    text = toy_suite_text(tmp_path).replace('device = "cpu"', 'device = "cpu"\ncpu_threads = 3')
    pinned = load_suite(write(tmp_path, text, "b.toml"), registry)
    assert (plain.cpu_threads, pinned.cpu_threads) == (None, 3)
    assert plain.hash == pinned.hash


UNDERPOWERED = ("seeds = [0, 1, 2, 3, 4, 5, 6]", "seeds = [0, 1, 2]")


def test_underpowered_suite_is_refused_before_any_work(registry, tmp_path):
    path = write(tmp_path, toy_suite_text(tmp_path).replace(*UNDERPOWERED))
    with pytest.raises(SuiteError) as err:
        load_suite(path, registry)
    message = str(err.value)
    # 2 ranked entries: smallest Holm-adjusted p = 2 × 2/2^3 = 0.5; 2 × 2/2^7 < 0.05
    assert message.startswith(f"{path}: suite.seeds: 3 seeds cannot reach p < 0.05")
    assert "2 × 2/2^3 = 0.5" in message
    assert "give at least 7 seeds" in message and "--allow-underpowered" in message
    suite = load_suite(path, registry, allow_underpowered=True)
    assert suite.seeds == [0, 1, 2]
    assert not (tmp_path / "out").exists() and not (tmp_path / "alpha.log").exists()


def test_validate_command_refuses_underpowered_suite(cli_env, tmp_path):
    path = write(tmp_path, toy_suite_text(tmp_path).replace(*UNDERPOWERED))
    command = [sys.executable, "-m", "medsynbench.cli", "validate", str(path)]
    proc = subprocess.run(command, capture_output=True, text=True, env=cli_env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "suite.seeds: 3 seeds cannot reach p < 0.05" in lines[0]
    assert "give at least 7 seeds" in lines[0] and "--allow-underpowered" in lines[0]
    assert proc.stdout == ""
    assert not (tmp_path / "out").exists()
    insisted = subprocess.run([*command, "--allow-underpowered"], capture_output=True, text=True,
                              env=cli_env)
    assert insisted.returncode == 0, insisted.stderr
    assert "CANNOT reach 0.05; needs ≥ 7 seeds" in insisted.stdout
    assert not (tmp_path / "out").exists()
