"""Training/inference steps from the profiler's `ProfilerStep#N` annotations."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.models.trace import EventTable


def step_mask(events: EventTable) -> np.ndarray:
    """The host-side `ProfilerStep#N` events (not their GPU-lane mirrors)."""
    host = events.category_mask(cat.ANNOTATION_CATEGORIES | cat.HOST_OP_CATEGORIES)
    return host & events.name_mask(cat.PROFILER_STEP.match)


def step_metrics(events: EventTable) -> dict[str, Any]:
    """Count and duration statistics of the steps; empty when the trace has none."""
    steps = step_mask(events)
    if not steps.any():
        return {"step_count": 0}
    ms = events.dur[steps] / 1000.0
    return {
        "step_count": int(steps.sum()),
        "step_time_ms_mean": float(ms.mean()),
        "step_time_ms_p50": float(np.median(ms)),
        "step_time_ms_max": float(ms.max()),
        "step_time_ms_min": float(ms.min()),
    }
