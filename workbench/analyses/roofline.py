"""The bandwidth roofline of decoding and the FLOP roofline of prefill.

A decode pass must read every weight once and the KV cache of its sequences; at the device's peak memory
bandwidth that sets a floor on its time and a ceiling on tokens/s. Weights come from the GEMM operators'
weight shapes in one decode pass, their element size from the GEMM kernels' names; KV bytes from the
attention operators' key and value shapes, else from what `torch.cat` re-copied (a concatenated cache).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.models.trace import EventTable

# (name pattern, peak memory bandwidth GB/s, dense 16-bit tensor peak TFLOP/s or None), first match wins.
# Vendors' datasheet figures.
DEVICE_PEAKS: tuple[tuple[re.Pattern[str], float, float | None], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), gbps, tflops) for pattern, gbps, tflops in (
        (r"H100.*PCIe", 2000, 756), (r"H100 NVL", 3900, 835), (r"H100", 3350, 989), (r"H200", 4800, 989),
        (r"GH200", 4000, 989), (r"GB200|B200", 8000, 2250), (r"B100", 8000, 1750),
        (r"A100.*80GB", 2039, 312), (r"A100", 1555, 312), (r"L40S", 864, 362), (r"L4\b", 300, 121),
        (r"A10G|A10\b", 600, 125), (r"V100", 900, 125),
        (r"MI300X", 5300, 1307), (r"MI325X", 6000, 1307), (r"MI300A", 5300, 981), (r"MI250X?", 3277, 383),
        (r"MI355X|MI350X", 8000, 2300),
        (r"M[1-4] Ultra", 800, None), (r"M4 Max", 546, None), (r"M[1-3] Max", 400, None),
        (r"M4 Pro", 273, None), (r"M[12] Pro", 200, None), (r"M3 Pro", 150, None),
    ))
WEIGHT_OPS = {"aten::linear": 1, "aten::addmm": 2, "aten::mm": 1}  # op -> position of its weight input
# fused low-bit GEMMs: op -> (position of its weight input, bytes per recorded element, weights per recorded
# element): int8/fp8 one byte a weight; int4 packed eight to an int32 (CUDA tinygemm) or two to a byte (CPU)
LOW_BIT_OPS = {"aten::_weight_int8pack_mm": (1, 1, 1), "aten::_int_mm": (1, 1, 1), "aten::_scaled_mm": (1, 1, 1),
               "aten::_weight_int4pack_mm": (1, 4, 8), "aten::_weight_int4pack_mm_for_cpu": (1, 1, 2),
               "aten::_weight_int4pack_mm_with_scales_and_zeros": (1, 4, 8)}
SDPA = re.compile(r"^aten::(scaled_dot_product_attention|_scaled_dot_product_\w+_attention)$")
DTYPE_BYTES = ((re.compile(r"fp8|e4m3|e5m2|f8f6f4", re.IGNORECASE), 1), (re.compile(r"int4|w4a|mxfp4|nvfp4", re.IGNORECASE), 0.5),
               (re.compile(r"bf16|bfloat16|f16|half|fp16|^Cijk_\w*?_(BBS|HHS|BSS|HSS)_", re.IGNORECASE), 2))
GEMM_KERNEL = re.compile(r"gemm|gemv|matmul|nvjet|xmma|Cijk_", re.IGNORECASE)


def device_peaks(name: str | None) -> tuple[float | None, float | None]:
    """(peak memory bandwidth GB/s, peak dense 16-bit TFLOP/s) of a device by its name; None unknown."""
    for pattern, gbps, tflops in DEVICE_PEAKS:
        if name and pattern.search(name):
            return gbps, tflops
    return None, None


def gemm_element_bytes(events: EventTable, kinds: np.ndarray) -> float:
    """Bytes per weight element, read off the GEMM kernel that ran longest: 2 for 16-bit, 1 for fp8, else 4."""
    kernels = np.flatnonzero((kinds == cat.COMPUTE) & events.name_mask(GEMM_KERNEL.search))
    if not len(kernels):
        return 4
    time = np.bincount(events.name[kernels], weights=events.dur[kernels], minlength=len(events.names))
    name = events.names[int(np.argmax(time))]
    return next((size for pattern, size in DTYPE_BYTES if pattern.search(name)), 4)


def pass_weights(events: EventTable, start_us: float, end_us: float) -> tuple[int, int]:
    """(weight elements read, matrix-multiply FLOPs per token) of the GEMM operators in one pass's span."""
    host = events.category_mask(cat.HOST_OP_CATEGORIES)
    inside = np.flatnonzero(host & (events.ts >= start_us) & (events.ts < end_us))
    names = events.name_array[events.name[inside]]
    linear = names == "aten::linear"
    chosen = inside[linear] if linear.any() else inside[np.isin(names, ["aten::addmm", "aten::mm"])]
    elements = 0
    for i in chosen.tolist():
        dims = events.dims_of_code(int(events.shapes[i]))
        at = WEIGHT_OPS[events.names[events.name[i]]]
        if len(dims) > at and isinstance(dims[at], list) and len(dims[at]) == 2:
            elements += math.prod(dims[at])
    return elements, 2 * elements


