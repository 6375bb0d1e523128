"""Import ``medsynbench`` from this checkout when it is not installed (e.g. a GPU node that has
torch but no network to ``pip install`` the project): the package folders are mapped by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def ensure_medsynbench() -> None:
    """Make ``import medsynbench`` and ``import medsynbench.plugins`` work."""
    try:
        import medsynbench  # noqa: F401
    except ImportError:
        for name, path in (("medsynbench", REPO / "benchmark"),
                           ("medsynbench.plugins", REPO / "plugins")):
            spec = importlib.util.spec_from_file_location(
                name, path / "__init__.py", submodule_search_locations=[str(path)])
            assert spec is not None and spec.loader is not None
            sys.modules[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(sys.modules[name])
