"""First-party dataset plugins, registered by the ``register_datasets`` hook below."""

from __future__ import annotations

from typing import Any

from medsynbench import hookimpl

from .phantom_xray import PhantomXray

PLUGINS: list[type] = [PhantomXray]


@hookimpl
def register_datasets(register: Any) -> None:
    """Register every first-party dataset plugin."""
    for cls in PLUGINS:
        register(cls)
