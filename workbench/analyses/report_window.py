"""The report's own zoomed-in window (`timeline_window`), for the views that cannot ask for one (the HTML report,
nbconvert): the step of median duration (else the start of the GPU work), cut short where more than
`WINDOW_EVENTS` events would be drawn, names cut to `WINDOW_NAME_CHARS` and the rows' JSON to `WINDOW_BYTES`.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from workbench.analyses.steps import step_mask
from workbench.analyses.timeline import (HOST_BASE, RUNTIME_CODES, Lanes, timeline_lanes, timeline_tables,
                                         trace_origin_us)
from workbench.models.trace import Trace
from workbench.units import shorten

WINDOW_EVENTS = 2000  # the report's window draws at most this many events ...
WINDOW_LINKED = 0.75  # ... of which at most this share kernels and runtime calls (the rest operators)
WINDOW_NAME_CHARS = 96  # its names and shapes cut in the middle to this length (hover labels show 90)
WINDOW_BYTES = 384 << 10  # and its rows at most this many bytes of compact JSON (fewer events until they fit)
MIN_WINDOW_EVENTS = 100


def report_window(trace: Trace, max_events: int = WINDOW_EVENTS, max_bytes: int = WINDOW_BYTES,
                  lanes: Lanes | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The window the report shows zoomed in (its description, and its `timeline_events` rows), or None.

    The step of median duration, else from the first GPU event (the first event without one), cut short
    where more than `max_events * WINDOW_LINKED` kernels and runtime calls would be drawn; fewer events
    (in proportion to the excess) until the rows fit in `max_bytes`. Times are ms from the trace's first event, like `timeline`.
    """
    events = trace.events
    if not len(events):
        return None
    origin = trace_origin_us(trace)
    lanes = lanes or timeline_lanes(trace)
    lane, category, _ = lanes
    steps = np.flatnonzero(step_mask(events))
    if len(steps):
        step = steps[np.argsort(events.dur[steps], kind="stable")[(len(steps) - 1) // 2]]
        lo, hi = float(events.ts[step]), float(events.end[step])
        label = f"{events.names[events.name[step]]}, the step of median duration"
    else:
        gpu = category < HOST_BASE
        lo = float(events.ts[gpu].min()) if gpu.any() else origin
        hi, label = float(events.end.max()), "from the first GPU event" if gpu.any() else "from the first event"
    while True:
        end = _window_end(events, lane, category, lo, hi, int(max_events * WINDOW_LINKED))
        rows = timeline_tables(trace, (lo - origin) / 1000.0, (end - origin) / 1000.0, max_events=max_events,
                               lanes=lanes).get("timeline_events", [])
        for row in rows:  # as the report writes them: names cut, times to 0.1 µs
            row.update({key: shorten(row[key], WINDOW_NAME_CHARS) for key in ("name", "shapes", "link_name")
                        if row[key] is not None})
            row.update({key: round(row[key], 4) for key in ("start_ms", "end_ms", "dur_ms", "link_start_ms")
                        if row[key] is not None})
        size = len(msgspec.json.encode(rows))
        if size <= max_bytes or max_events <= MIN_WINDOW_EVENTS:
            break
        max_events = max(min(int(max_events * max_bytes / size * 0.95), max_events - 1), MIN_WINDOW_EVENTS)
    if not rows:
        return None
    window = {"label": label + (" (its first part)" if end < hi and len(steps) else ""), "start_ms": (lo - origin) / 1000.0,
              "end_ms": (end - origin) / 1000.0, "events": len(rows)}
    return window, rows


def _window_end(events: Any, lane: np.ndarray, category: np.ndarray, lo: float, hi: float, linked: int) -> float:
    """`hi`, or earlier: the start of the first kernel or runtime call past the `linked` first ones from `lo`."""
    drawn = (lane >= 0) & (events.end > lo) & (events.ts < hi) & (
        (category < HOST_BASE) | np.isin(category, RUNTIME_CODES))
    starts = np.sort(np.maximum(events.ts[drawn], lo))
    return float(starts[linked]) if len(starts) > linked and starts[linked] > lo else hi
