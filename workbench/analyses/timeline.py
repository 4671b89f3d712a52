"""A bounded timeline of a trace: per lane (GPU stream, CPU thread), busy intervals by category.

Events of one lane and category are merged into rectangles; intervals closer than a gap are
joined, and the gap doubles until the whole timeline fits in `max_rects` rectangles, so a
157 MB trace and a 1 MB one give tables of the same bounded size. Each rectangle keeps the time
really busy inside it and its event count. The same function, given a window, gives the detail
of that window (what a zoomed-in view asks for).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.intervals import merge
from workbench.analyses.steps import step_mask
from workbench.models.trace import Trace

MAX_RECTS = 2000
FIRST_GAP_FRACTION = 1 / 8000  # the first join gap: a fraction of the window, below a pixel
HOST_CATEGORIES = ("operator", "launch", "synchronization", "runtime")
CATEGORY_NAMES = [*cat.GPU_KIND_NAMES.values(), *HOST_CATEGORIES]
_HOST_BASE = len(cat.GPU_KIND_NAMES)


def trace_origin_us(trace: Trace) -> float:
    """The time the timeline counts from: the trace's first event."""
    return float(trace.events.ts.min()) if len(trace.events) else 0.0


def timeline_tables(trace: Trace, max_rects: int = MAX_RECTS, start_ms: float | None = None,
                    end_ms: float | None = None) -> dict[str, list[dict[str, Any]]]:
    """`timeline` (rectangles: lane, category, start/end ms, busy ms, events) and `timeline_steps`, when not empty.

    Times are ms from the trace's first event; with `start_ms`/`end_ms`, only that window, cut to it.
    """
    events = trace.events
    origin = trace_origin_us(trace)
    lane, category, labels = _lanes_and_categories(trace)
    lo = origin + (start_ms or 0.0) * 1000.0
    hi = origin + end_ms * 1000.0 if end_ms is not None else float(events.end.max(initial=origin))
    starts, ends = np.maximum(events.ts, lo), np.minimum(events.end, hi)
    keep = (lane >= 0) & (ends > starts)
    rects = _rectangles(starts[keep] - origin, ends[keep] - origin, lane[keep] * len(CATEGORY_NAMES) + category[keep],
                        max(hi - lo, 1.0), max_rects)
    rows = [{"lane": labels[g // len(CATEGORY_NAMES)], "category": CATEGORY_NAMES[g % len(CATEGORY_NAMES)],
             "start_ms": s / 1000.0, "end_ms": e / 1000.0, "busy_ms": b / 1000.0, "events": n}
            for g, s, e, b, n in zip(*(column.tolist() for column in rects))]
    steps = step_mask(events) & (events.end > lo) & (events.ts < hi)
    step_rows = [{"step": events.names[code].split("#")[-1], "start_ms": (s - origin) / 1000.0,
                  "end_ms": (e - origin) / 1000.0}
                 for code, s, e in zip(events.name[steps].tolist(), events.ts[steps].tolist(),
                                       events.end[steps].tolist())]
    tables = {"timeline": rows, "timeline_steps": sorted(step_rows, key=lambda r: r["start_ms"])}
    return {name: table for name, table in tables.items() if table}


def _lanes_and_categories(trace: Trace) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per event: its lane (-1 when not drawn) and category index into `CATEGORY_NAMES`; the lane labels.

    Lanes are the GPU streams (by device and stream), then the CPU threads (by process and thread).
    """
    events = trace.events
    kinds = cat.gpu_kinds(events)
    gpu = kinds != cat.NOT_GPU
    host = cat.host_mask(events) & ~gpu
    category = np.where(gpu, kinds, _HOST_BASE + HOST_CATEGORIES.index("operator")).astype(np.int64)
    runtime = host & events.category_mask(cat.RUNTIME_CATEGORIES)
    for name, mask in (("runtime", runtime), ("launch", runtime & events.name_mask(cat.KERNEL_LAUNCH.search)),
                       ("synchronization", runtime & events.name_mask(cat.SYNCHRONIZATION.search))):
        category[mask] = _HOST_BASE + HOST_CATEGORIES.index(name)
    lane = np.full(len(events), -1, np.int64)
    labels: list[str] = []
    for mask, columns, label in ((gpu, (events.device, events.stream), lambda d, s: f"GPU {d} stream {s}"),
                                 (host, (events.pid, events.tid), lambda p, t: _thread_label(trace, p, t))):
        keys, inverse = _unique_pairs(columns[0][mask], columns[1][mask])
        lane[mask] = inverse + len(labels)
        labels += [label(a, b) for a, b in keys]
    return lane, category, labels


def _unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The distinct (a, b) pairs in sorted order and each row's index among them.

    Each column is factorized on its own and the codes combined, which is several times faster
    than `np.unique(..., axis=0)` on the stacked columns.
    """
    a_keys, a_codes = np.unique(a, return_inverse=True)
    b_keys, b_codes = np.unique(b, return_inverse=True)
    pair_keys, inverse = np.unique(a_codes.astype(np.int64) * len(b_keys) + b_codes, return_inverse=True)
    pairs = [(int(a_keys[k // len(b_keys)]), int(b_keys[k % len(b_keys)])) for k in pair_keys.tolist()]
    return pairs, inverse.reshape(-1)


def _thread_label(trace: Trace, pid: int, tid: int) -> str:
    name = trace.thread_names.get((pid, tid), "").strip()
    return f"CPU {name}" if name else f"CPU thread {tid}"


def _rectangles(starts: np.ndarray, ends: np.ndarray, group: np.ndarray, window: float,
                max_rects: int) -> tuple[np.ndarray, ...]:
    """(group, start, end, busy, events) of the merged rectangles, at most `max_rects` of them.

    Groups are laid end to end on one axis (each shifted past the previous) so that one
    vectorized pass merges every group without joining two.
    """
    if not len(starts):
        return tuple(np.zeros(0) for _ in range(5))
    low = float(starts.min())
    shift = (float(ends.max()) - low) * 2.0 + window + 1.0
    order = np.lexsort((starts, group))
    s = starts[order] - low + group[order] * shift
    e = ends[order] - low + group[order] * shift
    piece_s, piece_e = merge(s, e)
    gap = window * FIRST_GAP_FRACTION
    while True:
        first, last = _join(piece_s, piece_e, gap)
        if len(first) <= max_rects:
            break
        gap *= 2.0
    rect_s, rect_e = piece_s[first], piece_e[last]
    busy = np.add.reduceat(piece_e - piece_s, first)
    counts = np.bincount(np.searchsorted(rect_s, s, side="right") - 1, minlength=len(first))
    rect_group = np.floor(rect_s / shift).astype(np.int64)
    offset = rect_group * shift - low
    return rect_group, rect_s - offset, rect_e - offset, busy, counts


def _join(s: np.ndarray, e: np.ndarray, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of each run of sorted intervals where each starts within `gap` of the run's end."""
    reach = np.maximum.accumulate(e)
    new = np.empty(len(s), dtype=bool)
    new[:1] = True
    new[1:] = s[1:] > reach[:-1] + gap
    first = np.flatnonzero(new)
    return first, np.append(first[1:] - 1, len(s) - 1)
