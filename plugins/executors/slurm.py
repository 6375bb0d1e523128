"""``slurm``: units as SLURM job arrays through submitit (or submitit's local executor).

The plan is submitted wave by wave (:meth:`~medsynbench.plan.Plan.waves`): every pending unit
of a wave reads only units of earlier waves, so one job array per wave runs them all at once,
``units_per_job`` units to a job (tiny units — a metric, a linear probe — are not worth a job
each). Each job unpickles a :class:`~medsynbench.runner.UnitJob` and builds its units into the
cache directory, which must therefore be on a filesystem the nodes share, like submitit's job
``folder`` (default: ``<cache>/submitit``). A job that dies (pre-emption, a killed node, the
time limit) is resubmitted up to ``max_retries`` times; its unit resumes from its partial
work directory. ``cluster = "local"`` runs the same jobs as processes on this machine: test a
cluster configuration, or the CI, without SLURM.

Why waves and not SLURM dependencies (``--dependency=afterok``): a failed unit must skip only
the units that read it, and arrays of independent units keep the scheduler's queue short.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

from medsynbench.errors import ExecutorError
from medsynbench.kinds import Executor
from medsynbench.params import Param, nonnegative, positive
from medsynbench.plan import Plan, UnitOutcome, outcome_line

__all__ = ["SlurmExecutor"]


def _build_chunk(job: Any, unit_ids: list[str]) -> list[UnitOutcome]:
    """One job: build its units one after the other (module-level: picklable)."""
    outcomes = []
    for uid in unit_ids:
        outcome = job.build(uid)
        outcomes.append(outcome)
        if outcome.fatal:
            break
    return outcomes


class SlurmExecutor(Executor):
    """Build units as SLURM job arrays, one array per wave (module docstring)."""

    name: ClassVar[str] = "slurm"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = ("Build units as SLURM job arrays through submitit, wave by "
                                  "wave (cluster = 'local' runs the jobs on this machine)")
    parameters: ClassVar[dict[str, Param]] = {
        "cluster": Param("slurm", str, "'slurm', or 'local' to run the jobs as processes here",
                         choices=("slurm", "local")),
        "folder": Param(None, str, "submitit's folder for job scripts, logs and pickles (null: "
                        "<cache>/submitit); on the shared filesystem", nullable=True),
        "partition": Param(None, str, "SLURM partition (null: the cluster's default)",
                           nullable=True),
        "account": Param(None, str, "SLURM account", nullable=True),
        "qos": Param(None, str, "SLURM quality of service", nullable=True),
        "time_minutes": Param(240, int, "time limit of one job", check=positive),
        "gpus_per_node": Param(None, int, "GPUs per job (null: 1 when the run's device is "
                               "cuda, else 0)", nullable=True, check=nonnegative),
        "cpus_per_task": Param(None, int, "CPUs per job (null: the suite's cpu_threads, or 1)",
                               nullable=True, check=positive),
        "mem_gb": Param(None, float, "memory per job (null: the partition's default)",
                        nullable=True, check=positive),
        "array_parallelism": Param(64, int, "array tasks running at once", check=positive),
        "units_per_job": Param(1, int, "units one job builds in a row", check=positive),
        "max_retries": Param(2, int, "resubmissions of a job that died", check=nonnegative),
        "additional": Param({}, dict, "other sbatch options, e.g. { constraint = \"a100\" }"),
    }

    def check(self) -> None:
        if importlib.util.find_spec("submitit") is None:
            raise ExecutorError(
                "executor 'slurm' needs submitit, which is not installed here: "
                "pip install 'medsynbench[slurm]' (or choose --executor local)"
            )

    def _executor(self, plan: Plan, runner: Any) -> Any:
        import submitit

        job = runner.job()
        pending = plan.to_dispatch
        gpus_needed, gpu_units = plan.gpu_demand()
        gpus = self.params["gpus_per_node"]
        gpus = gpus_needed if gpus is None else gpus
        if gpus_needed and gpus < gpus_needed:
            raise ExecutorError(
                f"{gpu_units} units need a GPU (the run's device "
                f"is cuda) but executor 'slurm' asks for gpus_per_node = {gpus}; set "
                "gpus_per_node ≥ 1 (and a GPU partition), or run with --device cpu"
            )
        folder = Path(self.params["folder"] or Path(job.cache_dir) / "submitit")
        executor = submitit.AutoExecutor(folder=folder, cluster=self.params["cluster"])
        options: dict[str, Any] = {
            "name": f"medsynbench-{job.suite.name}",
            "timeout_min": int(self.params["time_minutes"]),
            "gpus_per_node": gpus,
            "cpus_per_task": self.params["cpus_per_task"] or max(u.needs.cpus for u in pending),
            "slurm_array_parallelism": int(self.params["array_parallelism"]),
        }
        if self.params["mem_gb"] is not None:
            options["mem_gb"] = float(self.params["mem_gb"])
        for key in ("partition", "account", "qos"):
            if self.params[key] is not None:
                options[f"slurm_{key}"] = self.params[key]
        if self.params["additional"]:
            options["slurm_additional_parameters"] = dict(self.params["additional"])
        executor.update_parameters(**options)
        return executor

    def execute(self, plan: Plan, runner: Any) -> dict[str, UnitOutcome]:
        """One job array per wave; resubmit jobs that died; skip units whose input failed."""
        import submitit

        if not plan.to_dispatch:
            return {}
        executor = self._executor(plan, runner)
        job = runner.job()
        per_job = int(self.params["units_per_job"])
        outcomes: dict[str, UnitOutcome] = {}
        for number, wave in enumerate(plan.waves(), 1):
            todo = []
            for unit in wave:
                if unit.id == "prepare":
                    continue
                failed = next((u for u in unit.after if u in outcomes and not outcomes[u].ok), None)
                if failed is not None:
                    outcomes[unit.id] = UnitOutcome(unit.id, False, skipped=True,
                                                    error=f"input {failed} failed")
                else:
                    todo.append(unit.id)
            chunks = [todo[i : i + per_job] for i in range(0, len(todo), per_job)]
            runner.ui.heading(f"slurm wave {number}: {len(todo)} units in {len(chunks)} jobs")
            for attempt in range(int(self.params["max_retries"]) + 1):
                if not chunks:
                    break
                jobs = executor.map_array(_build_chunk, [job] * len(chunks), chunks)
                died = []
                for submitted, chunk in zip(jobs, chunks, strict=True):
                    try:
                        for outcome in submitted.result():
                            outcomes[outcome.id] = outcome
                            line = outcome_line(plan[outcome.id], outcome,
                                                f"job {submitted.job_id}")
                            if line is not None:
                                runner.ui.status(line[0], plan[outcome.id].stage, line[1])
                            if outcome.fatal:
                                return outcomes
                    except (submitit.core.utils.UncompletedJobError,
                            submitit.core.utils.FailedJobError) as exc:
                        died.append(chunk)
                        if attempt == int(self.params["max_retries"]):
                            for uid in chunk:
                                outcomes.setdefault(uid, UnitOutcome(
                                    uid, False, error=f"job {submitted.job_id} died "
                                    f"{attempt + 1} times: {str(exc).splitlines()[0]} (log: "
                                    f"{submitted.paths.stderr})"))
                chunks = [[u for u in chunk if u not in outcomes] for chunk in died]
                chunks = [c for c in chunks if c]
        return outcomes
