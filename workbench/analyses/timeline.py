"""A bounded timeline of a trace: per lane (GPU stream, CPU thread), what it was busy with.

Two levels of detail, both bounded whatever the size of the trace:

- `timeline` (zoomed out): the window is cut into pixel columns; per lane and column, the busy
  time of each category (unions, so nested host events count once). A column takes the category
  that holds most of its busy time, so a minority is never painted over the majority; runs of
  columns of one lane with the same category and a similar busy share are one rectangle, which
  keeps its busy time, the dominant category's share of it, its event count and its longest
  event's name. Columns are halved until at most `max_rects` rectangles remain.
- `timeline_events` (zoomed in, a window with at most `max_events` events to draw): each event is
  its own rectangle with its name, duration, input shapes and nesting row, and a kernel and the
  runtime call that launched it are linked by their correlation id. When host operators nested
  deep do not fit, the deepest levels (and the shortest of the last level drawn) are left out;
  when the GPU events and runtime calls alone do not fit, the window is drawn zoomed out.

The report's own zoomed-in window is `report_window.py`'s; a job's ranks on one axis, `rank_alignment.py`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.intervals import merge
from workbench.analyses.steps import step_mask
from workbench.models.trace import MISSING, Trace

MAX_RECTS = 2000
COLUMNS = 1200  # pixel columns of a wide chart
MAX_EVENTS = 4000  # a zoomed-in window draws at most this many events one by one (a step of a GPT-2 training)
MAX_DEPTH = 12  # host events nested deeper share the last row
SHARE_LEVELS = 4  # a rectangle's columns have busy shares in the same quarter
HOST_CATEGORIES = ("operator", "launch", "synchronization", "runtime")
CATEGORY_NAMES = [*cat.GPU_KIND_NAMES.values(), *HOST_CATEGORIES]
HOST_BASE = len(cat.GPU_KIND_NAMES)
RUNTIME_CODES = [HOST_BASE + HOST_CATEGORIES.index(c) for c in ("launch", "synchronization", "runtime")]
Lanes = tuple[np.ndarray, np.ndarray, list[str]]  # per event its lane and category, the lane labels (`timeline_lanes`)


def trace_origin_us(trace: Trace) -> float:
    """The time the timeline counts from: the trace's first event."""
    return float(trace.events.ts.min()) if len(trace.events) else 0.0


def timeline_tables(trace: Trace, start_ms: float | None = None, end_ms: float | None = None,
                    origin_us: float | None = None, max_rects: int = MAX_RECTS,
                    max_events: int = 0, lanes: Lanes | None = None) -> dict[str, list[dict[str, Any]]]:
    """`timeline` (zoomed out) or `timeline_events` (zoomed in), and `timeline_steps`, when not empty.

    Times are ms from `origin_us` (the trace's first event by default); with `start_ms`/`end_ms`,
    only that window, cut to it. Events are drawn one by one when at most `max_events` are to be drawn.
    `lanes`: the trace's `timeline_lanes`, where the caller has them.
    """
    events = trace.events
    origin = trace_origin_us(trace) if origin_us is None else origin_us
    first = trace_origin_us(trace)
    lane, category, labels = lanes or timeline_lanes(trace)
    lo = origin + start_ms * 1000.0 if start_ms is not None else first
    hi = origin + end_ms * 1000.0 if end_ms is not None else float(events.end.max(initial=first))
    starts, ends = np.maximum(events.ts, lo), np.minimum(events.end, hi)
    keep = np.flatnonzero((lane >= 0) & (ends > starts))
    tables: dict[str, list[dict[str, Any]]] = {}
    chosen = _drawable(events.ts[keep], events.end[keep], lane[keep], category[keep], max_events)
    if chosen is not None:
        tables["timeline_events"] = _event_rows(trace, lane, category, labels, keep[chosen[0]], chosen[1],
                                                starts, ends, origin)
    elif len(keep):
        tables["timeline"] = _column_rows(trace, keep, lane, category, labels, starts, ends, lo, hi, origin,
                                          max_rects)
    steps = step_mask(events) & (events.end > lo) & (events.ts < hi)
    tables["timeline_steps"] = sorted(
        ({"step": events.names[code].split("#")[-1], "start_ms": (s - origin) / 1000.0, "end_ms": (e - origin) / 1000.0}
         for code, s, e in zip(events.name[steps].tolist(), events.ts[steps].tolist(), events.end[steps].tolist())),
        key=lambda r: r["start_ms"])
    return {name: table for name, table in tables.items() if table}


def timeline_lanes(trace: Trace, kinds: np.ndarray | None = None) -> Lanes:
    """Per event: its lane (-1 when not drawn) and category index into `CATEGORY_NAMES`; the lane labels.

    Lanes are the GPU streams (by device and stream), then the CPU threads (by process and thread).
    `kinds`: the events' `categories.gpu_kinds`, where the caller has them.
    """
    events = trace.events
    kinds = cat.gpu_kinds(events) if kinds is None else kinds
    gpu = kinds != cat.NOT_GPU
    host = cat.host_mask(events) & ~gpu
    category = np.where(gpu, kinds, HOST_BASE + HOST_CATEGORIES.index("operator")).astype(np.int64)
    runtime = host & events.category_mask(cat.RUNTIME_CATEGORIES)
    for name, mask in (("runtime", runtime), ("launch", runtime & events.name_mask(cat.KERNEL_LAUNCH.search)),
                       ("synchronization", runtime & events.name_mask(cat.SYNCHRONIZATION.search))):
        category[mask] = HOST_BASE + HOST_CATEGORIES.index(name)
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


