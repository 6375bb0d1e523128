"""A full disk (or another OS error while writing) at every stage: one line, exit 2, nothing left.

The disk fills up for the files whose path matches a pattern: their writes store half the bytes,
then fail with ENOSPC and no file name, as a real ``write(2)`` does. One test repeats the whole
story on a real 1 MiB tmpfs when the tests run as root.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from medsynbench import cli
from medsynbench import registry as registry_module
from medsynbench.cache import StageCache
from medsynbench.errors import OutputError

from .conftest import toy_suite_text

ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"


class _FillingFile:
    """A writable file whose first write stores half its bytes and then fails with ENOSPC."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: Any) -> int:
        view = memoryview(data if not isinstance(data, str) else data.encode()).cast("B")
        self._handle.write(view[: len(view) // 2] if "b" in self._handle.mode else
                           bytes(view[: len(view) // 2]).decode(errors="ignore"))
        self._handle.flush()
        raise OSError(errno.ENOSPC, ENOSPC)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def fill_disk(monkeypatch: pytest.MonkeyPatch, pattern: str) -> list[str]:
    """Make writes to files whose path matches ``pattern`` fail; returns the paths that failed."""
    real_open, failed = builtins.open, []

    def opener(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        if (isinstance(file, str | os.PathLike) and re.search(pattern, os.fspath(file))
                and any(c in mode for c in "wax+")):
            failed.append(os.fspath(file))
            return _FillingFile(handle)
        return handle

    monkeypatch.setattr(builtins, "open", opener)
    monkeypatch.setattr(io, "open", opener)  # pathlib opens through io.open
    return failed


@pytest.fixture
def medsynbench(registry: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``medsynbench(*args)`` → (exit code, stderr): the CLI in-process, testkit plugins loaded."""
    monkeypatch.setattr(registry_module, "_registry", registry)

    def invoke(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main([*args])
        return code, capsys.readouterr().err

    return invoke


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(toy_suite_text(tmp_path))
    return path


def leftovers(root: Path) -> list[Path]:
    """Temporary files and partial units anywhere under ``root``."""
    return [p for p in root.rglob("*") if ".tmp" in p.name or p.name.endswith(".partial")]


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def units(tmp_path: Path, stage: str) -> list[Path]:
    folder = tmp_path / "out" / "cache" / stage
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


@pytest.mark.parametrize(
    ("stage", "pattern", "names"),
    [
        ("fit", r"/fit/.*means\.npy$", "means.npy"),  # the toy generator's fitted state
        ("sample", r"/sample/.*images\.npy$", "images.npy"),
        ("sample", r"/sample/.*mosaic\.png", "mosaic.png"),
        ("encode", r"features\.npy$", "features.npy"),
    ],
    ids=["fit", "sample-images", "sample-mosaic", "encode"],
)
def test_full_disk_in_a_stage_stops_the_run_with_one_line(
    medsynbench, suite, tmp_path, monkeypatch, stage, pattern, names
):
    failed = fill_disk(monkeypatch, pattern)
    code, stderr = medsynbench("run", str(suite), "--quiet")
    assert failed, f"no write matched {pattern}"
    line = one_error_line(stderr)
    assert code == 2
    assert f"{ENOSPC}; the {stage} " in line and " unit was not cached; free space" in line
    assert f"/{stage}/" in line  # names the file, or the unit's work directory
    if names == "mosaic.png":
        assert line.startswith("error: cannot write ") and "mosaic.png: " in line
    assert "--cache-dir" in line
    assert leftovers(tmp_path) == []
    assert all((unit / "COMPLETE").is_file() for unit in units(tmp_path, stage))
    # an OS error is not an entry failure: the run stopped, no results were written
    assert not (tmp_path / "out" / "results.json").exists()

    monkeypatch.undo()  # space freed: the re-run completes from what was cached
    monkeypatch.setattr(registry_module, "_registry", None)
    proc = subprocess.run([sys.executable, "-m", "medsynbench.cli", "run", str(suite), "--quiet"],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr


def _env() -> dict[str, str]:
    env = dict(os.environ)
    site = next(p for p in sys.path if "plugin-site" in p)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, env.get("PYTHONPATH")]))
    return env


def test_full_disk_during_a_checkpoint_save(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from medsynbench.plugins.generators.training import save_checkpoint

    cache = StageCache(tmp_path)
    fill_disk(monkeypatch, r"ckpt\.pt")
    with pytest.raises(OutputError) as caught, cache.build("fit", "k", {}, "vqvae2") as work:
        save_checkpoint(work / "ckpt.pt", "vqvae2", {}, {"step": 1})
    message = str(caught.value)
    assert message.startswith(f"cannot write {tmp_path / 'fit' / 'k.partial'}: {ENOSPC}; ")
    assert "; the fit vqvae2 unit was not cached; " in message
    assert "\n" not in message
    assert not cache.is_complete("fit", "k") and leftovers(tmp_path) == []


def test_a_library_error_raised_from_enospc_is_an_output_error(tmp_path):
    """torch.save turns a failed write into 'enforce fail at inline_container.cc' (a
    RuntimeError raised while handling the OSError): the OSError in its context is found."""
    cache = StageCache(tmp_path)
    with pytest.raises(OutputError, match=f"k.partial: {ENOSPC}; ") as caught, \
            cache.build("fit", "k", {}, "vqvae2"):
        try:
            raise OSError(errno.ENOSPC, ENOSPC)
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 "
                               "vs 598") from None  # context kept, as torch's C++ leaves it
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert leftovers(tmp_path) == []


def test_other_os_errors_in_a_plugin_stay_entry_failures(tmp_path):
    """A plugin failing to read its own input is the entry's failure, not the disk's."""
    cache = StageCache(tmp_path)
    with pytest.raises(FileNotFoundError), cache.build("fit", "k", {}):
        open(tmp_path / "missing-weights.pt", "rb")  # noqa: SIM115
    assert leftovers(tmp_path) == []


def test_read_only_cache_is_an_output_error(tmp_path):
    cache = StageCache(tmp_path)
    with pytest.raises(OutputError, match="Read-only file system") as caught, \
            cache.build("encode", "k", {}, "toy-pixels"):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "x.npy"))
    assert str(caught.value).startswith(f"cannot write {tmp_path / 'x.npy'}: Read-only")


@pytest.mark.parametrize("name", ["results.json", "results.csv", "leaderboard.md"])
def test_full_disk_writing_results_keeps_the_previous_files(
    medsynbench, suite, tmp_path, monkeypatch, name
):
    out = tmp_path / "out"
    code, stderr = medsynbench("run", str(suite), "--quiet")
    assert code == 0, stderr
    before = {n: (out / n).read_bytes() for n in ("results.json", "results.csv", "leaderboard.md")}
    fill_disk(monkeypatch, re.escape(name))
    code, stderr = medsynbench("run", str(suite), "--quiet", "--force", "metrics")
    line = one_error_line(stderr)
    assert code == 2
    assert line.startswith(f"error: cannot write {out / name}: {ENOSPC}; the run's results were")
    assert "--out DIR" in line
    assert {n: (out / n).read_bytes() for n in before} == before  # all three, not a mix
    assert leftovers(tmp_path) == []


def test_full_disk_copying_a_sample_mosaic_leaves_no_truncated_png(
    medsynbench, suite, tmp_path, monkeypatch
):
    import medsynbench.results as results_module

    def copy_half(source: Path, target: Path) -> None:
        data = Path(source).read_bytes()
        Path(target).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, ENOSPC, str(source), None, str(target))

    monkeypatch.setattr(results_module.shutil, "copyfile", copy_half)
    code, stderr = medsynbench("run", str(suite), "--quiet")
    line = one_error_line(stderr)
    assert code == 2 and f"samples/alpha.png: {ENOSPC}" in line
    samples = tmp_path / "out" / "samples"
    assert not samples.exists() or list(samples.iterdir()) == []
    assert not (tmp_path / "out" / "results.json").exists() and leftovers(tmp_path) == []


def test_full_disk_writing_a_leaderboard(medsynbench, suite, tmp_path, monkeypatch):
    code, stderr = medsynbench("run", str(suite), "--quiet")
    assert code == 0, stderr
    site = tmp_path / "board"
    fill_disk(monkeypatch, r"board/.*leaderboard\.csv")
    code, stderr = medsynbench("leaderboard", str(tmp_path / "out" / "results.json"),
                               "--out", str(site))
    line = one_error_line(stderr)
    assert code == 2 and ENOSPC in line
    assert leftovers(tmp_path) == []
    assert f"{site / 'leaderboard.csv'}" in line


# ------------------------------------------------------------------ a real full disk (root only)
@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted at tmp_path/tmpfs (skips unless root may mount)."""
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "tmpfs"
    folder.mkdir()
    made = subprocess.run([mount, "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {made.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_real_full_disk_during_a_run(cli_env, tiny_tmpfs, tmp_path):
    """Samples of 64×64 RGB images do not fit in 1 MiB: numpy's errno-less write error."""
    path = tmp_path / "s.toml"
    text = toy_suite_text(tmp_path).replace("n_per_class = 20", "n_per_class = 40\nsize = 64")
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "medsynbench.cli", "run", str(path), "--quiet",
         "--cache-dir", str(tiny_tmpfs / "cache")],
        capture_output=True, text=True, env=cli_env, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert re.search(rf"cannot write {tiny_tmpfs}/cache/\w+/\w+\.partial\S*: {ENOSPC}", line), line
    assert leftovers(tiny_tmpfs) == []
    assert not (tmp_path / "out" / "results.json").exists()


def test_real_full_disk_during_a_checkpoint_save(tiny_tmpfs):
    """The real torch error ('enforce fail at inline_container.cc') becomes one clear line."""
    torch = pytest.importorskip("torch")
    from medsynbench.plugins.generators.training import save_checkpoint

    cache = StageCache(tiny_tmpfs)
    with pytest.raises(OutputError) as caught, cache.build("fit", "k", {}, "vqvae2") as work:
        save_checkpoint(work / "ckpt.pt", "vqvae2", {}, {"w": torch.zeros(1_000_000)})
    assert str(caught.value).startswith(f"cannot write {tiny_tmpfs}/fit/k.partial: {ENOSPC}")
    assert "inline_container" not in str(caught.value)
    assert leftovers(tiny_tmpfs) == [] and not cache.is_complete("fit", "k")
