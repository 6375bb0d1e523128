"""Installs the two fixture distributions (tests/fixtures/) into a private folder once per session.

``medsynbench-hello`` is the plugin guide's third-party generator; ``medsynbench-testkit``
provides fast toy plugins of every kind. They are installed with pip, exactly as a user
installs a plugin, but into a temporary ``--target`` folder put on ``sys.path``/``PYTHONPATH``,
so the developer's environment is left untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from medsynbench.registry import PluginRegistry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder holding the installed fixture distributions, importable in this process."""
    target = tmp_path_factory.mktemp("plugin-site")
    for dist in ("medsynbench-hello", "medsynbench-testkit"):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
             "--target", str(target), str(FIXTURES / dist)],
            check=True,
        )
    sys.path.insert(0, str(target))
    yield target
    sys.path.remove(str(target))


@pytest.fixture
def registry(plugin_site: Path) -> PluginRegistry:
    """A registry loaded from every entry point, the fixture distributions included."""
    registry = PluginRegistry()
    registry.load_entry_points()
    return registry


@pytest.fixture
def cli_env(plugin_site: Path) -> dict[str, str]:
    """Environment for running ``python -m medsynbench.cli`` with the fixture plugins."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_site), env.get("PYTHONPATH")]))
    env.pop("MEDSYNBENCH_LOAD_PLUGINS", None)
    return env


TOY_SUITE = """
[suite]
name = "toy"
seeds = [0, 1, 2, 3, 4, 5, 6]
device = "cpu"

[dataset]
plugin = "toy"
n_per_class = 20

[[generators]]
plugin = "counting"
name = "alpha"
train = {{ log = "{log}" }}

[[generators]]
plugin = "counting"
name = "beta"
train = {{ log = "{log_beta}"{beta_extra} }}
sample = {{ spread = 5.0 }}

[[metrics]]
plugin = "toy-gap"

[[tasks]]
plugin = "toy-centroid"

[output]
dir = "{out}"
"""


@pytest.fixture
def toy_suite(tmp_path: Path) -> Path:
    """A valid suite over the testkit plugins; fit logs go to tmp_path/alpha.log, beta.log."""
    path = tmp_path / "toy.toml"
    path.write_text(toy_suite_text(tmp_path))
    return path


def toy_suite_text(tmp_path: Path, beta_extra: str = "") -> str:
    """The toy suite; ``beta_extra`` adds keys to the second entry's train table."""
    return TOY_SUITE.format(log=tmp_path / "alpha.log", log_beta=tmp_path / "beta.log",
                            beta_extra=beta_extra, out=tmp_path / "out")
