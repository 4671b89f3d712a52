"""Device memory from a trace's `[memory]` events (`profile_memory=True`): peaks and a curve."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.models.trace import MISSING, MemoryEvents

CURVE_POINTS = 400


def trace_memory_metrics(memory: MemoryEvents) -> dict[str, Any]:
    """Peak allocated and reserved bytes on the busiest GPU, and the allocation rate."""
    device = _busiest_device(memory)
    if device is None:
        return {}
    on = (memory.device == device) & (memory.total_allocated != MISSING)
    allocated, reserved = memory.total_allocated[on], memory.total_reserved[on]
    peak = int(np.argmax(allocated))
    return {
        "memory_device": device,
        "memory_peak_allocated_bytes": int(allocated[peak]),
        "memory_peak_reserved_bytes": int(reserved.max()) if (reserved != MISSING).any() else None,
        "memory_reserved_unallocated_at_peak_bytes": (int(reserved[peak] - allocated[peak])
                                                      if reserved[peak] != MISSING else None),
        "memory_allocations": int((memory.bytes[on] > 0).sum()),
        "memory_allocated_bytes_total": int(memory.bytes[on][memory.bytes[on] > 0].sum()),
    }


def trace_memory_curve(memory: MemoryEvents) -> list[dict[str, Any]]:
    """Allocated and reserved bytes over time on the busiest GPU (see `memory_curve`)."""
    device = _busiest_device(memory)
    if device is None:
        return []
    on = (memory.device == device) & (memory.total_allocated != MISSING)
    return memory_curve(memory.ts[on], memory.total_allocated[on], memory.total_reserved[on])


def memory_curve(ts: np.ndarray, allocated: np.ndarray, reserved: np.ndarray) -> list[dict[str, Any]]:
    """Rows of time (ms from the first point), allocated and reserved bytes, at most `CURVE_POINTS`.

    Each row is the maximum over its time bucket, so peaks survive the down-sampling; reserved
    bytes of `MISSING` (-1) become None.
    """
    order = np.argsort(ts, kind="stable")
    ts, allocated, reserved = ts[order], allocated[order], reserved[order]
    edges = np.linspace(ts[0], ts[-1], CURVE_POINTS + 1)
    bucket = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, CURVE_POINTS - 1)
    used = np.unique(bucket)
    peak_allocated = np.full(CURVE_POINTS, -1, np.int64)
    peak_reserved = np.full(CURVE_POINTS, -1, np.int64)
    np.maximum.at(peak_allocated, bucket, allocated)
    np.maximum.at(peak_reserved, bucket, reserved)
    return [{"time_ms": round(float(edges[b] - ts[0]) / 1000.0, 3), "allocated_bytes": int(peak_allocated[b]),
             "reserved_bytes": int(peak_reserved[b]) if peak_reserved[b] != MISSING else None}
            for b in used.tolist()]


def _busiest_device(memory: MemoryEvents) -> int | None:
    """The GPU with the most memory events (host memory, device -1, is left out)."""
    gpu = memory.device[(memory.device >= 0) & (memory.total_allocated != MISSING)]
    if not len(gpu):
        return None
    devices, counts = np.unique(gpu, return_counts=True)
    return int(devices[np.argmax(counts)])
