"""Content-addressed, atomically written stage outputs, safe for several processes at once.

A stage unit's key is the sha256 of the canonical JSON of everything that determines its
output (stage, plugin name and version, parameters, upstream keys, seed). Its directory is
built under ``<key>.partial`` — which survives a killed run, so long fits can resume from
checkpoints there — and renamed to ``<key>`` only after the completion marker is written and
fsynced. A stage that raises is not cached: its partial directory is removed.

Concurrency rules:

- **One builder per unit.** :meth:`StageCache.build` holds an exclusive ``fcntl.flock`` on
  ``<root>/.locks/<stage>-<key>.lock`` (the file holds the owner's pid, host and start time,
  for messages only). A second process asking for the unit waits, with one log line naming
  the owner, and then reuses the finished unit — or resumes the owner's ``.partial`` if the
  owner died. Never two builds of one unit at the same time.
- **No staleness rule is needed:** the kernel releases a flock when its holder's file is
  closed, which includes a process killed with SIGKILL. (Children forked by the holder, e.g.
  data-loader workers, share the lock until they exit too.) The lock files stay — one empty
  file per unit ever built; deleting ``.locks/`` is safe when no run is active.
- The locks need a filesystem whose ``flock`` is shared by every process using the cache: a
  local disk or tmpfs, NFSv4 or NFSv3 with a working lock daemon. On ``nolock`` NFS mounts
  and some FUSE filesystems flock is per-host or a no-op; put a shared cache elsewhere there.
- **Temporary names are unique per process** (pid + random), and :func:`write_atomic` removes
  its temporary file when writing fails, so a crash or a full disk leaves no ``.tmp-*`` files.
- **A failed write is the disk's fault, not the stage's:** an OS error while a unit is being
  written (no space left, quota, read-only or failing disk, a permission denied inside the
  cache — also when a library wraps it, as ``torch.save`` does) leaves nothing cached and is
  raised as :class:`~medsynbench.errors.OutputError` naming the path and the OS reason; see
  :func:`output_error`.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from .errors import OutputError

__all__ = [
    "COMPLETE",
    "FileLock",
    "StageCache",
    "content_key",
    "derive_seed",
    "output_error",
    "temp_name",
    "write_atomic",
    "write_atomic_many",
]

COMPLETE = "COMPLETE"

# errnos that mean "this location cannot take the write", wherever the file is
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})
_LOW_SPACE = 1 << 20  # an errno-less write error with less free space than this is a full disk


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def content_key(**parts: Any) -> str:
    """sha256 hex digest of the canonical JSON of ``parts``."""
    return hashlib.sha256(_canonical(parts).encode()).hexdigest()


def derive_seed(base: int, *parts: Any) -> int:
    """A 31-bit seed derived deterministically from a base seed and a stage description."""
    digest = hashlib.sha256(_canonical([base, *parts]).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def temp_name(path: Path) -> Path:
    """A hidden sibling of ``path`` no other process or call uses: ``.<name>.tmp-<pid>-<hex>``."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(path: Path, data: str | bytes) -> Path:
    tmp = temp_name(path)
    try:
        with open(tmp, "wb" if isinstance(data, bytes) else "w") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # name the file in the message: write() errors name none
        raise
    return tmp


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename; on failure ``path``
    is unchanged and the temporary file removed."""
    write_atomic_many({path: data})


def write_atomic_many(files: Mapping[Path, str | bytes]) -> None:
    """Write every file to a temporary first and rename them only when all were written, so a
    full disk leaves the previous set of files (or none), never a mix with a truncated one."""
    written: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            written[path] = _write_temp(path, data)
        for path, tmp in written.items():
            os.replace(tmp, path)
    finally:
        for tmp in written.values():
            tmp.unlink(missing_ok=True)  # only left when a rename did not happen
    for parent in {path.parent for path in files}:
        _fsync_dir(parent)


def _os_errors(exc: BaseException) -> Iterator[OSError]:
    """``exc`` and the exceptions it was raised from or during, OSErrors only."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            yield current
        current = current.__cause__ or current.__context__


def output_error(
    exc: BaseException, where: Path, outcome: str, fix: str, inside: Path | None = None
) -> OutputError | None:
    """The one-line :class:`OutputError` for ``exc`` if it is (or wraps) a failed write, else None.

    A failed write is an OSError with a disk errno (no space, quota, file too large, read-only,
    I/O error), a permission error on a path inside ``inside``, or an errno-less OSError (numpy's
    "N requested and M written") while ``where``'s filesystem is nearly full. The message names
    the file when the error does (else ``where``), the OS reason, the ``outcome`` and the ``fix``.
    """
    for error in _os_errors(exc):
        path = error.filename2 if error.filename2 is not None else error.filename
        path = path if path is not None else where
        reason = error.strerror or str(error)
        if error.errno in (errno.EACCES, errno.EPERM):
            if inside is None or not Path(os.fsdecode(path)).is_relative_to(inside):
                continue
        elif error.errno is None:
            try:
                free = shutil.disk_usage(where if where.exists() else where.parent).free
            except OSError:
                continue
            if free >= _LOW_SPACE:
                continue
            reason = f"{os.strerror(errno.ENOSPC)} ({error}; {free} bytes free)"
        elif error.errno not in _DISK_ERRNOS:
            continue
        return OutputError(f"cannot write {os.fsdecode(path)}: {reason}; {outcome}; {fix}")
    return None


