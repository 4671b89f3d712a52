"""Quantized weights in an inference trace: the fused low-bit GEMMs that ran, and weights dequantized to
a float tensor before a dense GEMM (quantized storage that saves memory but no bandwidth).

A dequantize + dense GEMM pair, on one thread in time order: a conversion (`aten::to`, `aten::_to_copy`)
of a weight-sized tensor scaled by a smaller one (`aten::mul`: per-channel or per-group scales), or an
operator named for dequantizing (`aten::dequantize`, `dequantize_affine`, `dequantize_per_channel`,
bitsandbytes' `dequantize_4bit`), then a GEMM whose weight has as many elements (twice as many for int4
packed two to a byte). A float weight cast alone (autocast) has no scale and is not a pair.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.decode_bytes import DTYPE_BYTES, LOW_BIT_OPS
from workbench.analyses.operators import kernel_launchers
from workbench.models.trace import MISSING, EventTable
from workbench.units import US_PER_MS

# (family, operator or kernel name pattern), first match wins
FUSED = tuple((family, re.compile(pattern, re.IGNORECASE)) for family, pattern in (
    ("marlin", r"marlin"),
    ("machete", r"machete"),
    ("tinygemm_int4", r"_weight_int4pack_mm|tinygemm"),
    ("int8_weight_only", r"_weight_int8pack_mm"),
    ("cutlass_scaled_mm", r"cutlass_scaled_mm|cutlass\w*scaled_mm"),
    ("fp8_scaled_mm", r"^aten::_scaled_mm|(gemm|xmma|nvjet|cutlass)\w*(e4m3|e5m2)|(e4m3|e5m2)\w*(gemm|xmma)"),
    ("int8_int_mm", r"^aten::_int_mm$"),
    ("fbgemm_qlinear", r"^quantized::linear|fbgemm"),
    ("bitsandbytes_4bit", r"gemm_4bit_inference"),
    ("gptq_awq", r"gptq_gemm|awq_gemm|exllama|gemm_half_q_half"),
))
DEQUANTIZE_OP = re.compile(r"dequantize|dequant_", re.IGNORECASE)
CONVERT = frozenset({"aten::to", "aten::_to_copy"})
SCALE = frozenset({"aten::mul", "aten::mul_"})
GEMM_WEIGHT = {"aten::linear": 1, "aten::addmm": 2, "aten::mm": 1, "aten::matmul": 1}  # op -> its weight input


@dataclass
class QuantizedWeights:
    """What `quantized_weights` found: the fused low-bit GEMMs that ran and the dequantize + dense GEMM pairs, and
    `low_bit_gemm_calls` the GEMM calls of a trace that ran weight-only or fp8 GEMMs (event indexes: for the rules
    while the trace is kept, not for the report)."""

    fused: list[dict[str, Any]]
    pairs: list[dict[str, Any]]
    gemms: list[dict[str, Any]] = field(default_factory=list)


def quantized_weights(events: EventTable, kinds: np.ndarray) -> QuantizedWeights:
    """The fused low-bit GEMMs (`fused_gemms`) and the dequantize + dense GEMM pairs (`dequantize_pairs`)."""
    return QuantizedWeights(fused_gemms(events, kinds), dequantize_pairs(events))


def fused_gemms(events: EventTable, kinds: np.ndarray) -> list[dict[str, Any]]:
    """The fused low-bit GEMMs that ran, by family: calls and time (GPU kernels, else host operators)."""
    kernels = kinds == cat.COMPUTE
    ops = events.category_mask(cat.HOST_OP_CATEGORIES)
    rows = []
    for family, pattern in FUSED:
        named = events.name_mask(pattern.search)
        found = np.flatnonzero(named & kernels)
        where = "kernel"
        if not len(found):
            found, where = np.flatnonzero(named & ops), "operator"
        if len(found):
            time = np.bincount(events.name[found], weights=events.dur[found], minlength=len(events.names))
            rows.append({"family": family, "name": events.names[int(np.argmax(time))], "where": where,
                         "calls": int(len(found)), "time_ms": round(float(events.dur[found].sum()) / US_PER_MS, 4)})
    return sorted(rows, key=lambda r: -r["time_ms"])


def dequantize_pairs(events: EventTable) -> list[dict[str, Any]]:
    """Each dequantize + dense GEMM pair: the GEMM's index and weight shape, the dequantizing operators'
    indexes; in time order."""
    wanted = set(CONVERT) | set(SCALE) | set(GEMM_WEIGHT)
    ops = np.flatnonzero(events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(
        lambda n: n in wanted or bool(DEQUANTIZE_OP.search(n))))
    ops = ops[np.argsort(events.ts[ops], kind="stable")]
    pending: dict[tuple[int, int], dict[str, Any]] = {}  # per thread: a weight being dequantized
    pairs = []
    names = events.names
    for i in ops.tolist():
        thread = (int(events.pid[i]), int(events.tid[i]))
        name = names[events.name[i]]
        dims = events.dims_of_code(int(events.shapes[i]))
        first = _elements(dims[0]) if dims else 0
        state = pending.get(thread)
        if state is not None and events.ts[i] < state["end"]:
            continue  # inside the dequantizing operator (its own copies and multiplies)
        if name in CONVERT and first and len(dims[0]) >= 2:
            pending[thread] = {"elements": first, "ops": [i], "scaled": False, "end": events.end[i]}
        elif DEQUANTIZE_OP.search(name) and first:
            pending[thread] = {"elements": first, "ops": [i], "scaled": True, "end": events.end[i]}
        elif name in SCALE and state is not None and first == state["elements"] and len(dims) > 1 \
                and isinstance(dims[1], list) and _elements(dims[1], empty=1) < first:
            state.update(scaled=True, end=events.end[i])
            state["ops"].append(i)
        elif name in GEMM_WEIGHT and state is not None:
            weight = dims[GEMM_WEIGHT[name]] if len(dims) > GEMM_WEIGHT[name] else None
            if state["scaled"] and isinstance(weight, list) and _elements(weight) in (
                    state["elements"], 2 * state["elements"]):
                pairs.append({"gemm": i, "weight_shape": weight, "dequantize": state["ops"]})
            pending.pop(thread, None)
    return pairs


def _elements(dims: Any, empty: int = 0) -> int:
    """Elements of a shape ([] a scalar: `empty`), 0 when not a list of ints."""
    if not isinstance(dims, list) or not all(type(d) is int for d in dims):
        return 0
    return math.prod(dims) if dims else empty


# Low-bit GEMMs that did not pay: weight-only kernels at large M, fp8 GEMMs no faster than 16-bit ones.
WEIGHT_ONLY = {name: spec for name, spec in LOW_BIT_OPS.items() if "_weight_int" in name}
DENSE_OPS = {"aten::mm": 0, "aten::addmm": 1, "aten::linear": 0, "aten::matmul": 0}  # op -> its activation input
# fp8 GEMM operators -> their activation input ([M, K], the weight [K, N] after it): vLLM's cutlass_scaled_mm(out, a, b, ...)
FP8_OPS = {"aten::_scaled_mm": 0, "_C::cutlass_scaled_mm": 1}
SIXTEEN_BIT_KERNEL = DTYPE_BYTES[2][0]
FP8_KERNEL = DTYPE_BYTES[0][0]
# the operators torchao's float8 dynamic scaling (and vLLM's fp8 quantization) run before each scaled_mm: an absolute
# maximum, a scale from it, the cast; a run of them right before the GEMM on its thread counts, from its first amax
CAST_OP = re.compile(r"^aten::(abs|amax|max|maximum|clamp|clamp_|clamp_min|reciprocal|div|mul|to|_to_copy|copy_)$|"
                     r"fp8_quant|quant_fp8|quantize_fp8|float8|to_fp8|scaled_fp8|amax", re.IGNORECASE)
AMAX_OP = re.compile(r"^aten::(abs|amax|max)$|fp8_quant|quant_fp8|quantize_fp8|float8|to_fp8|scaled_fp8|amax",
                     re.IGNORECASE)


def gemm_shape(name: str, dims: list[Any]) -> tuple[int, int, int] | None:
    """(M, N, K) of a dense, scaled (fp8) or weight-only GEMM operator from its input shapes; None unknown.
    M counts every row of the activation (tokens in the pass); a weight-only op's N from its packed weight."""
    at = 0 if name in WEIGHT_ONLY else FP8_OPS[name] if name in FP8_OPS else DENSE_OPS.get(name)
    if at is None or len(dims) <= at + 1:
        return None
    x, w = dims[at], dims[at + 1]
    if not (_elements(x) and _elements(w)) or len(x) < 2:
        return None
    m, k = math.prod(x[:-1]), x[-1]
    if name in WEIGHT_ONLY:
        weights = _elements(w) * WEIGHT_ONLY[name][2]
        return (m, weights // k, k) if weights % k == 0 else None
    if name == "aten::linear":
        return (m, w[0], k) if len(w) == 2 and w[1] == k else None
    return (m, w[1], k) if len(w) == 2 and w[0] == k else None


def gemm_calls(events: EventTable, gpu: np.ndarray, launcher: np.ndarray) -> list[dict[str, Any]]:
    """The GEMM operators that launched GPU kernels themselves, with a shape: index, name, (M, N, K), GPU µs and
    kind: 'weight_only' (int8/int4 weights dequantized in the kernel), 'fp8' (`_scaled_mm`, fp8 kernels), '16bit'
    (dense, its kernels named for bf16/fp16)."""
    known = launcher != MISSING
    us = np.bincount(launcher[known], weights=events.dur[gpu[known]], minlength=len(events.ts))
    order = np.argsort(launcher[known], kind="stable")
    kernel_of, by = gpu[known][order], launcher[known][order]
    names = events.names
    wanted = events.name_mask(lambda n: n in WEIGHT_ONLY or n in FP8_OPS or n in DENSE_OPS)
    calls = []
    for i in np.flatnonzero((us > 0) & wanted).tolist():
        name = names[events.name[i]]
        shape = gemm_shape(name, events.dims_of_code(int(events.shapes[i])))
        if shape is None or not all(shape):
            continue
        lo, hi = np.searchsorted(by, i, "left"), np.searchsorted(by, i, "right")
        kernels = [names[events.name[g]] for g in kernel_of[lo:hi].tolist()]
        if name in WEIGHT_ONLY:
            kind = "weight_only"
        elif name in FP8_OPS or any(FP8_KERNEL.search(k) for k in kernels):
            kind = "fp8"
        elif any(SIXTEEN_BIT_KERNEL.search(k) for k in kernels):
            kind = "16bit"
        else:
            continue
        calls.append({"index": i, "name": name, "shape": shape, "us": float(us[i]), "kind": kind,
                      "kernel": max(kernels, key=len)})
    return calls


def low_bit_gemm_calls(events: EventTable, kinds: np.ndarray) -> list[dict[str, Any]]:
    """`gemm_calls` of a trace that names a weight-only or fp8 GEMM operator or kernel (the rules
    `low-bit-gemm-large-m` and `fp8-gemm-not-faster` read them), [] for any other trace."""
    if not events.name_mask(lambda n: n in WEIGHT_ONLY or n in FP8_OPS or bool(FP8_KERNEL.search(n))).any():
        return []
    return gemm_calls(events, *kernel_launchers(events, kinds, events.category_mask(cat.HOST_OP_CATEGORIES)))


def scaling_ops(events: EventTable, gemms: list[int]) -> dict[int, list[int]]:
    """For each fp8 GEMM operator of `gemms`, the cast/scale operators right before it on its thread, at its own
    depth under the same parent (`CAST_OP`, from the first absolute maximum of the run; a run without one: its
    trailing casts)."""
    host = np.flatnonzero(events.category_mask(cat.HOST_OP_CATEGORIES))
    names = events.names
    out: dict[int, list[int]] = {}
    threads: dict[tuple[int, int], list[int]] = {}
    for g in gemms:
        threads.setdefault((int(events.pid[g]), int(events.tid[g])), []).append(g)
    for (pid, tid), wanted in threads.items():
        ops = host[(events.pid[host] == pid) & (events.tid[host] == tid)]
        ops = ops[np.lexsort((-events.end[ops], events.ts[ops]))]  # parents before their children
        children: dict[int, list[int]] = {}  # parent (-1: none) -> its operators in time order
        parent_of: dict[int, tuple[int, int]] = {}  # operator -> (its parent, its place among the parent's)
        stack: list[int] = []
        for i in ops.tolist():
            while stack and events.ts[i] >= events.end[stack[-1]]:
                stack.pop()
            parent = stack[-1] if stack else -1
            parent_of[i] = (parent, len(children.setdefault(parent, [])))
            children[parent].append(i)
            stack.append(i)
        for g in wanted:
            parent, place = parent_of.get(g, (-1, 0))
            run: list[int] = []
            for i in reversed(children.get(parent, [])[:place]):
                if not CAST_OP.search(names[events.name[i]]):
                    break
                run.append(i)
            run.reverse()
            first = next((j for j, i in enumerate(run) if AMAX_OP.search(names[events.name[i]])), None)
            if first is None:
                while run and names[events.name[run[0]]] not in CONVERT:
                    run.pop(0)
            out[g] = run if first is None else run[first:]
    return out


def nested_gpu_us(events: EventTable, gpu: np.ndarray, launcher: np.ndarray, ops: list[int]) -> float:
    """GPU time of the kernels launched by `ops` or by the operators nested in them (same thread, inside their span)."""
    if not ops:
        return 0.0
    known = launcher != MISSING
    kernels, by = gpu[known], launcher[known]
    first = ops[0]
    same = (events.pid[by] == events.pid[first]) & (events.tid[by] == events.tid[first])
    kernels, by = kernels[same], by[same]
    order = np.argsort(events.ts[by], kind="stable")
    starts, total = events.ts[by][order], np.concatenate([[0.0], np.cumsum(events.dur[kernels][order])])
    out = 0.0
    for i in ops:
        lo, hi = np.searchsorted(starts, events.ts[i], "left"), np.searchsorted(starts, events.end[i], "right")
        out += float(total[hi] - total[lo])
    return out
