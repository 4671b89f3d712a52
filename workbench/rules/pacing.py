"""Who sets a run's pace, the host or the GPU: launch-bound (many short kernels the host launches slower than
the GPU runs them) and host-paced runs, for the rules that must not suggest shortening kernels the GPU waits between."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.inference import graph_launches
from workbench.rules.context import TraceContext

MAX_BUSY_PCT = 50.0
MIN_SHORT_KERNEL_PCT = 50.0
MAX_GRAPH_SHARE = 0.5
MIN_HOST_IDLE_PCT = 20.0


def graph_launched_share(ctx: TraceContext) -> float:
    """Share of kernels launched by a CUDA/HIP graph replay (matched by correlation id)."""
    e = ctx.events
    graphs = graph_launches(e)
    kernels = np.flatnonzero(ctx.kinds != cat.NOT_GPU)
    if not len(graphs) or not len(kernels):
        return 0.0
    return float(np.isin(e.correlation[kernels], e.correlation[graphs]).mean())


def is_launch_bound(ctx: TraceContext) -> bool:
    """Mostly idle GPU, mostly short kernels, launches costing more CPU than the kernels run, no graphs."""
    m = ctx.metrics
    busy, short = m.get("gpu_busy_pct"), m.get("short_kernel_pct")
    if busy is None or short is None or busy >= MAX_BUSY_PCT or short < MIN_SHORT_KERNEL_PCT:
        return False
    return m["launch_cpu_ms"] >= m["kernel_time_ms"] and graph_launched_share(ctx) < MAX_GRAPH_SHARE


def host_idle_pct(metrics: dict[str, Any]) -> float | None:
    """Share of the GPU's window (%) it idles while the host runs operators; None without a window."""
    window = float(metrics.get("gpu_window_ms") or 0.0)
    return 100 * float(metrics.get("idle_host_busy_ms") or 0.0) / window if window else None


def host_paced(ctx: TraceContext) -> bool:
    """The host, not the GPU, sets the pace: launch-bound, or the GPU busy under MAX_BUSY_PCT of its window and
    idle while the host runs operators at least MIN_HOST_IDLE_PCT of it. Shorter kernels would not shorten it."""
    busy, idle = ctx.metrics.get("gpu_busy_pct"), host_idle_pct(ctx.metrics)
    if busy is None or busy >= MAX_BUSY_PCT or idle is None:
        return False
    return idle >= MIN_HOST_IDLE_PCT or is_launch_bound(ctx)
