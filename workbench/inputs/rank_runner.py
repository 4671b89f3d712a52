"""Where the files of a job are analyzed: one after another in this process, or as Dask tasks.

A task reads one file from its path and returns a small picklable result (a `RankResult`
without its trace), or a `RankFailure` naming the file and what is wrong with it. With Dask,
the paths must be readable from the workers (a shared filesystem); a worker that cannot read
one returns that path's failure like any other unreadable file. The coordinating process
holds the results only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, TextIO

import numpy as np
from workbench.errors import WorkbenchError
from workbench.loaders.files import Progress

SCHEDULER_VARIABLE = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT_S = 5
SMALL_JOB_BYTES = 32 << 20  # a job this small (files on disk) is read faster in-process than a cluster starts
# Workers fork from a fork server (a fresh single-threaded process with the tasks' modules imported), never from
# this process: its threads (Dask's event loop, a notebook kernel's, OpenMP pools) may hold locks at the fork.
# macOS forks unsafely (its system frameworks): spawn there.
WORKER_START = "forkserver" if sys.platform.startswith("linux") else "spawn"
PRELOADED = ("distributed", "workbench.inputs.builtin", "workbench.rules.builtin")  # what a worker and task import
# A local worker's environment from its start: Dask's own less its MALLOC_TRIM_THRESHOLD_ (`local_cluster_config`).
WORKER_ENVIRON = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def start_fork_server() -> None:
    """Start the fork server the local workers come from (Linux): its imports (Dask and workbench, about 1 s) then
    overlap this process's own import of Dask and the scheduler's start rather than follow them; it runs with
    WORKER_ENVIRON, which this process's environment gets only when Dask starts the workers."""
    if WORKER_START != "forkserver":
        return
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.get_context(WORKER_START).set_forkserver_preload(list(PRELOADED))
    saved = {name: os.environ.get(name) for name in WORKER_ENVIRON}
    os.environ.update(WORKER_ENVIRON)
    try:
        forkserver.ensure_running()
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def local_cluster_config() -> dict[str, Any]:
    """Dask settings for a local cluster: measured on 2 cores (16 ranks of a 26 MB trace), a spawned worker is a
    fresh interpreter importing dask and workbench (1 CPU-s each); from the fork server, which imports them once,
    2 workers start in 2.0-3.2 s against 4.7-5.7 s spawned (0.9-1.6 s forked from this process, unsafe), the first
    job's tasks import nothing; glibc's default trimming (Dask sets MALLOC_TRIM_THRESHOLD_) makes a task's arrays
    fault in once (5,000 page faults a task against 50,000, 0.15 CPU-s); the profiler's sampling costs ~20 % CPU.
    Dask's periodic callbacks, whatever the tasks do, took 0.049 CPU-s a second in this process (scheduler, nannies)
    and 0.023 in each worker, mostly the event-loop tick (every 20 ms in each server, which also takes the GIL from
    a worker's task); with the tick at 1 s, memory checks at 1 s, system metrics at 2 s and no work stealing or
    replica manager (nothing to steal or replicate: one task a rank, queued on the scheduler): 0.009 and 0.004."""
    return {"distributed.worker.profile.enabled": False, "distributed.nanny.pre-spawn-environ": WORKER_ENVIRON,
            "distributed.worker.multiprocessing-method": WORKER_START, "distributed.admin.tick.interval": "1s",
            "distributed.worker.memory.monitor-interval": "1s", "distributed.admin.system-monitor.interval": "2s",
            "distributed.scheduler.work-stealing": False, "distributed.scheduler.active-memory-manager.start": False}


@dataclass(frozen=True)
class RankFailure:
    """A file of a job that could not be analyzed: one line naming it."""

    path: str
    message: str


Task = Callable[[Path, Progress], Any]  # a file's analysis, told how far it has read
ProgressFor = Callable[[str], Progress]
Keep = Callable[[Any], Any]  # what the coordinator keeps of a result, as it arrives (None: all of it)


def _silent(fraction: float) -> None:
    pass


def run_task(task: Task, path: str, progress: Progress = _silent) -> Any:
    """`task(path, progress)`, or the `RankFailure` it ends in (WORKBENCH_DEBUG=1 re-raises)."""
    try:
        return task(Path(path), progress)
    except WorkbenchError as exc:
        return RankFailure(path, str(exc))
    except Exception as exc:
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        return RankFailure(path, f"{path}: cannot be analyzed: {type(exc).__name__}: {exc}")


class SharedStrings:
    """One copy of each string among the results of a map: the ranks of a job name the same kernels, operators,
    metrics and fixes, and each result unpickled (or parsed) apart has its own copies."""

    def __init__(self, keep: Keep | None = None) -> None:
        self._strings: dict[str, str] = {}
        self._keep = keep

    def kept(self, result: Any) -> Any:
        """A result as the coordinator keeps it: its strings shared, then what `keep` keeps of it."""
        result = self.share(result)
        return self._keep(result) if self._keep else result

    def share(self, value: Any) -> Any:
        """`value` with its strings (in dicts, lists, tuples, object arrays and dataclasses) replaced by the shared
        copies; dataclasses and arrays are changed in place."""
        if type(value) is str:
            return self._strings.setdefault(value, value)
        if type(value) is dict:
            return {self.share(k): self.share(v) for k, v in value.items()}
        if type(value) in (list, tuple):
            return type(value)(self.share(v) for v in value)
        if isinstance(value, np.ndarray) and value.dtype == object:
            value[...] = np.frompyfunc(self.share, 1, 1)(value)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                object.__setattr__(value, f.name, self.share(getattr(value, f.name)))
        return value


