"""A progress bar on stderr for inputs that take more than a second; silent when not a TTY."""

from __future__ import annotations

import sys
import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

DELAY_S = 1.0


class ProgressBars:
    """Hands out update callbacks; the bar is drawn only once a task has run for DELAY_S."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bars: Progress | None = None

    def task(self, label: str) -> Callable[[float], None]:
        started = time.monotonic()
        task_id: list[int] = []

        def update(fraction: float) -> None:
            if not self.enabled or time.monotonic() - started < DELAY_S:
                return
            bars = self._start()
            if not task_id:
                task_id.append(bars.add_task(label, total=1.0))
            bars.update(task_id[0], completed=min(fraction, 1.0))

        return update

    def _start(self) -> Progress:
        if self._bars is None:
            self._bars = Progress(
                TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                console=Console(stderr=True), transient=True,
            )
            self._bars.start()
        return self._bars

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
