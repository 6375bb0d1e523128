"""The plan's helpers that every executor shares (no run needed)."""

from __future__ import annotations

from medsynbench.plan import Needs, Plan, Unit, UnitOutcome, outcome_line


def _plan() -> Plan:
    return Plan([
        Unit("prepare", "prepare", "p", "data"),
        Unit("fit:a", "fit", "fa", "a", ("prepare",), "a", Needs(gpus=1)),
        Unit("fit:b", "fit", "fb", "b", ("prepare",), "b", Needs(gpus=2), cached=True),
        Unit("sample:a", "sample", "sa", "a", ("fit:a",), "a", Needs(gpus=1)),
        Unit("metric:a", "metrics", "ma", "fid a", ("sample:a",), "a"),
    ])


def test_to_dispatch_leaves_out_prepare_and_cached_units() -> None:
    assert [u.id for u in _plan().to_dispatch] == ["fit:a", "sample:a", "metric:a"]


def test_gpu_demand_counts_pending_units_only() -> None:
    # fit:b would need 2 GPUs but is cached: the cluster need not offer them
    assert _plan().gpu_demand() == (1, 2)
    cpu_only = Plan([Unit("prepare", "prepare", "p", "data"),
                     Unit("fit:a", "fit", "fa", "a", ("prepare",), "a")])
    assert cpu_only.gpu_demand() == (0, 0)


def test_outcome_line() -> None:
    unit = _plan()["fit:a"]
    assert outcome_line(unit, UnitOutcome("fit:a", True, seconds=12.34), "job 7") == (
        True, "a (12.3s, job 7)")
    assert outcome_line(unit, UnitOutcome("fit:a", True, cached=True), None) == (True, "a (cached)")
    failed = UnitOutcome("fit:a", False, error="CUDA out of memory\nTraceback ...")
    assert outcome_line(unit, failed, "node3") == (False, "a: CUDA out of memory")
    skipped = UnitOutcome("fit:a", False, error="input prepare failed", skipped=True)
    assert outcome_line(unit, skipped, "node3") is None
