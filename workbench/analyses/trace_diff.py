"""Two analyzed inputs compared: key metrics, the kernels and operators that changed most, findings.

Two jobs (inputs with a `rank_distribution`) are also compared rank-wise: their per-rank distributions
before and after, and their findings by rule, cause and rank. A job's findings are one per rule and
cause (on how many ranks it holds) and one per straggler rank: comparing ids alone would call a
straggler "persisting" when rank 5 stopped lagging and rank 2 started.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol, Sequence

import numpy as np

DIFF_METRICS = (
    "step_time_ms_mean", "step_time_ms_p50", "gpu_busy_pct", "computation_pct", "communication_pct",
    "memory_pct", "idle_pct", "idle_input_wait_ms", "idle_sync_ms", "idle_host_busy_ms", "kernel_count",
    "kernels_per_step", "short_kernel_pct", "launch_cpu_ms", "kernel_time_ms", "gpu_window_ms",
    "decode_ms_per_pass", "decode_tokens_per_s", "decode_mbu_pct",
)
JOB_METRICS = ("rank_count", "exposed_comm_ms_per_step", "collective_wait_ms_per_step")  # a job's, compared too
STATS = ("min", "p50", "p90", "max")  # of a job's per-rank distributions
# diff key -> (table, time column compared): operators by the GPU time of the kernels they launched,
# and by their own CPU time (what a CPU-only trace has)
TABLE_TIMES = {"kernels": ("kernels", "total_ms"), "operators": ("operators", "gpu_ms"),
               "operators_cpu": ("operators", "self_cpu_ms")}
Table = list[dict[str, Any]]
Tables = dict[str, Table]


class Tabled(Protocol):
    def read_tables(self) -> Tables: ...


class Compared(Protocol):
    """What a diff reads of an analyzed input (an `inputs.analyzed.AnalyzedInput`): its tables, or its ranks'."""

    path: str
    metrics: dict[str, Any]
    tables: Tables

    @property
    def ranks(self) -> Sequence[Tabled]: ...


def diff_inputs(base: Compared, new: Compared, base_findings: list[dict[str, Any]],
                new_findings: list[dict[str, Any]], top: int) -> dict[str, Any]:
    """How NEW differs from BASE; table times are per step when both inputs have steps."""
    per_step = bool(base.metrics.get("step_count")) and bool(new.metrics.get("step_count"))
    diff = {
        "base": base.path,
        "new": new.path,
        "metrics": metric_changes(base.metrics, new.metrics),
        "step_time_change_pct": change_pct(base.metrics.get("step_time_ms_mean"),
                                           new.metrics.get("step_time_ms_mean")),
        "per_step": per_step,
        **{key: changed_rows(base, new, key, per_step, top) for key in TABLE_TIMES},
        "findings": finding_changes(base_findings, new_findings),
    }
    if "rank_distribution" in base.tables and "rank_distribution" in new.tables:
        diff["ranks"] = job_changes(base.tables, new.tables, base_findings, new_findings)
    return diff


def change_pct(base: float | None, new: float | None) -> float | None:
    """Relative change in percent; None when either value is missing or the base is zero."""
    return 100.0 * (new - base) / base if base and new is not None else None


