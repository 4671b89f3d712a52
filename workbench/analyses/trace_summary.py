"""All core analyses of one trace, gathered into metrics and tables."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.collectives import collective_metrics, collective_table, find_collectives
from workbench.analyses.gpu_time import gpu_time_metrics
from workbench.analyses.inference import inference_summary
from workbench.analyses.kernels import kernel_table
from workbench.analyses.launch import launch_metrics
from workbench.analyses.operators import operator_table
from workbench.analyses.quantized_gemms import QuantizedWeights, low_bit_gemm_calls
from workbench.analyses.report_window import report_window
from workbench.analyses.steps import step_metrics
from workbench.analyses.timeline import timeline_lanes, timeline_tables
from workbench.analyses.trace_memory import trace_memory_curve, trace_memory_metrics
from workbench.models.trace import Trace

PROFILER_SETTINGS = ("record_shapes", "profile_memory", "with_stack", "with_flops", "with_modules")


@dataclass
class TraceSummary:
    """Metrics (flat, snake_case, units in the names), tables and facts about one trace."""

    metrics: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # about the trace's content (its path is added by the input)
    quantized: QuantizedWeights | None = None  # for the rules (`inference_summary`, `low_bit_gemm_calls`), not the report


def summarize_trace(trace: Trace, top: int = 50) -> TraceSummary:
    events = trace.events
    kinds = cat.gpu_kinds(events)
    steps = step_metrics(events)
    metrics: dict[str, Any] = {
        "event_count": len(events) + len(trace.memory) + trace.other_events,
        "events_skipped": trace.skipped_events,
        **({"event_arrays_ignored": trace.ignored_event_arrays} if trace.ignored_event_arrays else {}),
        "trace_duration_ms": float(events.end.max() - events.ts.min()) / 1000.0 if len(events) else 0.0,
    }
    metrics.update(gpu_time_metrics(trace, kinds))
    metrics.update(steps)
    metrics.update(launch_metrics(events, kinds, steps["step_count"]))
    metrics.update(_copy_metrics(trace, kinds))
    collectives = find_collectives(trace, kinds)
    metrics.update(collective_metrics(collectives, metrics))
    tables = {
        "kernels": kernel_table(events, kinds, top),
        "operators": operator_table(events, kinds, top),
    }
    if len(collectives):
        tables["collectives"] = collective_table(collectives)
    metrics.update(trace_memory_metrics(trace.memory))
    curve = trace_memory_curve(trace.memory)
    if curve:
        tables["memory_curve"] = curve
    inference, steps_table, warnings, quantized = inference_summary(trace, kinds)
    metrics.update(inference)
    gemms = low_bit_gemm_calls(events, kinds)  # training traces too (fp8 training)
    if gemms:
        quantized = replace(quantized or QuantizedWeights([], []), gemms=gemms)
    if steps_table:
        tables["inference_steps"] = steps_table
    lanes = timeline_lanes(trace, kinds)  # computed once for the zoomed-out timeline and the report's window
    tables.update(timeline_tables(trace, lanes=lanes))
    meta = trace_meta(trace)
    window = report_window(trace, lanes=lanes)
    if window:
        meta["timeline_window"], tables["timeline_window"] = window
    return TraceSummary(metrics=metrics, tables=tables, meta=meta, warnings=_left_out(trace) + warnings,
                        quantized=quantized)


def _left_out(trace: Trace) -> list[str]:
    """What the loader did not read: malformed events (and what was wrong with one), further event arrays."""
    example = f", e.g. {trace.skipped_example}" if trace.skipped_example else ""
    return ([f"{trace.skipped_events} malformed event(s) skipped{example}"] if trace.skipped_events else []) + (
        [f"{trace.ignored_event_arrays} more top-level 'traceEvents' array(s) after the first, not read"]
        if trace.ignored_event_arrays else [])


def _copy_metrics(trace: Trace, kinds: np.ndarray) -> dict[str, Any]:
    events = trace.events
    copies = kinds == cat.MEMCPY
    sets = kinds == cat.MEMSET
    return {
        "memcpy_count": int(copies.sum()),
        "memcpy_ms": float(events.dur[copies].sum()) / 1000.0,
        "memset_count": int(sets.sum()),
        "memset_ms": float(events.dur[sets].sum()) / 1000.0,
    }


def trace_meta(trace: Trace) -> dict[str, Any]:
    """What the trace says about itself: rank, devices, versions, profiler settings."""
    info = trace.distributed
    meta: dict[str, Any] = {
        "rank": trace.rank,
        "world_size": info.get("world_size"),
        "backend": info.get("backend"),
        "devices": [
            {k: d.get(k) for k in ("id", "name", "totalGlobalMem", "computeMajor", "computeMinor", "numSms")}
            for d in trace.devices
        ],
        "schema_version": trace.metadata.get("schemaVersion"),
        "profiler": {k: bool(trace.metadata[k]) for k in PROFILER_SETTINGS if k in trace.metadata},
    }
    return meta
