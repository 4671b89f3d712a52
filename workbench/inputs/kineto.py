"""Kineto traces as inputs: one trace file, or a folder of per-rank trace files."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from statistics import fmean
from typing import Any, Sequence

from workbench.analyses import categories as cat
from workbench.analyses.collectives import Collectives, find_collectives
from workbench.analyses.rank_alignment import rank_origins, shift_timeline, step_starts
from workbench.analyses.rank_work import work_summary
from workbench.analyses.rank_distribution import detailed_ranks, rank_distribution
from workbench.analyses.stragglers import (computation_kernels, host_compute_us, input_us, job_summary,
                                           median_step_input_us)
from workbench.analyses.timeline import trace_origin_us
from workbench.analyses.trace_summary import summarize_trace
from workbench.errors import WorkbenchError
from workbench.inputs.analyzed import AnalyzedInput, Packed, RankResult, ReadBack, Spill, pack_value
from workbench.inputs.rank_runner import Keep, RankFailure
from workbench.inputs.registry import AnalyzeOptions, InputKind, register_kind
from workbench.loaders.files import Progress, rank_in_name
from workbench.loaders.kineto import load_kineto

KIND_TRACE = "kineto_trace"
KIND_RANKS = "kineto_trace_ranks"
TRACE_SUFFIXES = (".json", ".json.gz")
DETAILED_RANKS = 8  # a larger job's report has the tables of this many ranks (`detailed_ranks`), metrics of all


def is_kineto_trace(path: Path, head: bytes) -> bool:
    """A .json/.json.gz file whose first bytes name `traceEvents`, or Chrome's array form (`[{"ph": ...`)."""
    if not path.name.endswith(TRACE_SUFFIXES):
        return False
    if b'"traceEvents"' in head:
        return True
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return body[:1] == b"[" and body[1:].lstrip()[:1] == b"{" and b'"ph"' in body[:4096]


def analyze_trace_files(folder: Path, files: list[Path], options: AnalyzeOptions) -> list[AnalyzedInput]:
    """Traces of one folder: several with distinct ranks of one world size form a job, anything else one input each.

    One trace is analyzed here and kept (rules and the dashboard read it); several run on
    `options.runner`, each summarized where it is read (`summarize_rank`). A file that fails is
    left out with a warning; when most fail, the first failure is the error.
    """
    if len(files) == 1:
        return [_single_input(files[0], _analyze_rank(files[0], options.top, options.progress(files[0].name)))]
    pack = len(files) > DETAILED_RANKS and not options.keep_traces
    task = partial(summarize_rank, top=options.top, keep_trace=options.keep_traces, pack=pack)
    results = options.runner.map(task, files, options.progress, _kept(Spill()) if pack else None)
    failed = [r for r in results if isinstance(r, RankFailure)]
    ranks = [r for r in results if isinstance(r, RankResult)]
    if len(failed) * 2 > len(results):
        raise WorkbenchError(f"{failed[0].message} ({len(failed)} of {len(results)} trace files in {folder} failed)")
    known = [r.rank for r in ranks if r.rank is not None]
    world_sizes = {r.meta.get("world_size") for r in ranks}
    if len(ranks) > 1 and len(known) == len(ranks) and len(set(known)) == len(known) and len(world_sizes) == 1:
        return [_job_input(folder, ranks, failed, options)]
    for rank in ranks:
        rank.unpack()
    inputs = [_single_input(Path(r.path), r) for r in ranks]
    if inputs:
        inputs[0].warnings += [f"{f.message} (left out)" for f in failed]
    return inputs


def _kept(spill: Spill) -> Keep:
    """What the coordinator keeps of a large job's result as it arrives: its packed parts in `spill`, and one list of
    devices for the ranks that list the same devices (the ranks of a node do; 3 KiB a rank of 8 A100s)."""
    devices: dict[str, list[Any]] = {}

    def keep(result: Any) -> Any:
        if isinstance(result, RankResult) and result.meta.get("devices"):
            result.meta["devices"] = devices.setdefault(repr(result.meta["devices"]), result.meta["devices"])
        return spill.keep(result)

    return keep


def _single_input(path: Path, rank: RankResult) -> AnalyzedInput:
    return AnalyzedInput(
        path=str(path), kind=KIND_TRACE, metrics=rank.metrics, meta=rank.meta, tables=rank.tables,
        ranks=[rank], warnings=rank.warnings,
    )


