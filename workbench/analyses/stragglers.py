"""The ranks of one job side by side: per-rank step, compute and communication, and stragglers.

A straggler is a rank whose compute time or step time is an outlier among the ranks, or
whom the other ranks spent a noticeable share of their step waiting for in collectives
(see `collective_waits`). Outliers are judged against the median: at least `MIN_EXCESS`
above it and, with three ranks or more, a robust z-score (median absolute deviation) of
at least `ROBUST_Z`. The likely cause is read from the straggler's own trace: which of its
data loading (in its median step: a stall in one step is not a slow input pipeline), host-bound GPU
idle time or kernels exceeds the other ranks' median most.

Noise (a shared node, oversubscribed cores) makes some rank the last to join each collective and
the others wait for it, a different rank from step to step or the one the scheduler starved. So a
rank the others waited for, and an outlier in nothing else, is a straggler only when its likely
cause exceeds the other ranks' by `MIN_EXCESS` of the median step: 8 gloo ranks of one program on
2 cores (sample_traces/cpu/ddp_gloo_balanced) made the others wait 10-30 ms/step for three of them,
whose data loading was within 0.05 ms of the others' in their median step.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.collective_waits import collective_waits
from workbench.analyses.collectives import Collectives
from workbench.analyses.intervals import covered_in, union_length
from workbench.analyses.rank_work import Work, extra_work
from workbench.analyses.steps import step_mask
from workbench.models.trace import Trace
from workbench.units import US_PER_MS

MIN_EXCESS = 0.05  # 5 % above the median
MIN_WAIT_SHARE = 0.02  # the others' wait for a rank: at least 2 % of the median step
ROBUST_Z = 3.5
MAD_TO_SIGMA = 1.4826
KernelTimes = tuple[tuple[str, ...], np.ndarray]  # kernel names and their total ms (float64)
HOST_COMM = re.compile(r"^(c10d::|ProcessGroup|record_param_comms|(nccl|gloo|mpi|ucc):)")  # a collective on the host


def robust_outliers(values: np.ndarray, min_excess: float) -> np.ndarray:
    """Values at least `min_excess` above the median and, with 3+ values, with robust z >= ROBUST_Z.

    NaN values are never outliers and do not count.
    """
    known = ~np.isnan(values)
    out = np.zeros(len(values), dtype=bool)
    if known.sum() < 2:
        return out
    median = float(np.median(values[known]))
    excess = np.where(known, values - median, -np.inf)
    out = excess >= max(min_excess, 1e-9)
    mad = float(np.median(np.abs(values[known] - median))) * MAD_TO_SIGMA
    if known.sum() >= 3 and mad > 0:
        out &= excess / mad >= ROBUST_Z
    return out


def job_summary(ranks: list[int], collectives: Sequence[Collectives], input_us: list[float], step_input_us: list[float],
                host_compute: list[float], work: list[Work], metrics: list[dict[str, Any]],
                kernels: list[KernelTimes]) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Input-level metrics and the `ranks` and `stragglers` tables of a multi-rank job, from per-rank summaries.

    Per rank: its collective calls, its data-loading time (`input_us`) and that of its median step
    (`median_step_input_us`), its host compute (`host_compute_us`, the compute of a rank without GPU
    kernels), its work by name (`rank_work.work_summary`), its summary metrics and its kernel table's
    computation kernels (`computation_kernels`).
    """
    steps = np.array([max(int(m.get("step_count") or 0), 1) for m in metrics], dtype=np.float64)
    waits = collective_waits(collectives)

    def per_step(key: str) -> np.ndarray:
        return np.array([_number(m.get(key)) for m in metrics]) / steps

    step_ms = np.array([_number(m.get("step_time_ms_mean")) for m in metrics])
    on_host = np.array([not m.get("kernel_count") and m.get("computation_ms") is None for m in metrics])
    compute = np.where(on_host, np.array(host_compute, dtype=np.float64) / US_PER_MS / steps, per_step("computation_ms"))
    loading = np.array(input_us, dtype=np.float64) / US_PER_MS / steps
    waited = waits.waited_us / US_PER_MS / steps
    caused = waits.caused_us / US_PER_MS / steps
    comm = per_step("collective_ms")
    typical_step = float(np.nanmedian(step_ms)) if not np.isnan(step_ms).all() else float("nan")
    extra = extra_work(work, steps, MIN_EXCESS * typical_step if typical_step > 0 else np.inf)
    top_extra = np.array([max((w["excess_ms_per_step"] for w in e), default=0.0) for e in extra])
    flags = {
        "compute": robust_outliers(compute, MIN_EXCESS * _nan_median(compute)),
        "step time": robust_outliers(step_ms, MIN_EXCESS * typical_step),
        "others waited": robust_outliers(caused, MIN_WAIT_SHARE * (typical_step if typical_step > 0 else 0.0))
        if waits.matched else np.zeros(len(ranks), dtype=bool),
        "extra work": top_extra >= MIN_EXCESS * (typical_step if typical_step > 0 else np.inf),
    }
    rows = [{
        "rank": rank,
        "step_time_ms": step_ms[i],
        "compute_ms_per_step": compute[i],
        "comm_ms_per_step": comm[i],
        "exposed_comm_ms_per_step": metrics[i].get("exposed_comm_ms_per_step"),
        "comm_overlap_pct": metrics[i].get("communication_overlapped_pct"),
        "input_ms_per_step": loading[i],
        "wait_ms_per_step": waited[i],
        "caused_wait_ms_per_step": caused[i],
        "late_in_collectives": int(waits.late_count[i]),
    } for i, rank in enumerate(ranks)]
    flagged = np.flatnonzero(np.any(list(flags.values()), axis=0)).tolist()
    step_loading = np.array(step_input_us, dtype=np.float64) / US_PER_MS
    host = per_step("idle_host_busy_ms")
    kernel_ms = [dict(zip(names, (ms / steps[r]).tolist())) for r, (names, ms) in enumerate(kernels)]  # per step
    kernel_columns = _by_rank(kernel_ms, [kernel_ms[i] for i in flagged])
    causes = {i: _cause_excess(i, np.arange(len(ranks)) != i, step_loading, host, kernel_ms[i], *kernel_columns)
              for i in flagged}
    for i in flagged:  # the others' wait alone names no straggler (module docstring)
        own = flags["compute"][i] or flags["step time"][i] or flags["extra work"][i]
        if not own and typical_step > 0 and max(causes[i][0].values(), default=0.0) < MIN_EXCESS * typical_step:
            flags["others waited"][i] = False
    stragglers = []
    for i in (i for i in flagged if any(mask[i] for mask in flags.values())):
        others = np.arange(len(ranks)) != i
        excess, kernel = causes[i]
        if extra[i]:
            excess["extra work"] = float(top_extra[i])
        cause = max(excess, key=excess.get) if excess and max(excess.values()) > 0 else None
        stragglers.append({
            "rank": ranks[i],
            "outlier_in": [name for name, mask in flags.items() if mask[i]],
            "step_time_ms": step_ms[i],
            "compute_ms_per_step": compute[i],
            "median_compute_ms_per_step": _nan_median(compute[others]),
            "excess_compute_ms_per_step": compute[i] - _nan_median(compute[others]),
            "others_wait_ms_per_step": caused[i],
            "late_in_collectives": int(waits.late_count[i]),
            "likely_cause": cause,
            "cause_excess_ms_per_step": {k: v for k, v in excess.items() if v > 0},
            "slow_kernel": kernel if cause == "slow kernel" else None,
            "extra_work": extra[i],
        })
    job_metrics = {
        "collectives_matched": waits.matched,
        "collective_wait_ms_per_step": float(np.mean(waited)),
        "straggler_count": len(stragglers),
        "straggler_ranks": [s["rank"] for s in stragglers],
    }
    return job_metrics, {"ranks": rows, "stragglers": stragglers}


