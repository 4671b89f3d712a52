"""Attention on a slow path (written by hand, SDPA's math fallback, the memory-efficient kernel on float32): its
calls and operators, their GPU and host time, and what one fused kernel per call would take at the device's peaks."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.device_peaks import device_peaks
from workbench.analyses.intervals import starts_inside, union_length
from workbench.analyses.operators import launched_by
from workbench.analyses.roofline import attention_floor_us
from workbench.models.trace import EventTable

MATMUL = re.compile(r"^aten::(matmul|bmm|baddbmm)$")
SOFTMAX = re.compile(r"^aten::softmax$")
SDPA_OUTER = re.compile(r"^aten::(scaled_dot_product_attention|_scaled_dot_product_(attention_math|efficient_attention))$")
EFFICIENT_F32 = re.compile(r"fmha_cutlassF_f32|efficient.*float>", re.IGNORECASE)
SLOW_BACKENDS = ("manual", "sdpa_math", "sdpa_mem_efficient")  # `inference.attention_backend` values
FUSED_BYTES = 2  # the fused kernels run on bf16/fp16

Call = tuple[int, int, int, int]  # (matrices, seq_q, seq_k, head_dim)


def is_shape(dims: Any) -> bool:
    """A tensor's shape: a list of ints (tensor-list inputs record nested lists)."""
    return isinstance(dims, list) and all(type(d) is int for d in dims)


def attention_ops(events: EventTable, scores: set[tuple[int, int, int]]) -> tuple[np.ndarray, int | None]:
    """Host ops that touch a [matrices, seq_q, seq_k] score tensor of `scores` or compute one (q @ k^T); and
    head_dim.

    The test runs once per distinct (op name, input shapes) pair, not once per call.
    """
    e = events
    ops = np.flatnonzero(e.category_mask(cat.HOST_OP_CATEGORIES) & (e.shapes >= 0))
    width = len(e.strings) + 1
    pairs, inverse = np.unique(e.name[ops].astype(np.int64) * width + e.shapes[ops], return_inverse=True)
    hit = np.zeros(len(pairs), dtype=bool)
    head_dim = None
    for j, pair in enumerate(pairs.tolist()):
        name, shapes = divmod(pair, width)
        tensors = [d for d in e.dims_of_code(shapes) if is_shape(d) and len(d) >= 2]
        if any((math.prod(d[:-2]), *d[-2:]) in scores for d in tensors):
            hit[j] = True
        elif len(tensors) == 2 and MATMUL.match(e.names[name]) and math.prod(tensors[0][:-2]) == \
                math.prod(tensors[1][:-2]) and (math.prod(tensors[0][:-2]), tensors[0][-2], tensors[1][-1]) in scores:
            hit[j] = True
            head_dim = tensors[0][-1]
    return ops[hit[inverse.ravel()]], head_dim


@dataclass
class AttentionCost:
    """A slow attention path's calls and cost over the whole trace (µs)."""

    calls: list[Call]
    gpu: np.ndarray  # the kernels, copies and sets its operators launched
    gpu_us: float
    fused_us: float  # one fused call each, at least the trace's median kernel or its bytes and FLOPs at the peaks
    host_us: float  # the union of its operators' host time
    operators: int  # its outermost operators
    host_saved_us: float  # host time less one fused call per attention, in proportion to the operators


def attention_cost(events: EventTable, kinds: np.ndarray, launcher: tuple[np.ndarray, np.ndarray],
                   backend: str | None, device_name: str | None) -> AttentionCost | None:
    """The cost of attention on `backend` (the trace's `attention_backend`), None on a fast path or where its calls
    are not found. `launcher`: `operators.kernel_launchers` of the trace's host operators."""
    if backend not in SLOW_BACKENDS:
        return None
    found = _sdpa_calls(events, backend) if backend != "manual" else _manual_calls(events)
    if found is None:
        return None
    calls, ops = found
    gpu = launched_by(*launcher, ops)
    kernels = np.flatnonzero(kinds == cat.COMPUTE)
    least_us = float(np.median(events.dur[kernels])) if len(kernels) else 0.0
    peak_gbps, peak_tflops = device_peaks(device_name)
    fused_us = sum(max(attention_floor_us(*call, FUSED_BYTES, peak_gbps, peak_tflops), least_us) for call in calls)
    host_us = union_length(events.ts[ops], events.end[ops])
    outer = len(_outermost(events, ops))
    return AttentionCost(calls=calls, gpu=gpu, gpu_us=float(events.dur[gpu].sum()), fused_us=fused_us,
                         host_us=host_us, operators=outer,
                         host_saved_us=host_us * max(1 - len(calls) / outer, 0.0) if outer else 0.0)


def _host_ops(events: EventTable, pattern: re.Pattern[str]) -> np.ndarray:
    return np.flatnonzero(events.name_mask(pattern.search) & events.category_mask(cat.HOST_OP_CATEGORIES))


def _manual_calls(events: EventTable) -> tuple[list[Call], np.ndarray] | None:
    """Each hand-written attention call, one per softmax on scores; the host ops on its score tensors."""
    softmax = _host_ops(events, SOFTMAX)
    shapes = [d[0] for d in map(events.dims_of_code, events.shapes[softmax].tolist())
              if d and is_shape(d[0]) and len(d[0]) >= 3]
    scores = {(math.prod(s[:-2]), s[-2], s[-1]) for s in shapes}
    ops, head_dim = attention_ops(events, scores) if scores else (np.empty(0, np.int64), None)
    if head_dim is None:
        return None
    return [(math.prod(s[:-2]), s[-2], s[-1], head_dim) for s in shapes], ops


def _sdpa_calls(events: EventTable, backend: str) -> tuple[list[Call], np.ndarray] | None:
    """SDPA calls on the math path, or on the memory-efficient kernel with float32 inputs; the host ops inside them."""
    if backend == "sdpa_mem_efficient" and not events.name_mask(EFFICIENT_F32.search).any():
        return None
    outer = _outermost(events, _host_ops(events, SDPA_OUTER))
    calls = []
    for code in events.shapes[outer].tolist():
        dims = events.dims_of_code(code)
        if len(dims) >= 2 and all(is_shape(d) and len(d) >= 3 for d in dims[:2]):
            calls.append((math.prod(dims[0][:-2]), dims[0][-2], dims[1][-2], dims[0][-1]))
    if not calls:
        return None
    host = np.flatnonzero(events.category_mask(cat.HOST_OP_CATEGORIES))
    inside = host[starts_inside(events.ts[outer], events.end[outer], events.ts[host])]
    return calls, np.union1d(outer, inside)


def _outermost(events: EventTable, ops: np.ndarray) -> np.ndarray:
    """Those of `ops` not inside another of them (on one thread)."""
    order = ops[np.argsort(events.ts[ops], kind="stable")]
    if not len(order):
        return order
    ends = np.maximum.accumulate(events.end[order])
    inside = np.append(False, events.ts[order][1:] < ends[:-1])
    return order[~inside]