class FileLock:
    """An exclusive ``fcntl.flock`` on ``path``, released on :meth:`release` or process death.

    The holder writes ``pid N on HOST since TIME`` into the file so that a process that has to
    wait, or is refused, can say who holds it (:meth:`owner`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock; without ``blocking``, return False at once when another holds it."""
        if self._handle is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open as the lock itself
        try:
            flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
            try:
                fcntl.flock(handle.fileno(), flags)
            except BlockingIOError:
                handle.close()
                return False
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            with suppress(OSError):  # the owner line is for messages only: a full disk may drop it
                handle.seek(0)
                handle.truncate()
                handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {stamp}")
                handle.flush()
        except BaseException:
            handle.close()
            raise
        self._handle = handle
        return True

    def owner(self, patience: float = 2.0) -> str:
        """Who holds (or last held) the lock, as its holder wrote it.

        The holder writes its line just after it takes the lock, so a waiter that looks in that
        instant finds the file empty: it looks again for up to ``patience`` seconds.
        """
        deadline = time.monotonic() + patience
        while True:
            try:
                text = self.path.read_text().strip()
            except OSError:
                text = ""
            if text or time.monotonic() >= deadline:
                return text or "another process"
            time.sleep(0.02)

    def release(self) -> None:
        """Give the lock up (a no-op when not held)."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            with suppress(OSError):  # a full disk must not keep the lock held
                handle.truncate(0)
            handle.close()  # closing releases the flock

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StageCache:
    """Completed stage outputs under ``root/<stage>/<key>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._held: set[tuple[str, str]] = set()
        probe = temp_name(self.root / ".write-test")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_text("ok")
        except OSError as exc:
            raise OutputError(
                f"cache directory {self.root} is not writable ({exc.strerror}); choose another "
                f"with --cache-dir or [output] cache_dir"
            ) from None
        finally:
            with suppress(OSError):
                probe.unlink(missing_ok=True)

    def path(self, stage: str, key: str) -> Path:
        """Directory of a completed unit (it may not exist yet)."""
        return self.root / stage / key

    def is_complete(self, stage: str, key: str) -> bool:
        """True when the unit's completion marker exists."""
        return (self.path(stage, key) / COMPLETE).is_file()

    def meta(self, stage: str, key: str) -> dict[str, Any]:
        """The metadata stored with a completed unit."""
        result: dict[str, Any] = json.loads((self.path(stage, key) / COMPLETE).read_text())
        return result

    def discard(self, stage: str, key: str) -> None:
        """Remove a completed unit (used by ``--force``)."""
        shutil.rmtree(self.path(stage, key), ignore_errors=True)

    @contextmanager
    def lock(
        self, stage: str, key: str, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Hold the unit's lock; when another process holds it, call ``on_wait(owner)`` and wait.

        Re-entrant within one cache object, so :meth:`build` inside it does not wait on itself.
        Check :meth:`is_complete` again once it is held: the other process may have finished.
        """
        if (stage, key) in self._held:
            yield
            return
        unit_lock = FileLock(self.root / ".locks" / f"{stage}-{key}.lock")
        try:
            if not unit_lock.acquire(blocking=False):
                if on_wait is not None:
                    on_wait(unit_lock.owner())
                unit_lock.acquire()
        except OSError as exc:
            error = output_error(
                exc, unit_lock.path, f"the {stage} unit {key[:12]} was not started",
                "free space there or choose another cache with --cache-dir", inside=self.root,
            )
            if error is None:
                raise
            raise error from exc
        self._held.add((stage, key))
        try:
            yield
        finally:
            self._held.discard((stage, key))
            unit_lock.release()

    @contextmanager
    def build(
        self, stage: str, key: str, meta: dict[str, Any], label: str = ""
    ) -> Iterator[Path]:
        """Yield a work directory; on success it becomes the unit, on error it is removed.

        Holds the unit's lock throughout (see :meth:`lock`). The work directory persists across
        a killed process (no exception runs), so a later run can resume from what it holds. An
        OS error while writing is raised as :class:`OutputError` (see :func:`output_error`).
        """
        final = self.path(stage, key)
        partial = final.with_name(f"{key}.partial")
        with self.lock(stage, key):
            try:
                partial.mkdir(parents=True, exist_ok=True)
                yield partial
                write_atomic(partial / COMPLETE, _canonical({"stage": stage, "key": key, **meta}))
                if final.exists():  # a stale unit without marker, or --force: replace it
                    shutil.rmtree(final)
                os.replace(partial, final)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                what = f"{stage} {label}".strip()
                error = None if isinstance(exc, OutputError) else output_error(
                    exc, partial, f"the {what} unit was not cached",
                    "free space there or choose another cache with --cache-dir, then re-run",
                    inside=self.root,
                )
                shutil.rmtree(partial, ignore_errors=True)
                if error is not None:
                    raise error from exc
                raise
        _fsync_dir(final.parent)
