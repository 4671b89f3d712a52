"""`workbench.capture(...)`: profile steps of a run into a new run folder and analyze it.

    with workbench.capture(out="runs/train", steps=3) as cap:
        for batch in cap.wrap(loader):
            train_step(batch)
    cap.report()

The run folder holds the Kineto trace(s) named as `torch.profiler.tensorboard_trace_handler`
names them (`<worker>.<time_ns>.pt.trace.json.gz`, worker `rank<r>` in a distributed job, else
`<hostname>_<pid>`), `memory/<worker>.snapshot.pickle` (CUDA) and `memory/<worker>.oom.txt` (on an
out-of-memory error), `fr/fr_rank_<r>` (each rank's Flight Recorder record when a distributed run
fails) and `manifest.json` (`manifest.rank<r>.json` for the other ranks). Nothing is written
outside it.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from workbench import distributed
from workbench.capture import cuda_memory, manifest, mps
from workbench.capture.run_folder import create_run_folder
from workbench.capture.schedule import Schedule, schedule_of

T = TypeVar("T")
DEFAULT_OUT = "runs/capture"
CI_OUT_VARIABLE = "WORKBENCH_CI_OUT"  # set by `workbench ci`: where every capture of its command writes
HISTORY_ENTRIES = 100_000


class Capture:
    """One capture: a context manager, an iterable wrapper (`wrap`) and a decorator (each call one step)."""

    def __init__(self, out: str | Path = DEFAULT_OUT, steps: int | Schedule | dict[str, int] | None = None,
                 memory: bool = True, stacks: bool = True, shapes: bool = True, device: str | None = None,
                 history_entries: int = HISTORY_ENTRIES, cell: str | None = None) -> None:
        self.out = Path(os.environ.get(CI_OUT_VARIABLE) or out)
        self.schedule = schedule_of(steps)
        self.memory, self.stacks, self.shapes = memory, stacks, shapes
        self.device = device
        self.history_entries = history_entries
        self.cell = cell
        self.path: Path | None = None
        self.status = "not started"
        self.steps_done = 0
        self.error: BaseException | None = None
        self._profiler: Any = None
        self._recording_history = False
        self._signposts = False
        self._step_ms: list[float] = []
        self._mps_memory: list[dict[str, int]] = []
        self._timings: dict[str, Any] = {"trace_export_s": 0.0}

    # -- the context manager -------------------------------------------------------------------
    def __enter__(self) -> Capture:
        if self.status != "not started":
            raise RuntimeError("a Capture runs once; create a new one for another run")
        import torch.profiler

        self.device = self.device or _default_device()
        self.rank, self.world_size = distributed.rank_and_world()
        self.worker = distributed.worker_name(self.rank) or f"{socket.gethostname()}_{os.getpid()}"
        self.path = create_run_folder(self.out, distributed.job_key())
        self._started = (datetime.now(timezone.utc), time.perf_counter())
        if self.memory and self.device == "cuda":
            cuda_memory.start_history(self.history_entries)
            self._recording_history = True
        if self.device == "mps":
            mps.start_signposts()
            self._signposts = True
        handler = torch.profiler.tensorboard_trace_handler(str(self.path), worker_name=self.worker, use_gzip=True)
        self._profiler = torch.profiler.profile(
            activities=_activities(self.device), schedule=self.schedule.to_torch(),
            on_trace_ready=functools.partial(self._export, handler), record_shapes=self.shapes,
            profile_memory=self.memory, with_stack=self.stacks)
        self._profiler.start()
        self.status = "running"
        self._last_step = time.perf_counter()
        return self

    def step(self) -> None:
        """Mark the end of a step (a training iteration)."""
        now = time.perf_counter()
        self._step_ms.append((now - self._last_step) * 1000.0)
        if self._signposts:
            self._mps_memory.append({"step": self.steps_done, **mps.memory_sample()})
        self.steps_done += 1
        self._profiler.step()
        self._last_step = time.perf_counter()

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> bool:
        try:
            self.error = exc
            if exc is None:
                self.status = "ok"
            elif cuda_memory.is_out_of_memory(exc):
                self.status = "out of memory"
                cuda_memory.write_oom(self._memory_dir() / f"{self._stem}.oom.txt", exc)
            else:
                self.status = f"error: {type(exc).__name__}"
            if self._recording_history:  # at an OOM, the state and history that led to it
                cuda_memory.dump_snapshot(self._memory_dir() / f"{self._stem}.snapshot.pickle")
            if exc is not None and self.rank is not None:  # what each rank's collectives were doing
                distributed.dump_flight_recorder(self.path / "fr" / f"{distributed.DUMP_PREFIX}{self.rank}")
        finally:
            self._stop()
        return False  # the error, if any, goes on to the caller

    # -- the other forms -----------------------------------------------------------------------
    def wrap(self, iterable: Iterable[T]) -> Iterator[T]:
        """Yield the items, each loop iteration one step: `for batch in cap.wrap(loader): ...`."""
        for item in iterable:
            yield item
            self.step()

    def __call__(self, fn: Callable[..., T]) -> Callable[..., T]:
        """Decorate a step function: the capture starts at its first call, each call is one step, and
        it ends after the schedule's last recorded step (or at the first error, re-raised)."""

        @functools.wraps(fn)
        def step_fn(*args: Any, **kwargs: Any) -> T:
            if self.status != "running":
                if self.status != "not started":
                    return fn(*args, **kwargs)
                self.__enter__()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self.__exit__(type(exc), exc, exc.__traceback__)
                raise
            self.step()
            if self.steps_done >= self.schedule.total:
                self.__exit__(None, None, None)
            return result

        step_fn.capture = self  # type: ignore[attr-defined]
        return step_fn

    def close(self) -> None:
        """End a decorator's capture before its schedule is done."""
        if self.status == "running":
            self.__exit__(None, None, None)

    def report(self, top: int = 50) -> dict[str, Any]:
        """The `workbench.report/1` document of the run folder (what `workbench analyze` prints)."""
        if self.path is None or self.status == "running":
            raise RuntimeError("the capture has not finished; call report() after the with block")
        from workbench.capture.analysis import analyze_report

        return analyze_report(self.path, top)

    # -- inside --------------------------------------------------------------------------------
    @property
    def _stem(self) -> str:
        """The worker name without dots, so that snapshot and OOM message share a stem."""
        return self.worker.replace(".", "-")

    def _memory_dir(self) -> Path:
        folder = self.path / "memory"
        folder.mkdir(exist_ok=True)
        return folder

    def _export(self, handler: Callable[[Any], None], prof: Any) -> None:
        started = time.perf_counter()
        handler(prof)
        self._timings["trace_export_s"] += time.perf_counter() - started

    def _stop(self) -> None:
        try:
            self._profiler.stop()
        finally:
            if self._recording_history:
                cuda_memory.stop_history()
            if self._signposts:
                mps.stop_signposts()
            self._write_manifest()

    def _write_manifest(self) -> None:
        started_utc, started = self._started
        devices = manifest.cuda_devices() if self.device == "cuda" else (
            [mps.device_facts()] if self.device == "mps" else [])
        data = {
            "status": self.status,
            "error": _error_line(self.error),
            "rank": self.rank, "world_size": self.world_size, "worker": self.worker, "device": self.device,
            "versions": manifest.versions(), "host": manifest.host(), "devices": devices,
            "settings": {"schedule": self.schedule.to_json(), "memory": self.memory, "stacks": self.stacks,
                         "shapes": self.shapes, "activities": [a.name for a in _activities(self.device)],
                         "history_entries": self.history_entries if self._recording_history else None},
            "environment": manifest.environment(), "source": manifest.source(self.cell),
            "timings": {"started_utc": started_utc.isoformat(), "duration_s": time.perf_counter() - started,
                        "steps": self.steps_done, "step_ms": self._step_ms, **self._timings},
            "mps_memory": self._mps_memory,
        }
        data["files"] = manifest.list_files(self.path)
        manifest.write_manifest(self.path / manifest.manifest_name(self.rank), data)


def _error_line(exc: BaseException | None) -> str | None:
    if exc is None:
        return None
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _default_device() -> str:
    if cuda_memory.cuda_available():
        return "cuda"
    return "mps" if mps.mps_available() else "cpu"


def _activities(device: str) -> list[Any]:
    """CPU always; CUDA kernels on `cuda` (torch.profiler has no MPS activity: signposts stand in)."""
    from torch.profiler import ProfilerActivity

    return [ProfilerActivity.CPU, ProfilerActivity.CUDA] if device == "cuda" else [ProfilerActivity.CPU]
