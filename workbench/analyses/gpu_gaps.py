"""Where the GPU starved: long gaps between its activities, and stretches of low utilization.

Both follow Nsight Systems' expert rules (`gpu-starv`, `gpu-low-util`) so that their
numbers can be compared: a gap is time on one device with no kernel, memcpy or memset
running; utilization is measured over equal chunks of each device's GPU window, and
adjacent chunks below the threshold are joined into one region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.intervals import clip, merge, union_length
from workbench.models.trace import EventTable

GAP_MIN_US = 500_000.0  # nsys analyze's gpu-starv default: 500 ms
UTILIZATION_CHUNKS = 30  # nsys analyze's gpu-low-util default
LOW_UTILIZATION_PCT = 50.0


@dataclass(frozen=True)
class Span:
    """A stretch of time on one device (µs)."""

    device: int
    start: float
    end: float
    busy_pct: float = 0.0

    @property
    def duration(self) -> float:
        return self.end - self.start


def _per_device(events: EventTable, kinds: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Merged busy intervals of each device that has GPU activity."""
    gpu = kinds != cat.NOT_GPU
    return {int(d): merge(events.ts[gpu & (events.device == d)], events.end[gpu & (events.device == d)])
            for d in np.unique(events.device[gpu]).tolist()}


def gpu_gaps(events: EventTable, kinds: np.ndarray, min_us: float = GAP_MIN_US) -> list[Span]:
    """Gaps of at least `min_us` between GPU activities of each device, longest first."""
    gaps = []
    for device, (starts, ends) in _per_device(events, kinds).items():
        lengths = starts[1:] - ends[:-1]
        gaps += [Span(device, float(ends[i]), float(starts[i + 1])) for i in np.flatnonzero(lengths >= min_us)]
    return sorted(gaps, key=lambda g: -g.duration)


def low_utilization(events: EventTable, kinds: np.ndarray, chunks: int = UTILIZATION_CHUNKS,
                    threshold_pct: float = LOW_UTILIZATION_PCT) -> list[Span]:
    """Regions of adjacent chunks of each device's GPU window whose busy share is below the threshold."""
    regions = []
    for device, (starts, ends) in _per_device(events, kinds).items():
        edges = np.linspace(starts[0], ends[-1], chunks + 1)
        busy = np.array([union_length(*clip(starts, ends, lo, hi)) for lo, hi in zip(edges[:-1], edges[1:])])
        low = 100.0 * busy / np.maximum(np.diff(edges), 1e-9) < threshold_pct
        for run in np.split(np.flatnonzero(low), np.flatnonzero(np.diff(np.flatnonzero(low)) > 1) + 1):
            if len(run):
                lo, hi = float(edges[run[0]]), float(edges[run[-1] + 1])
                regions.append(Span(device, lo, hi, round(100.0 * float(busy[run].sum()) / (hi - lo), 3)))
    return regions
