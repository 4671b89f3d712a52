"""Compare workbench's full analysis with Holistic Trace Analysis (HTA) loading the same trace.

Each run happens in a fresh subprocess: the wall time is measured around it (interpreter start and
imports included) and the child prints its own peak RSS (``ru_maxrss``) when it is done.

    python benchmarks/load_speed.py [TRACE] [--repeat N] [--hta-python /path/to/venv/bin/python]

HTA (PyPI ``HolisticTraceAnalysis`` or ``traceinsight``, both import as ``hta``) is measured only
when ``--hta-python`` can import it. It gets a copy of the trace in a temporary folder, since it
may write next to its input.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRACE = ROOT.parent / "shared/traces/h100/train_long/train_long.pt.trace.json.gz"
RSS_TAG = "PEAK_RSS_KB="
# Child programs: argv[1] is the trace path (HTA's: or a job's folder, used by job_scale.py); the last line prints the child's own peak RSS.
FOOTER = f"import resource; print(f'{RSS_TAG}{{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}')"
WORKBENCH_CHILD = f"""import sys
from workbench.cli import main
rc = main(["analyze", sys.argv[1], "--format", "json", "-o", "/dev/null"])
if rc:
    raise SystemExit(rc)
{FOOTER}"""
HTA_CHILD = f"""import os, sys
from hta.trace_analysis import TraceAnalysis
if os.path.isdir(sys.argv[1]):  # a job: every rank's trace in the folder
    TraceAnalysis(trace_dir=sys.argv[1])
else:
    TraceAnalysis(trace_files={{0: sys.argv[1]}}, trace_dir=os.path.dirname(sys.argv[1]))
{FOOTER}"""


def run_once(python: str, program: str, trace: Path) -> tuple[float, int]:
    """Run `program` in a fresh `python`; return (wall seconds, peak RSS in bytes)."""
    start = time.perf_counter()
    proc = subprocess.run([python, "-c", program, str(trace)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"child failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    rss_lines = [line for line in proc.stdout.splitlines() if line.startswith(RSS_TAG)]
    return wall, int(rss_lines[-1].removeprefix(RSS_TAG)) * 1024


def best_of(repeat: int, python: str, program: str, trace: Path) -> tuple[float, int]:
    """The fastest of `repeat` runs, with that run's peak RSS."""
    return min(run_once(python, program, trace) for _ in range(repeat))


def has_hta(python: str) -> bool:
    """Whether `python` can import HTA."""
    probe = subprocess.run([python, "-c", "import hta.trace_analysis"], capture_output=True)
    return probe.returncode == 0


def measure_hta(repeat: int, python: str, trace: Path) -> tuple[float, int]:
    """Time HTA loading a private copy of `trace`."""
    with tempfile.TemporaryDirectory(prefix="hta-bench-") as folder:
        copy = Path(folder) / trace.name
        shutil.copyfile(trace, copy)
        return best_of(repeat, python, HTA_CHILD, copy)


def trace_stats(trace: Path) -> tuple[int, int]:
    """(uncompressed JSON size in bytes, number of trace events)."""
    opener = gzip.open if trace.suffix == ".gz" else open
    with opener(trace, "rb") as stream:
        raw = stream.read()
    return len(raw), len(json.loads(raw).get("traceEvents", []))


def report(rows: dict[str, tuple[float, int]], raw_size: int, events: int, repeat: int) -> None:
    """Print the results as a small table."""
    mb = 1024 * 1024
    print(f"raw JSON: {raw_size / mb:.1f} MiB, {events:,} events; best of {repeat} run(s)")
    print(f"{'tool':<32} {'wall s':>8} {'peak RSS MiB':>13} {'RSS/raw':>8}")
    for name, (wall, rss) in rows.items():
        print(f"{name:<32} {wall:>8.2f} {rss / mb:>13.1f} {rss / raw_size:>8.2f}")
    names = list(rows)
    if len(names) == 2:
        ratio = rows[names[1]][0] / rows[names[0]][0]
        print(f"HTA load time / workbench full analysis time: {ratio:.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", nargs="?", type=Path, default=DEFAULT_TRACE,
                        help="trace file (.json or .json.gz)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the best is kept (default: 3)")
    parser.add_argument("--hta-python", default=sys.executable,
                        help="interpreter that has HTA (default: this one)")
    args = parser.parse_args(argv)
    if not args.trace.is_file():
        print(f"load_speed: no trace at {args.trace}; nothing to measure")
        return 0
    rows = {"workbench analyze (full)": best_of(args.repeat, sys.executable, WORKBENCH_CHILD, args.trace)}
    if has_hta(args.hta_python):
        rows["HTA TraceAnalysis (load only)"] = measure_hta(args.repeat, args.hta_python, args.trace)
    else:
        print(f"load_speed: {args.hta_python} cannot import hta; HTA skipped")
    # Parsed last: the children's peak RSS must not include a big parent (see README).
    raw_size, events = trace_stats(args.trace)
    report(rows, raw_size, events, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
