"""`workbench diff BASE NEW`: what changed between two runs, with an optional step-time gate for CI."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from workbench.analyses.trace_diff import diff_inputs
from workbench.errors import InputError
from workbench.inputs import AnalyzedInput, AnalyzeOptions, analyze_path
from workbench.progress import ProgressBars
from workbench.report import build_report
from workbench.reporters import FORMATS
from workbench.rules import run_rules

ALL_ROWS = 10_000  # the diff compares whole tables; the report shows --top rows of each


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("diff", help="compare two runs and gate on a step-time slowdown",
                                   description="Compare a NEW trace (or folder of per-rank traces) with a BASE one.")
    parser.add_argument("base", metavar="BASE", help="the reference trace file or folder")
    parser.add_argument("new", metavar="NEW", help="the trace file or folder to compare with BASE")
    parser.add_argument("--max-slowdown", type=float, metavar="PCT",
                        help="exit 1 when NEW's mean step time exceeds BASE's by more than PCT percent")
    parser.add_argument("--top", type=int, default=15, metavar="N",
                        help="changed kernels/operators, and rows per table, in the report (default: 15)")
    parser.add_argument("--ignore", action="append", default=[], metavar="ID", help="turn off the rule ID (repeatable)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="text", help="output format (default: text)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the diff report; 1 when the slowdown gate fails, 2 when it has no steps to compare."""
    bars = ProgressBars()
    try:
        options = AnalyzeOptions(top=ALL_ROWS, progress=bars.task)
        base, new = (_one_input(path, options) for path in (args.base, args.new))
    finally:
        bars.close()
    base_findings, new_findings = ([f.to_json() for f in run_rules([i], ignore=args.ignore)] for i in (base, new))
    diff = diff_inputs(base, new, base_findings, new_findings, args.top)
    report = build_report([_first_rows(i, args.top) for i in (base, new)], new_findings, diff=diff)
    output = FORMATS[args.format](report)
    if args.output:
        Path(args.output).write_text(output, encoding="utf-8")
    else:
        sys.stdout.write(output)
    return 0 if args.max_slowdown is None else _gate(diff, args.max_slowdown)


def _one_input(path: str, options: AnalyzeOptions) -> AnalyzedInput:
    inputs = analyze_path(path, options)
    if len(inputs) != 1:
        raise InputError(path, f"diff needs one input on each side, this gives {len(inputs)} "
                               "(a folder of traces without distinct ranks?)")
    return inputs[0]


def _first_rows(input_: AnalyzedInput, top: int) -> AnalyzedInput:
    """The input with its tables, and its ranks' tables, cut to `top` rows as `analyze --top` cuts them."""
    def cut(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        return {name: rows[:top] for name, rows in tables.items()}

    return replace(input_, tables=cut(input_.tables), ranks=[replace(r, tables=cut(r.tables)) for r in input_.ranks])


def _gate(diff: dict[str, Any], max_slowdown: float) -> int:
    change = diff["step_time_change_pct"]
    if change is None:
        print("workbench: warning: --max-slowdown needs ProfilerStep#N steps in both BASE and NEW; "
              "no step time to compare", file=sys.stderr)
        return 2
    if change > max_slowdown:
        print(f"workbench: step time {change:+.1f} % exceeds --max-slowdown {max_slowdown:g} %", file=sys.stderr)
        return 1
    return 0
