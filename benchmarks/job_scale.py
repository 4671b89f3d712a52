"""How `workbench analyze` scales with the ranks of a job (synthetic jobs built from one real trace).

    python benchmarks/job_scale.py [--ranks 16 64 256] [--workers 2] [--trace PATH] [--hta-python PYTHON]

A job of N ranks is N rank-rewritten copies of one real trace (by default HTA's 26 MB A100 trace
`../shared/traces/public/hta/negative_queue_length/rank0.json.gz`): the copies differ only in the
`distributedInfo` rank and world size, so they are named synthetic and built in a temporary folder
(each copy is a small gzip member with the rewritten header, followed by the trace's body
compressed once: gzip readers join the members). Per job it prints the wall time and the cost per
rank, the CPU seconds of the command and its workers together (user + system: what the work costs,
whatever else loads the machine), the peak RSS of the coordinating process and of the largest worker
process, and the JSON report's size; for the first job, also the speed-up of `--workers` local
workers over one (`--workers 1`, in-process) and the load average while it ran, and HTA's
`TraceAnalysis` loading the same folder (its process and largest child measured alike) when
`--hta-python` (default: the anchors venv, `make .venv-anchors/.installed`) can import HTA.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from load_speed import HTA_CHILD, has_hta

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACE = ROOT.parent / "shared" / "traces" / "public" / "hta" / "negative_queue_length" / "rank0.json.gz"
DISTRIBUTED_INFO = re.compile(rb'"distributedInfo"\s*:\s*\{[^{}]*\}')
POLL_S = 0.1


def build_job(trace: Path, ranks: int, folder: Path) -> Path:
    """`ranks` copies of `trace` in `folder`, rank r named `rank{r}.json.gz` and saying so in its header."""
    data = gzip.decompress(trace.read_bytes())
    body_at = data.index(b'"traceEvents"')
    head, body = data[:body_at], gzip.compress(data[body_at:], compresslevel=6)
    if not DISTRIBUTED_INFO.search(head):
        raise SystemExit(f"{trace}: no distributedInfo before traceEvents")
    folder.mkdir(parents=True, exist_ok=True)
    for rank in range(ranks):
        info = b'"distributedInfo": {"backend": "nccl", "rank": %d, "world_size": %d}' % (rank, ranks)
        (folder / f"rank{rank}.json.gz").write_bytes(gzip.compress(DISTRIBUTED_INFO.sub(info, head)) + body)
    return folder


def run_analyze(folder: Path, workers: int, report: Path) -> dict[str, float]:
    """`workbench analyze` on the job (`measure`), and its JSON report's size."""
    result = measure([sys.executable, "-m", "workbench", "analyze", str(folder), "--workers", str(workers),
                      "--format", "json", "-o", str(report)], "analyze")
    return {**result, "report_mib": report.stat().st_size / 2**20}


def measure(command: list[str], name: str) -> dict[str, float]:
    """Wall and CPU seconds of `command` (it and its children, user + system, sampled), peak RSS (MiB) of it
    and of its largest child; exits naming `name` when it fails."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:  # a pipe nobody reads while it runs would block a chatty child
        proc = psutil.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
        coordinator = worker = 0
        cpu_of: dict[int, float] = {}  # each process's own CPU seconds, last seen (a fork server's workers are not
        while proc.poll() is None:    # the command's children: their time never reaches its rusage)
            try:
                coordinator = max(coordinator, proc.memory_info().rss)
                cpu_of[proc.pid] = sum(proc.cpu_times()[:2])
                for child in proc.children(recursive=True):
                    worker = max(worker, child.memory_info().rss)
                    cpu_of[child.pid] = sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
            time.sleep(POLL_S)
        wall = time.perf_counter() - start
        cpu = sum(cpu_of.values())  # to the last poll: up to POLL_S short of each process's end
        if proc.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"{name} failed (exit {proc.returncode}): {tail}")
    return {"wall_s": wall, "cpu_s": cpu, "coordinator_mib": coordinator / 2**20, "worker_mib": worker / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--workers", type=int, default=2, help="local Dask workers (default: 2)")
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--no-compare", action="store_true", help="skip the one-worker run of the first job")
    parser.add_argument("--hta-python", type=Path, default=ROOT / ".venv-anchors" / "bin" / "python",
                        help="interpreter with HTA, to time its load of the first job (default: the anchors venv)")
    args = parser.parse_args()
    hta = args.hta_python.is_file() and has_hta(str(args.hta_python))
    if not hta:
        print(f"job_scale: HTA skipped: {args.hta_python} " + ("cannot import hta" if args.hta_python.is_file() else
              "is missing (make .venv-anchors/.installed)"))
    print(f"job_scale: synthetic jobs of rank-rewritten copies of {args.trace}")
    print(f"{'ranks':>6} {'workers':>7} {'wall s':>8} {'ms/rank':>8} {'CPU s':>7} {'coord. MiB':>10} "
          f"{'worker MiB':>10} {'report MiB':>10} {'load':>5}")
    for index, ranks in enumerate(args.ranks):
        with tempfile.TemporaryDirectory(prefix="job-scale-") as tmp:
            folder = build_job(args.trace, ranks, Path(tmp) / f"synthetic_{ranks}_ranks")
            runs = [args.workers, 1] if index == 0 and args.workers > 1 and not args.no_compare else [args.workers]
            results = {}
            for workers in runs:
                results[workers] = r = run_analyze(folder, workers, Path(tmp) / "report.json")
                print(f"{ranks:>6} {workers:>7} {r['wall_s']:>8.1f} {1000 * r['wall_s'] / ranks:>8.0f} {r['cpu_s']:>7.1f} "
                      f"{r['coordinator_mib']:>10.0f} {r['worker_mib']:>10.0f} {r['report_mib']:>10.2f} "
                      f"{os.getloadavg()[0]:>5.1f}", flush=True)
            if len(results) == 2:
                print(f"speed-up of {args.workers} workers over 1 on {ranks} ranks: "
                      f"{results[1]['wall_s'] / results[args.workers]['wall_s']:.2f}x", flush=True)
            if index == 0 and hta:
                r = measure([str(args.hta_python), "-c", HTA_CHILD, str(folder)], "HTA")
                print(f"HTA TraceAnalysis load of the {ranks} ranks: {r['wall_s']:.1f} s wall, "
                      f"{r['cpu_s']:.1f} CPU-s, "
                      f"peak RSS {r['coordinator_mib']:.0f} MiB (largest child {r['worker_mib']:.0f} MiB), "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
