"""The kernel table: GPU kernels grouped by name."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.models.trace import EventTable


def kernel_table(events: EventTable, kinds: np.ndarray, top: int) -> list[dict[str, Any]]:
    """Kernels by total time: name, kind, count, total/mean time and share of kernel time."""
    kernels = (kinds == cat.COMPUTE) | (kinds == cat.COMMUNICATION_KIND)
    if not kernels.any():
        return []
    codes = events.name[kernels]
    dur = events.dur[kernels]
    total = np.bincount(codes, weights=dur, minlength=len(events.names))
    count = np.bincount(codes, minlength=len(events.names))
    all_time = float(dur.sum())
    order = np.argsort(-total, kind="stable")[: min(top, int((count > 0).sum()))]
    return [
        {
            "name": events.names[code],
            "kind": "communication" if cat.is_communication_kernel(events.names[code]) else "computation",
            "count": int(count[code]),
            "total_ms": float(total[code]) / 1000.0,
            "mean_us": float(total[code] / count[code]),
            "share_pct": round(100.0 * float(total[code]) / all_time, 3) if all_time else 0.0,
        }
        for code in order
    ]
