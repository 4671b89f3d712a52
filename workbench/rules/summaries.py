"""Evidence building blocks shared by the rules: kernel and operator rows of a set of events, call stacks."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from workbench.models.trace import MISSING
from workbench.rules.context import TraceContext

STACK_FRAMES = 6


def kernel_rows(ctx: TraceContext, indexes: np.ndarray, limit: int = 5) -> list[dict[str, Any]]:
    """The kernels among `indexes`, grouped by name, by total time per step."""
    e = ctx.events
    totals: Counter[int] = Counter()
    counts: Counter[int] = Counter()
    for code, dur in zip(e.name[indexes].tolist(), e.dur[indexes].tolist()):
        totals[code] += dur
        counts[code] += 1
    return [
        {"name": e.names[code], "count": counts[code], "ms_per_step": round(ctx.per_step_ms(total), 3)}
        for code, total in totals.most_common(limit)
    ]


def launching_ops(ctx: TraceContext, gpu_indexes: np.ndarray, limit: int = 5) -> list[dict[str, Any]]:
    """The operators that launched the GPU events `gpu_indexes`, with their most common input shapes."""
    gpu, launcher = ctx.launcher
    ops = launcher[np.isin(gpu, gpu_indexes) & (launcher != MISSING)]
    if not len(ops):
        return []
    e = ctx.events
    by_name: dict[int, Counter[str]] = {}
    for op in ops.tolist():
        shapes = e.strings[e.shapes[op]] if e.shapes[op] != MISSING else ""
        by_name.setdefault(int(e.name[op]), Counter())[shapes] += 1
    ranked = sorted(by_name.items(), key=lambda item: -sum(item[1].values()))[:limit]
    return [
        {"op": e.names[code], "kernels": sum(shapes.values()), "input_shapes": shapes.most_common(1)[0][0] or None}
        for code, shapes in ranked
    ]


def native_stack(ctx: TraceContext, index: int) -> list[str]:
    """The call stack nsys recorded for host event `index` (innermost first), [] when none."""
    return ctx.trace.metadata.get("callstacks", {}).get(int(index), [])[:STACK_FRAMES]
