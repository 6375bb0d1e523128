"""Progress off a terminal: periodic timestamped log lines, with rate, ETA and fields."""

from __future__ import annotations

import io
import re
import time

from medsynbench.progress import ProgressUI
from rich.console import Console

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  ")


def _ui(enabled: bool = True, terminal: bool = False) -> tuple[ProgressUI, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=terminal)
    return ProgressUI(console, enabled=enabled, interval=0.05), out


def test_piped_output_gets_steady_lines_even_while_a_step_runs_long() -> None:
    ui, out = _ui()
    assert ui.log_mode
    with ui, ui.task("vqvae2 fit", total=10) as task:
        task.advance(4)  # a resumed fit reports its checkpoint step at once: not speed
        time.sleep(0.6)  # no advance now: the heartbeat still prints
        for _ in range(3):
            task.advance(1)
            task.update(loss=0.03125)
            time.sleep(0.1)
    lines = out.getvalue().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert "vqvae2 fit: started, 10 to do" in lines[0]
    assert sum("vqvae2 fit: 4/10 (40.0%)" in line for line in lines) >= 5  # during the sleep
    progress = [line for line in lines if "/s" in line and "ETA" in line]
    assert progress and "loss=0.03125" in progress[-1]
    assert "vqvae2 fit: done, 7/10 (70.0%)" in lines[-1]


def test_rate_ignores_the_resume_offset() -> None:
    ui, out = _ui()
    with ui, ui.task("fit", total=1000) as task:
        task.advance(900)
        time.sleep(0.55)
        task.advance(10)
        time.sleep(0.2)
    last = out.getvalue().splitlines()[-1]
    rate = float(re.search(r", ([0-9.e+]+)/s", last).group(1))  # type: ignore[union-attr]
    assert rate < 200  # 10 steps in ~0.2 s (50/s), not 910 steps


def test_terminal_and_quiet_print_no_log_lines() -> None:
    for enabled, terminal in ((True, True), (False, False)):
        ui, out = _ui(enabled, terminal)
        assert not ui.log_mode
        with ui, ui.task("fit", total=3) as task:
            task.advance(3)
            time.sleep(0.15)
        assert "fit: started" not in out.getvalue()
