"""Structural validation of results and leaderboard documents, with every problem located.

A :class:`Checker` collects problems as ``"<json path>: <what is wrong>"`` strings so that one
error message lists all of them; :func:`check_results` validates a results document
(docs/results-schema.md, version 2) and raises :class:`~medsynbench.errors.ResultsError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ResultsError

__all__ = ["RESULTS_SCHEMA_VERSION", "STATUSES", "Checker", "check_results", "describe"]

#: The results.json schema version this package reads.
RESULTS_SCHEMA_VERSION = 2
STATUSES = ("ok", "failed")


def describe(value: Any) -> str:
    """A short description of a JSON value for error messages."""
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'…' if len(text) > 40 else ''}"


class Checker:
    """Accumulates located problems; :meth:`raise_if_any` turns them into one ResultsError."""

    def __init__(self, source: str | Path) -> None:
        self.source = str(source)
        self.problems: list[str] = []

    def add(self, where: str, problem: str) -> None:
        """Record one problem at JSON path ``where``."""
        self.problems.append(f"{where}: {problem}")

    def mapping(self, value: Any, where: str) -> Mapping[str, Any] | None:
        """``value`` when it is a JSON object, else record a problem and return None."""
        if isinstance(value, Mapping):
            return value
        self.add(where, f"expected an object, got {describe(value)}")
        return None

    def string(
        self, parent: Mapping[str, Any], key: str, where: str, optional: bool = False
    ) -> None:
        """Require ``parent[key]`` to be a non-empty string (or absent/null when optional)."""
        value = parent.get(key)
        if value is None and optional:
            return
        if key not in parent:
            self.add(where, f"missing required field '{key}'")
        elif not isinstance(value, str) or not value.strip():
            self.add(f"{where}.{key}", f"expected a non-empty string, got {describe(value)}")

    def number(
        self, parent: Mapping[str, Any], key: str, where: str, optional: bool = True
    ) -> None:
        """Require ``parent[key]`` to be a number (NaN allowed) or, when optional, null/absent."""
        value = parent.get(key)
        if value is None:
            if not optional:
                self.add(where, f"missing required number '{key}'")
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(f"{where}.{key}", f"expected a number, got {describe(value)}")

    def raise_if_any(self, what: str, fix: str) -> None:
        """Raise ResultsError listing every problem, if there is at least one."""
        if not self.problems:
            return
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        listing = "\n  - ".join(shown) + (f"\n  … and {more} more" if more > 0 else "")
        raise ResultsError(f"{self.source} is not a valid {what}:\n  - {listing}\n{fix}")


def _check_utility(checker: Checker, utility: Any, where: str) -> None:
    tasks = checker.mapping(utility, where)
    for task, result in (tasks or {}).items():
        record = checker.mapping(result, f"{where}.{task}")
        if record is None:
            continue
        checker.string(record, "primary", f"{where}.{task}")
        seeds = record.get("seeds")
        if not isinstance(seeds, list) or not seeds:
            checker.add(f"{where}.{task}.seeds", f"expected a list of seeds, got {describe(seeds)}")
            continue
        for arm in ("baseline", "treated"):
            scores = record.get(arm)
            per_seed = scores.get(record.get("primary")) if isinstance(scores, Mapping) else None
            if not isinstance(per_seed, list) or len(per_seed) != len(seeds):
                checker.add(
                    f"{where}.{task}.{arm}",
                    f"expected one {record.get('primary')} score per seed ({len(seeds)}), got "
                    f"{describe(per_seed)}",
                )
            packed = record.get(f"{arm}_correct")
            if packed is not None and not (
                isinstance(packed, list) and len(packed) == len(seeds)
                and all(isinstance(p, str) for p in packed)
                and isinstance(record.get("n_eval"), int)
            ):
                checker.add(
                    f"{where}.{task}.{arm}_correct",
                    "expected one packed string per seed and an integer n_eval",
                )


def _check_entry(checker: Checker, entry: Any, where: str) -> None:
    record = checker.mapping(entry, where)
    if record is None:
        return
    checker.string(record, "name", where)
    status = record.get("status")
    if status not in STATUSES:
        checker.add(f"{where}.status", f"expected one of {list(STATUSES)}, got {describe(status)}")
    metrics = checker.mapping(record.get("metrics", {}), f"{where}.metrics")
    for key, metric in (metrics or {}).items():
        value = checker.mapping(metric, f"{where}.metrics.{key}")
        if value is None:
            continue
        checker.number(value, "value", f"{where}.metrics.{key}")
        checker.string(value, "axis", f"{where}.metrics.{key}")
    _check_utility(checker, record.get("utility", {}), f"{where}.utility")
    if record.get("efficiency") is not None:
        checker.mapping(record["efficiency"], f"{where}.efficiency")
    samples = record.get("samples")
    if samples is not None and not isinstance(samples, str):
        checker.add(f"{where}.samples", f"expected a relative path, got {describe(samples)}")


def check_results(document: Any, source: str | Path) -> dict[str, Any]:
    """Validate a results document (schema version 1) and return it; raise ResultsError if not."""
    checker = Checker(source)
    top = checker.mapping(document, "$")
    if top is None:
        checker.raise_if_any("results file", "Pass the results.json written by `medsynbench run`.")
        raise AssertionError("unreachable")
    version = top.get("schema_version")
    if version == 1:
        raise ResultsError(
            f"{source} was written by an older medsynbench (results schema 1): its utility "
            "statistics were frozen per run and it keeps no per-test-image predictions, so a "
            "board cannot recompute them over its entries. Re-run its suite with "
            "`medsynbench run SUITE.toml` (cached fits and samples are reused; only the utility "
            "tasks run again) and pass the new results.json."
        )
    if version != RESULTS_SCHEMA_VERSION:
        raise ResultsError(
            f"{source} has results schema_version {describe(version)}; this leaderboard reads "
            f"version {RESULTS_SCHEMA_VERSION}. Re-run the suite with this medsynbench version, "
            "or render it with the medsynbench version that wrote it."
        )
    suite = checker.mapping(top.get("suite"), "$.suite")
    if suite is not None:
        checker.string(suite, "name", "$.suite")
        checker.string(suite, "hash", "$.suite")
    entries = top.get("entries")
    if not isinstance(entries, list):
        checker.add("$.entries", f"expected a list of entries, got {describe(entries)}")
    else:
        for index, entry in enumerate(entries):
            _check_entry(checker, entry, f"$.entries[{index}]")
        names = [e.get("name") for e in entries if isinstance(e, Mapping)]
        for name in sorted({n for n in names if isinstance(n, str) and names.count(n) > 1}):
            checker.add("$.entries", f"entry name {name!r} appears more than once")
    for key in ("manifest", "dataset"):
        if top.get(key) is not None:
            checker.mapping(top[key], f"$.{key}")
    checker.raise_if_any(
        "results file (docs/results-schema.md)",
        "Fix the listed fields, or re-create the file with `medsynbench run`.",
    )
    return dict(top)