def _by_rank(per_rank: list[dict[str, float]], wanted: list[dict[str, float]]) -> tuple[np.ndarray, dict[str, int]]:
    """(ranks x names) the values of the names in `wanted` (0 where a rank has none), and each name's column."""
    columns = {name: j for j, name in enumerate(dict.fromkeys(n for values in wanted for n in values))}
    out = np.zeros((len(per_rank), len(columns)))
    for r, values in enumerate(per_rank if columns else ()):
        for name, value in values.items():
            if name in columns:
                out[r, columns[name]] = value
    return out, columns


def _cause_excess(i: int, others: np.ndarray, loading: np.ndarray, host: np.ndarray, kernel_ms: dict[str, float],
                  kernels_by_rank: np.ndarray, columns: dict[str, int]) -> tuple[dict[str, float], str | None]:
    """ms per step by which rank `i` exceeds the other ranks' median, per candidate cause.

    Returns the excesses of "data loading", "host-bound" (GPU idle while the host works) and
    "slow kernel" (the computation kernel that exceeds its median most: `kernel_ms` are rank `i`'s, each
    rank's in `kernels_by_rank`), and that kernel's name.
    """
    excess = {"data loading": loading[i] - _nan_median(loading[others]),
              "host-bound": host[i] - _nan_median(host[others])}
    medians = np.median(kernels_by_rank[others][:, [columns[name] for name in kernel_ms]], axis=0)
    kernel_excess = {name: ms - float(median) for (name, ms), median in zip(kernel_ms.items(), medians.tolist())}
    kernel = max(kernel_excess, key=kernel_excess.get) if kernel_excess else None
    if kernel is not None:
        excess["slow kernel"] = kernel_excess[kernel]
    return {k: float(v) for k, v in excess.items() if not np.isnan(v)}, kernel


