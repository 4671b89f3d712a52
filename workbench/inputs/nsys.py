"""Nsight Systems SQLite exports as inputs: one export, summarized like a Kineto trace."""

from __future__ import annotations

from pathlib import Path

from workbench.analyses.categories import GPU_CATEGORIES
from workbench.analyses.trace_summary import summarize_trace
from workbench.inputs.analyzed import AnalyzedInput, RankResult
from workbench.inputs.registry import AnalyzeOptions, InputKind, register_kind
from workbench.loaders.nsys import load_nsys
from workbench.loaders.nsys_schema import looks_like_export

KIND_NSYS = "nsys_sqlite"
NSYS_META = ("product_version", "export_schema_version", "metadata_table", "processes", "step_ranges")


def analyze_export(path: Path, files: list[Path], options: AnalyzeOptions) -> list[AnalyzedInput]:
    """One input per export: the Kineto metrics and tables, plus what the export says about itself."""
    inputs = []
    for file in files:
        trace = load_nsys(file, options.progress(file.name))
        summary = summarize_trace(trace, options.top)
        nsys = trace.metadata["nsys"]
        summary.meta["profiler"] = {"name": "Nsight Systems", **{k: nsys[k] for k in NSYS_META}}
        warnings = [] if trace.events.category_mask(GPU_CATEGORIES).any() else [
            f"{file}: no CUDA kernels, copies or memsets (was it profiled with `nsys profile -t cuda`?)"]
        warnings += [f"{file}: {w}" for w in summary.warnings]
        rank = RankResult(rank=None, path=str(file), metrics=summary.metrics, tables=summary.tables,
                          meta=summary.meta, trace=trace)
        inputs.append(AnalyzedInput(path=str(file), kind=KIND_NSYS, metrics=summary.metrics, meta=summary.meta,
                                    tables=summary.tables, ranks=[rank], warnings=warnings))
    return inputs


register_kind(InputKind(KIND_NSYS, looks_like_export, analyze_export))
