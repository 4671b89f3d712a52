"""Where the GPU's time went: busy share, breakdown by kind, and why it sat idle.

The GPU window runs from the first GPU activity's start to the last one's end. Busy time
is the union of kernels, memcpys and memsets over all streams. The breakdown partitions
the window: computation (any compute kernel running), communication (a collective running
and no compute), memory (only copies/sets running) and idle. Idle time is split by what
the host was doing meanwhile, in this order of precedence: waiting on input (data
loading), blocked in a synchronization, busy in operators or launches, or none of these.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.intervals import clip, layered_lengths, overlap_length, union_length
from workbench.models.trace import Trace
from workbench.units import US_PER_MS


def gpu_time_metrics(trace: Trace, kinds: np.ndarray) -> dict[str, Any]:
    """Metrics of the GPU window; empty when the trace has no GPU activity."""
    events = trace.events
    gpu = kinds != cat.NOT_GPU
    if not gpu.any():
        return {}
    start, end = float(events.ts[gpu].min()), float(events.end[gpu].max())
    window = end - start

    def spans(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return clip(events.ts[mask], events.end[mask], start, end)

    compute = spans(kinds == cat.COMPUTE)
    comm = spans(kinds == cat.COMMUNICATION_KIND)
    memory = spans((kinds == cat.MEMCPY) | (kinds == cat.MEMSET))
    compute_us, comm_us, memory_us = layered_lengths([compute, comm, memory])
    busy_us = compute_us + comm_us + memory_us
    idle_us = window - busy_us

    names = events.name_mask
    host = cat.host_mask(events)
    # operators and annotations only: a loader's helper threads (pin_memory) run data code all the time
    host_phases = events.category_mask(cat.ANNOTATION_CATEGORIES | cat.HOST_OP_CATEGORIES)
    input_wait = spans(names(cat.DATA_LOADING.search) & host_phases)
    sync = spans(names(cat.SYNCHRONIZATION.search) & events.category_mask(cat.RUNTIME_CATEGORIES))
    host_busy = spans(host)
    busy = spans(gpu)
    _, input_us, sync_us, host_us = layered_lengths([busy, input_wait, sync, host_busy])

    def pct(us: float) -> float:
        return round(100.0 * us / window, 3) if window > 0 else 0.0

    comm_all_us = union_length(*comm)
    return {
        "gpu_window_ms": window / US_PER_MS,
        "gpu_busy_ms": busy_us / US_PER_MS,
        "gpu_busy_pct": pct(busy_us),
        "computation_ms": compute_us / US_PER_MS,
        "computation_pct": pct(compute_us),
        "communication_ms": comm_us / US_PER_MS,
        "communication_pct": pct(comm_us),
        "memory_ms": memory_us / US_PER_MS,
        "memory_pct": pct(memory_us),
        "idle_ms": idle_us / US_PER_MS,
        "idle_pct": pct(idle_us),
        "idle_input_wait_ms": input_us / US_PER_MS,
        "idle_sync_ms": sync_us / US_PER_MS,
        "idle_host_busy_ms": host_us / US_PER_MS,
        "idle_other_ms": max(0.0, idle_us - input_us - sync_us - host_us) / US_PER_MS,
        "communication_total_ms": comm_all_us / US_PER_MS,
        "communication_overlapped_pct": (
            round(100.0 * overlap_length(comm, compute) / comm_all_us, 3) if comm_all_us > 0 else None
        ),
    }
