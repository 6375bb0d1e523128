"""First-party task plugins: every class listed in ``PLUGINS`` is registered by the hook."""

from __future__ import annotations

from typing import Any

from medsynbench import hookimpl

from .augmentation import Augmentation

PLUGINS: list[type] = [Augmentation]


@hookimpl
def register_tasks(register: Any) -> None:
    """Register every first-party task plugin."""
    for cls in PLUGINS:
        register(cls)
