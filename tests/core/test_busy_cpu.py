"""Busy machines: threads sized to the CPUs a process may use; passive OpenMP waits by default."""

from __future__ import annotations

import io
import os

import pytest
from medsynbench import devices


def test_available_cpus_reads_affinity_and_cgroup_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    real_open = open

    def fake_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path) == "/sys/fs/cgroup/cpu.max":
            return io.StringIO(quota)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    quota = "250000 100000\n"  # 2.5 CPUs of quota → 2 usable
    assert devices.available_cpus() == 2
    quota = "max 100000\n"  # no quota: the affinity mask decides
    assert devices.available_cpus() == 6
    quota = "50000 100000\n"  # half a CPU still gets one thread
    assert devices.available_cpus() == 1


def test_default_threads_never_exceed_the_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(devices, "available_cpus", lambda: 1)
    torch.set_num_threads(2)
    try:
        with devices.cpu_threads(None):
            assert torch.get_num_threads() == 1
        with devices.cpu_threads(2):  # a suite's explicit count is kept (results depend on it)
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_passive_openmp_is_a_default_the_user_can_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")  # a user's spin count: nothing set
    devices.prefer_passive_openmp()
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.delenv("GOMP_SPINCOUNT")
    devices.prefer_passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    devices.prefer_passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_command_line_sets_it_before_torch_loads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    code = ("import os, sys; from medsynbench.cli import main; main(['plugins', '--json']); "
            "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules, file=sys.stderr)")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stderr.strip().splitlines()[-1].startswith("PASSIVE")
