"""IPython magics: `%%workbench` profiles a cell into a run folder, `%workbench PATH` analyzes a path.

Load with `%load_ext workbench`. The result is drawn by `workbench.notebook.show` when it is
installed, else shown as the text report (Markdown in a notebook).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from workbench.errors import WorkbenchError

HANDLE = "workbench_capture"
"""The name under which `%%workbench` leaves its `Capture` in the user's namespace."""


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magic_function(workbench_line, "line", "workbench")
    ipython.register_magic_function(workbench_cell, "cell", "workbench")


def _cell_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%workbench", add_help=False,
                                     description="Run the cell STEPS times (after WARMUP unrecorded runs) "
                                                 "under workbench.capture, then show the analysis.")
    parser.add_argument("--steps", type=int, default=1, help="recorded runs of the cell (default 1)")
    parser.add_argument("--warmup", type=int, default=0, help="runs before recording, traced and dropped (default 0)")
    parser.add_argument("--out", default="runs/cell", help="run folder; a new suffix if it exists (default runs/cell)")
    parser.add_argument("--no-memory", action="store_true", help="no allocator history, snapshot or memory events")
    parser.add_argument("--no-stacks", action="store_true", help="no Python stacks in the trace")
    return parser


def workbench_cell(line: str, cell: str) -> None:
    """`%%workbench [--steps N] [--warmup W] [--out DIR] [--no-memory] [--no-stacks]`"""
    from IPython import get_ipython

    from workbench.capture import Capture, Schedule
    from workbench.capture.cuda_memory import is_out_of_memory

    try:
        args = _cell_parser().parse_args(shlex.split(line))
    except SystemExit:  # argparse has printed the usage
        return
    shell = get_ipython()
    code = shell.compile(shell.transform_cell(cell), "<workbench cell>", "exec")
    cap = Capture(args.out, Schedule(wait=0, warmup=args.warmup, active=args.steps), memory=not args.no_memory,
                  stacks=not args.no_stacks, cell=cell)
    shell.user_ns[HANDLE] = cap
    try:
        with cap:
            for _ in range(args.warmup + args.steps):
                exec(code, shell.user_ns)
                cap.step()
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        print(f"workbench: the cell ran out of memory; what it left is in {cap.path}/memory", file=sys.stderr)
    _show_path(cap.path)


def workbench_line(line: str) -> None:
    """`%workbench PATH`: analyze a trace, snapshot, dump or run folder and show the report."""
    path = line.strip()
    if not path:
        print("usage: %workbench PATH", file=sys.stderr)
        return
    _show_path(path)


def _show_path(path: Any) -> None:
    from workbench.capture.analysis import analyze_report

    try:
        report = analyze_report(path)
    except WorkbenchError as exc:  # one line, as on the command line
        print(f"workbench: {exc}", file=sys.stderr)
        return
    show(report)


def show(report: dict[str, Any]) -> None:
    """Draw the report with the notebook widgets when they are installed, else as text."""
    try:
        from workbench.notebook import show as draw
    except ImportError:
        from IPython.display import display

        display(_TextReport(report))
    else:
        draw(report)


class _TextReport:
    """The report as Markdown in a notebook and as text in a terminal."""

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report

    def _repr_markdown_(self) -> str:
        from workbench.reporters import FORMATS

        return FORMATS["markdown"](self.report)

    def __repr__(self) -> str:
        from workbench.reporters import FORMATS

        return FORMATS["text"](self.report)
