"""README "Benchmark your own generator in five minutes" runs as written, and docs/generators.md
describes every parameter of the bring-your-own generators.

The commands are read from the README's block between ``<!-- byo-commands:start -->`` and
``<!-- byo-commands:end -->`` and run in that order in an empty folder that holds only
``examples/`` (a link to the repository's): the scripts exactly as written, and each
``medsynbench run examples/X.toml`` on a suite that includes X.toml unchanged and only shrinks the
demo data and the classifier's epochs, so the example's generators, encoder, metrics, seeds,
output folder and the later commands that read it are the README's own.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- byo-commands:start -->\s*```bash\n(.*?)```\s*<!-- byo-commands:end -->",
                   re.S)
SMALLER = """
include = "{suite}"

[suite]
cpu_threads = 1

[dataset]
n_train = 12
n_val = 12
n_test = 12

[[tasks]]
plugin = "augmentation"
classifier = "small-cnn"
image_size = 32
epochs = 2
"""


def documented_commands() -> list[str]:
    match = BLOCK.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md lost its byo-commands block"
    lines = (line.split("#", 1)[0].strip() for line in match.group(1).splitlines())
    return [line for line in lines if line]


def test_the_readme_names_both_routes():
    commands = documented_commands()
    runs = [c for c in commands if c.startswith("medsynbench run ")]
    assert runs == ["medsynbench run examples/callable.toml",
                    "medsynbench run examples/diffusers.toml"]
    assert any(c.startswith("python examples/make_tiny_pipeline.py") for c in commands)


@pytest.mark.parametrize("plugin", ["callable", "diffusers", "monai"])
def test_docs_generators_lists_every_parameter(plugin):
    from medsynbench.registry import get_registry

    cls = get_registry().get("generator", plugin)
    text = (REPO / "docs" / "generators.md").read_text(encoding="utf-8")
    section = text.split(f"## `{plugin}`", 1)[1].split("\n## ", 1)[0]
    missing = [k for k in [*cls.parameters, *cls.sample_parameters] if f"`{k}`" not in section]
    assert not missing, f"docs/generators.md, section {plugin}: not described: {missing}"


@pytest.mark.slow
def test_the_readme_routes_run_as_written(tmp_path):
    pytest.importorskip("diffusers")
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    for command in documented_commands():
        argv = shlex.split(command)
        if argv[:2] == ["medsynbench", "run"]:
            small = tmp_path / f"small-{Path(argv[2]).name}"
            small.write_text(SMALLER.format(suite=tmp_path / argv[2]))
            argv = [*argv[:2], str(small), *argv[3:], "--device", "cpu", "--quiet"]
        if argv[0] == "medsynbench":
            argv = [sys.executable, "-m", "medsynbench.cli", *argv[1:]]
        elif argv[0] == "python":
            argv = [sys.executable, *argv[1:]]
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"

    for run, entry in (("byo-callable", "my-generator"), ("byo-diffusers", "my-pipeline")):
        results = json.loads((tmp_path / "runs" / run / "results.json").read_text())
        entries = {e["name"]: e for e in results["entries"]}
        assert set(entries) == {entry, "classical-augment", "noise"}
        assert all(e["status"] == "ok" for e in entries.values()), entries
        ours = entries[entry]
        assert len(ours["utility"]["augmentation"]["treated"]["accuracy"]) == 8
        assert {"fid.fid", "prdc.precision", "knn-privacy.privacy"} <= set(ours["metrics"])
        assert ours["efficiency"]["seconds_per_1000"] > 0
    assert (tmp_path / "runs" / "byo-callable" / "site" / "index.html").is_file()