def computation_kernels(kernels: list[dict[str, Any]]) -> KernelTimes:
    """The computation kernels of a kernel table (`kernels.kernel_table`) and their total ms: what the slow-kernel
    cause compares across ranks, small enough to hold for every rank of a large job."""
    rows = [k for k in kernels if k["kind"] == "computation"]
    return tuple(k["name"] for k in rows), np.array([k["total_ms"] for k in rows], dtype=np.float64)


def host_compute_us(trace: Trace) -> float:
    """Host time in operators outside collectives and data loading (as a union): a CPU-only rank's compute."""
    e = trace.events
    host = e.category_mask(cat.ANNOTATION_CATEGORIES | cat.HOST_OP_CATEGORIES)
    other = host & e.name_mask(lambda name: bool(cat.DATA_LOADING.search(name) or HOST_COMM.search(name)))
    ops = e.category_mask(cat.HOST_OP_CATEGORIES) | other
    return union_length(e.ts[ops], e.end[ops]) - union_length(e.ts[other], e.end[other])


def input_us(trace: Trace) -> float:
    """Host time in data loading (DataLoader iteration, data/input/batch annotations), as a union."""
    return union_length(*_loading(trace))


def median_step_input_us(trace: Trace) -> float:
    """Data loading (`input_us`) in the rank's median step, or in its whole trace without steps: a stall in one
    step (a preempted process) lengthens that step's, a slow input pipeline every step's."""
    e = trace.events
    steps = step_mask(e)
    if not steps.any():
        return input_us(trace)
    return float(np.median(covered_in(*_loading(trace), e.ts[steps], e.end[steps])))


def _loading(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    e = trace.events
    loading = e.name_mask(cat.DATA_LOADING.search) & e.category_mask(cat.ANNOTATION_CATEGORIES | cat.HOST_OP_CATEGORIES)
    return e.ts[loading], e.end[loading]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else float("nan")


def _nan_median(values: np.ndarray) -> float:
    return float(np.nanmedian(values)) if len(values) and not np.isnan(values).all() else float("nan")
