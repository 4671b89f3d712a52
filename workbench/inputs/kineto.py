"""Kineto traces as inputs: one trace file, or a folder of per-rank trace files."""

from __future__ import annotations

from pathlib import Path
from statistics import fmean
from typing import Any

from workbench.analyses.stragglers import job_summary
from workbench.analyses.timeline import rank_origins, timeline_tables
from workbench.analyses.trace_summary import summarize_trace
from workbench.inputs.analyzed import AnalyzedInput, RankResult
from workbench.inputs.registry import AnalyzeOptions, InputKind, register_kind
from workbench.loaders.files import Progress, rank_in_name
from workbench.loaders.kineto import load_kineto

KIND_TRACE = "kineto_trace"
KIND_RANKS = "kineto_trace_ranks"
TRACE_SUFFIXES = (".json", ".json.gz")


def is_kineto_trace(path: Path, head: bytes) -> bool:
    """A .json/.json.gz file whose first bytes name `traceEvents`."""
    return path.name.endswith(TRACE_SUFFIXES) and b'"traceEvents"' in head


def analyze_trace_files(folder: Path, files: list[Path], options: AnalyzeOptions) -> list[AnalyzedInput]:
    """Traces of one folder: several with distinct ranks of one world size form a job, anything else one input each."""
    ranks = [_analyze_rank(f, options.top, options.progress(f.name)) for f in files]
    known = [r.rank for r in ranks if r.rank is not None]
    world_sizes = {r.meta.get("world_size") for r in ranks}
    if len(ranks) > 1 and len(known) == len(ranks) and len(set(known)) == len(known) and len(world_sizes) == 1:
        return [_job_input(folder, ranks)]
    return [_single_input(Path(r.path), r) for r in ranks]


def _single_input(path: Path, rank: RankResult) -> AnalyzedInput:
    return AnalyzedInput(
        path=str(path), kind=KIND_TRACE, metrics=rank.metrics, meta=rank.meta, tables=rank.tables,
        ranks=[rank], warnings=_skip_warnings(rank),
    )


def _job_input(path: Path, ranks: list[RankResult]) -> AnalyzedInput:
    """The ranks of one distributed job, in rank order."""
    ranks.sort(key=lambda r: r.rank)
    _align_timelines(ranks)
    warnings = [w for r in ranks for w in _skip_warnings(r)]
    meta = {"ranks": [r.rank for r in ranks], "world_size": ranks[0].meta.get("world_size"),
            "backend": ranks[0].meta.get("backend"), "devices": ranks[0].meta.get("devices", [])}
    metrics, tables = job_summary([r.rank for r in ranks], [r.trace for r in ranks], [r.metrics for r in ranks],
                                  [r.tables["kernels"] for r in ranks])
    return AnalyzedInput(path=str(path), kind=KIND_RANKS, metrics={**_mean_metrics(ranks), **metrics}, meta=meta,
                         tables=tables, ranks=ranks, warnings=warnings)


def _align_timelines(ranks: list[RankResult]) -> None:
    """The ranks' timelines on one time axis: ms from the first rank's first event, aligned on a common step."""
    origins, anchor = rank_origins([r.trace for r in ranks])
    for rank, origin in zip(ranks, origins):
        rank.tables.pop("timeline", None)
        rank.tables.pop("timeline_steps", None)
        rank.tables.update(timeline_tables(rank.trace, origin_us=origin))
        rank.meta["timeline_origin_us"] = origin
        rank.meta["timeline_aligned_on"] = anchor


def _analyze_rank(path: Path, top: int, progress: Progress) -> RankResult:
    trace = load_kineto(path, progress)
    summary = summarize_trace(trace, top)
    rank = trace.rank if trace.rank is not None else rank_in_name(path.name)
    summary.meta["rank"] = rank
    return RankResult(rank=rank, path=str(path), metrics=summary.metrics, tables=summary.tables,
                      meta=summary.meta, trace=trace)


def _skip_warnings(rank: RankResult) -> list[str]:
    skipped = rank.metrics.get("events_skipped", 0)
    return [f"{rank.path}: {skipped} malformed event(s) skipped"] if skipped else []


def _mean_metrics(ranks: list[RankResult]) -> dict[str, Any]:
    """Metrics of a multi-rank input: the mean over the ranks that have each metric."""
    keys = dict.fromkeys(k for r in ranks for k in r.metrics)
    out: dict[str, Any] = {"rank_count": len(ranks)}
    for key in keys:
        values = [r.metrics[key] for r in ranks if isinstance(r.metrics.get(key), (int, float))]
        if values:
            mean = fmean(values)
            integral = all(isinstance(v, int) for v in values) and mean.is_integer()
            out[key] = int(mean) if integral else mean
    return out


register_kind(InputKind(KIND_TRACE, is_kineto_trace, analyze_trace_files, grouped=True))
