"""`workbench diff BASE NEW`: what changed between two runs, with an optional step-time gate for CI."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from workbench.analyses.trace_diff import diff_inputs
from workbench.commands.cluster_options import add_cluster_options, rank_runner
from workbench.commands.options import add_report_options, emit, row_count, settings
from workbench.errors import InputError
from workbench.gate import exit_code, gate_section, rules_evaluated, rules_failed, tune
from workbench.inputs import AnalyzedInput, AnalyzeOptions, analyze_path
from workbench.progress import ProgressBars
from workbench.report import build_report
from workbench.rules import run_rules

ALL_ROWS = 10_000  # the diff compares whole tables; the report shows --top rows of each
RANK_TABLES = ("ranks", "stragglers", "rank_distribution")  # a job's: whole in JSON, --top rows in text (`meta.top`)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("diff", help="compare two runs and gate on a step-time slowdown",
                                   description="Compare a NEW trace (or folder of per-rank traces) with a BASE one.")
    parser.add_argument("base", metavar="BASE",
                        help="the reference trace file or folder (of per-rank traces, or a capture run folder)")
    parser.add_argument("new", metavar="NEW", help="the trace file or folder to compare with BASE")
    add_slowdown_option(parser)
    parser.add_argument("--top", type=row_count, default=15, metavar="N",
                        help="changed kernels/operators, and rows per table, in the report (default: 15)")
    add_cluster_options(parser)
    add_report_options(parser)
    parser.set_defaults(run=run)


def add_slowdown_option(parser: argparse.ArgumentParser) -> None:
    """--max-slowdown (`ci --baseline` has it too)."""
    parser.add_argument("--max-slowdown", type=float, metavar="PCT",
                        help="exit 1 when NEW's mean step time exceeds BASE's by more than PCT percent "
                             "(default: the config's max-slowdown, else no limit)")


def run(args: argparse.Namespace) -> int:
    """Write the diff report; 1 when NEW's findings or its slowdown fail the gate, 2 when it has no steps to compare."""
    config, ignore, fail_on = settings(args)
    max_slowdown = config.max_slowdown if args.max_slowdown is None else args.max_slowdown
    bars = ProgressBars()
    try:
        with rank_runner(args) as runner:
            options = AnalyzeOptions(top=ALL_ROWS, progress=bars.task, runner=runner, ignore=tuple(ignore))
            base, new = (_compared_input(path, analyze_path(path, options)) for path in (args.base, args.new))
    finally:
        bars.close()
    base_findings, new_findings = ([f.to_json() for f in tune(run_rules([i], ignore=ignore), config)]
                                   for i in (base, new))
    diff = diff_inputs(base, new, base_findings, new_findings, args.top)
    report = build_report([_first_rows(i, args.top) for i in (base, new)], new_findings, diff=diff)
    report["gate"] = gate_section(new_findings, rules_evaluated([new], ignore), config, fail_on, max_slowdown,
                                  report["diff"], failed=rules_failed([new]))
    emit(report, args)
    return exit_code(report)


def _compared_input(path: str, inputs: list[AnalyzedInput]) -> AnalyzedInput:
    """The input a side of the diff stands for: the path's only input, else its only trace (a capture
    run folder's, beside its manifest and memory files)."""
    traces = inputs if len(inputs) == 1 else [i for i in inputs if i.ranks]
    if len(traces) != 1:
        raise InputError(path, f"diff needs one input on each side, this gives {len(inputs)} with "
                               f"{len(traces)} trace(s) (a folder of traces without distinct ranks?)")
    return traces[0]


def _first_rows(input_: AnalyzedInput, top: int) -> AnalyzedInput:
    """The input with its tables, and its ranks' tables, cut to `top` rows as `analyze --top` cuts them (a job's
    rank tables stay whole, as in `analyze`)."""
    def cut(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        return {name: rows if name in RANK_TABLES else rows[:top] for name, rows in tables.items()}

    meta = {**input_.meta, "top": top} if "top" in input_.meta else input_.meta
    return replace(input_, tables=cut(input_.tables), meta=meta,
                   ranks=[replace(r, tables=cut(r.tables)) for r in input_.ranks])
