"""The shared parameter checks (``medsynbench.params``): every plugin's bounds use them."""

from __future__ import annotations

import pytest
from medsynbench.errors import ParameterError
from medsynbench.params import (
    Param,
    at_least,
    in_range,
    nonnegative,
    positive,
    positive_int,
    validate_params,
)


def test_at_least_bounds_and_messages() -> None:
    assert positive(1e-9) is None and positive(3) is None
    assert positive(0) == "must be > 0, got 0"
    assert nonnegative(0) is None
    assert nonnegative(-0.5) == "must be ≥ 0, got -0.5"
    assert at_least(2)(2) is None
    assert at_least(2)(1) == "must be ≥ 2, got 1"
    assert at_least(1, strict=True)(1) == "must be > 1, got 1"


def test_in_range_open_and_closed_ends() -> None:
    closed = in_range(0, 1)
    assert closed(0) is None and closed(1) is None
    assert closed(1.5) == "must be in [0, 1], got 1.5"
    half_open = in_range(0, 1, low_open=True)
    assert half_open(1) is None
    assert half_open(0) == "must be in (0, 1], got 0"
    band = in_range(0, 0.5, low_open=True, high_open=True)
    assert band(0.25) is None
    assert band(0.5) == "must be in (0, 0.5), got 0.5"
    assert in_range(0, 1, high_open=True)(1) == "must be in [0, 1), got 1"


def test_lists_none_and_non_numbers() -> None:
    assert positive([1, 2.5]) is None  # a per-level setting
    assert positive([1, 0]) == "must be > 0, got [1, 0]"
    assert in_range(0, 1)([0.2, 1.2]) == "must be in [0, 1], got [0.2, 1.2]"
    assert positive(None) is None and in_range(0, 1)(None) is None
    assert positive(["a"]) == "must be numbers, got ['a']"
    assert positive([True]) == "must be numbers, got [True]"


def test_positive_int() -> None:
    assert positive_int(1) is None and positive_int(None) is None
    assert positive_int(0) == "must be a positive integer, got 0"


def test_checks_reach_the_suite_message() -> None:
    declared = {"epochs": Param(6, int, "training epochs", check=positive_int),
                "ratio": Param(0.1, float, "share", check=in_range(0, 1, low_open=True))}
    with pytest.raises(ParameterError) as err:
        validate_params("augmentation", declared, {"epochs": 0, "ratio": 0.0}, "tasks[0]")
    assert err.value.problems == (
        "tasks[0].epochs: must be a positive integer, got 0",
        "tasks[0].ratio: must be in (0, 1], got 0.0",
    )


def test_a_float_parameter_is_not_called_an_integer() -> None:
    """Float rates use ``positive``; ``positive_int`` is for counts (its message says so)."""
    from medsynbench.registry import get_registry

    with pytest.raises(ParameterError) as err:
        get_registry().create("encoder", "vqvae-codes", {"lr": 0.0, "commitment": -1.0})
    assert err.value.problems == (
        "vqvae-codes.lr: must be > 0, got 0.0",
        "vqvae-codes.commitment: must be > 0, got -1.0",
    )
