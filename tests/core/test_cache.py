"""Content keys, derived seeds, atomic stage directories, unit locks and write errors."""

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


def test_build_holds_the_unit_lock_and_gives_it_back(tmp_path):
    from medsynbench.cache import FileLock

    cache = StageCache(tmp_path)
    other = FileLock(tmp_path / ".locks" / "fit-k4.lock")  # as another process would open it
    with cache.build("fit", "k4", {}):
        assert not other.acquire(blocking=False)
        assert other.owner().startswith("pid ")
    assert other.acquire(blocking=False)
    other.release()


def test_write_atomic_many_renames_all_or_none(tmp_path):
    from medsynbench.cache import write_atomic_many

    (tmp_path / "a.json").write_text("old a")
    with pytest.raises(TypeError):
        write_atomic_many({tmp_path / "a.json": "new a", tmp_path / "b.csv": 3})  # type: ignore[dict-item]
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert (tmp_path / "a.json").read_text() == "old a"
    write_atomic_many({tmp_path / "a.json": "new a", tmp_path / "b.csv": b"b"})
    assert (tmp_path / "a.json").read_text() == "new a"
    assert (tmp_path / "b.csv").read_bytes() == b"b"


def test_output_error_tells_a_full_disk_from_other_os_errors(tmp_path):
    import errno
    import os

    from medsynbench.cache import output_error

    def classify(exc: BaseException) -> str | None:
        error = output_error(exc, tmp_path, "the fit x unit was not cached", "free space",
                             inside=tmp_path)
        return None if error is None else str(error)

    full = classify(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert full == (f"cannot write {tmp_path}: No space left on device; the fit x unit was not "
                    "cached; free space")
    quota = classify(OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(tmp_path / "m.pt")))
    assert quota is not None and quota.startswith(f"cannot write {tmp_path / 'm.pt'}: ")
    assert classify(OSError(errno.EACCES, "Permission denied", str(tmp_path / "x"))) is not None
    assert classify(OSError(errno.EACCES, "Permission denied", "/etc/weights.pt")) is None
    assert classify(FileNotFoundError(errno.ENOENT, "No such file", "/data/x.png")) is None
    assert classify(ValueError("not an OS error")) is None
    # numpy's errno-less "N requested and M written" is a full disk only when the disk is full
    assert classify(OSError("100 requested and 10 written")) is None  # tmp_path has room
