"""What two processes can gain over one on this machine, with no Dask: the bound on `--workers 2`.

    python benchmarks/parallel_ceiling.py [--ranks 64] [--processes 2] [--trace PATH]

Builds a synthetic job as `job_scale.py` does (rank-rewritten copies of one real trace), then runs
the task a Dask worker runs for each rank (`summarize_rank` with the job's packing) once in this
process, one rank after another, and once in a bare `multiprocessing` pool of forked processes (one
rank a task, the pool started and its modules imported before the clock starts). It prints both
wall times, the CPU seconds a rank took inside the tasks (alone and with every core busy) and their
ratio: the speed-up no scheduler can beat here, against which `job_scale.py`'s is read.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from job_scale import DEFAULT_TRACE, build_job  # noqa: E402


def _task(path: str) -> float:
    """One rank summarized as a worker summarizes it; its CPU seconds."""
    from workbench.inputs.kineto import summarize_rank

    start = time.process_time()
    summarize_rank(Path(path), lambda fraction: None, top=50, pack=True)
    return time.process_time() - start


def _warm(_: int) -> None:
    import workbench.inputs.builtin  # noqa: F401  (what a worker imports before its first task)
    import workbench.rules.builtin  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=64)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parallel-ceiling-") as tmp:
        folder = build_job(args.trace, args.ranks, Path(tmp) / f"synthetic_{args.ranks}_ranks")
        paths = sorted(str(p) for p in folder.iterdir())
        _warm(0)
        _task(paths[0])  # this process's caches warm, as a pool worker's are after its first rank
        start = time.perf_counter()
        alone = [_task(p) for p in paths]
        one = time.perf_counter() - start
        with multiprocessing.get_context("fork").Pool(args.processes) as pool:
            pool.map(_warm, range(args.processes))
            start = time.perf_counter()
            together = pool.map(_task, paths, chunksize=1)
            many = time.perf_counter() - start
    print(f"parallel_ceiling: {args.ranks} synthetic ranks of {args.trace.name}, load {os.getloadavg()[0]:.1f}")
    print(f"1 process: {one:.1f} s, {statistics.median(alone):.3f} CPU-s a rank (median)")
    print(f"{args.processes} processes: {many:.1f} s, {statistics.median(together):.3f} CPU-s a rank (median)")
    print(f"speed-up of {args.processes} processes over 1: {one / many:.2f}x")


if __name__ == "__main__":
    main()
