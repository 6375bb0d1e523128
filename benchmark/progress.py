"""Rich progress bars with ETA, handed to plugins as ``ctx.progress(description, total)``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


class _Task:
    def __init__(self, progress: Progress, task_id: TaskID) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task_id, n)

    def update(self, **fields: Any) -> None:
        """Show extra fields (e.g. ``loss=0.31``) after the description."""
        text = " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()
        )
        self._progress.update(self._task_id, info=escape(text))


class ProgressUI:
    """One live rich display for a run; ``task(...)`` adds a bar for the duration of a block."""

    def __init__(self, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
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
            disable=not enabled,
        )

    def __enter__(self) -> ProgressUI:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[_Task]:
        """A progress bar shown while the block runs."""
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
