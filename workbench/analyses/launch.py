"""Kernel launch statistics: how many kernels, how short, and what launching them cost."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.models.trace import EventTable

SHORT_KERNEL_US = 10.0


def launch_metrics(events: EventTable, kinds: np.ndarray, step_count: int) -> dict[str, Any]:
    """Kernel count and time, share of short kernels, and CPU time spent in launch calls."""
    kernels = (kinds == cat.COMPUTE) | (kinds == cat.COMMUNICATION_KIND)
    launches = events.category_mask(cat.RUNTIME_CATEGORIES) & events.name_mask(cat.KERNEL_LAUNCH.search)
    count = int(kernels.sum())
    kernel_us = float(events.dur[kernels].sum())
    launch_us = float(events.dur[launches].sum())
    return {
        "kernel_count": count,
        "kernel_unique_count": int(len(np.unique(events.name[kernels]))),
        "kernel_time_ms": kernel_us / 1000.0,
        "kernels_per_step": count / step_count if step_count else None,
        "short_kernel_pct": round(100.0 * float((events.dur[kernels] < SHORT_KERNEL_US).mean()), 3) if count else None,
        "kernel_mean_us": kernel_us / count if count else None,
        "launch_count": int(launches.sum()),
        "launch_cpu_ms": launch_us / 1000.0,
        "launch_to_kernel_time_ratio": round(launch_us / kernel_us, 4) if kernel_us else None,
    }
