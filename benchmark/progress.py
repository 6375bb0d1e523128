"""Progress handed to plugins as ``ctx.progress(description, total)``: bars or log lines.

On a terminal, rich progress bars with ETA. When the output is not a terminal — piped to a file,
CI, SLURM, ``tee`` — bars would print nothing, so every open task instead prints a timestamped
line at a steady interval (``MEDSYNBENCH_PROGRESS_INTERVAL`` seconds, default 30) from a
background thread, even while a single step runs long::

    2026-11-29T14:50:01Z  vqvae2 fit: 1200/3200 (37.5%), 12.3/s, ETA 2m43s, loss=0.0312

plus a line when a task starts and when it ends. ``--quiet`` turns both off.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["ProgressUI"]

_DEFAULT_INTERVAL = 30.0


def _fields_text(fields: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()
    )


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class _Task:
    def __init__(self, progress: Progress, task_id: TaskID) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task_id, n)

    def update(self, **fields: Any) -> None:
        """Show extra fields (e.g. ``loss=0.31``) after the description."""
        self._progress.update(self._task_id, info=escape(_fields_text(fields)))


class _LogTask:
    """A task in log mode: counts progress; :meth:`line` says where it stands."""

    def __init__(self, description: str, total: float | None) -> None:
        self.description, self.total = description, total
        self.completed = 0.0
        self.fields: dict[str, Any] = {}
        self.started = time.monotonic()
        self.baseline: float | None = None  # progress resumed from a checkpoint is not speed

    def advance(self, n: float = 1) -> None:
        if self.baseline is None and time.monotonic() - self.started < 0.5:
            self.completed += n  # the resume offset a plugin reports at once
            return
        if self.baseline is None:
            self.baseline, self.started = self.completed, time.monotonic()
        self.completed += n

    def update(self, **fields: Any) -> None:
        self.fields.update(fields)

    def line(self, final: bool = False) -> str:
        done = f"{self.completed:g}"
        if self.total:
            done += f"/{self.total:g} ({100 * self.completed / self.total:.1f}%)"
        bits = [f"{self.description}: {'done, ' if final else ''}{done}"]
        elapsed = time.monotonic() - self.started
        moved = self.completed - (self.baseline or 0.0) if self.baseline is not None else 0.0
        if moved > 0 and elapsed > 0:
            rate = moved / elapsed
            bits.append(f"{rate:.3g}/s")
            if self.total and not final:
                bits.append(f"ETA {_duration(max(self.total - self.completed, 0) / rate)}")
        if self.fields:
            bits.append(_fields_text(self.fields))
        return ", ".join(bits)


class ProgressUI:
    """One live rich display for a run; ``task(...)`` adds a bar for the duration of a block.

    When the console is not a terminal, tasks are reported as periodic log lines instead
    (``interval`` seconds; default ``$MEDSYNBENCH_PROGRESS_INTERVAL`` or 30).
    """

    def __init__(
        self, console: Console | None = None, enabled: bool = True, interval: float | None = None
    ) -> None:
        self.console = console or Console(stderr=True)
        self.log_mode = enabled and not self.console.is_terminal
        if interval is None:
            interval = float(os.environ.get("MEDSYNBENCH_PROGRESS_INTERVAL", _DEFAULT_INTERVAL))
        self.interval = max(float(interval), 0.01)
        self._log_tasks: list[_LogTask] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=True,
            disable=not enabled or self.log_mode,
        )

    def __enter__(self) -> ProgressUI:
        self._progress.start()
        if self.log_mode:
            self._stop.clear()
            self._thread = threading.Thread(target=self._heartbeat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                lines = [task.line() for task in self._log_tasks]
            for line in lines:
                self._log(line)

    def _log(self, text: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.console.print(f"{stamp}  {text}", highlight=False, markup=False, soft_wrap=True)

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Any]:
        """A progress bar (or, off a terminal, periodic log lines) while the block runs."""
        if self.log_mode:
            log_task = _LogTask(description, total)
            with self._lock:
                self._log_tasks.append(log_task)
            self._log(f"{description}: started" + (f", {total:g} to do" if total else ""))
            try:
                yield log_task
            finally:
                with self._lock:
                    self._log_tasks.remove(log_task)
                self._log(log_task.line(final=True))
            return
        task_id = self._progress.add_task(escape(description), total=total, info="")
        try:
            yield _Task(self._progress, task_id)
        finally:
            self._progress.remove_task(task_id)

    def print(self, message: str) -> None:
        """Print a line of plain text above the bars (brackets are not rich markup)."""
        self._progress.console.print(message, highlight=False, markup=False)

    def status(self, ok: bool, stage: str, text: str) -> None:
        """Print ``✓``/``✗`` in colour, then ``stage`` and plain ``text`` (entry names, errors)."""
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        self._progress.console.print(f"  {mark} {stage:<8} {escape(text)}", highlight=False)

    def heading(self, text: str) -> None:
        """Print a bold stage heading."""
        self._progress.console.print(f"[bold]{escape(text)}[/bold]", highlight=False)
