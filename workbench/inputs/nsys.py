"""Nsight Systems SQLite exports as inputs: one export, summarized like a Kineto trace.

The exports of a folder (one per rank or process of a job) are read on `options.runner` (Dask tasks
for a large folder): each task summarizes its export, runs the per-trace rules there and returns the
summary without the trace. One export, or `keep_traces`, is analyzed here and keeps its trace.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from workbench.analyses.categories import GPU_CATEGORIES
from workbench.analyses.trace_summary import summarize_trace
from workbench.errors import WorkbenchError
from workbench.inputs.analyzed import AnalyzedInput, RankResult
from workbench.inputs.rank_runner import RankFailure
from workbench.inputs.registry import AnalyzeOptions, InputKind, register_kind
from workbench.loaders.files import Progress
from workbench.loaders.nsys import load_nsys
from workbench.loaders.nsys_schema import looks_like_export

KIND_NSYS = "nsys_sqlite"
NSYS_META = ("product_version", "export_schema_version", "metadata_table", "processes", "step_ranges")


def analyze_export(path: Path, files: list[Path], options: AnalyzeOptions) -> list[AnalyzedInput]:
    """One input per export: the Kineto metrics and tables, plus what the export says about itself. An export
    that cannot be read is the command's error (the first, naming its file)."""
    if len(files) == 1 or options.keep_traces:
        return [_input(summarize_export(f, options.progress(f.name), options.top, keep_trace=True)) for f in files]
    results = options.runner.map(partial(summarize_export, top=options.top), files, options.progress)
    failed = next((r for r in results if isinstance(r, RankFailure)), None)
    if failed is not None:
        raise WorkbenchError(failed.message)
    return [_input(r) for r in results]


def _input(export: RankResult) -> AnalyzedInput:
    return AnalyzedInput(path=export.path, kind=KIND_NSYS, metrics=export.metrics, meta=export.meta,
                         tables=export.tables, ranks=[export], warnings=export.warnings)


def summarize_export(path: Path, progress: Progress, top: int, keep_trace: bool = False) -> RankResult:
    """One export's summary; without `keep_trace`, the per-trace rules run here and the trace is dropped."""
    trace = load_nsys(path, progress)
    summary = summarize_trace(trace, top)
    nsys = trace.metadata["nsys"]
    summary.meta["profiler"] = {"name": "Nsight Systems", **{k: nsys[k] for k in NSYS_META}}
    warnings = [] if trace.events.category_mask(GPU_CATEGORIES).any() else [
        f"{path}: no CUDA kernels, copies or memsets (was it profiled with `nsys profile -t cuda`?)"]
    warnings += [f"{path}: {w}" for w in summary.warnings]
    rank = RankResult(rank=None, path=str(path), metrics=summary.metrics, tables=summary.tables,
                      meta=summary.meta, trace=trace, quantized=summary.quantized, warnings=warnings)
    if not keep_trace:
        from workbench.rules.rank_findings import RankFindings  # rules import this module's kind
        from workbench.rules.registry import trace_findings

        found, rule_warnings = trace_findings(_input(rank), (KIND_NSYS,))
        rank.findings = RankFindings.pack(found)
        rank.warnings += rule_warnings
        rank.trace, rank.quantized = None, None
    return rank


register_kind(InputKind(KIND_NSYS, looks_like_export, analyze_export, grouped=True))
