"""What rules read: one trace with its metrics, and helpers to express costs per step."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.attention_cost import AttentionCost, attention_cost
from workbench.analyses.inference import Passes, find_passes, is_training
from workbench.analyses.intervals import starts_inside
from workbench.analyses.operators import kernel_launchers, launched_by
from workbench.analyses.quantized_gemms import QuantizedWeights
from workbench.analyses.stacks import StackIndex
from workbench.analyses.steps import step_mask
from workbench.inputs.analyzed import AnalyzedInput
from workbench.models.trace import Trace
from workbench.units import US_PER_MS

TRACE_KINDS = ("kineto_trace", "kineto_trace_ranks", "nsys_sqlite")  # the input kinds a TraceContext reads


@dataclass
class TraceContext:
    """One rank's trace, metrics and tables, with derived columns computed once and shared by the rules."""

    trace: Trace
    metrics: dict[str, Any]
    rank: int | None
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    quantized: QuantizedWeights | None = None  # what `inference_summary` found of quantized weights

    @property
    def events(self):
        return self.trace.events

    @cached_property
    def kinds(self) -> np.ndarray:
        return cat.gpu_kinds(self.events)

    @cached_property
    def steps(self) -> int:
        return int(self.metrics.get("step_count") or 0)

    @cached_property
    def step_spans(self) -> tuple[np.ndarray, np.ndarray]:
        mask = step_mask(self.events)
        return self.events.ts[mask], self.events.end[mask]

    @cached_property
    def base_ms(self) -> float:
        """The time costs are compared to: the mean step, else the GPU window, else the trace."""
        if self.steps:
            return float(self.metrics["step_time_ms_mean"])
        return float(self.metrics.get("gpu_window_ms") or self.metrics.get("trace_duration_ms") or 0.0)

    def per_step_ms(self, total_us: float) -> float:
        """A total over the trace, in µs, as ms per step (the whole trace when it has no steps)."""
        return total_us / US_PER_MS / max(self.steps, 1)

    def gain(self, saved_us: float, method: str) -> dict[str, Any]:
        """An `estimated_gain` for saving `saved_us` over the whole trace."""
        ms = self.per_step_ms(saved_us)
        pct = 100.0 * ms / self.base_ms if self.base_ms else 0.0
        key = "time_ms_per_step" if self.steps else "time_ms"
        return {key: round(ms, 3), "pct": round(pct, 2), "method": method}

    def in_steps(self, indexes: np.ndarray) -> np.ndarray:
        """Those of `indexes` whose event starts inside a profiler step (all of them without steps)."""
        starts, ends = self.step_spans
        if not len(starts) or not len(indexes):
            return indexes
        ts = self.events.ts[indexes]
        order = np.argsort(starts)
        pos = np.searchsorted(starts[order], ts, side="right") - 1
        inside = (pos >= 0) & (ts < ends[order][np.maximum(pos, 0)])
        return indexes[inside]

    def named(self, pattern: str | re.Pattern[str], categories: frozenset[str] | None = None) -> np.ndarray:
        """Indexes of events whose name matches `pattern` (regex search), optionally by category."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        mask = self.events.name_mask(regex.search)
        if categories is not None:
            mask &= self.events.category_mask(categories)
        return np.flatnonzero(mask)

    def within(self, outer: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Indexes of events in `mask` that start inside any of the `outer` events' spans."""
        e, candidates = self.events, np.flatnonzero(mask)
        return candidates[starts_inside(e.ts[outer], e.end[outer], e.ts[candidates])]

    @cached_property
    def launcher(self) -> tuple[np.ndarray, np.ndarray]:
        """(GPU event indexes, index of the CPU operator that launched each or MISSING)."""
        return kernel_launchers(self.events, self.kinds, self.events.category_mask(cat.HOST_OP_CATEGORIES))

    def gpu_of_ops(self, ops: np.ndarray) -> np.ndarray:
        """Indexes of the kernels, copies and sets launched by the operators `ops`."""
        return launched_by(*self.launcher, ops)

    def gpu_us_of_ops(self, ops: np.ndarray) -> float:
        """GPU time of the kernels, copies and sets launched by the operators `ops`."""
        return float(self.events.dur[self.gpu_of_ops(ops)].sum())

    def input_dims(self, index: int) -> list[Any]:
        """The recorded input shapes of event `index` (a list per input), [] when not recorded."""
        return self.dims_of_code(int(self.events.shapes[index]))

    def dims_of_code(self, code: int) -> list[Any]:
        """The input shapes stored under string `code` (parsed once), [] for MISSING or bad JSON."""
        return self.events.dims_of_code(code)

    @cached_property
    def stacks(self) -> StackIndex:
        return StackIndex(self.events)

    @cached_property
    def device(self) -> dict[str, Any]:
        return self.trace.devices[0] if self.trace.devices else {}

    @cached_property
    def passes(self) -> Passes | None:
        """The inference forward passes (analyses/inference.py); None for training or when none is found."""
        passes = find_passes(self.events)
        return passes if passes is not None and len(passes) else None

    @cached_property
    def attention_cost(self) -> AttentionCost | None:
        """Attention on a slow path (`metrics.attention_backend`): its calls, GPU and host time, a fused estimate."""
        return attention_cost(self.events, self.kinds, self.launcher, self.metrics.get("attention_backend"),
                              self.metrics.get("device_name"))

    @cached_property
    def is_training(self) -> bool:
        """Backward passes or optimizer steps in the trace."""
        return is_training(self.events)


def contexts(input_: AnalyzedInput) -> Iterator[TraceContext]:
    """A context per rank that still holds its trace and has not brought its per-trace findings along."""
    for rank in input_.ranks:
        if rank.trace is not None and rank.findings is None:
            yield TraceContext(rank.trace, rank.metrics, rank.rank, rank.tables, rank.quantized)


def on_traces(check: Callable[[TraceContext], Iterator]) -> Callable[[AnalyzedInput], Iterator]:
    """Adapt a per-trace check to the registry's per-input signature; multi-rank findings name the rank.

    The adapted check is marked `per_trace`: for the ranks of a folder (`inputs.kineto.summarize_rank`, an
    export on the rank runner), the registry runs it where the trace was read (`registry.trace_findings`) and
    takes its findings from the rank, its trace kept or not.
    """

    def run(input_: AnalyzedInput) -> Iterator:
        for ctx in contexts(input_):
            for finding in check(ctx):
                yield name_rank(finding, input_, ctx.rank)

    run.__doc__ = check.__doc__
    run.per_trace = True  # type: ignore[attr-defined]
    return run


def name_rank(finding: Any, input_: AnalyzedInput, rank: int | None) -> Any:
    """A finding of one rank of a multi-rank input, with the rank in its evidence and input."""
    if len(input_.ranks) > 1:
        finding.evidence = {"rank": rank, **finding.evidence}
        finding.input = f"{input_.path} (rank {rank})"
    return finding
