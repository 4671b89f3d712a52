"""Reports of the root's artifacts, computed in worker processes and cached by path and file stamps.

An analysis runs in a process pool so that a large trace neither blocks the server's event loop
nor holds its GIL; the worker reports progress through workbench's progress callbacks over a
queue. A report is reused while the name, size and mtime of every file it read are unchanged.
Workers run in the root, so report paths are relative to it, as `workbench analyze` run there
writes them.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import queue
import time
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from workbench.commands.analyze import analyze_report
from workbench.commands.options import settings
from workbench.errors import WorkbenchError
from workbench.inputs import AnalyzeOptions
from workbench.rules.finding import SEVERITIES
from workbench.server.artifacts import Signature

KEEP_REPORTS = 32
PROGRESS_EVERY_S = 0.2

_progress_queue: Any = None  # the worker's end of the progress queue


@dataclass
class Job:
    """One analysis of one artifact at one signature: running, done (report) or failed (error)."""

    signature: Signature
    future: asyncio.Future | None = None
    label: str = ""
    fraction: float = 0.0
    report: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def status(self) -> dict[str, Any]:
        if self.error is not None:
            return {"state": "error", "error": self.error}
        if self.report is None:
            return {"state": "running", "label": self.label, "fraction": round(self.fraction, 3)}
        counts = dict.fromkeys(reversed(SEVERITIES), 0)
        for finding in self.report["findings"]:
            counts[finding["severity"]] += 1
        return {"state": "done", "findings": counts, "seconds": round(self.seconds, 2)}


class ReportCache:
    """Starts analyses, tracks their progress and keeps the latest reports."""

    def __init__(self, root: Path, workers: int = 1) -> None:
        self.root = Path(os.path.realpath(root))
        self.workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._queue = self._context.Queue()
        self._pool: ProcessPoolExecutor | None = None
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def status(self, relative: str, stamp: Signature) -> dict[str, Any]:
        """`not_analyzed`, or the state of the job for this exact signature."""
        self._drain()
        job = self._jobs.get(relative)
        if job is None or job.signature != stamp:
            return {"state": "not_analyzed"}
        return job.status()

    def start(self, relative: str, stamp: Signature) -> Job:
        """The job for `relative` at `stamp`, started unless it already ran or runs."""
        job = self._jobs.get(relative)
        if job is not None and job.signature == stamp and job.error is None:
            self._jobs.move_to_end(relative)
            return job
        job = Job(stamp)
        job.future = asyncio.ensure_future(self._run(relative, job))
        self._jobs[relative] = job
        while len(self._jobs) > KEEP_REPORTS:
            self._jobs.popitem(last=False)
        return job

    async def report(self, relative: str, stamp: Signature) -> Job:
        """The finished job for `relative` at `stamp` (its report, or its error)."""
        job = self.start(relative, stamp)
        if job.future is not None:
            await asyncio.shield(job.future)
        return job

    async def _run(self, relative: str, job: Job) -> None:
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(self._executor(), analyze_artifact, relative)
        except BrokenProcessPool:
            self._pool = None
            outcome = {"error": f"{relative}: the analysis process died (out of memory?)"}
        self._drain()
        job.report, job.error = outcome.get("report"), outcome.get("error")
        job.seconds = time.monotonic() - job.started
        job.future = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=self._context, initializer=_start_worker,
                                             initargs=(str(self.root), self._queue))
        return self._pool

    def _drain(self) -> None:
        """Apply the progress messages the workers sent since the last call."""
        while True:
            try:
                relative, label, fraction = self._queue.get_nowait()
            except queue.Empty:
                return
            job = self._jobs.get(relative)
            if job is not None and job.report is None:
                job.label, job.fraction = label, fraction


def _start_worker(root: str, progress_queue: Any) -> None:
    global _progress_queue
    os.chdir(root)
    _progress_queue = progress_queue


def analyze_artifact(relative: str) -> dict[str, Any]:
    """In a worker: `{"report": ...}` as `workbench analyze --format json` run in the root makes it (its config
    file included), or `{"error": line}`."""
    try:
        config, ignore, fail_on = settings(argparse.Namespace(config=None, ignore=[], fail_on=None))
        options = AnalyzeOptions(progress=lambda label: _reporter(relative, label))
        return {"report": analyze_report([relative], options, config, ignore, fail_on)}
    except WorkbenchError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # an exception object may not survive pickling back to the server
        return {"error": f"{relative}: {type(exc).__name__}: {exc}"}


def _reporter(relative: str, label: str) -> Callable[[float], None]:
    """A progress callback that sends at most one message per PROGRESS_EVERY_S."""
    last = [0.0]

    def update(fraction: float) -> None:
        now = time.monotonic()
        if _progress_queue is not None and (now - last[0] >= PROGRESS_EVERY_S or fraction >= 1.0):
            last[0] = now
            _progress_queue.put((relative, label, min(float(fraction), 1.0)))

    return update
