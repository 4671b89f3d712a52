"""A job's ranks on one time axis: each rank's origin, aligned on the first step they all have (else their first
collective), and its timeline tables moved onto that axis."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from workbench.analyses.collectives import Collectives
from workbench.analyses.steps import step_mask
from workbench.models.trace import Trace


def rank_origins(firsts: list[float], steps: list[dict[str, float]],
                 collectives: Sequence[Collectives]) -> tuple[list[float], str]:
    """Per rank of a job, the time that is 0 on the job's common axis, and what the ranks are aligned on.

    Ranks run on different clocks: each is aligned on the start of the first step they all have,
    else of their first collective of the kind the first rank calls first; the axis counts from
    the first rank's first event. Without either, each rank counts from its own first event.
    Read from each rank's first event time (`trace_origin_us`), `step_starts` and collectives.
    """
    anchors, label = _step_anchors(steps)
    if anchors is None:
        anchors, label = _collective_anchors(collectives)
    if anchors is None:
        return firsts, "each rank's first event"
    return [a - (anchors[0] - firsts[0]) for a in anchors], label


def step_starts(trace: Trace) -> dict[str, float]:
    """Each step's name and the start of its first occurrence."""
    events = trace.events
    steps = np.flatnonzero(step_mask(events))
    return {events.names[events.name[i]]: float(events.ts[i]) for i in steps[::-1].tolist()}


def shift_timeline(tables: dict[str, list[dict[str, Any]]], meta: dict[str, Any], by_ms: float) -> None:
    """Move a trace's timeline tables and its report window by `by_ms` (onto a job's common axis)."""
    window = meta.get("timeline_window")
    rows = [r for name in ("timeline", "timeline_events", "timeline_steps", "timeline_window") for r in tables.get(name, [])]
    for row in rows + ([window] if window else []):
        for key in ("start_ms", "end_ms", "link_start_ms"):
            if row.get(key) is not None:
                row[key] += by_ms


def _step_anchors(starts: list[dict[str, float]]) -> tuple[list[float] | None, str]:
    common = set(starts[0]).intersection(*starts[1:])
    if not common:
        return None, ""
    name = min(common, key=lambda n: starts[0][n])
    return [s[name] for s in starts], f"the start of {name}"


def _collective_anchors(calls: Sequence[Collectives]) -> tuple[list[float] | None, str]:
    timed = [c.kind[~np.isnan(c.start_us)] for c in calls]
    if not len(timed[0]):
        return None, ""
    kind = timed[0][0]
    anchors = []
    for c in calls:
        hits = np.flatnonzero((c.kind == kind) & ~np.isnan(c.start_us))
        if not len(hits):
            return None, ""
        anchors.append(float(c.start_us[hits[0]]))
    return anchors, f"the start of the first {kind}"