def metric_changes(base: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Base, new and change of each key metric that either side has."""
    pairs = {name: (base.get(name), new.get(name)) for name in (*DIFF_METRICS, *JOB_METRICS)}
    return [_metric_change(name, b, n) for name, (b, n) in pairs.items() if b is not None or n is not None]


def _metric_change(name: str, base: float | None, new: float | None) -> dict[str, Any]:
    return {"name": name, **value_change(base, new)}


def value_change(base: float | None, new: float | None) -> dict[str, float | None]:
    """Base, new, their difference and its percentage (None where a side is missing)."""
    delta = new - base if base is not None and new is not None else None
    return {"base": base, "new": new, "delta": delta, "delta_pct": change_pct(base, new)}


def table_times(input_: Compared, key: str, per_step: bool) -> dict[str, float]:
    """Milliseconds by row name of a table: the mean over ranks, divided by the step count when `per_step`."""
    sources = (r.read_tables() for r in input_.ranks) if input_.ranks else iter([input_.tables])
    table, column = TABLE_TIMES[key]
    totals: Counter[str] = Counter()
    for tables in sources:  # one rank's at a time: a large job's are packed (`RankResult.read_tables`)
        totals.update({row["name"]: row[column] for row in tables.get(table, []) if column in row})
    scale = max(len(input_.ranks), 1) * (input_.metrics["step_count"] if per_step else 1)
    return {name: ms / scale for name, ms in totals.items()}


def changed_rows(base: Compared, new: Compared, key: str, per_step: bool,
                 top: int) -> list[dict[str, Any]]:
    """The `top` rows whose time changed most; a row on one side only counts 0 on the other."""
    before, after = table_times(base, key, per_step), table_times(new, key, per_step)
    names = list(dict.fromkeys([*before, *after]))
    base_ms = np.array([before.get(n, 0.0) for n in names])
    new_ms = np.array([after.get(n, 0.0) for n in names])
    delta = new_ms - base_ms
    changed = np.flatnonzero(delta)
    order = changed[np.argsort(-np.abs(delta[changed]), kind="stable")][:top]
    return [{"name": names[i], "base_ms": float(base_ms[i]), "new_ms": float(new_ms[i]),
             "delta_ms": float(delta[i])} for i in order]


def finding_changes(base_findings: list[dict[str, Any]], new_findings: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Finding ids resolved (base only), introduced (new only) and persisting (both), in report order."""
    before = dict.fromkeys(f["id"] for f in base_findings)
    after = dict.fromkeys(f["id"] for f in new_findings)
    return {
        "resolved": [i for i in before if i not in after],
        "introduced": [i for i in after if i not in before],
        "persisting": [i for i in after if i in before],
    }


def job_changes(base_tables: dict[str, Table], new_tables: dict[str, Table], base_findings: Table,
                new_findings: Table) -> dict[str, Any]:
    """The rank counts, the `rank_distribution` of both jobs metric by metric, and their findings matched."""
    return {
        "base_ranks": len(base_tables.get("ranks", [])),
        "new_ranks": len(new_tables.get("ranks", [])),
        "distributions": distribution_changes(base_tables.get("rank_distribution", []),
                                              new_tables.get("rank_distribution", [])),
        "findings": job_finding_changes(base_findings, new_findings),
    }


def distribution_changes(base: Table, new: Table) -> Table:
    """Per metric either job has: min, p50, p90 and max before and after (and their change), the rank at the
    maximum and the outlier ranks of each."""
    before = {r["metric"]: r for r in base}
    after = {r["metric"]: r for r in new}
    rows = []
    for metric in dict.fromkeys([*before, *after]):
        b, n = before.get(metric, {}), after.get(metric, {})
        row: dict[str, Any] = {"metric": metric}
        for stat in STATS:
            row[stat] = value_change(b.get(stat), n.get(stat))
        for key in ("max_rank", "outlier_count", "outlier_ranks"):
            row[key] = {"base": b.get(key), "new": n.get(key)}
        rows.append(row)
    return rows


def job_finding_changes(base: Table, new: Table) -> Table:
    """Each finding of either job by rule, cause and (a finding on one rank) rank: resolved, introduced or
    persisting, with the ranks it holds on and its gain (share of the time) on each side."""
    before = {_key(f): f for f in base}
    after = {_key(f): f for f in new}
    rows = []
    for key in dict.fromkeys([*before, *after]):
        b, n = before.get(key), after.get(key)
        rows.append({
            "id": key[0], "rank": key[2], "fix": key[1],
            "status": "persisting" if b and n else "resolved" if b else "introduced",
            "base_ranks_affected": _ranks_affected(b), "new_ranks_affected": _ranks_affected(n),
            "base_gain_pct": b["estimated_gain"].get("pct") if b else None,
            "new_gain_pct": n["estimated_gain"].get("pct") if n else None,
        })
    return rows


def _key(finding: dict[str, Any]) -> tuple[str, str, int | None]:
    rank = finding["evidence"].get("rank")
    return finding["id"], finding["fix"]["summary"], rank if isinstance(rank, int) else None


def _ranks_affected(finding: dict[str, Any] | None) -> int | None:
    if finding is None:
        return None
    affected = finding["evidence"].get("ranks_affected")
    return affected if isinstance(affected, int) else 1
