"""First-party executor plugins: where a run's units are built.

``local`` (default) builds them one after the other in this process; ``ray`` as Ray tasks on a
local or existing cluster; ``slurm`` as SLURM job arrays through submitit (or submitit's local
executor). Every executor builds units into one cache directory, which must be on a
filesystem all workers share; the runner reads the results back from it.
"""

from __future__ import annotations

from typing import Any

from medsynbench import hookimpl

from .local import LocalExecutor
from .ray_executor import RayExecutor
from .slurm import SlurmExecutor

PLUGINS: list[type] = [LocalExecutor, RayExecutor, SlurmExecutor]


@hookimpl
def register_executors(register: Any) -> None:
    """Register every first-party executor plugin."""
    for cls in PLUGINS:
        register(cls)
