"""Declared plugin parameters and their validation.

A plugin lists its parameters as ``parameters = {"epochs": Param(10, int, "training epochs")}``.
Suites are validated against these declarations before any work starts, so a typo in a suite
fails in a second with the key path and a suggestion, not after an hour of training.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ParameterError

__all__ = [
    "Param",
    "at_least",
    "did_you_mean",
    "in_range",
    "nonnegative",
    "positive",
    "positive_int",
    "type_name",
    "validate_params",
]

_MISSING: Any = object()


@dataclass(frozen=True)
class Param:
    """One declared parameter: default value, accepted type(s), help text and optional checks.

    ``default=Param.REQUIRED`` makes the parameter mandatory. ``type`` may be a type or a
    tuple of types; ``int`` is accepted where ``float`` is declared. ``choices`` restricts
    the value; ``check`` returns an error string (or None) for custom rules.
    ``sweepable`` marks parameters where a list in the suite's ``sample`` table expands
    into one entry per value. A float parameter never accepts ``inf`` or ``nan`` (TOML
    writes them as ``inf``/``nan``): no learning rate, contrast or fraction means them.
    ``extra`` holds declarations the suite checks against other tables before any work:
    ``extra={"below_reference": True}`` (an int that must be smaller than the number of real
    reference images, e.g. a k-NN ``k``), ``extra={"split": True}`` (a str naming one of the
    dataset's splits).
    """

    default: Any
    type: type | tuple[type, ...] = object
    help: str = ""
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None
    nullable: bool = False
    sweepable: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    REQUIRED: Any = _MISSING

    @property
    def required(self) -> bool:
        return self.default is _MISSING


Check = Callable[[Any], str | None]


def at_least(low: float, *, strict: bool = False) -> Check:
    """A ``Param.check``: the value must be ≥ ``low`` (> ``low`` when ``strict``).

    A list (a per-level or per-class setting) must hold numbers that all satisfy it; ``None``
    passes (a nullable parameter's "not set"). The message names the bound and the value:
    ``must be > 0, got -1``.
    """
    sign = ">" if strict else "≥"

    def check(value: Any) -> str | None:
        numbers = _numbers(value)
        if isinstance(numbers, str):
            return numbers
        if all(v > low if strict else v >= low for v in numbers):
            return None
        return f"must be {sign} {low:g}, got {value!r}"

    return check


def in_range(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    """A ``Param.check``: the value must lie in the interval, written the usual way in the
    message: ``must be in (0, 1], got 1.5``. Lists and ``None`` as in :func:`at_least`."""
    text = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(value: Any) -> str | None:
        numbers = _numbers(value)
        if isinstance(numbers, str):
            return numbers
        above = all(v > low if low_open else v >= low for v in numbers)
        below = all(v < high if high_open else v <= high for v in numbers)
        return None if above and below else f"must be in {text}, got {value!r}"

    return check


def _numbers(value: Any) -> list[float] | str:
    """The numbers a check looks at ([] for None), or what is wrong with the value."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return f"must be numbers, got {value!r}"
    return values


def _positive_int(value: Any) -> str | None:
    numbers = _numbers(value)
    if isinstance(numbers, str):
        return numbers
    return None if all(v > 0 for v in numbers) else f"must be a positive integer, got {value!r}"


#: The checks most parameters need (a count, a rate, a weight).
positive: Check = at_least(0, strict=True)
nonnegative: Check = at_least(0)
positive_int: Check = _positive_int


def type_name(expected: type | tuple[type, ...]) -> str:
    """Human name for a type or tuple of types ("int or float")."""
    if isinstance(expected, tuple):
        return " or ".join(t.__name__ for t in expected)
    return expected.__name__


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """A ' — did you mean "x"?' suffix, or an empty string when nothing is close."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f' — did you mean "{close[0]}"?' if close else ""


def _type_ok(value: Any, expected: type | tuple[type, ...]) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in types and object not in types:
        return False  # True is an int in Python, but never a valid epoch count
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, types)


def _value_problem(owner: str, spec: Param, value: Any) -> str | None:
    """What is wrong with ``value`` for ``spec`` (None: nothing)."""
    if value is None and spec.nullable:
        return None
    if not _type_ok(value, spec.type):
        return f"{owner} expects {type_name(spec.type)}, got {type(value).__name__} {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{owner} expects a finite number, got {value}; give a finite value " \
            f"(default: {spec.default!r})"
    if spec.choices is not None and value not in spec.choices:
        options = ", ".join(repr(c) for c in spec.choices)
        return f"{value!r} is not one of {options}" \
            f"{did_you_mean(str(value), [str(c) for c in spec.choices])}"
    return spec.check(value) if spec.check is not None else None


def validate_params(
    owner: str,
    declared: Mapping[str, Param],
    given: Mapping[str, Any],
    where: str,
) -> dict[str, Any]:
    """Check ``given`` against ``declared`` and return the full parameter dict with defaults.

    ``owner`` names the plugin in messages; ``where`` is the dotted key path of the table
    (e.g. ``generators[1].train``). Raises one ParameterError listing every bad key (its
    ``problems``), each with the expected type and a did-you-mean for unknown keys.
    """
    resolved: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in given.items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(
                f"{where}.{key}: unknown parameter for {owner}{did_you_mean(key, declared)} "
                f"(known parameters: {known})"
            )
            continue
        problem = _value_problem(owner, declared[key], value)
        if problem:
            problems.append(f"{where}.{key}: {problem}")
        resolved[key] = value
    for key, spec in declared.items():
        if key in resolved or key in given:
            continue
        if spec.required:
            problems.append(f"{where}.{key}: required parameter of {owner} is missing")
        resolved[key] = spec.default
    if problems:
        raise ParameterError("\n".join(problems), problems=problems)
    return resolved
