"""A suite as an explicit graph of cached units.

Every piece of work a run does is a :class:`Unit`: prepare the data, fit or sample one
generator, fit an encoder, encode one image set, compute one metric for one entry, train one
task arm for one seed. A unit has a content key (its cache directory, :mod:`medsynbench.cache`),
the units it reads (``after``), what it needs to run (:class:`Needs`) and, where one is known,
a cost estimate. :meth:`medsynbench.runner.Runner.plan` builds the :class:`Plan` of a suite; an
executor (``local``, ``ray``, ``slurm``, or a third party's) builds its pending units in any
order that respects ``after`` — units of one :meth:`Plan.waves` level are independent — and
the runner then reads every unit back from the cache into results.json. Because a unit's
output depends only on its key, where it ran does not change the numbers.

``medsynbench plan SUITE.toml`` prints a plan (``--json`` for the document below)::

    {"suite": ..., "units": [{"id": "fit:vqvae2", "stage": "fit", "key": "…", "after": [...],
      "entry": "vqvae2", "needs": {"cpus": 1, "gpus": 0, "memory_gb": null},
      "cost_seconds": 12.3 | null, "cached": false}, ...],
     "waves": [[ids...], ...], "pending": N, "cached": N, "parallel": N}
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Needs", "Plan", "Unit", "UnitOutcome", "build_in_order", "outcome_line"]


@dataclass(frozen=True)
class Needs:
    """What one unit needs from the machine that runs it.

    ``gpus`` is 1 for every unit that receives the run's device when that device is a GPU
    (0 on the CPU); ``memory_gb`` is None where nothing is known in advance.
    """

    cpus: int = 1
    gpus: int = 0
    memory_gb: float | None = None


@dataclass(frozen=True)
class Unit:
    """One cached piece of work of a run (module docstring).

    ``args`` names what the unit works on (entry, encoder, metric, task, seed, split): the
    runner reads it to build the unit, executors never need to.
    """

    id: str
    stage: str  # cache stage: prepare | fit | sample | encode | metrics | tasks
    key: str
    label: str
    after: tuple[str, ...] = ()
    entry: str | None = None
    needs: Needs = field(default_factory=Needs)
    cost_seconds: float | None = None
    cached: bool = False
    args: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The unit as printed by ``medsynbench plan --json``."""
        return {
            "id": self.id, "stage": self.stage, "key": self.key, "label": self.label,
            "after": list(self.after), "entry": self.entry, "needs": asdict(self.needs),
            "cost_seconds": self.cost_seconds, "cached": self.cached,
        }


@dataclass(frozen=True)
class UnitOutcome:
    """What building one unit gave: picklable, so that remote executors return it.

    ``fatal`` marks an error that must stop the whole run (a full disk, an unwritable cache
    directory) rather than fail the entries that depend on the unit.
    """

    id: str
    ok: bool
    seconds: float = 0.0
    cached: bool = False
    error: str | None = None
    fatal: bool = False
    host: str | None = None
    skipped: bool = False  # not built because an input failed (``error`` names it)


class Plan:
    """The units of one run in an order that respects their dependencies."""

    def __init__(self, units: list[Unit]) -> None:
        self.units = units
        self.by_id: dict[str, Unit] = {}
        for unit in units:
            missing = [u for u in unit.after if u not in self.by_id]
            if missing:
                raise ValueError(f"unit {unit.id!r} comes before its input {missing[0]!r}")
            if unit.id in self.by_id:
                raise ValueError(f"two units are called {unit.id!r}")
            self.by_id[unit.id] = unit

    def __iter__(self) -> Iterator[Unit]:
        return iter(self.units)

    def __len__(self) -> int:
        return len(self.units)

    def __getitem__(self, unit_id: str) -> Unit:
        return self.by_id[unit_id]

    @property
    def pending(self) -> list[Unit]:
        """Units not in the cache yet, in dependency order."""
        return [u for u in self.units if not u.cached]

    def waves(self, pending_only: bool = True) -> list[list[Unit]]:
        """Units by depth: every unit of wave *i* reads only units of waves before *i*, so the
        units of one wave can run at once. Cached units count as done (depth −1) unless
        ``pending_only`` is False."""
        depth: dict[str, int] = {}
        for unit in self.units:
            if pending_only and unit.cached:
                depth[unit.id] = -1
                continue
            depth[unit.id] = 1 + max((depth[u] for u in unit.after), default=-1)
        levels: dict[int, list[Unit]] = {}
        for unit in self.units:
            if depth[unit.id] >= 0:
                levels.setdefault(depth[unit.id], []).append(unit)
        return [levels[d] for d in sorted(levels)]

    @property
    def parallel(self) -> int:
        """The most pending units that can run at once (the widest wave)."""
        return max((len(w) for w in self.waves()), default=0)

    @property
    def to_dispatch(self) -> list[Unit]:
        """The pending units an executor sends to workers: all but ``prepare``, which the
        runner builds before planning (every key depends on the data)."""
        return [u for u in self.pending if u.id != "prepare"]

    def gpu_demand(self) -> tuple[int, int]:
        """(the most GPUs one unit needs, how many units need any) among :attr:`to_dispatch`:
        what a cluster executor checks against its GPUs before submitting anything."""
        needing = [u.needs.gpus for u in self.to_dispatch if u.needs.gpus]
        return max(needing, default=0), len(needing)

    def downstream(self, unit_id: str) -> set[str]:
        """Ids of every unit that reads ``unit_id``, directly or not."""
        found: set[str] = set()
        for unit in self.units:
            if unit_id in unit.after or found.intersection(unit.after):
                found.add(unit.id)
        return found

    def as_dict(self) -> dict[str, Any]:
        """The plan as printed by ``medsynbench plan --json``."""
        return {
            "units": [u.as_dict() for u in self.units],
            "waves": [[u.id for u in wave] for wave in self.waves()],
            "pending": len(self.pending),
            "cached": len(self.units) - len(self.pending),
            "parallel": self.parallel,
        }


def build_in_order(
    plan: Plan, build: Callable[[Unit], UnitOutcome], skip_cached: bool = False
) -> dict[str, UnitOutcome]:
    """Build every unit but ``prepare`` (already built by the runner) one after the other, in
    plan order; a unit whose input failed is skipped. Stops at a fatal outcome (a full disk).

    The ``local`` executor is this loop; others use it inside a worker or for a wave.
    """
    outcomes: dict[str, UnitOutcome] = {}
    for unit in plan:
        if unit.id == "prepare" or (skip_cached and unit.cached):
            continue
        failed = next((u for u in unit.after if u in outcomes and not outcomes[u].ok), None)
        if failed is not None:
            outcomes[unit.id] = UnitOutcome(unit.id, False, error=f"input {failed} failed",
                                            skipped=True)
            continue
        outcomes[unit.id] = outcome = build(unit)
        if outcome.fatal:
            break
    return outcomes


def outcome_line(unit: Unit, outcome: UnitOutcome, where: str | None) -> tuple[bool, str] | None:
    """How a remote executor reports a finished unit, as ``(ok, text)`` for ``ui.status``:
    ``label (12.3s, where)`` or ``label: first line of the error``. A skipped unit gives None:
    its failed input was reported already."""
    if outcome.ok:
        seconds = "cached" if outcome.cached else f"{outcome.seconds:.1f}s"
        return True, f"{unit.label} ({seconds}, {where})" if where else f"{unit.label} ({seconds})"
    if outcome.skipped:
        return None
    return False, f"{unit.label}: {(outcome.error or 'failed').splitlines()[0]}"
