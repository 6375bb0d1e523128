"""Content keys, derived seeds and atomic stage directories."""

from __future__ import annotations

import pytest
from medsynbench.cache import StageCache, content_key, derive_seed


def test_content_key_is_canonical():
    assert content_key(a=1, b={"x": 2, "y": 3}) == content_key(b={"y": 3, "x": 2}, a=1)
    assert content_key(a=1) != content_key(a=2)


def test_derive_seed_is_deterministic_and_stage_specific():
    assert derive_seed(0, "fit") == derive_seed(0, "fit")
    assert len({derive_seed(0, "fit"), derive_seed(0, "sample"), derive_seed(1, "fit")}) == 3
    assert 0 <= derive_seed(123, "x") < 2**31


def test_build_success_marks_complete(tmp_path):
    cache = StageCache(tmp_path)
    with cache.build("fit", "k1", {"plugin": "p"}) as work:
        (work / "model.bin").write_bytes(b"weights")
    assert cache.is_complete("fit", "k1") and cache.meta("fit", "k1")["plugin"] == "p"
    assert (cache.path("fit", "k1") / "model.bin").read_bytes() == b"weights"


def test_build_failure_leaves_nothing(tmp_path):
    cache = StageCache(tmp_path)
    with pytest.raises(ValueError), cache.build("fit", "k2", {}) as work:
        (work / "half.bin").write_bytes(b"half")
        raise ValueError("fit diverged")
    assert not cache.is_complete("fit", "k2")
    assert list((tmp_path / "fit").iterdir()) == []


def test_interrupt_keeps_partial_for_resume(tmp_path):
    cache = StageCache(tmp_path)
    with pytest.raises(KeyboardInterrupt), cache.build("fit", "k3", {}) as work:
        (work / "checkpoint.pt").write_bytes(b"step 100")
        raise KeyboardInterrupt
    assert not cache.is_complete("fit", "k3")
    with cache.build("fit", "k3", {}) as work:  # the resumed build sees the checkpoint
        assert (work / "checkpoint.pt").read_bytes() == b"step 100"
    assert cache.is_complete("fit", "k3")
