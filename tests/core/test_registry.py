"""Plugin discovery through entry points, lookup errors, and the CLI listings."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from medsynbench import Generator, hookspecs
from medsynbench.errors import DuplicatePluginError, PluginError, UnknownPluginError
from medsynbench.registry import PluginRegistry

from .conftest import toy_suite_text

TESTS = Path(__file__).resolve().parents[1]


def cli(args, env):
    return subprocess.run([sys.executable, "-m", "medsynbench.cli", *args],
                          capture_output=True, text=True, env=env)


def test_plugins_json_lists_every_kind_with_distribution(cli_env):
    proc = cli(["plugins", "--json"], cli_env)
    assert proc.returncode == 0, proc.stderr
    plugins = json.loads(proc.stdout)
    assert {p["kind"] for p in plugins} == {"dataset", "generator", "encoder", "metric", "task",
                                            "executor"}
    first_party = {p["kind"] for p in plugins if p["distribution"] == "medsynbench"}
    assert {"dataset", "generator", "encoder"} <= first_party
    hello = next(p for p in plugins if p["name"] == "hello-mean")
    assert hello == {**hello, "kind": "generator", "distribution": "medsynbench-hello",
                     "distribution_version": "1.2.3", "version": "1.0.0"}


def test_list_kind(cli_env):
    proc = cli(["list", "generators"], cli_env)
    assert proc.returncode == 0 and "hello-mean" in proc.stdout and "counting" in proc.stdout
    bad = cli(["list", "genrators"], cli_env)
    assert bad.returncode == 2 and 'did you mean "generator"' in bad.stderr


def test_load_plugins_env_restricts_loading(cli_env):
    only_hello = cli(["plugins", "--json"],
                     {**cli_env, "MEDSYNBENCH_LOAD_PLUGINS": "medsynbench-hello"})
    assert [p["name"] for p in json.loads(only_hello.stdout)] == ["hello-mean"]
    none = cli(["plugins", "--json"], {**cli_env, "MEDSYNBENCH_LOAD_PLUGINS": ""})
    assert json.loads(none.stdout) == []


def test_unknown_name_suggests_and_lists(registry):
    with pytest.raises(UnknownPluginError) as err:
        registry.get("generator", "helo-mean")
    assert 'did you mean "hello-mean"' in str(err.value) and "counting" in str(err.value)


def test_duplicate_name_names_both_distributions(registry):
    class Impostor(Generator):
        name = "hello-mean"

    with pytest.raises(DuplicatePluginError) as err:
        registry.register("generator", Impostor, "evil-dist", "6.6.6")
    assert "'medsynbench-hello'" in str(err.value) and "'evil-dist'" in str(err.value)


def test_wrong_base_class_is_refused():
    class NotAGenerator:
        name = "x"

    with pytest.raises(PluginError, match="not a Generator subclass"):
        PluginRegistry().register("generator", NotAGenerator, "d")  # type: ignore[arg-type]


def test_external_generator_plugin_runs_a_suite(cli_env, tmp_path):
    """The user story: pip-install a distribution that registers a generator, run a suite with
    it."""
    suite = tmp_path / "hello.toml"
    text = toy_suite_text(tmp_path).replace('plugin = "counting"\nname = "alpha"',
                                            'plugin = "hello-mean"\nname = "alpha"')
    suite.write_text(text.replace(f'train = {{ log = "{tmp_path / "alpha.log"}" }}',
                                  "train = { noise_scale = 0.5 }"))
    proc = cli(["run", str(suite), "--quiet"], cli_env)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    hello = results["entries"][0]
    assert hello["generator"] == "hello-mean" and hello["status"] == "ok"
    assert hello["params"]["train"] == {"noise_scale": 0.5}
    assert results["manifest"]["plugins"]["hello-mean"] == "1.0.0"
    assert "toy-centroid" in hello["utility"]


def test_every_hook_is_documented_and_tested():
    """llm-style meta-test: a hookspec without a docstring or without a test fails here."""
    tree = ast.parse(Path(hookspecs.__file__).read_text())
    hooks = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert len(hooks) >= 9
    test_sources = "\n".join(
        p.read_text() for p in TESTS.rglob("*.py") if p.name != Path(__file__).name
    )
    for hook in hooks:
        assert ast.get_docstring(hook), f"hookspec {hook.name} has no docstring"
        assert hook.name in test_sources, f"hookspec {hook.name} is not exercised by any test"
