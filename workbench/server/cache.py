"""Reports of the root's artifacts, computed in worker processes and cached by path and file stamps.

An analysis runs in a small pool of worker processes so that a large trace neither blocks the
server's event loop nor holds its GIL; the worker reports progress through workbench's progress
callbacks over a queue. Each analysis has a time limit and can be cancelled; a worker that dies
(killed, out of memory, over time) fails only its own analysis, saying why, and is replaced.
A worker whose resident memory passes `memory_bytes` (three quarters of the machine's by default)
is stopped before the system's out-of-memory killer picks a process, and its analysis fails as "out of
memory" (its peak, the kernel's high-water mark, is read every POLL_S and before its answer is taken, so
an analysis that passed the limit between two reads fails all the same); one killed by SIGKILL that was
neither cancelled nor over time says "likely out of memory".
A report is reused while the name, size and mtime of every file it read are unchanged. Workers
run in the root and read only files inside it, so report paths are relative to it, as `workbench
analyze` run there writes them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import signal
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from multiprocessing.connection import wait
from typing import Any, Callable

from workbench.commands.analyze import analyze_report
from workbench.config import load_config
from workbench.errors import WorkbenchError, shown_path
from workbench.inputs import AnalyzeOptions
from workbench.rules.finding import SEVERITIES
from workbench.server.artifacts import Signature
from workbench.units import format_bytes

KEEP_REPORTS = 32
PROGRESS_EVERY_S = 0.2
TIMEOUT_S = 900.0  # an analysis running longer is stopped
MEMORY_SHARE = 0.75  # of the machine's memory: a worker whose resident memory passes it is stopped
POLL_S = 0.5  # how often a running worker's memory is checked

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
    cancelled: bool = False

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

    def __init__(self, root: Path, workers: int = 2, timeout_s: float = TIMEOUT_S,
                 memory_bytes: int | None = None) -> None:
        self.root = Path(os.path.realpath(root))
        self.timeout_s = timeout_s
        self.memory_bytes = memory_bytes or _memory_share()
        self._context = multiprocessing.get_context("spawn")
        self._queue = self._context.Queue()
        self._slots = asyncio.Semaphore(workers)
        self._idle: list[Worker] = []
        self._busy: dict[str, Worker] = {}
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def status(self, relative: str, stamp: Signature) -> dict[str, Any]:
        """`not_analyzed`, or the state of the job for this exact signature."""
        self._drain()
        job = self._jobs.get(relative)
        if job is None or job.signature != stamp:
            return {"state": "not_analyzed"}
        return job.status()

    def finished(self, relative: str, stamp: Signature) -> Job | None:
        """The job for `relative` at `stamp` if it has its report or its error; None if none ran or it runs."""
        job = self._jobs.get(relative)
        if job is None or job.signature != stamp or (job.report is None and job.error is None):
            return None
        return job

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

    def cancel(self, relative: str) -> bool:
        """Stop `relative`'s running analysis (its worker is killed); whether one was running."""
        job = self._jobs.get(relative)
        if job is None or job.future is None:
            return False
        job.cancelled = True
        worker = self._busy.get(relative)
        if worker is not None:
            worker.kill()
        return True

    async def report(self, relative: str, stamp: Signature) -> Job:
        """The finished job for `relative` at `stamp` (its report, or its error), started if needed."""
        job = self.start(relative, stamp)
        if job.future is not None:
            await asyncio.shield(job.future)
        return job

    async def _run(self, relative: str, job: Job) -> None:
        async with self._slots:
            if job.cancelled:
                outcome = {"error": f"{shown_path(relative)}: the analysis was cancelled"}
            else:
                worker = self._idle.pop() if self._idle else Worker(self._context, self.root, self._queue)
                self._busy[relative] = worker
                try:
                    outcome = await worker.run(relative, self.timeout_s, self.memory_bytes)
                finally:
                    del self._busy[relative]
                if worker.alive and not outcome.get("retire"):
                    self._idle.append(worker)
                else:  # a dead, killed or out-of-memory worker is replaced by a fresh one
                    worker.kill()
                if job.cancelled and "report" not in outcome:
                    outcome = {"error": f"{shown_path(relative)}: the analysis was cancelled"}
        self._drain()
        job.report, job.error = outcome.get("report"), outcome.get("error")
        job.seconds = time.monotonic() - job.started
        job.future = None

    def close(self) -> None:
        """Stop every worker."""
        for worker in [*self._idle, *self._busy.values()]:
            worker.kill()
        self._idle.clear()

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