def _job_input(path: Path, ranks: list[RankResult], failed: list[RankFailure],
               options: AnalyzeOptions) -> AnalyzedInput:
    """The ranks of one distributed job, in rank order; `failed` are its files that could not be read; the text
    and Markdown reports show `options.top` rows of its rank tables (`meta.top`)."""
    ranks.sort(key=lambda r: r.rank)
    warnings = [w for r in ranks for w in r.warnings]
    meta = {"ranks": [r.rank for r in ranks], "world_size": ranks[0].meta.get("world_size"),
            "backend": ranks[0].meta.get("backend"), "devices": ranks[0].meta.get("devices", []),
            "top": options.top}
    if failed:
        meta["missing_ranks"] = [rank_in_name(Path(f.path).name) for f in failed]
        meta["missing_files"] = [f.path for f in failed]
        warnings += [f"{f.message} (rank left out of the job)" for f in failed]
    collectives = ReadBack([r.collectives for r in ranks])  # a large job's read back rank by rank
    metrics, tables = job_summary([r.rank for r in ranks], collectives,
                                  [r.input_us for r in ranks], [r.step_input_us for r in ranks],
                                  [r.host_compute_us for r in ranks], [r.work for r in ranks],
                                  [r.metrics for r in ranks],
                                  [r.computation_kernels for r in ranks])
    tables["rank_distribution"] = rank_distribution(tables["ranks"], options.top)
    if len(ranks) > DETAILED_RANKS:
        from workbench.rules.registry import job_cited_ranks  # rules import this module's kinds

        detailed = set(detailed_ranks(tables, DETAILED_RANKS, job_cited_ranks(ranks, options.ignore)))
        meta["detailed_ranks"] = sorted(detailed)
        for rank in ranks:
            rank.detailed = rank.rank in detailed
            if rank.detailed:
                rank.unpack()
    _align_timelines(ranks, collectives)
    _one_window(ranks)
    return AnalyzedInput(path=str(path), kind=KIND_RANKS, metrics={**_mean_metrics(ranks), **metrics}, meta=meta,
                         tables=tables, ranks=ranks, warnings=warnings)


def _align_timelines(ranks: list[RankResult], collectives: Sequence[Collectives]) -> None:
    """The ranks' timelines on one time axis: ms from the first rank's first event, aligned on a common step."""
    origins, anchor = rank_origins([r.first_us for r in ranks], [r.step_starts for r in ranks], collectives)
    for rank, origin in zip(ranks, origins):
        shift_timeline(rank.tables, rank.meta, (rank.first_us - origin) / 1000.0)
        rank.meta["timeline_origin_us"] = origin
        rank.meta["timeline_aligned_on"] = anchor


def _one_window(ranks: list[RankResult]) -> None:
    """The report's zoomed-in window (`report_window`) of one rank only: the busiest GPU's of those detailed."""
    shown = [r for r in ranks if "timeline_window" in r.tables]
    keep = max(shown, key=lambda r: r.metrics.get("gpu_busy_pct") or 0.0, default=None)
    for rank in ranks:
        if rank is not keep:
            rank.tables.pop("timeline_window", None)
            rank.meta.pop("timeline_window", None)


def summarize_rank(path: Path, progress: Progress, top: int, keep_trace: bool = False,
                   pack: bool = False) -> RankResult:
    """One rank's summary, computed where its file is read (a Dask task): the per-trace rules run on its trace here
    (their findings choose its job's detailed ranks); without `keep_trace`, the trace is dropped once they have run
    and its collectives are taken; with `pack`, its tables travel compressed (`RankResult.pack`) and the job's
    reduce reads what it needs of them apart."""
    rank = _analyze_rank(path, top, progress)
    trace = rank.trace
    rank.collectives = find_collectives(trace, cat.gpu_kinds(trace.events))
    rank.input_us = input_us(trace)
    rank.step_input_us = median_step_input_us(trace)
    rank.host_compute_us = host_compute_us(trace)
    rank.work = work_summary(trace, cat.gpu_kinds(trace.events))
    rank.step_starts = step_starts(trace)
    rank.first_us = trace_origin_us(trace)
    from workbench.rules.rank_findings import RankFindings  # rules import this module's kinds
    from workbench.rules.registry import trace_findings

    found, rule_warnings = trace_findings(_single_input(path, rank), (KIND_TRACE, KIND_RANKS))
    rank.findings = RankFindings.pack(found)  # its job's detailed ranks are chosen by them, traces kept or not
    rank.warnings += rule_warnings
    if not keep_trace:
        rank.trace, rank.quantized = None, None
    rank.computation_kernels = computation_kernels(rank.tables["kernels"])
    if pack:
        rank.pack()
        rank.work, rank.collectives = Packed(pack_value(rank.work)), Packed(pack_value(rank.collectives))
    return rank


def _analyze_rank(path: Path, top: int, progress: Progress) -> RankResult:
    trace = load_kineto(path, progress)
    summary = summarize_trace(trace, top)
    rank = trace.rank if trace.rank is not None else rank_in_name(path.name)
    summary.meta["rank"] = rank
    return RankResult(rank=rank, path=str(path), metrics=summary.metrics, tables=summary.tables,
                      meta=summary.meta, trace=trace, quantized=summary.quantized,
                      warnings=[f"{path}: {w}" for w in summary.warnings])


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