class RankRunner(Protocol):
    def map(self, task: Task, paths: list[Path], progress: ProgressFor, keep: Keep | None = None) -> list[Any]:
        """`run_task(task, path)` for each path, in the order given, as `SharedStrings.kept` keeps it when it
        arrives; `progress(file name)` where the files are read in this process."""


class InProcess:
    """The files one after another in this process (`--workers 1`)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def map(self, task: Task, paths: list[Path], progress: ProgressFor, keep: Keep | None = None) -> list[Any]:
        done, strings = RankProgress(len(paths), self.stream), SharedStrings(keep)
        results = []
        for path in paths:
            results.append(strings.kept(run_task(task, str(path), progress(path.name))))
            done.done(results[-1])
        return results

    def close(self) -> None:
        pass


class DaskRunner:
    """The files as tasks of a Dask cluster: an existing one at `scheduler`, else a local one of `workers`
    processes (the machine's cores by default; in-process for a job under SMALL_JOB_BYTES), started at the
    first job and closed by `close`."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None, stream: TextIO | None = sys.stderr):
        self.workers = workers
        self.scheduler = scheduler
        self.stream = stream
        self._client: Any = None
        self._cluster: Any = None
        if workers is not None and not scheduler:  # a local cluster will start (the job's size does not matter)
            start_fork_server()

    def map(self, task: Task, paths: list[Path], progress: ProgressFor, keep: Keep | None = None) -> list[Any]:
        if self._small(paths):
            return InProcess(self.stream).map(task, paths, progress, keep)
        if self._client is None and not self.scheduler:
            start_fork_server()
        from distributed import as_completed

        client = self._connect()
        futures = client.map(run_task, [task] * len(paths), [str(p) for p in paths], pure=False)
        order = {f.key: i for i, f in enumerate(futures)}
        done, strings = RankProgress(len(paths), self.stream, _dashboard(client)), SharedStrings(keep)
        results: list[Any] = [None] * len(paths)
        for future, result in as_completed(futures, with_results=True):  # each result fetched once, then
            results[order[future.key]] = strings.kept(result)  # forgotten by the workers
            future.release()
            done.done(result)
        return results

    def _small(self, paths: list[Path]) -> bool:
        """Without --workers or a scheduler, a small job runs in-process (no cluster started)."""
        if self.workers is not None or self.scheduler or self._client is not None:
            return False
        try:
            return sum(p.stat().st_size for p in paths) < SMALL_JOB_BYTES
        except OSError:
            return False

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                self._client = Client(self.scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise WorkbenchError(f"Dask scheduler {self.scheduler} does not answer within {CONNECT_TIMEOUT_S} s "
                                     f"({type(exc).__name__})") from None
            return self._client
        import dask

        from distributed.utils import get_mp_context

        with dask.config.set(local_cluster_config()):
            get_mp_context().set_forkserver_preload(list(PRELOADED))  # after Dask's own (its optional packages)
            self._cluster = LocalCluster(n_workers=self.workers or os.cpu_count() or 1, threads_per_worker=1,
                                         processes=True, dashboard_address=":0", silence_logs=logging.ERROR)
        self._client = Client(self._cluster)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None


def runner_for(workers: int | None, scheduler: str | None) -> InProcess | DaskRunner:
    """`--workers 1` in this process; else Dask, on `scheduler` (or $DASK_SCHEDULER_ADDRESS) when given."""
    scheduler = scheduler or os.environ.get(SCHEDULER_VARIABLE) or None
    if workers is not None and workers < 1:
        raise WorkbenchError(f"--workers: {workers} is not a number of workers (1 or more)")
    if workers == 1 and not scheduler:
        return InProcess(sys.stderr)
    return DaskRunner(workers, scheduler)


class RankProgress:
    """Files done out of total, rewritten on one line of `stream` when it is a TTY; a file that failed as a
    one-line warning wherever `stream` goes."""

    def __init__(self, total: int, stream: TextIO | None, dashboard: str | None = None) -> None:
        self.total, self.stream, self.count = total, stream, 0
        self.tty = stream is not None and stream.isatty() and total > 1
        if self.tty:
            where = f" on Dask (dashboard: {dashboard})" if dashboard else ""
            print(f"workbench: analyzing {total} rank files{where}", file=stream, flush=True)

    def done(self, result: Any) -> None:
        self.count += 1
        if self.stream is None:
            return
        if isinstance(result, RankFailure):
            print(("\r" if self.tty else "") + f"workbench: warning: {result.message} (left out of the job)",
                  file=self.stream, flush=True)
        if self.tty:
            print(f"\rworkbench: ranks {self.count}/{self.total} done", end="\n" if self.count == self.total else "",
                  file=self.stream, flush=True)


def _dashboard(client: Any) -> str | None:
    """The cluster's dashboard address, when it serves one (bokeh installed on the scheduler)."""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:  # an old or foreign scheduler: no link rather than no analysis
        return None
    return client.dashboard_link if "dashboard" in services else None
