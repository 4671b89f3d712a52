"""`workbench analyze PATH...`: analyze traces and print the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.progress import ProgressBars
from workbench.report import build_report
from workbench.reporters import FORMATS
from workbench.rules import run_rules


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("analyze", help="analyze traces and print a report",
                                   description="Analyze profiler traces (files, or folders of per-rank traces).")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="trace file (.json, .json.gz) or folder of traces")
    parser.add_argument("--format", choices=sorted(FORMATS), default="text", help="output format (default: text)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument("--top", type=int, default=50, metavar="N", help="rows per table in the report (default: 50)")
    parser.add_argument("--ignore", action="append", default=[], metavar="ID",
                        help="turn off the rule ID (repeatable; see `workbench rules`)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    bars = ProgressBars()
    try:
        options = AnalyzeOptions(top=args.top, progress=bars.task)
        inputs = [i for path in args.paths for i in analyze_path(path, options)]
    finally:
        bars.close()
    findings = [f.to_json() for f in run_rules(inputs, ignore=args.ignore)]
    output = FORMATS[args.format](build_report(inputs, findings))
    if args.output:
        Path(args.output).write_text(output, encoding="utf-8")
    else:
        sys.stdout.write(output)
    return 0
