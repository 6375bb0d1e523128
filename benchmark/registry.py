"""Plugin discovery and lookup.

Every plugin, first-party included, arrives through the entry-point group ``medsynbench``:
each entry point names a module implementing hooks from :mod:`medsynbench.hookspecs`.
``MEDSYNBENCH_LOAD_PLUGINS`` (comma-separated distribution or entry-point names; empty means
none) restricts which entry points are loaded.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import DuplicatePluginError, PluginError, UnknownPluginError
from .kinds import KINDS, Dataset, Encoder, Executor, Generator, Metric, Plugin, Task
from .params import did_you_mean

__all__ = ["ENTRY_POINT_GROUP", "PluginInfo", "PluginRegistry", "get_registry"]

ENTRY_POINT_GROUP = "medsynbench"
_BASES: dict[str, type[Plugin]] = {
    "dataset": Dataset,
    "generator": Generator,
    "encoder": Encoder,
    "metric": Metric,
    "task": Task,
    "executor": Executor,
}
_HOOKS = {
    "dataset": "register_datasets",
    "generator": "register_generators",
    "encoder": "register_encoders",
    "metric": "register_metrics",
    "task": "register_tasks",
    "executor": "register_executors",
}


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin as listed by ``medsynbench plugins``."""

    name: str
    kind: str
    version: str
    distribution: str
    distribution_version: str
    description: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def _wanted_entry_points() -> list[tuple[md.EntryPoint, str, str]]:
    selection = os.environ.get("MEDSYNBENCH_LOAD_PLUGINS")
    wanted = None if selection is None else {s.strip() for s in selection.split(",") if s.strip()}
    found = []
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "unknown"
        dist_version = ep.dist.version if ep.dist is not None else ""
        if wanted is not None and dist not in wanted and ep.name not in wanted:
            continue
        found.append((ep, dist, dist_version))
    return found


class PluginRegistry:
    """Plugin classes by kind and name, filled from pluggy hooks."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._classes: dict[str, dict[str, type[Plugin]]] = {kind: {} for kind in KINDS}
        self._module_dist: dict[str, tuple[str, str]] = {}

    def load_entry_points(self) -> None:
        """Load every (allowed) entry point of the ``medsynbench`` group."""
        for ep, dist, dist_version in _wanted_entry_points():
            try:
                module = ep.load()
            except Exception as exc:  # a broken third-party plugin must name itself
                raise PluginError(
                    f"plugin entry point {ep.name!r} ({ep.value}) of distribution {dist!r} "
                    f"failed to import: {type(exc).__name__}: {exc}"
                ) from exc
            self.add_module(module, dist, dist_version)

    def add_module(self, module: ModuleType | object, dist: str, dist_version: str = "") -> None:
        """Register a hook-implementing module (or object) as coming from ``dist``."""
        name = getattr(module, "__name__", repr(module))
        if self.pm.is_registered(module):
            return
        self.pm.register(module, name=name)
        for kind, hook_name in _HOOKS.items():
            impls = [
                impl
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls()
                if impl.plugin is module
            ]
            for impl in impls:
                impl.function(lambda cls, kind=kind: self.register(kind, cls, dist, dist_version))

    def register(self, kind: str, cls: type[Plugin], dist: str, dist_version: str = "") -> None:
        """Add one plugin class; refuse a wrong base class or a name already taken."""
        base = _BASES[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(
                f"{dist}: register_{kind}s registered {cls!r}, "
                f"which is not a {base.__name__} subclass"
            )
        if not cls.name:
            raise PluginError(f"{dist}: {cls.__qualname__} has no `name`")
        existing = self._classes[kind].get(cls.name)
        if existing is not None and existing is not cls:
            raise DuplicatePluginError(
                f"two {kind} plugins are named {cls.name!r}: {existing.__qualname__} from "
                f"distribution {existing.distribution!r} and {cls.__qualname__} from "
                f"distribution {dist!r}; uninstall one or restrict loading with "
                f"MEDSYNBENCH_LOAD_PLUGINS"
            )
        cls.distribution = dist
        cls.distribution_version = dist_version
        self._classes[kind][cls.name] = cls

    def names(self, kind: str) -> list[str]:
        """Sorted names of the registered plugins of ``kind``."""
        self._check_kind(kind)
        return sorted(self._classes[kind])

    def get(self, kind: str, name: str) -> type[Plugin]:
        """The class registered as ``name`` (``family:argument`` names resolve to ``family``)."""
        self._check_kind(kind)
        classes = self._classes[kind]
        if name in classes:
            return classes[name]
        family = name.split(":", 1)[0]
        if ":" in name and family in classes and classes[family].name_argument:
            return classes[family]
        available = ", ".join(sorted(classes)) or "none (is MEDSYNBENCH_LOAD_PLUGINS set?)"
        raise UnknownPluginError(
            f"unknown {kind} plugin {name!r}{did_you_mean(name, classes)}; available: {available}"
        )

    def create(self, kind: str, name: str, params: dict[str, Any], where: str = "") -> Plugin:
        """Instantiate a plugin after validating its parameters."""
        cls = self.get(kind, name)
        params = dict(params)
        if ":" in name and cls.name_argument:
            params[cls.name_argument] = name.split(":", 1)[1]
        # Validate first so that errors carry the suite's key path, then construct normally
        # (plugins may define __init__); validation is idempotent on a complete dict.
        return cls(**cls.validate(params, where or name))

    def infos(self, kinds: Iterable[str] = KINDS) -> list[PluginInfo]:
        """Every registered plugin, ordered by kind then name."""
        return [
            PluginInfo(
                cls.name,
                kind,
                cls.version,
                cls.distribution,
                cls.distribution_version,
                (cls.description or (cls.__doc__ or "")).strip().split("\n")[0],
            )
            for kind in kinds
            for cls in (self._classes[kind][n] for n in self.names(kind))
        ]

    @property
    def hook(self) -> Any:
        """pluggy's hook relay, for lifecycle hooks."""
        return self.pm.hook

    def _check_kind(self, kind: str) -> None:
        if kind not in self._classes:
            raise PluginError(
                f"unknown plugin kind {kind!r}{did_you_mean(kind, KINDS)}; "
                f"kinds: {', '.join(KINDS)}"
            )


_registry: PluginRegistry | None = None


def get_registry(reload: bool = False) -> PluginRegistry:
    """The process-wide registry, loaded from entry points on first use."""
    global _registry
    if _registry is None or reload:
        registry = PluginRegistry()
        registry.load_entry_points()
        _registry = registry
    return _registry
