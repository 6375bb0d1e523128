"""Hook specifications. A plugin module implements any of these with ``@hookimpl``.

Registration hooks take a ``register`` callback and call it once per plugin class::

    from medsynbench import hookimpl

    @hookimpl
    def register_generators(register):
        register(MyGenerator)
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("medsynbench")
hookimpl = pluggy.HookimplMarker("medsynbench")


@hookspec
def register_datasets(register: Any) -> None:
    """Register Dataset subclasses by calling ``register(cls)``."""


@hookspec
def register_generators(register: Any) -> None:
    """Register Generator subclasses by calling ``register(cls)``."""


@hookspec
def register_encoders(register: Any) -> None:
    """Register Encoder subclasses by calling ``register(cls)``."""


@hookspec
def register_metrics(register: Any) -> None:
    """Register Metric subclasses by calling ``register(cls)``."""


@hookspec
def register_tasks(register: Any) -> None:
    """Register Task subclasses by calling ``register(cls)``."""


@hookspec
def register_executors(register: Any) -> None:
    """Register Executor subclasses by calling ``register(cls)``."""


@hookspec
def register_commands(subparsers: Any) -> None:
    """Add CLI sub-commands to the ``medsynbench`` argparse ``subparsers``."""


@hookspec
def run_started(suite: Any, manifest: dict[str, Any]) -> None:
    """Called once before the first stage of a run, with the validated suite and manifest."""


@hookspec
def stage_finished(stage: str, entry: str | None, key: str, seconds: float, cached: bool) -> None:
    """Called after every stage unit (``cached`` is True when it was skipped as complete)."""


@hookspec
def run_finished(results: dict[str, Any], out_dir: Any) -> None:
    """Called after results.json is written, with the results document and output directory."""
