"""Every bad input that can be checked before work is refused by `validate` / at suite load:
one message per problem, naming the key path and the fix, every problem of a suite in one run,
exit 2 and nothing written (issue 14 point 4, issue 19 point 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from medsynbench.errors import MedSynBenchError, ParameterError, SuiteError
from medsynbench.suite import MAX_CPU_THREADS, load_suite, usable_cpus

BASE = """
[suite]
name = "phantom-checks"
seeds = [0, 1, 2, 3, 4, 5, 6, 7]
device = "cpu"

[dataset]
plugin = "phantom-xray"
n_train = 10
n_val = 0
n_test = 5
resolution = 32

[[generators]]
plugin = "copy-real"

[[generators]]
plugin = "noise"

[[metrics]]
plugin = "prdc"
k = 3

[[metrics]]
plugin = "knn-privacy"
k = 3

[[tasks]]
plugin = "augmentation"
classifier = "small-cnn"

[output]
dir = "{out}"
"""


def suite_file(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = BASE.format(out=tmp_path / "out")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def problems_of(registry, path: Path) -> list[str]:
    with pytest.raises(MedSynBenchError) as err:
        load_suite(path, registry)
    message = str(err.value)
    assert message.count(str(path)) == 1, f"the file is named once: {message}"
    assert "Traceback" not in message
    return list(err.value.problems)


def one_problem(registry, path: Path) -> str:
    found = problems_of(registry, path)
    assert len(found) == 1, found
    return found[0]


def test_base_suite_is_valid(registry, tmp_path):
    suite = load_suite(suite_file(tmp_path), registry)
    assert [e.name for e in suite.entries] == ["copy-real", "noise"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("old, new, key, fix", [
    ("n_train = 10", "n_train = 0", "dataset.n_train", "set n_train ≥ 2"),
    ("n_train = 10", "n_train = 1", "dataset.n_train", "set n_train ≥ 2"),  # 1 image per class
    ("n_test = 5", "n_test = 0", "dataset.n_test", "set n_test ≥ 1"),
    ("k = 3", "k = 20", "metrics[0].k", "set k ≤ 19 or raise dataset.n_train"),
    ('classifier = "small-cnn"', 'classifier = "small-cnn"\neval_split = "tset"',
     "tasks[0].eval_split", 'did you mean "test"'),
    ('classifier = "small-cnn"', 'classifier = "small-cnn"\nlr = inf',
     "tasks[0].lr", "finite"),
    ('classifier = "small-cnn"', 'classifier = "small-cnn"\nlr = nan',
     "tasks[0].lr", "finite"),
    ("resolution = 32", "resolution = 32\nlesion_contrast = -inf", "dataset.lesion_contrast",
     "finite"),
    ('name = "phantom-checks"', 'name = ""', "suite.name", "give the suite a name"),
    ('name = "phantom-checks"', 'name = "   "', "suite.name", "give the suite a name"),
    ('plugin = "noise"', 'plugin = "noise"\nname = ""', "generators[1].name", "give a name"),
    ('classifier = "small-cnn"', 'classifier = "small-cnn"\nname = " "', "tasks[0].name",
     "give a name"),
    ("n_train = 10", "n_train = 1_000_000_000_000", "dataset.n_train",
     "PiB of memory"),
    ('plugin = "noise"', 'plugin = "noise"\ncount = 1_000_000_000_000',
     "generators[1].count", "lower count"),
    ("device = \"cpu\"", f"device = \"cpu\"\ncpu_threads = {MAX_CPU_THREADS + 1}",
     "suite.cpu_threads", "use at most the CPUs you have"),
    ('plugin = "noise"', 'plugin = "nosie"', "generators[1].plugin", 'did you mean "noise"'),
    ("k = 3\n\n[[metrics]]", 'k = 3\nencoder = "effnet"\n\n[[metrics]]', "metrics[0].encoder",
     "add an [[encoders]] table named 'effnet'"),
])
def test_bad_input_is_refused_at_load_with_key_and_fix(registry, tmp_path, old, new, key, fix):
    line = one_problem(registry, suite_file(tmp_path, (old, new)))
    assert line.startswith(key + ":"), line
    assert fix in line, line
    assert not (tmp_path / "out").exists()


def test_memory_message_says_how_much_is_needed(registry, tmp_path):
    line = one_problem(registry, suite_file(tmp_path, ("n_train = 10", "n_train = 10**12"
                                                       .replace("10**12", "1_000_000_000_000"))))
    assert "2,000,000,000,010 images of 1×32×32 need at least 1.82 PiB" in line, line
    assert "this machine has" in line


def test_validate_reports_every_problem_of_a_suite_in_one_run(registry, tmp_path):
    path = suite_file(
        tmp_path,
        ('name = "phantom-checks"', 'name = ""'),
        ("n_test = 5", "n_test = 0"),
        ('plugin = "noise"', 'plugin = "noize"'),
        ("k = 3", "k = 3\nkk = 1"),
        ('classifier = "small-cnn"', 'classifier = "small-cnn"\nepochs = 0\nlr = inf'),
    )
    with pytest.raises(SuiteError) as err:
        load_suite(path, registry)
    keys = [line.split(":")[0] for line in err.value.problems]
    assert keys == ["suite.name", "generators[1].plugin", "metrics[0].kk", "tasks[0].epochs",
                    "tasks[0].lr", "dataset.n_test"], err.value.problems
    assert str(err.value).startswith(f"{path}: 6 problems:")


def test_parameter_errors_name_the_file_once(registry, tmp_path):
    path = suite_file(tmp_path, ("n_train = 10", 'n_train = "ten"'))
    with pytest.raises(ParameterError) as err:
        load_suite(path, registry)
    assert str(err.value) == (f"{path}: dataset.n_train: dataset 'phantom-xray' expects int, "
                              "got str 'ten'")


def test_planned_splits_see_the_marker_probe_splits(registry, tmp_path):
    path = suite_file(tmp_path, ("resolution = 32", "resolution = 32\nmarker_rate = 0.5"),
                      ('classifier = "small-cnn"',
                       'classifier = "small-cnn"\neval_split = "test_swapped"'))
    assert load_suite(path, registry).tasks[0].params["eval_split"] == "test_swapped"


def test_cpu_threads_above_usable_cpus_is_a_warning(registry, tmp_path):
    threads = usable_cpus() + 1
    path = suite_file(tmp_path, ('device = "cpu"', f'device = "cpu"\ncpu_threads = {threads}'))
    suite = load_suite(path, registry)
    assert suite.cpu_threads == threads
    assert len(suite.warnings) == 1 and f"lower it to {threads - 1}" in suite.warnings[0].lower()


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "medsynbench.cli", *args],
                          capture_output=True, text=True, env=env, cwd=cwd)


def _unreadable_cases(tmp_path: Path) -> list[tuple[Path, str]]:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[suite]\nname = "caf\xe9"\n'.encode("latin-1"))
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    cases = [(latin1, "not UTF-8 text"), (folder, "is a directory, not a suite file")]
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.toml"
        locked.write_text("[suite]\n")
        locked.chmod(0)
        cases.append((locked, "no permission to read the suite file; make it readable"))
    return cases


@pytest.mark.parametrize("command", ["validate", "run"])
def test_unreadable_suite_file_is_one_line_exit_2(cli_env, tmp_path, command):
    for path, reason in _unreadable_cases(tmp_path):
        before = sorted(p.name for p in tmp_path.iterdir())
        proc = _cli([command, str(path)], cli_env, tmp_path)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"{path}: {reason}" in lines[0]
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_validate_command_lists_every_problem_and_exits_2(cli_env, tmp_path):
    path = suite_file(tmp_path, ('name = "phantom-checks"', 'name = ""'), ("k = 3", "k = 30"),
                      ('classifier = "small-cnn"', 'classifier = "small-cnn"\nlr = inf'))
    proc = _cli(["validate", str(path)], cli_env, tmp_path)
    assert proc.returncode == 2
    assert "3 problems" in proc.stderr and "Traceback" not in proc.stderr
    for key in ("suite.name", "metrics[0].k", "tasks[0].lr"):
        assert f"  - {key}: " in proc.stderr
    assert not (tmp_path / "out").exists()


def test_unset_data_variable_says_what_to_download_and_where(registry, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDSYNBENCH_DATA", raising=False)
    path = tmp_path / "lite.toml"
    path.write_text(BASE.format(out=tmp_path / "out").replace(
        'plugin = "phantom-xray"\nn_train = 10\nn_val = 0\nn_test = 5\nresolution = 32',
        'plugin = "lc25000"\nroot = "${MEDSYNBENCH_DATA}/lc25000"'))
    with pytest.raises(SuiteError) as err:
        load_suite(path, registry)
    message = str(err.value)
    assert message.startswith(f"{path}: dataset.root: environment variable ${{MEDSYNBENCH_DATA}}")
    assert "LC25000.zip" in message  # what to download
    assert "Put it at ${MEDSYNBENCH_DATA}/lc25000" in message  # where
    assert "--root" not in message  # `run` has no such option


def test_suite_device_message_names_the_suite_not_a_flag(cli_env, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    path = suite_file(tmp_path, ('device = "cpu"', 'device = "cuda"'))
    proc = _cli(["run", str(path)], cli_env, tmp_path)
    assert proc.returncode == 2
    assert f'{path}: suite.device = "cuda" asks for a GPU' in proc.stderr
    assert "--device cuda was requested" not in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = _cli(["run", str(suite_file(tmp_path)), "--device", "cuda"], cli_env, tmp_path)
    assert proc.returncode == 2 and "--device cuda was requested" in proc.stderr
    assert not (tmp_path / "out").exists()


SUITES = Path(__file__).resolve().parents[2] / "suites"


@pytest.mark.parametrize("path", sorted(SUITES.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_suite_reads_its_data_from_medsynbench_data(path, registry, tmp_path,
                                                                 monkeypatch):
    """Each shipped suite's roots live under $MEDSYNBENCH_DATA: with it pointing at the
    layouts (and HOME elsewhere) every suite validates; unset, the message says what to set."""
    data = tmp_path / "data"
    for split in ("train", "val", "test"):
        for cls in ("NORMAL", "PNEUMONIA"):
            (data / "chest_xray" / split / cls).mkdir(parents=True)
            (data / "kermany2018_chest_xray" / "chest_xray" / split / cls).mkdir(parents=True)
    (data / "lung_pet_ct_dx" / "slices").mkdir(parents=True)
    (data / "ct").mkdir()
    for cls in ("inflammatory", "necrosis", "stroma", "tumor", "fat", "gland"):
        (data / "bcss-lizard" / cls).mkdir(parents=True)
    (data / "CheXpert-v1.0").mkdir(parents=True)
    (data / "CheXpert-v1.0" / "train.csv").write_text(
        "Path,Sex,Age,Frontal/Lateral,AP/PA,Pleural Effusion\n")
    (data / "pneumoniamnist").mkdir()
    (data / "lc25000" / "images").mkdir(parents=True)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"placeholder")
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("MEDSYNBENCH_DATA", str(data))
    assert load_suite(path, registry).entries
    if "${MEDSYNBENCH_DATA}" in path.read_text():
        monkeypatch.delenv("MEDSYNBENCH_DATA")
        with pytest.raises(SuiteError, match=r"MEDSYNBENCH_DATA\} is not set; export"):
            load_suite(path, registry)
