"""reuse_cpu_memory: inside it, freed CPU tensor memory is reused instead of being unmapped and
page-faulted in again; outside it (and after it) glibc's behaviour is back."""

from __future__ import annotations

import resource

import pytest
import torch
from medsynbench import devices
from medsynbench.devices import reuse_cpu_memory

pytestmark = pytest.mark.skipif(devices._glibc() is None, reason="glibc only (a no-op elsewhere)")

X = torch.rand(9 << 20)  # 36 MiB: above glibc's 32 MiB cap on its mmap threshold


def refault_count() -> int:
    """Page faults of three steady-state iterations of a loop allocating and freeing 36-40
    MiB temporaries (after three warm-up iterations, as an encoder's batches would)."""
    for i in range(6):
        if i == 3:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        y = torch.cat([(X * 2 + 1).exp(), X[: 1 << 20]])
        del y
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.fixture
def baseline() -> int:
    faults = refault_count()
    if faults < 10_000:  # ~30k 4 KiB pages per iteration: far fewer means huge pages
        pytest.skip(f"this kernel backs large allocations with huge pages ({faults} faults)")
    return faults


def test_steady_state_loop_reuses_pages_inside(baseline: int) -> None:
    with reuse_cpu_memory("cpu"):
        inside = refault_count()
    assert inside < baseline / 20, (inside, baseline)


def test_restored_after_nested_uses(baseline: int) -> None:
    with reuse_cpu_memory(torch.device("cpu")):
        with reuse_cpu_memory("cpu"):
            pass
        assert refault_count() < baseline / 20  # the inner exit did not restore
    assert refault_count() > baseline / 2  # mmap is back: freed blocks are unmapped again


def test_no_op_for_cuda_and_when_opted_out(baseline: int, monkeypatch: pytest.MonkeyPatch) -> None:
    with reuse_cpu_memory("cuda:0"):
        assert refault_count() > baseline / 2
    monkeypatch.setenv("MEDSYNBENCH_MALLOC", "default")
    with reuse_cpu_memory("cpu"):
        assert refault_count() > baseline / 2


def test_restored_when_the_body_raises(baseline: int) -> None:
    with pytest.raises(ValueError), reuse_cpu_memory("cpu"):
        raise ValueError("boom")
    assert devices._depth == 0
    assert refault_count() > baseline / 2
