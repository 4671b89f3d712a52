"""Metal System Trace exports (`xcrun xctrace export` XML) as inputs, summarized like a Kineto trace.

The XML files of one folder are the tables of one recording: they form one input. The trace
rules are not run on them yet: their fixes are written for CUDA, and no real export was at hand to
check what they would say about an Apple GPU (see `loaders/xctrace.py`).
"""

from __future__ import annotations

from pathlib import Path

from workbench.analyses.trace_summary import summarize_trace
from workbench.inputs.analyzed import AnalyzedInput, RankResult
from workbench.inputs.registry import AnalyzeOptions, InputKind, register_kind
from workbench.loaders.xctrace import GPU_TABLE, is_xctrace_export, load_xctrace

KIND = "xctrace_export"


def analyze_exports(path: Path, files: list[Path], options: AnalyzeOptions) -> list[AnalyzedInput]:
    """The XML files of one folder (the registry groups them): one recording, named by its file when alone."""
    return [_recording(path if len(files) > 1 else files[0], files, options)]


def _recording(path: Path, files: list[Path], options: AnalyzeOptions) -> AnalyzedInput:
    trace = load_xctrace(files)
    summary = summarize_trace(trace, options.top)
    xctrace = trace.metadata["xctrace"]
    summary.meta["profiler"] = {"name": "Instruments Metal System Trace (xctrace export)", **xctrace}
    summary.meta["device_type"] = "mps"
    warnings = []
    if GPU_TABLE not in xctrace["tables"]:
        warnings.append(f"{path}: no {GPU_TABLE} table: export it with xcrun xctrace export --input RUN.trace "
                        f"--xpath '//table[@schema=\"{GPU_TABLE}\"]'")
    rank = RankResult(rank=None, path=str(path), metrics=summary.metrics, tables=summary.tables,
                      meta=summary.meta, trace=trace, quantized=summary.quantized)
    return AnalyzedInput(path=str(path), kind=KIND, metrics=summary.metrics, meta=summary.meta,
                         tables=summary.tables, ranks=[rank], warnings=warnings)


register_kind(InputKind(KIND, is_xctrace_export, analyze_exports, grouped=True))
