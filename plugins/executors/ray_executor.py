"""``ray``: every unit a Ray task, on a private Ray instance or an existing cluster.

Each pending unit becomes one task with ``num_cpus``/``num_gpus`` from its needs
(:class:`~medsynbench.plan.Needs`); a unit's inputs are passed as the tasks it reads, so Ray
starts it when they have finished and runs independent units at once (a plan's ``parallel``
says how many can). The task ships a :class:`~medsynbench.runner.UnitJob` — the validated suite,
the cache directory, the device — and builds its unit into that cache, where the runner reads
it back. So the cache directory must be on a filesystem every node shares (NFS, Lustre, a
mounted bucket): a node that cannot write it fails its first unit with a message naming the node
and the path, and the run stops. The package and the plugins the suite uses must be installed on
every node.

A worker that dies (a killed process, a lost node) is retried ``max_retries`` times by Ray; the
unit resumes from its partial work directory and the cache's lock protocol keeps two workers
from writing one unit (:mod:`medsynbench.cache`).

Why Ray's task API and not Ray Data or Ray Train: units are coarse, heterogeneous and already
cached by content, which is exactly a task graph; a unit that needs several GPUs itself uses
``torchrun``/DDP inside the task (see docs/cluster.md).
"""

from __future__ import annotations

import importlib.util
import logging
import socket
from typing import Any, ClassVar

from medsynbench.errors import ExecutorError
from medsynbench.kinds import Executor
from medsynbench.params import Param, nonnegative, positive_int
from medsynbench.plan import Plan, UnitOutcome, outcome_line

__all__ = ["RayExecutor", "check_reachable"]



def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the address, when nothing listens at ``HOST:PORT`` (Ray itself retries
    for about a minute before giving up)."""
    host, sep, port = address.rpartition(":")
    if address.startswith("ray://"):
        host, sep, port = address[len("ray://"):].rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorError(
            f"Ray address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379) or 'auto'; "
            "`ray status` on the head node prints it"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ExecutorError(
            f"Ray address {address} is unreachable ({exc.strerror or exc}); start the cluster "
            "with `ray start --head` on the head node, check the address and firewall, or drop "
            "--address to start a private Ray instance on this machine"
        ) from None


def _build(job: Any, unit_id: str, *inputs: UnitOutcome) -> UnitOutcome:
    """The Ray task: skip when an input failed, else build the unit (module-level: picklable)."""
    failed = next((o for o in inputs if not o.ok), None)
    if failed is not None:
        return UnitOutcome(unit_id, False, error=f"input {failed.id} failed", skipped=True)
    outcome: UnitOutcome = job.build(unit_id)
    return outcome


class RayExecutor(Executor):
    """Build each unit as a Ray task (module docstring)."""

    name: ClassVar[str] = "ray"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = ("Build units as Ray tasks on a private instance or an "
                                  "existing cluster (shared cache directory)")
    parameters: ClassVar[dict[str, Param]] = {
        "address": Param(None, str, "an existing cluster: 'auto' (RAY_ADDRESS, or the head "
                         "`ray start` runs on this machine) or HOST:PORT of its head; null: a "
                         "private Ray instance on this machine", nullable=True),
        "num_cpus": Param(None, int, "CPUs of the private instance (null: all of them); "
                          "ignored with an address", nullable=True, check=positive_int),
        "max_retries": Param(2, int, "times Ray re-runs a unit whose worker died; the unit "
                             "resumes from its partial work directory", check=nonnegative),
    }

    def check(self) -> None:
        if importlib.util.find_spec("ray") is None:
            raise ExecutorError(
                "executor 'ray' needs Ray, which is not installed here: "
                "pip install 'medsynbench[ray]' (or choose --executor local)"
            )

    def execute(self, plan: Plan, runner: Any) -> dict[str, UnitOutcome]:
        """Submit every pending unit with its inputs as dependencies; collect as they finish."""
        import ray

        address = self.params["address"]
        if address not in (None, "auto"):
            check_reachable(address)
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(
                    address=address,
                    num_cpus=self.params["num_cpus"] if address is None else None,
                    include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                )
            except (ConnectionError, RuntimeError) as exc:
                raise ExecutorError(
                    f"cannot connect to a Ray cluster at {address!r}: {exc}; start one with "
                    "`ray start --head` or pass --address HOST:PORT"
                ) from None
        try:
            return self._submit(plan, runner, ray)
        finally:
            if started:
                ray.shutdown()

    def _submit(self, plan: Plan, runner: Any, ray: Any) -> dict[str, UnitOutcome]:
        pending = plan.to_dispatch
        gpus_needed, gpu_units = plan.gpu_demand()
        resources = ray.cluster_resources()
        if gpus_needed and resources.get("GPU", 0) < gpus_needed:
            raise ExecutorError(
                f"{gpu_units} units need a GPU (the run's device "
                f"is cuda) but the Ray cluster has {resources.get('GPU', 0):g} GPUs (CPUs "
                f"{resources.get('CPU', 0):g}); add GPU nodes, or run with --device cpu"
            )
        job = runner.job()
        task = ray.remote(max_retries=int(self.params["max_retries"]),
                          retry_exceptions=False)(_build)
        refs: dict[str, Any] = {}
        for unit in pending:
            inputs = [refs[u] for u in unit.after if u in refs]
            refs[unit.id] = task.options(
                num_cpus=unit.needs.cpus, num_gpus=unit.needs.gpus, name=unit.id
            ).remote(job, unit.id, *inputs)
        runner.ui.heading(f"ray: {len(refs)} units, up to {plan.parallel} at once")
        waiting = {ref: uid for uid, ref in refs.items()}
        outcomes: dict[str, UnitOutcome] = {}
        while waiting:
            done, _ = ray.wait(list(waiting), num_returns=1)
            for ref in done:
                uid = waiting.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    outcome = UnitOutcome(uid, False, error=f"Ray could not build {uid}: "
                                          f"{str(exc).splitlines()[0]}")
                outcomes[uid] = outcome
                line = outcome_line(plan[uid], outcome, outcome.host)
                if line is not None:
                    runner.ui.status(line[0], plan[uid].stage, line[1])
        return outcomes
