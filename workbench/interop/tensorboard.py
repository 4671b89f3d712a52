"""The TensorBoard profiler plugin's folder layout: one folder per run, one trace file per worker.

`torch.profiler.tensorboard_trace_handler` writes `<logdir>/<run>/<worker>.<ms>.pt.trace.json.gz`;
`tensorboard --logdir <logdir>` (with `torch-tb-profiler`) lists each folder holding such files as a
run, and `hta.trace_analysis.TraceAnalysis(trace_dir=<logdir>/<run>)` opens one run. `workbench
analyze <logdir>` gives one input per run folder. No TensorBoard import is needed here.
"""

from __future__ import annotations

import gzip
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import InputError
from workbench.loaders.files import open_input
from workbench.loaders.kineto import load_kineto

TRACE_SUFFIX = ".pt.trace.json"
# the plugin's own pattern: worker, then an optional `.<timestamp>` used as the span name
_WORKER = re.compile(r"^(?P<worker>.*?)(?:\.(?P<span>\d+))?\.pt\.trace\.json(?:\.gz)?$")


@dataclass(frozen=True)
class TraceName:
    worker: str
    span: str | None


def trace_file_name(worker: str, timestamp_ms: int, gzip_: bool = True) -> str:
    """The name `tensorboard_trace_handler` gives a worker's trace: `<worker>.<ms>.pt.trace.json.gz`."""
    return f"{worker}.{timestamp_ms}{TRACE_SUFFIX}" + (".gz" if gzip_ else "")


def parse_trace_name(name: str) -> TraceName | None:
    """Worker and span of a trace file name as the plugin reads it; None when it would not list the file."""
    match = _WORKER.match(name)
    return TraceName(match["worker"], match["span"]) if match else None


def runs(logdir: str | Path) -> dict[str, list[Path]]:
    """The runs the plugin lists under `logdir`: folder (relative, `.` for the logdir itself) to trace files."""
    root = Path(logdir)
    if not root.is_dir():
        raise InputError(root, "not a folder: a TensorBoard log folder holds one sub-folder per run")
    found: dict[str, list[Path]] = {}
    for path in sorted(root.rglob(f"*{TRACE_SUFFIX}*")):
        if path.is_file() and parse_trace_name(path.name):
            found.setdefault(path.parent.relative_to(root).as_posix(), []).append(path)
    return found


def copy_to_logdir(traces: list[str | Path], logdir: str | Path, run: str) -> list[Path]:
    """Copy Kineto traces into `<logdir>/<run>/` under the handler's names, gzipped.

    The worker is `rank<r>` when the trace records its rank (as `workbench.capture` names
    distributed workers), else the file's own stem; the timestamp is the trace's base time.
    """
    folder = Path(logdir) / run
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for source in map(Path, traces):
        trace = load_kineto(source)
        worker = f"rank{trace.rank}" if trace.rank is not None else source.name.split(".")[0]
        base_ms = int(trace.metadata.get("baseTimeNanoseconds", 0)) // 1_000_000
        target = folder / trace_file_name(worker, base_ms)
        with open_input(source) as handle, gzip.open(target, "wb") as out:
            shutil.copyfileobj(handle.stream, out)
        written.append(target)
    return written
