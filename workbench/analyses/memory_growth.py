"""Allocation sites whose requests keep growing: `torch.cat` onto a cache, a list turned into a tensor.

Each request is a little larger than the last, so the block just freed never fits the next
one: reserved memory creeps up and the cache fills with blocks that are too small.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses.memory_sites import site_names
from workbench.models.memory import ALLOC, DeviceMemory

MIN_ALLOCATIONS = 8
MIN_DISTINCT_SIZES = 8
MIN_GROWTH = 2.0  # last request / first request
NON_DECREASING_SHARE = 0.9
MAX_STEP = 0.25  # a little larger each time: the median step between sizes, relative (doubling is 1.0)


def growing_sites(device: DeviceMemory, end: int, top: int = 5) -> list[dict[str, Any]]:
    """Sites among the allocations up to history event `end` whose request sizes keep growing."""
    h = device.history
    allocs = np.flatnonzero(h.action[: end + 1] == ALLOC)
    by_site: dict[str, list[int]] = {}
    for j, site in zip(allocs.tolist(), site_names(h.frames, allocs.tolist())):
        by_site.setdefault(site, []).append(j)
    rows = []
    for site, indexes in by_site.items():
        if len(indexes) < MIN_ALLOCATIONS:
            continue
        sizes = h.size[np.array(indexes)]
        distinct = np.unique(sizes)
        if (len(distinct) < MIN_DISTINCT_SIZES or sizes[-1] < MIN_GROWTH * sizes[0]
                or (np.diff(sizes) >= 0).mean() < NON_DECREASING_SHARE
                or np.median(np.diff(distinct) / distinct[:-1]) > MAX_STEP):
            continue
        rows.append({"site": site, "allocations": len(indexes), "distinct_sizes": len(distinct),
                     "first_bytes": int(sizes[0]), "last_bytes": int(sizes[-1]),
                     "growth_per_new_size_bytes": int((sizes[-1] - sizes[0]) // (len(distinct) - 1)),
                     "requested_bytes_total": int(sizes.sum())})
    rows.sort(key=lambda r: r["requested_bytes_total"], reverse=True)
    return rows[:top]
