"""Two analyzed inputs compared: key metrics, the kernels and operators that changed most, findings."""

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
# diff key -> (table, time column compared): operators by the GPU time of the kernels they launched,
# and by their own CPU time (what a CPU-only trace has)
TABLE_TIMES = {"kernels": ("kernels", "total_ms"), "operators": ("operators", "gpu_ms"),
               "operators_cpu": ("operators", "self_cpu_ms")}
Tables = dict[str, list[dict[str, Any]]]


class Tabled(Protocol):
    tables: Tables


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
    return {
        "base": base.path,
        "new": new.path,
        "metrics": metric_changes(base.metrics, new.metrics),
        "step_time_change_pct": change_pct(base.metrics.get("step_time_ms_mean"),
                                           new.metrics.get("step_time_ms_mean")),
        "per_step": per_step,
        **{key: changed_rows(base, new, key, per_step, top) for key in TABLE_TIMES},
        "findings": finding_changes(base_findings, new_findings),
    }


def change_pct(base: float | None, new: float | None) -> float | None:
    """Relative change in percent; None when either value is missing or the base is zero."""
    return 100.0 * (new - base) / base if base and new is not None else None


def metric_changes(base: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Base, new and change of each key metric that either side has."""
    pairs = {name: (base.get(name), new.get(name)) for name in DIFF_METRICS}
    return [_metric_change(name, b, n) for name, (b, n) in pairs.items() if b is not None or n is not None]


def _metric_change(name: str, base: float | None, new: float | None) -> dict[str, Any]:
    delta = new - base if base is not None and new is not None else None
    return {"name": name, "base": base, "new": new, "delta": delta, "delta_pct": change_pct(base, new)}


def table_times(input_: Compared, key: str, per_step: bool) -> dict[str, float]:
    """Milliseconds by row name of a table: the mean over ranks, divided by the step count when `per_step`."""
    sources = [r.tables for r in input_.ranks] or [input_.tables]
    table, column = TABLE_TIMES[key]
    totals: Counter[str] = Counter()
    for tables in sources:
        totals.update({row["name"]: row[column] for row in tables.get(table, []) if column in row})
    scale = len(sources) * (input_.metrics["step_count"] if per_step else 1)
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
