"""Rank leaderboard entries by downstream utility — and by nothing else.

:func:`judge` computes the board's verdict (:mod:`.verdict`) over exactly the entries given and
returns them in display order:

1. **ranked entries** — the generators — by mean Δ on the first utility task in
   :func:`utility_tasks` order (``augmentation`` first, then ``feature-extraction``, then the
   cross-task tasks, then any other task alphabetically), larger Δ first; entries without a
   finite Δ follow; then entry ``name``. Each gets ``rank`` 1..n, a 95% ``rank_interval``
   and ``rank_label`` ("=2" when it is tied with the entries around it).
2. **reference rows** (copy-real, classical augmentation, positive and negative controls):
   shown beside the ranking with ``rank = None``, never ranked among the generators.
3. failed entries, ``rank = None``.

Fidelity, variety, privacy and efficiency values are deliberately not read here: the leaderboard
shows them beside the rank but they never change it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "UTILITY_PRIORITY",
    "is_ok",
    "judge",
    "rank_entries",
    "task_delta",
    "task_significant",
    "utility_tasks",
]

#: Utility tasks in ranking priority; tasks not listed here follow in alphabetical order.
UTILITY_PRIORITY: tuple[str, ...] = (
    "augmentation",
    "feature-extraction",
    "cross-task-svm",
    "cross-task",
)


def is_ok(entry: Mapping[str, Any]) -> bool:
    """True when the entry ran to completion (``status == "ok"``)."""
    return bool(entry.get("status", "ok") == "ok")


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def task_delta(entry: Mapping[str, Any], task: str) -> float | None:
    """The entry's Δ in percentage points for ``task``, or None when absent or not finite."""
    utility = entry.get("utility") or {}
    result = utility.get(task) if isinstance(utility, Mapping) else None
    if not isinstance(result, Mapping):
        return None
    return _finite(result.get("delta_pp"))


def task_significant(entry: Mapping[str, Any], task: str) -> bool:
    """Whether the entry's result for ``task`` is marked significant (False when absent)."""
    utility = entry.get("utility") or {}
    result = utility.get(task) if isinstance(utility, Mapping) else None
    return isinstance(result, Mapping) and result.get("significant") is True


def utility_tasks(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every utility task present in ``entries``, in ranking priority order."""
    seen: set[str] = set()
    for entry in entries:
        utility = entry.get("utility") or {}
        if isinstance(utility, Mapping):
            seen.update(str(task) for task in utility)
    known = [task for task in UTILITY_PRIORITY if task in seen]
    return known + sorted(seen.difference(UTILITY_PRIORITY))


def judge(entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Deep copies of ``entries`` with the board's verdict, in display order; and the verdict.

    The input list and its dicts are not modified. See the module docstring for the order.
    """
    from .verdict import apply_verdict, real_only_rows

    copies = copy.deepcopy(entries)
    tasks = utility_tasks([entry for entry in copies if is_ok(entry)])
    verdict = apply_verdict(copies, tasks)
    verdict["real_only"] = real_only_rows(copies, tasks)
    return copies, verdict


def rank_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of :func:`judge`, without the board summary."""
    return judge(entries)[0]
