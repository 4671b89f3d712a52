"""`workbench analyze PATH...`: analyze traces, print the report, and gate on findings for CI."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from workbench.commands.cluster_options import add_cluster_options, rank_runner
from workbench.commands.options import add_report_options, emit, row_count, settings
from workbench.config import Config
from workbench.gate import exit_code, gate_section, rules_evaluated, rules_failed, tune
from workbench.inputs import AnalyzedInput, AnalyzeOptions, analyze_path
from workbench.progress import ProgressBars
from workbench.report import build_report
from workbench.rules import run_rules


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("analyze", help="analyze artifacts of a run and print a report",
                                   description="Analyze the artifacts of a run: profiler traces, allocator snapshots, "
                                               "OOM messages, Flight Recorder dumps and logs, Nsight and Metal exports.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a file, or a folder (every artifact in it is recognized); - reads pasted text "
                             "(an OOM message, a NCCL or torchrun log) from standard input")
    parser.add_argument("--top", type=row_count, default=50, metavar="N", help="rows per table in the report (default: 50)")
    add_cluster_options(parser)
    add_report_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the report; 1 when a finding is at or above --fail-on."""
    config, ignore, fail_on = settings(args)
    bars = ProgressBars()
    try:
        with rank_runner(args) as runner:
            options = AnalyzeOptions(top=args.top, progress=bars.task, runner=runner)
            report = analyze_report(args.paths, options, config, ignore, fail_on)
    finally:
        bars.close()
    emit(report, args)
    return exit_code(report)


def analyze_report(paths: list[str], options: AnalyzeOptions, config: Config, ignore: list[str],
                   fail_on: str | None) -> dict[str, Any]:
    """The report `analyze` writes (the JupyterLab panel's server extension serves the same); `-` is stdin."""
    options = replace(options, ignore=tuple(ignore))
    inputs = [i for path in paths for i in (_stdin(options) if path == "-" else analyze_path(path, options))]
    return inputs_report(inputs, config, ignore, fail_on)


def _stdin(options: AnalyzeOptions) -> list[AnalyzedInput]:
    from workbench.text_input import analyze_text

    return analyze_text(sys.stdin.buffer.read(), "<stdin>", options)


def inputs_report(inputs: list[AnalyzedInput], config: Config, ignore: list[str],
                  fail_on: str | None) -> dict[str, Any]:
    """The report of inputs already analyzed: the rules run, the config applied, the gate judged."""
    findings = [f.to_json() for f in tune(run_rules(inputs, ignore=ignore), config)]
    report = build_report(inputs, findings)
    report["gate"] = gate_section(findings, rules_evaluated(inputs, ignore), config, fail_on, None,
                                  failed=rules_failed(inputs))
    return report