def _depths(starts: np.ndarray, ends: np.ndarray, lane: np.ndarray) -> np.ndarray:
    """Per interval, how many earlier intervals of its lane are still open at its start (its nesting depth)."""
    if not len(starts):
        return np.zeros(0, np.int64)
    low = float(starts.min())
    shift = float(ends.max()) - low + 1.0
    s, e = starts - low + lane * shift, ends - low + lane * shift
    order = np.lexsort((-e, s))
    closed = np.searchsorted(np.sort(e), s[order], side="right")
    depth = np.empty(len(s), np.int64)
    depth[order] = np.arange(len(s)) - closed
    return depth


def _drawable(starts: np.ndarray, ends: np.ndarray, lane: np.ndarray, category: np.ndarray,
              max_events: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(indices, depths) of the events to draw one by one, or None when the window is drawn zoomed out.

    Every GPU event and runtime call (launches, syncs) is drawn; host operators by nesting level, as many
    levels as fit in `max_events`, then the longest of the next level.
    """
    if not max_events or not len(starts):
        return None
    depth = _depths(starts, ends, lane)
    if len(starts) <= max_events:
        return np.arange(len(starts)), depth
    linked = (category < HOST_BASE) | np.isin(category, RUNTIME_CODES)
    room = max_events - int(linked.sum())
    per_level = np.cumsum(np.bincount(depth[~linked], minlength=1))
    levels = int(np.searchsorted(per_level, room, side="right"))
    if room < 0:
        return None
    chosen = linked | (depth < levels)
    # of the first level that does not fit whole, its longest events, as many as fit
    partial = np.flatnonzero(~linked & (depth == levels))
    spare = room - (int(per_level[levels - 1]) if levels else 0)
    chosen[partial[np.argsort(-(ends[partial] - starts[partial]), kind="stable")[:spare]]] = True
    chosen = np.flatnonzero(chosen)
    return chosen, depth[chosen]


def _event_rows(trace: Trace, lane: np.ndarray, category: np.ndarray, labels: list[str], chosen: np.ndarray,
                depth: np.ndarray, starts: np.ndarray, ends: np.ndarray, origin: float) -> list[dict[str, Any]]:
    """The chosen events (indices into the trace) as rows, each with the launch or kernel it is linked to."""
    events = trace.events
    order = np.lexsort((starts[chosen], lane[chosen]))
    chosen, depth = chosen[order], depth[order]
    partner = _partners(events, lane, category, chosen)
    position = {int(i): p for p, i in enumerate(chosen.tolist())}
    rows = []
    for index, row_depth, other in zip(chosen.tolist(), depth.tolist(), partner.tolist()):
        shapes = int(events.shapes[index])
        row: dict[str, Any] = {
            "lane": labels[lane[index]], "row": min(row_depth, MAX_DEPTH), "category": CATEGORY_NAMES[category[index]],
            "name": events.names[events.name[index]], "start_ms": float(starts[index] - origin) / 1000.0,
            "end_ms": float(ends[index] - origin) / 1000.0, "dur_ms": float(events.dur[index]) / 1000.0,
            "shapes": events.strings[shapes] if shapes != MISSING else None,
            "correlation": int(events.correlation[index]) if events.correlation[index] != MISSING else None,
            "link": None, "link_name": None, "link_start_ms": None}
        if other >= 0:
            row.update(link=position.get(other), link_name=events.names[events.name[other]],
                       link_start_ms=(float(events.ts[other]) - origin) / 1000.0)
        rows.append(row)
    return rows


def _partners(events: Any, lane: np.ndarray, category: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Per chosen event, the event on the other side of its launch (kernel <-> runtime call), or -1."""
    linked = (lane >= 0) & (events.correlation != MISSING)
    gpu = np.flatnonzero(linked & (category < HOST_BASE))
    runtime = np.flatnonzero(linked & np.isin(category, RUNTIME_CODES))
    out = np.full(len(chosen), -1, np.int64)
    for side, others in ((category[chosen] < HOST_BASE, runtime), (np.isin(category[chosen], RUNTIME_CODES), gpu)):
        if not len(others):
            continue
        keys = events.correlation[others]
        order = np.argsort(keys, kind="stable")
        wanted = events.correlation[chosen[side]]
        at = np.minimum(np.searchsorted(keys[order], wanted), len(order) - 1)
        found = keys[order][at] == wanted
        out[np.flatnonzero(side)[found]] = others[order[at[found]]]
    return out


def _coverage(starts: np.ndarray, ends: np.ndarray, group: np.ndarray, groups: np.ndarray, edges: np.ndarray,
              shift: float) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Busy time (of the union of each group's intervals) between consecutive `edges`, per group in `groups`.

    Groups are laid end to end on one axis, each `shift` past the previous, so that one
    vectorized pass covers all of them; the merged pieces (on that axis) come back too.
    """
    piece_s, piece_e = merge(starts + group * shift, ends + group * shift)
    before = np.concatenate([[0.0], np.cumsum(piece_e - piece_s)])
    x = groups[:, None] * shift + edges[None, :]
    at = np.searchsorted(piece_s, x, side="right") - 1
    safe = np.maximum(at, 0)
    covered = np.where(at >= 0, before[safe] + np.clip(x - piece_s[safe], 0.0, piece_e[safe] - piece_s[safe]), 0.0)
    return np.diff(covered, axis=1), (piece_s, piece_e)


def _column_rows(trace: Trace, keep: np.ndarray, lane: np.ndarray, category: np.ndarray, labels: list[str],
                 starts: np.ndarray, ends: np.ndarray, lo: float, hi: float, origin: float,
                 max_rects: int) -> list[dict[str, Any]]:
    """The zoomed-out rectangles: runs of pixel columns of one lane with the same dominant category."""
    events = trace.events
    s, e, lanes, cats = starts[keep] - lo, ends[keep] - lo, lane[keep], category[keep]
    span = hi - lo
    shift = span + 1.0
    n_cats = len(CATEGORY_NAMES)
    lane_ids = np.unique(lanes)
    groups = np.unique(lanes * n_cats + cats)
    columns = COLUMNS
    while True:
        edges = np.linspace(0.0, span, columns + 1)
        by_group, _ = _coverage(s, e, lanes * n_cats + cats, groups, edges, shift)
        busy, (piece_s, piece_e) = _coverage(s, e, lanes, lane_ids, edges, shift)
        per_cat = np.zeros((len(lane_ids), n_cats, columns))
        per_cat[np.searchsorted(lane_ids, groups // n_cats), groups % n_cats] = by_group
        dominant = per_cat.argmax(axis=1)
        level = np.ceil(busy / np.diff(edges)[None, :] * SHARE_LEVELS - 1e-9).astype(np.int64)
        key = np.where(busy > 0, dominant * (SHARE_LEVELS + 1) + level, -1)
        new = np.ones(key.shape, dtype=bool)
        new[:, 1:] = key[:, 1:] != key[:, :-1]
        first_lane, first_col = np.nonzero(new & (key >= 0))
        if len(first_lane) <= max_rects or columns <= 1:
            break
        columns //= 2
    drawn = key >= 0
    run = np.cumsum(new & drawn).reshape(key.shape) - 1  # run index of each drawn column (row-major)
    run_of = run[drawn]
    n = len(first_lane)
    total = np.bincount(run_of, weights=busy[drawn], minlength=n)
    dom = dominant[first_lane, first_col]
    dom_busy = np.bincount(run_of, weights=per_cat[np.nonzero(drawn)[0], dominant[drawn], np.nonzero(drawn)[1]],
                           minlength=n)
    last_col = np.zeros(n, np.int64)
    np.maximum.at(last_col, run_of, np.nonzero(drawn)[1])
    run_lane = lane_ids[first_lane]
    # the rectangle spans its busy time: from the first busy instant after its first column's edge
    # to the last one before its last column's edge
    left = run_lane * shift + edges[first_col]
    right = run_lane * shift + edges[last_col + 1]
    after = np.minimum(np.searchsorted(piece_e, left, side="right"), len(piece_s) - 1)
    before = np.maximum(np.searchsorted(piece_s, right, side="left") - 1, 0)
    rect_s = np.maximum(piece_s[after], left) - run_lane * shift
    rect_e = np.minimum(piece_e[before], right) - run_lane * shift
    # each event counts in the rectangle its start falls in; the longest names the rectangle
    owner = np.searchsorted(left, lanes * shift + s, side="right") - 1
    counts = np.bincount(owner, minlength=n)
    dur = events.dur[keep]
    by_owner = np.lexsort((dur, owner))
    last_of = np.flatnonzero(np.append(owner[by_owner][1:] != owner[by_owner][:-1], True))
    longest = np.full(n, -1, np.int64)
    longest[owner[by_owner][last_of]] = keep[by_owner[last_of]]
    offset = (lo - origin) / 1000.0
    return [{"lane": labels[ln], "category": CATEGORY_NAMES[c], "start_ms": a / 1000.0 + offset,
             "end_ms": b / 1000.0 + offset, "busy_ms": t / 1000.0, "share_pct": min(100.0 * d / t, 100.0) if t else 0.0,
             "events": k, "longest": events.names[events.name[i]] if i >= 0 else None,
             "longest_ms": float(events.dur[i]) / 1000.0 if i >= 0 else None}
            for ln, c, a, b, t, d, k, i in zip(run_lane.tolist(), dom.tolist(), rect_s.tolist(), rect_e.tolist(),
                                               total.tolist(), dom_busy.tolist(), counts.tolist(), longest.tolist())]
