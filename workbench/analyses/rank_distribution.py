"""A job's per-rank table as distributions: per metric, min, p50, p90 and max over the ranks, and the outliers.

What a job of any size reads at a glance; outliers are the ranks `stragglers.robust_outliers` flags
above the median (at least 5 % above it, robust z >= 3.5), the highest first: all of them counted,
the first `top` (`--top`) listed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses.stragglers import MIN_EXCESS, robust_outliers

RANK_METRICS = ("step_time_ms", "compute_ms_per_step", "comm_ms_per_step", "exposed_comm_ms_per_step",
                "input_ms_per_step", "wait_ms_per_step", "caused_wait_ms_per_step")  # the `ranks` table's, ms per step


def rank_distribution(rows: list[dict[str, Any]], top: int,
                      keys: tuple[str, ...] = RANK_METRICS) -> list[dict[str, Any]]:
    """One row per metric in `keys` of the `ranks` table `rows` that any rank has; its first `top` outlier ranks."""
    ranks = np.array([r["rank"] for r in rows])
    out = []
    for key in keys:
        values = np.array([r[key] if isinstance(r.get(key), (int, float)) else np.nan for r in rows], dtype=np.float64)
        known = ~np.isnan(values)
        if not known.any():
            continue
        median = float(np.median(values[known]))
        high = robust_outliers(values, MIN_EXCESS * abs(median))
        order = np.flatnonzero(high)[np.argsort(-values[high], kind="stable")]
        p = np.percentile(values[known], [0, 50, 90, 100])
        out.append({
            "metric": key, "ranks": int(known.sum()), "min": float(p[0]), "p50": float(p[1]), "p90": float(p[2]),
            "max": float(p[3]), "min_rank": int(ranks[known][np.argmin(values[known])]),
            "max_rank": int(ranks[known][np.argmax(values[known])]), "outlier_count": int(high.sum()),
            "outlier_ranks": ranks[order[:top]].tolist(),
        })
    return out


def detailed_ranks(tables: dict[str, list[dict[str, Any]]], limit: int, cited: list[int] = (),
                   then: list[int] | None = None) -> list[int]:
    """The ranks a large job's report details (and its dashboard draws): every rank in `cited` (those whose
    evidence the job's findings cite), then, up to `limit` in all, the stragglers, the ranks at the ends and in
    the middle of each distribution and its outliers, then `then` (default: the lowest ranks)."""
    chosen = [s["rank"] for s in tables.get("stragglers", [])]
    rows = tables.get("ranks", [])
    by_step = sorted(rows, key=lambda r: (r["step_time_ms"] if isinstance(r.get("step_time_ms"), (int, float))
                                          else float("inf"), r["rank"]))
    if by_step:
        chosen.append(by_step[(len(by_step) - 1) // 2]["rank"])
    for row in tables.get("rank_distribution", []):
        chosen += [row["max_rank"], row["min_rank"], *row["outlier_ranks"]]
    chosen += [r["rank"] for r in rows] if then is None else then
    must = list(dict.fromkeys(cited))
    return list(dict.fromkeys([*must, *chosen]))[:max(limit, len(must))]