class Worker:
    """One analysis process, reused while it stays healthy: sent a path, it answers an outcome."""

    def __init__(self, context: Any, root: Path, progress_queue: Any) -> None:
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, str(root), progress_queue), daemon=True)
        self.process.start()
        child.close()

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    async def run(self, relative: str, timeout_s: float, memory_bytes: int) -> dict[str, Any]:
        """The worker's outcome for `relative`, or an error saying why it has none (over time or memory, killed)."""
        name = shown_path(relative)
        deadline = time.monotonic() + timeout_s
        try:
            self._conn.send(relative)
            answered = False
            while True:  # the peak is read before an answer is taken: it fails an analysis that passed the limit
                if (_peak_resident_bytes(self.process.pid) or 0) > memory_bytes:
                    self.kill()
                    return {"error": f"{name}: the analysis ran out of memory: its process passed "
                                     f"{format_bytes(memory_bytes)} (the workers' limit) and was stopped"}
                if answered:
                    return self._conn.recv()
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    return {"error": f"{name}: the analysis ran past its time limit of {timeout_s:g} s and was stopped"}
                ready = await asyncio.to_thread(wait, [self._conn, self.process.sentinel], min(POLL_S, left))
                answered = self._conn in ready
                if ready and not answered:
                    break
        except (EOFError, OSError):
            pass
        self.process.join(1)
        return {"error": f"{name}: {_death(self.process.exitcode)}"}

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self._conn.close()


def _memory_share() -> int:
    """MEMORY_SHARE of the machine's memory (no limit where the system does not say)."""
    try:
        return int(MEMORY_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return sys.maxsize


def _peak_resident_bytes(pid: int | None) -> int | None:
    """The peak resident memory of a live process since it started (Linux's VmHWM; None elsewhere or once it
    is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _death(exitcode: int | None) -> str:
    """Why a worker process ended, from its exit code (not cancelled, not over time or memory: those say so)."""
    if exitcode == -signal.SIGKILL:
        return ("the analysis process was killed (likely out of memory: SIGKILL is what the system's "
                "out-of-memory killer sends)")
    if exitcode is not None and exitcode < 0:
        return f"the analysis process died of signal {signal.Signals(-exitcode).name}"
    return f"the analysis process exited with status {exitcode}"


def _serve(conn: Any, root: str, progress_queue: Any) -> None:
    """A worker's loop: analyze each path it is sent; stop when the server hangs up or memory ran out."""
    _start_worker(root, progress_queue)
    while True:
        try:
            relative = conn.recv()
        except (EOFError, OSError):
            return
        outcome = analyze_artifact(relative)
        conn.send(outcome)
        if outcome.get("retire"):
            return


def _start_worker(root: str, progress_queue: Any) -> None:
    global _progress_queue
    os.chdir(root)
    _progress_queue = progress_queue


def analyze_artifact(relative: str) -> dict[str, Any]:
    """In a worker: `{"report": ...}` as `workbench analyze --format json` run in the root makes it (its config
    file included), or `{"error": line}`."""
    try:
        config = load_config(within=Path.cwd())  # a config file in the root, never above it
        options = AnalyzeOptions(progress=lambda label: _reporter(relative, label), root=Path.cwd())
        return {"report": analyze_report([relative], options, config, list(config.ignore), config.fail_on)}
    except WorkbenchError as exc:
        return {"error": str(exc)}
    except MemoryError:
        return {"error": f"{shown_path(relative)}: the analysis ran out of memory", "retire": True}
    except Exception as exc:  # an exception object may not survive pickling back to the server
        return {"error": f"{shown_path(relative)}: {type(exc).__name__}: {exc}"}


def _reporter(relative: str, label: str) -> Callable[[float], None]:
    """A progress callback that sends at most one message per PROGRESS_EVERY_S."""
    last = [0.0]

    def update(fraction: float) -> None:
        now = time.monotonic()
        if _progress_queue is not None and (now - last[0] >= PROGRESS_EVERY_S or fraction >= 1.0):
            last[0] = now
            _progress_queue.put((relative, label, min(float(fraction), 1.0)))

    return update
