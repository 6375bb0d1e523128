"""Known-answer checks: what a suite asserts each metric and task must show for an entry.

A suite may list ``[[checks]]`` — controls whose answers are known (the memoriser has privacy
0, Gaussian noise the worst FID, held-out real images a significant utility gain...)::

    [[checks]]
    entry = "copy-real"
    value = "knn-privacy.privacy"      # a metric key, "<task>.delta_pp", or a task name
    expect = "<= 0.01"
    why = "the memoriser returns training images: every one is a copy"

``expect`` is one of

* ``OP NUMBER`` with OP in ``==  !=  <  <=  >  >=`` (``== x`` allows 1e-9 of float noise);
* ``OP entry:NAME`` — compared with another entry's value of the same key;
* ``max`` / ``min`` — the largest / smallest value among the board's entries that have it;
* ``significantly better`` / ``significantly worse`` — for a task name: the board's Holm-adjusted
  verdict against real only.

Checks are validated with the suite (:func:`parse_checks`) and evaluated where the verdict is —
when a board is built (:func:`evaluate_checks`) — so they hold over exactly that board's entries.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import SuiteError

__all__ = ["EXPECT_FORMS", "evaluate_checks", "parse_checks"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9),
    "!=": lambda a, b: not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9),
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_COMPARE = re.compile(r"^\s*(==|!=|<=|>=|<|>)\s*(entry:(?P<entry>.+?)|(?P<number>[-+0-9.eE]+))\s*$")
_WORDS = ("max", "min", "significantly better", "significantly worse")
EXPECT_FORMS = "'OP NUMBER', 'OP entry:NAME' (OP: == != < <= > >=), 'max', 'min', " \
    "'significantly better' or 'significantly worse'"
_KEYS = {"entry": str, "value": str, "expect": str, "why": str}


def parse_checks(tables: Any, entry_names: Sequence[str], file: Path) -> list[dict[str, str]]:
    """Validate the suite's ``[[checks]]`` tables; SuiteError naming the key and the fix."""
    if not isinstance(tables, list):
        raise SuiteError(f"{file}: checks: expected an array of tables [[checks]]")
    checks = []
    for index, table in enumerate(tables):
        where = f"checks[{index}]"
        if not isinstance(table, dict):
            raise SuiteError(f"{file}: {where}: expected a table")
        for key, value in table.items():
            if key not in _KEYS:
                raise SuiteError(
                    f"{file}: {where}.{key}: unknown key (allowed: {', '.join(_KEYS)})"
                )
            if not isinstance(value, str) or not value.strip():
                raise SuiteError(f"{file}: {where}.{key}: expected a non-empty string")
        for key in ("entry", "value", "expect"):
            if key not in table:
                raise SuiteError(f"{file}: {where}.{key}: required key is missing")
        names = [table["entry"]]
        expect = table["expect"].strip()
        match = _COMPARE.match(expect)
        if match is None and expect not in _WORDS:
            raise SuiteError(
                f"{file}: {where}.expect: {expect!r} is not a known form; use {EXPECT_FORMS}"
            )
        if match and match.group("number") is not None:
            try:
                float(match.group("number"))
            except ValueError:
                raise SuiteError(f"{file}: {where}.expect: {expect!r}: not a number") from None
        if match and match.group("entry"):
            names.append(match.group("entry").strip())
        for name in names:
            if name not in entry_names:
                raise SuiteError(
                    f"{file}: {where}: no entry named {name!r} (entries: {', '.join(entry_names)})"
                )
        checks.append({**table, "expect": expect, "why": table.get("why", "")})
    return checks


def _value(entry: Mapping[str, Any], key: str) -> float | None:
    metric = (entry.get("metrics") or {}).get(key)
    if isinstance(metric, Mapping):
        value = metric.get("value")
    else:
        task, _, field = key.rpartition(".")
        record = (entry.get("utility") or {}).get(task)
        value = record.get(field) if isinstance(record, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _observe(check: Mapping[str, str], by_name: Mapping[str, Mapping[str, Any]]) -> tuple[
    bool | None, str
]:
    entry = by_name.get(check["entry"])
    if entry is None or entry.get("status", "ok") != "ok":
        return None, "entry not on the board or failed"
    expect, key = check["expect"], check["value"]
    if expect.startswith("significantly"):
        record = (entry.get("utility") or {}).get(key)
        if not isinstance(record, Mapping):
            return None, f"no utility result for task {key!r}"
        wanted = "better" if expect.endswith("better") else "worse"
        delta, p_adj = record.get("delta_pp"), record.get("p_value_adj")
        shown = f"Δ {delta:+.2f} pp, Holm p = {p_adj:.3g}" if isinstance(delta, float) and \
            isinstance(p_adj, float) else f"Δ {delta}, Holm p = {p_adj}"
        return record.get("direction") == wanted, shown
    value = _value(entry, key)
    if value is None:
        return None, f"no value for {key!r}"
    if expect in ("max", "min"):
        values = [v for e in by_name.values() if (v := _value(e, key)) is not None]
        extreme = max(values) if expect == "max" else min(values)
        return value == extreme, f"{value:.4g} ({expect} on the board: {extreme:.4g})"
    match = _COMPARE.match(expect)
    assert match is not None  # parse_checks accepted it
    if match.group("entry"):
        other = by_name.get(match.group("entry").strip())
        target = _value(other, key) if other is not None else None
        if target is None:
            return None, f"{value:.4g}; no value for {match.group('entry')}"
        return _OPS[match.group(1)](value, target), f"{value:.4g} vs {target:.4g}"
    return _OPS[match.group(1)](value, float(match.group("number"))), f"{value:.4g}"


def evaluate_checks(
    checks: Sequence[Mapping[str, str]], entries: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per check: the observed value and ``passed`` (None when it cannot be judged)."""
    by_name = {str(e.get("name")): e for e in entries}
    rows = []
    for check in checks:
        passed, observed = _observe(check, by_name)
        rows.append({**check, "observed": observed, "passed": passed})
    return rows
