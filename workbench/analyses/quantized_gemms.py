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
from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.models.trace import EventTable
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
