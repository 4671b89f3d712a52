"""The operator table: CPU operators with self time and the GPU time of what they launched."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.models.trace import MISSING, EventTable


def self_times(ts: np.ndarray, end: np.ndarray, thread: np.ndarray) -> np.ndarray:
    """Duration minus the durations of direct children on the same thread, per interval."""
    order = np.lexsort((-(end - ts), ts, thread))
    starts, ends, threads = ts.tolist(), end.tolist(), thread.tolist()  # Python numbers: no numpy scalar per access
    child_time = [0.0] * len(starts)
    stack: list[int] = []
    current_thread = None
    for i in order.tolist():
        if threads[i] != current_thread:
            stack.clear()
            current_thread = threads[i]
        while stack and ends[stack[-1]] <= starts[i]:
            stack.pop()
        if stack:
            child_time[stack[-1]] += ends[i] - starts[i]
        stack.append(i)
    return (end - ts) - np.array(child_time)


def lookup(keys: np.ndarray, table_keys: np.ndarray, table_values: np.ndarray) -> np.ndarray:
    """table_values at the position of each key in table_keys, MISSING where absent."""
    order = np.argsort(table_keys, kind="stable")
    sorted_keys = table_keys[order]
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, max(len(sorted_keys) - 1, 0))
    if len(sorted_keys) == 0:
        return np.full(len(keys), MISSING, dtype=np.int64)
    found = (sorted_keys[pos] == keys) & (keys != MISSING)
    return np.where(found, table_values[order][pos], MISSING)


def kernel_launchers(events: EventTable, kinds: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(GPU event indexes, index of the CPU op that launched each, MISSING when unknown).

    A GPU event carries the External id of the innermost operator that launched it; old
    traces that lack it on the kernel are joined through the runtime call's correlation id.
    """
    gpu = np.flatnonzero(kinds != cat.NOT_GPU)
    external = events.external_id[gpu].copy()
    runtime = np.flatnonzero(events.category_mask(cat.RUNTIME_CATEGORIES))
    unknown = external == MISSING
    if unknown.any() and len(runtime):
        external[unknown] = lookup(
            events.correlation[gpu][unknown], events.correlation[runtime], events.external_id[runtime]
        )
    op_index = np.flatnonzero(ops)
    return gpu, lookup(external, events.external_id[op_index], op_index)


def launched_by(gpu: np.ndarray, launcher: np.ndarray, ops: np.ndarray) -> np.ndarray:
    """Those of the GPU events `gpu` whose launching operator (`kernel_launchers`) is one of `ops`."""
    return gpu[np.isin(launcher, ops) & (launcher != MISSING)]


def operator_table(events: EventTable, kinds: np.ndarray, top: int) -> list[dict[str, Any]]:
    """Operators by GPU time, then self CPU time, grouped by name."""
    ops = events.category_mask(cat.HOST_OP_CATEGORIES)
    index = np.flatnonzero(ops)
    if not len(index):
        return []
    n_names = len(events.names)
    thread = events.pid[index] * (1 << 32) + events.tid[index]
    self_us = self_times(events.ts[index], events.end[index], thread)
    codes = events.name[index]
    gpu, launcher = kernel_launchers(events, kinds, ops)
    launched = launcher != MISSING
    gpu_us = np.bincount(
        events.name[launcher[launched]], weights=events.dur[gpu][launched], minlength=n_names
    )
    count = np.bincount(codes, minlength=n_names)
    total_us = np.bincount(codes, weights=events.dur[index], minlength=n_names)
    self_sum = np.bincount(codes, weights=self_us, minlength=n_names)
    shapes = _common_shapes(codes, events.shapes[index], events.strings)
    present = np.flatnonzero(count)
    order = present[np.lexsort((-self_sum[present], -gpu_us[present]))][:top]
    return [
        {
            "name": events.names[code],
            "count": int(count[code]),
            "self_cpu_ms": float(self_sum[code]) / 1000.0,
            "cpu_total_ms": float(total_us[code]) / 1000.0,
            "gpu_ms": float(gpu_us[code]) / 1000.0,
            "input_shapes": shapes.get(int(code)),
        }
        for code in order
    ]


def _common_shapes(codes: np.ndarray, shape_codes: np.ndarray, strings: list[str]) -> dict[int, str]:
    """For each operator name code, its most frequent recorded input shapes."""
    recorded = shape_codes != MISSING
    if not recorded.any():
        return {}
    width = len(strings) + 1
    pairs = codes[recorded].astype(np.int64) * width + shape_codes[recorded]
    unique, counts = np.unique(pairs, return_counts=True)
    name_of, shape_of = unique // width, unique % width
    best: dict[int, str] = {}
    for i in np.lexsort((-counts, name_of)).tolist():
        best.setdefault(int(name_of[i]), strings[int(shape_of[i])])
    return best
