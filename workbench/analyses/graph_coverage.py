"""How much of an inference run's GPU time its CUDA/HIP graph replays cover.

Between the first and the last kernel a graph replay ran, GPU time is either a replayed kernel, an eager
kernel or copy launched one by one (input updates between decode replays; attention between vLLM's
piecewise graph pieces), or idle. Idle time next to eager work or between two replays is the graph
boundary's cost: one graph over the whole step would not have it. Idle time inside a replay is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.inference import Passes, graph_launches
from workbench.analyses.operators import lookup
from workbench.models.trace import MISSING, EventTable

# the attention op vLLM runs eagerly between piecewise graph pieces: its query holds the tokens the graphs ran
VLLM_ATTENTION = re.compile(r"^vllm::unified_attention")


@dataclass
class GraphCoverage:
    """GPU time of the replayed kernels, of the eager GPU work among them and of the idle at graph boundaries."""

    replays: int
    graph_us: float
    eager_us: float
    boundary_idle_us: float
    eager: np.ndarray  # GPU event indexes of the eager work between the first and last replayed kernel

    @property
    def coverage_pct(self) -> float:
        total = self.graph_us + self.eager_us + self.boundary_idle_us
        return 100.0 * self.graph_us / total if total else 0.0


def graph_coverage(events: EventTable, kinds: np.ndarray) -> GraphCoverage | None:
    """Graph coverage of the GPU between the first and the last replayed kernel; None without replays."""
    launches = graph_launches(events)
    gpu = np.flatnonzero(kinds != cat.NOT_GPU)
    replay = lookup(events.correlation[gpu], events.correlation[launches], np.arange(len(launches)))
    replayed = replay != MISSING
    if not len(launches) or not replayed.any():
        return None
    start, end = float(events.ts[gpu[replayed]].min()), float(events.end[gpu[replayed]].max())
    inside = (events.ts[gpu] >= start) & (events.end[gpu] <= end)
    order = np.argsort(events.ts[gpu[inside]], kind="stable")
    window, replay = gpu[inside][order], replay[inside][order]
    reach = np.maximum.accumulate(events.end[window])  # busy until here, so far
    idle = np.maximum(events.ts[window][1:] - reach[:-1], 0.0)
    boundary = (replay[1:] != replay[:-1]) | (replay[1:] == MISSING) | (replay[:-1] == MISSING)
    eager = window[replay == MISSING]
    return GraphCoverage(replays=len(launches), graph_us=float(events.dur[window[replay != MISSING]].sum()),
                         eager_us=float(events.dur[eager].sum()), boundary_idle_us=float(idle[boundary].sum()),
                         eager=eager)


def graph_tokens(events: EventTable, passes: Passes, k: int) -> int | None:
    """The tokens vLLM's graphs ran in engine step `k`: the query rows of its eager attention (the batch padded
    to a captured size), None where the step has none."""
    ops = np.flatnonzero(events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(VLLM_ATTENTION.match)
                         & (events.ts >= passes.start_us[k]) & (events.ts < passes.end_us[k]))
    for i in ops.tolist():
        dims = events.dims_of_code(int(events.shapes[i]))
        if dims and isinstance(dims[0], list) and dims[0] and type(dims[0][0]) is int:
            return int(dims[0][0])
    return None
