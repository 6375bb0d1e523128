"""Rank leaderboard entries by downstream utility — and by nothing else.

The order, from the first key to the last (each key only breaks ties left by the ones before):

1. ``status``: entries that ran (``"ok"``) before failed ones; failed entries get ``rank = None``.
2. For each utility task in :func:`utility_tasks` order (``augmentation`` first, then
   ``feature-extraction``, then the cross-task tasks, then any other task alphabetically):
   a. entries that have a finite Δ for the task before entries that do not,
   b. ``significant`` true before false,
   c. larger ``delta_pp`` first.
3. Entry ``name`` (code-point order), then the original position — so ties are deterministic and
   the sort is stable.

Fidelity, variety, privacy and efficiency values are deliberately not read here: the leaderboard
shows them beside the rank but they never change it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "UTILITY_PRIORITY",
    "is_ok",
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


def _sort_key(entry: Mapping[str, Any], tasks: Sequence[str], position: int) -> tuple[Any, ...]:
    key: list[Any] = [0 if is_ok(entry) else 1]
    for task in tasks:
        delta = task_delta(entry, task) if is_ok(entry) else None
        if delta is None:
            key.extend((1, 1, 0.0))
        else:
            key.extend((0, 0 if task_significant(entry, task) else 1, -delta))
    key.extend((str(entry.get("name", "")), position))
    return tuple(key)


def rank_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return deep copies of ``entries`` sorted by utility, each with a ``rank`` field.

    Ranks are 1, 2, 3, … over entries that ran; failed entries come last with ``rank = None``.
    The input list and its dicts are not modified. See the module docstring for the exact order.
    """
    tasks = utility_tasks(entries)
    order = sorted(
        range(len(entries)), key=lambda i: _sort_key(entries[i], tasks, i)
    )
    ranked: list[dict[str, Any]] = []
    next_rank = 1
    for index in order:
        entry = copy.deepcopy(entries[index])
        if is_ok(entry):
            entry["rank"] = next_rank
            next_rank += 1
        else:
            entry["rank"] = None
        ranked.append(entry)
    return ranked
