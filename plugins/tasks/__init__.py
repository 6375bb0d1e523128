"""First-party tasks plugins. Each module adds its classes to ``PLUGINS``; the hook registers them."""

from __future__ import annotations

from typing import Any

from medsynbench import hookimpl

PLUGINS: list[type] = []


@hookimpl
def register_tasks(register: Any) -> None:
    """Register every first-party task plugin."""
    for cls in PLUGINS:
        register(cls)
