"""``local``: every unit in this process, in plan order — the default, and what a laptop or a
single GPU box wants."""

from __future__ import annotations

from typing import Any, ClassVar

from medsynbench.kinds import Executor
from medsynbench.plan import Plan, Unit, UnitOutcome, build_in_order

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """Build the units one after the other in this process."""

    name: ClassVar[str] = "local"
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "Build every unit in this process, one after the other"

    def execute(self, plan: Plan, runner: Any) -> dict[str, UnitOutcome]:
        """Build in plan order, printing a heading whenever the stage changes."""
        current: list[str] = ["prepare"]

        def build(unit: Unit) -> UnitOutcome:
            if unit.stage != current[0]:
                current[0] = unit.stage
                runner.ui.heading(unit.stage)
            outcome: UnitOutcome = runner.build(unit)
            return outcome

        return build_in_order(plan, build)
