"""reuse_cpu_memory: inside it, freed CPU tensor memory is reused instead of being unmapped and
page-faulted in again; after it, glibc may map large blocks again and the memory kept is
returned to the system.

The page-fault comparison runs in a fresh interpreter: in this process, earlier tests leave
large free chunks in glibc's bins, and a loop served from them would not refault even with
mmap allowed. The "after" checks use glibc's own count of mmapped blocks and the resident set,
which do not depend on what earlier tests left behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from medsynbench import devices
from medsynbench.devices import reuse_cpu_memory

pytestmark = pytest.mark.skipif(devices._glibc() is None, reason="glibc only (a no-op elsewhere)")

FAULTS = r"""
import json, resource, statistics, torch
from medsynbench.devices import reuse_cpu_memory

torch.set_num_threads(1)
X = torch.rand(9 << 20)  # 36 MiB: above glibc's 32 MiB cap on its mmap threshold

def refaults():
    # page faults of each of 9 steady-state iterations of a loop allocating and freeing 36-40
    # MiB temporaries (after three warm-up iterations, as an encoder's batches would). The
    # median per iteration: a stray refault of one block (khugepaged, a busy machine) lands
    # in one iteration and does not move it.
    counts = []
    for i in range(12):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        y = torch.cat([(X * 2 + 1).exp(), X[: 1 << 20]])
        del y
        if i >= 3:
            counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return statistics.median(counts)

outside = refaults()
with reuse_cpu_memory("cpu"):
    inside = refaults()
print(json.dumps({"outside": outside, "inside": inside}))
"""


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def large_block_mapped() -> bool:
    """Whether glibc serves a large allocation with its own mmap: True with glibc's defaults,
    False while mmap is off. The block is larger than all free memory in the heap (so no free
    chunk, left by this or an earlier test, can serve it) and never touched (it costs no
    memory)."""
    lib = devices._glibc()
    if not hasattr(lib, "mallinfo2"):
        pytest.skip("glibc < 2.33 has no mallinfo2")
    lib.mallinfo2.restype = _MallInfo2
    info = lib.mallinfo2()
    block = torch.empty((info.fordblks + (64 << 20)) // 4)  # float32
    mapped = lib.mallinfo2().hblks == info.hblks + 1
    del block
    return mapped


def resident_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_steady_state_loop_reuses_pages_inside() -> None:
    """Counts page faults, not time: a per-iteration median over 9 iterations with one
    thread and one malloc arena, so neither scheduling nor other processes change it (checked
    beside two busy-looping processes on the 2-core VM)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "1"}
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True,
                         check=True, env=env)
    faults = json.loads(out.stdout.strip().splitlines()[-1])
    if faults["outside"] < 3_000:  # ~19k 4 KiB pages per iteration: far fewer = huge pages
        pytest.skip(f"this kernel backs large allocations with huge pages ({faults})")
    assert faults["inside"] < faults["outside"] / 20, faults


def test_mmap_off_inside_and_back_after_nested_uses() -> None:
    assert large_block_mapped()
    with reuse_cpu_memory(torch.device("cpu")):
        assert not large_block_mapped()
        with reuse_cpu_memory("cpu"):
            pass
        assert not large_block_mapped()  # the inner exit did not restore
    assert large_block_mapped()
    assert devices._depth == 0


def test_memory_kept_inside_is_returned_after() -> None:
    with reuse_cpu_memory("cpu"):
        start = resident_mb()
        block = torch.ones(1 << 26)  # 256 MiB, touched
        del block
        kept = resident_mb() - start  # freed, but not trimmed
        assert kept > 200, kept
    assert resident_mb() - start < kept / 4, (resident_mb(), start, kept)


def test_no_op_for_cuda_and_when_opted_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with reuse_cpu_memory("cuda:0"):
        assert large_block_mapped()
    monkeypatch.setenv("MEDSYNBENCH_MALLOC", "default")
    with reuse_cpu_memory("cpu"):
        assert large_block_mapped()
    assert devices._depth == 0


def test_restored_when_the_body_raises() -> None:
    with pytest.raises(ValueError), reuse_cpu_memory("cpu"):
        assert not large_block_mapped()
        raise ValueError("boom")
    assert devices._depth == 0
    assert large_block_mapped()
