"""What the coordinating process of `workbench analyze FOLDER` holds per rank, and what the job's reduce costs.

    python benchmarks/coordinator_memory.py [--ranks 64 256 1024] [--top 50] [--trace PATH]

One real rank is analyzed as a Dask worker would (the task `analyze_trace_files` gives its runner for a
job of the given size) and its result pickled; then, per job size N, a fresh process takes N unpickled
copies of it, each with its own rank, as the runner keeps them (`SharedStrings` and the job's keep hook),
and runs the rest of `workbench analyze` on them: the cross-rank reduce, the rules and the JSON report.
It prints the result's pickled size, the memory held after the N results arrived (RSS above the
process's start, and per rank), the peak RSS above the start, and the CPU seconds of taking the results
(unpickling and keeping them) and of the reduce (job summary, rules, report).
"""

from __future__ import annotations

import argparse
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_TRACE = ROOT.parent / "shared" / "traces" / "public" / "hta" / "negative_queue_length" / "rank0.json.gz"


class _Captured(Exception):
    pass


class CaptureRunner:
    """A runner that runs a job's task on one real trace, keeps its pickled result and stops the job."""

    def __init__(self, trace: Path) -> None:
        self.trace, self.blob = trace, b""

    def map(self, task: Any, paths: list[Path], progress: Any, keep: Any = None) -> list[Any]:
        from workbench.inputs.rank_runner import run_task

        self.blob = pickle.dumps(run_task(task, str(self.trace)), protocol=pickle.HIGHEST_PROTOCOL)
        raise _Captured


class CopyRunner:
    """A runner whose results are unpickled copies of one result, each given the rank its path names."""

    def __init__(self, blob: bytes) -> None:
        self.blob, self.held_rss, self.take_cpu_s = blob, 0, 0.0

    def map(self, task: Any, paths: list[Path], progress: Any, keep: Any = None) -> list[Any]:
        from workbench.inputs.rank_runner import InProcess
        from workbench.loaders.files import rank_in_name

        def copy(path: Path, _progress: Any) -> Any:
            result = pickle.loads(self.blob)
            result.rank = result.meta["rank"] = rank_in_name(path.name)
            result.path = str(path)
            return result

        start = time.process_time()
        results = InProcess(None).map(copy, paths, progress, keep)
        self.take_cpu_s = time.process_time() - start
        self.held_rss = psutil.Process().memory_info().rss
        return results


def rank_paths(ranks: int) -> list[Path]:
    return [Path(f"/nonexistent/synthetic_{ranks}_ranks/rank{r}.json.gz") for r in range(ranks)]


def capture(trace: Path, ranks: int, top: int) -> bytes:
    from workbench.inputs.kineto import analyze_trace_files
    from workbench.inputs.registry import AnalyzeOptions

    runner = CaptureRunner(trace)
    try:
        analyze_trace_files(rank_paths(ranks)[0].parent, rank_paths(ranks), AnalyzeOptions(top=top, runner=runner))
    except _Captured:
        return runner.blob
    raise SystemExit("the job's runner was not called")


def child(blob_path: Path, ranks: int, top: int) -> None:
    """One job of `ranks` copies: prints held MiB, peak MiB (above the start), take and reduce CPU seconds."""
    from workbench.commands.analyze import inputs_report
    from workbench.config import Config
    from workbench.inputs.kineto import analyze_trace_files
    from workbench.inputs.registry import AnalyzeOptions
    from workbench.reporters.json import render
    from workbench.rules.registry import load_builtin_rules

    load_builtin_rules()  # imported before the start is measured, as in a command
    runner = CopyRunner(blob_path.read_bytes())
    start_rss = psutil.Process().memory_info().rss
    inputs = analyze_trace_files(rank_paths(ranks)[0].parent, rank_paths(ranks), AnalyzeOptions(top=top, runner=runner))
    reduce_start = time.process_time() - runner.take_cpu_s
    report = render(inputs_report(inputs, Config(), [], None))
    reduce_cpu_s = time.process_time() - reduce_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"{(runner.held_rss - start_rss) / 2**20:.2f} {(peak - start_rss) / 2**20:.2f} "
          f"{runner.take_cpu_s:.3f} {reduce_cpu_s:.3f} {len(report)}")


def _run(mode: str, blob: Path, ranks: int, args: argparse.Namespace) -> str:
    return subprocess.run([sys.executable, __file__, mode, str(blob), "--ranks", str(ranks), "--top", str(args.top),
                           "--trace", str(args.trace)], check=True, capture_output=True, text=True, cwd=ROOT).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--top", type=int, default=50)
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--capture", metavar="BLOB", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", metavar="BLOB", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.capture:
        args.capture.write_bytes(capture(args.trace, args.ranks[0], args.top))
    elif args.child:
        child(args.child, args.ranks[0], args.top)
    else:
        _parent(args)


def _parent(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="coordinator-memory-") as tmp:
        blob_path = Path(tmp) / "result.pickle"  # made by a child: a child's peak RSS starts from its parent's RSS
        _run("--capture", blob_path, max(args.ranks), args)
        print(f"coordinator_memory: copies of one rank of {args.trace} at --top {args.top}, "
              f"{blob_path.stat().st_size / 1024:.1f} KiB pickled")
        print(f"{'ranks':>6} {'held MiB':>9} {'KiB/rank':>9} {'peak MiB':>9} {'take CPU s':>10} {'reduce CPU s':>12} "
              f"{'report MiB':>10}")
        for ranks in args.ranks:
            held, peak, take, reduce, size = _run("--child", blob_path, ranks, args).split()
            print(f"{ranks:>6} {float(held):>9.1f} {1024 * float(held) / ranks:>9.1f} {float(peak):>9.1f} "
                  f"{float(take):>10.2f} {float(reduce):>12.2f} {int(size) / 2**20:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
