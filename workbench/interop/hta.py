"""HTA interop: an input's traces handed to HTA, and workbench's numbers as the DataFrames HTA returns.

`ReportAnalysis(input_)` answers HTA `TraceAnalysis` calls (`get_temporal_breakdown`,
`get_comm_comp_overlap`, `get_gpu_kernel_breakdown`) from a report input, without re-reading
the traces, so notebooks written for HTA keep working. `trace_analysis(input_)` opens the same
traces in HTA for its analyses that workbench does not have (critical path, queue lengths,
frequent kernel sequences, CUPTI counters). pandas and HTA are imported only when these are
called: `pip install "workbench[hta]"`. Where the numbers differ, docs/interop.md says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.inputs.analyzed import AnalyzedInput
from workbench.units import US_PER_MS

InputLike = AnalyzedInput | dict[str, Any]


def rank_documents(input_: InputLike) -> list[dict[str, Any]]:
    """The per-rank parts of an input (`AnalyzedInput` or a report's input dict), each with its `rank`.

    A trace that records no rank takes its position, as HTA numbers `trace_files` it is given.
    """
    doc = input_.to_json() if isinstance(input_, AnalyzedInput) else input_
    ranks = doc.get("ranks") or [{"rank": doc.get("meta", {}).get("rank"), "path": doc["path"],
                                  "metrics": doc["metrics"], "tables": doc.get("tables", {})}]
    return [{**r, "rank": i if r.get("rank") is None else r["rank"]} for i, r in enumerate(ranks)]


def trace_files(input_: InputLike) -> dict[int, str]:
    """rank -> absolute trace path: HTA's `TraceAnalysis(trace_files=...)` argument."""
    return {r["rank"]: str(Path(r["path"]).resolve()) for r in rank_documents(input_)}


def trace_analysis(input_: InputLike, include_last_profiler_step: bool = True) -> Any:
    """HTA's `TraceAnalysis` over the input's traces.

    The last profiler step is kept (HTA drops it by default) so that HTA's window is the report's.
    """
    from hta.trace_analysis import TraceAnalysis

    return TraceAnalysis(trace_files=trace_files(input_), include_last_profiler_step=include_last_profiler_step)


class ReportAnalysis:
    """HTA `TraceAnalysis` methods answered from a workbench input (ranks with GPU activity)."""

    def __init__(self, input_: InputLike) -> None:
        self.ranks = [r for r in rank_documents(input_) if r["metrics"].get("gpu_window_ms")]

    def get_temporal_breakdown(self, visualize: bool = False) -> Any:
        """Idle, compute and non-compute time per rank, in µs and as a share of the GPU window."""
        _no_plots(visualize)
        rows = []
        for r in self.ranks:
            m = r["metrics"]
            window = m["gpu_window_ms"] * US_PER_MS
            parts = {"idle_time": m["idle_ms"] * US_PER_MS, "compute_time": m["computation_ms"] * US_PER_MS,
                     "non_compute_time": (m["communication_ms"] + m["memory_ms"]) * US_PER_MS}
            rows.append({"rank": r["rank"], **{f"{k}(us)": v for k, v in parts.items()}, "kernel_time(us)": window,
                         **{f"{k}_pctg": round(100.0 * v / window, 2) for k, v in parts.items()}})
        return _frame(rows)

    def get_comm_comp_overlap(self, visualize: bool = False) -> Any:
        """Per rank: the share of communication kernel time that overlaps computation kernels."""
        _no_plots(visualize)
        rows = [{"rank": r["rank"], "comp_comm_overlap_pctg": round(r["metrics"]["communication_overlapped_pct"], 2)}
                for r in self.ranks if r["metrics"].get("communication_overlapped_pct") is not None]
        return _frame(rows, ["rank", "comp_comm_overlap_pctg"])

    def get_gpu_kernel_breakdown(self, visualize: bool = False) -> tuple[Any, Any]:
        """(time by kernel type over all ranks, the top kernels of each rank), memory kernels left out as HTA does.

        The kernel table has workbench's top kernels with `sum (us)` and `mean (us)`; HTA's
        `max`, `min` and `stddev` columns are not in the report.
        """
        _no_plots(visualize)
        totals = {"COMPUTATION": 0.0, "COMMUNICATION": 0.0, "COMPUTATION overlapping COMMUNICATION": 0.0}
        kernels = []
        for r in self.ranks:
            m = r["metrics"]
            comm_us = (m.get("communication_total_ms") or 0.0) * US_PER_MS
            overlap_us = comm_us * (m.get("communication_overlapped_pct") or 0.0) / 100.0
            totals["COMPUTATION"] += m["computation_ms"] * US_PER_MS - overlap_us
            totals["COMMUNICATION"] += comm_us - overlap_us
            totals["COMPUTATION overlapping COMMUNICATION"] += overlap_us
            kernels += [{"name": k["name"], "sum (us)": k["total_ms"] * US_PER_MS, "mean (us)": k["mean_us"],
                         "kernel_type": k["kind"].upper(), "rank": r["rank"]} for k in r["tables"].get("kernels", [])]
        all_us = sum(totals.values())
        types = sorted(((k, v) for k, v in totals.items() if v > 0), key=lambda kv: -kv[1])
        type_rows = [{"kernel_type": k, "sum": v, "percentage": round(100.0 * v / all_us, 1)} for k, v in types]
        return (_frame(type_rows, ["kernel_type", "sum", "percentage"]),
                _frame(kernels, ["name", "sum (us)", "mean (us)", "kernel_type", "rank"]))


def _no_plots(visualize: bool) -> None:
    if visualize:
        raise ValueError("workbench draws no HTA plots: call with visualize=False, or use trace_analysis(input_)")


def _frame(rows: list[dict[str, Any]], columns: list[str] | None = None) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)
