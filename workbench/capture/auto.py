"""`workbench ci`'s capture inside the command it runs, with no change to the script: the steps of the
first optimizer that steps are the profiler's steps.

`environment()` is what `workbench ci` runs the command with: `ci_site/` first on PYTHONPATH (its
`sitecustomize` hands each optimizer step to `pacer`), the run folder in `WORKBENCH_CI_OUT` (every
`workbench.capture` of the command writes there) and the steps to record. A script that has imported
`workbench.capture`, or made a `torch.profiler.profile`, by its first optimizer step profiles itself,
and the steps are left alone.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

from workbench.capture.schedule import Schedule
from workbench.capture.session import CI_OUT_VARIABLE, Capture

SITE_FOLDER = Path(__file__).with_name("ci_site")
STEPS_VARIABLE = "WORKBENCH_CI_STEPS"
STOP_VARIABLE = "WORKBENCH_CI_STOP"


def environment(folder: Path, steps: int, stop: bool) -> dict[str, str]:
    """This process's environment for the command: the site folder, the run folder, the steps, --stop."""
    python_path = [str(SITE_FOLDER), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path), CI_OUT_VARIABLE: str(folder),
           STEPS_VARIABLE: str(steps)}
    if stop:
        env[STOP_VARIABLE] = "1"
    return env


def pacer(optimizer: Any, script_profiles: bool) -> Callable[[Any], None]:
    """What each optimizer step calls: nothing when the script profiles itself, else `OptimizerSteps`."""
    return (lambda optimizer: None) if script_profiles else OptimizerSteps(optimizer)


class OptimizerSteps:
    """A capture paced by one optimizer: it starts after that optimizer's first step (compilation and
    caches left out), warms up for one step, records `WORKBENCH_CI_STEPS` steps and ends. It also ends
    when the process does, or with the error that ends it (an out-of-memory error keeps its record)."""

    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer
        self.capture = Capture(steps=Schedule(wait=0, warmup=1, active=int(os.environ[STEPS_VARIABLE])))
        self._excepthook = sys.excepthook

    def __call__(self, optimizer: Any) -> None:
        if optimizer is not self.optimizer:
            return
        if self.capture.status == "not started":
            self.capture.__enter__()
            sys.excepthook = self._uncaught
            atexit.register(self.capture.close)
        elif self.capture.status == "running":
            self.capture.step()
            if self.capture.steps_done >= self.capture.schedule.total:
                self.capture.close()
                if os.environ.get(STOP_VARIABLE):
                    raise SystemExit(0)

    def _uncaught(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        try:
            if self.capture.status == "running":
                self.capture.__exit__(exc_type, exc, tb)
        finally:
            self._excepthook(exc_type, exc, tb)