def pass_low_bit_weights(events: EventTable, start_us: float, end_us: float) -> tuple[int, float]:
    """(weights, bytes) the fused low-bit GEMM operators in one pass's span read (`LOW_BIT_OPS`)."""
    host = events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(LOW_BIT_OPS.__contains__)
    weights, size = 0, 0.0
    for i in np.flatnonzero(host & (events.ts >= start_us) & (events.ts < end_us)).tolist():
        at, element_bytes, per_element = LOW_BIT_OPS[events.names[events.name[i]]]
        dims = events.dims_of_code(int(events.shapes[i]))
        if len(dims) > at and isinstance(dims[at], list) and dims[at] and all(type(d) is int for d in dims[at]):
            weights += math.prod(dims[at]) * per_element
            size += math.prod(dims[at]) * element_bytes
    return weights, size


def pass_kv_elements(events: EventTable, start_us: float, end_us: float) -> int:
    """Key and value elements the attention operators in one pass read."""
    host = events.category_mask(cat.HOST_OP_CATEGORIES) & events.name_mask(SDPA.match)
    inside = np.flatnonzero(host & (events.ts >= start_us) & (events.ts < end_us))
    total, seen_parent_end = 0, -np.inf
    for i in inside.tolist():
        if events.ts[i] < seen_parent_end:  # the public op's inner implementation: counted once
            continue
        dims = events.dims_of_code(int(events.shapes[i]))
        if len(dims) >= 3 and all(isinstance(d, list) and d for d in dims[1:3]):
            total += math.prod(dims[1]) + math.prod(dims[2])
            seen_parent_end = events.end[i]
    return total


def decode_roofline(weight_bytes: float, kv_bytes: float, tokens_per_pass: float | None,
                    ms_per_pass: float | None, peak_gbps: float | None) -> dict[str, Any]:
    """Bytes per decode pass against the device's bandwidth: achieved GB/s, MBU, floor and tokens/s ceiling."""
    moved = weight_bytes + kv_bytes
    out: dict[str, Any] = {"decode_weight_bytes_per_pass": int(weight_bytes), "decode_kv_bytes_per_pass": int(kv_bytes),
                           "decode_bytes_per_pass": int(moved), "peak_memory_bandwidth_gbps": peak_gbps}
    if moved and ms_per_pass:
        out["decode_bandwidth_gbps"] = round(moved / (ms_per_pass / 1000) / 1e9, 3)
    if moved and peak_gbps:
        floor_ms = moved / (peak_gbps * 1e9) * 1000
        out["decode_floor_ms_per_pass"] = round(floor_ms, 5)
        if ms_per_pass:
            out["decode_mbu_pct"] = round(100 * floor_ms / ms_per_pass, 3)
        if tokens_per_pass:
            out["decode_tokens_per_s_ceiling"] = round(tokens_per_pass * 1000 / floor_ms, 1)
    return out


def prefill_roofline(flops: float, gpu_ms: float | None, peak_tflops: float | None) -> dict[str, Any]:
    """Matrix-multiply FLOPs of the prefill against the device's dense peak: achieved TFLOP/s and MFU."""
    if not flops or not gpu_ms:
        return {}
    achieved = flops / (gpu_ms / 1000) / 1e12
    out: dict[str, Any] = {"prefill_tflops": round(achieved, 3), "peak_tflops": peak_tflops}
    if peak_tflops:
        out["prefill_mfu_pct"] = round(100 * achieved / peak_tflops, 3)
    return out


def attention_floor_us(matrices: int, seq_q: int, seq_k: int, head_dim: int, element_bytes: float,
                       peak_gbps: float | None, peak_tflops: float | None) -> float:
    """The least time one fused attention call takes at the device's peaks: Q, K, V read and O written once
    (bytes), 4 x matrices x seq_q x seq_k x head_dim FLOPs (QK^T and PV); 0 where the peaks are unknown."""
    moved = (2 * seq_q + 2 * seq_k) * matrices * head_dim * element_bytes
    flops = 4 * matrices * seq_q * seq_k * head_dim
    return max(moved / (peak_gbps * 1e3) if peak_gbps else 0.0, flops / (peak_tflops * 1e6) if peak_tflops else 0.0)
