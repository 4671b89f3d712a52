"""Quantized weights that did not pay (dequantized to float before a dense GEMM), and the weight-only
quantization a memory-bound float decode would gain from (bytes per pass at int8 and int4)."""

from __future__ import annotations

from collections import Counter
from typing import Iterator

import numpy as np

from workbench.analyses.quantized_gemms import dequantize_pairs, fused_gemms
from workbench.analyses.roofline import decode_roofline
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule
from workbench.units import US_PER_MS

MEMORY_BOUND_MBU_PCT = 40.0  # below this a decode pass waits on launches or the host, not on memory
DOCS = ["https://github.com/pytorch/ao/tree/main/torchao/quantization",
        "https://docs.pytorch.org/docs/stable/generated/torch.ao.quantization.quantize_dynamic.html"]

CODE = '''import torch
import torch.nn.functional as F

# {what}
n, k = {n}, {k}
w = torch.randn(n, k)
scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127  # one scale per output channel
w_int8 = torch.round(w / scale[:, None]).to(torch.int8)
x = torch.randn(1, k)

dense = F.linear(x, w_int8.to(x.dtype) * scale[:, None])  # a float copy of the weight each call, then a dense GEMM
fused = torch._weight_int8pack_mm(x, w_int8, scale)  # the int8 weight read inside the GEMM: a quarter of fp32's bytes
assert torch.allclose(dense, fused, rtol=1e-3, atol=1e-3)

# A whole model (torchao, pip install torchao; weight-only int8, or int4 with tinygemm's _weight_int4pack_mm):
#   from torchao.quantization import quantize_, Int8WeightOnlyConfig, Int4WeightOnlyConfig
#   quantize_(model, Int8WeightOnlyConfig())            # or Int4WeightOnlyConfig(group_size=128) on CUDA bf16
#   model = torch.compile(model, mode="max-autotune")   # fuses what is left around the low-bit GEMMs
# On the CPU without torchao: model = torch.ao.quantization.quantize_dynamic(model, {{torch.nn.Linear}}, dtype=torch.qint8)
# vLLM / SGLang: a GPTQ/AWQ checkpoint runs Marlin kernels, --quantization fp8 runs cutlass scaled_mm.
# Check accuracy on your own evaluation set before shipping: int8 weights usually cost little, int4 more.
'''


def memory_bound_float_decode(metrics: dict) -> bool:
    """A decode pass near the memory bandwidth on 16- or 32-bit weights, no low-bit GEMM in the trace."""
    mbu, width = metrics.get("decode_mbu_pct"), float(metrics.get("weight_element_bytes") or 0)
    return (mbu is not None and mbu >= MEMORY_BOUND_MBU_PCT and width >= 2
            and bool(metrics.get("decode_weight_bytes_per_pass")) and bool(metrics.get("decode_ms_per_pass"))
            and not metrics.get("quantized_gemm") and not metrics.get("dequantize_gemm_pairs"))


def fix_code(what: str, shape: list[int] | None) -> str:
    n, k = shape if shape and len(shape) == 2 else (256, 256)
    return CODE.format(what=what, n=n, k=k)


@rule("quantized-weights-dequantized", "memory", TRACE_KINDS,
      "quantized weights turned back to float before a dense GEMM every call: no low-bit kernel ran")
@on_traces
def quantized_weights_dequantized(ctx: TraceContext) -> Iterator[Finding]:
    if "dequantize_gemm_pairs" not in ctx.metrics or not ctx.metrics["dequantize_gemm_pairs"]:
        return
    events = ctx.events
    pairs = dequantize_pairs(events)
    ops = np.array(sorted({i for p in pairs for i in p["dequantize"]}), dtype=np.int64)
    gemms = np.array([p["gemm"] for p in pairs], dtype=np.int64)
    on_gpu = bool(len(ctx.gpu_of_ops(gemms)))
    dequantize_us = ctx.gpu_us_of_ops(ops) if on_gpu else float(events.dur[ops].sum())
    gemm_us = ctx.gpu_us_of_ops(gemms) if on_gpu else float(events.dur[gemms].sum())
    shapes = Counter(tuple(p["weight_shape"]) for p in pairs)
    names = Counter(events.names[events.name[i]] for p in pairs for i in p["dequantize"])
    passes = int(ctx.metrics.get("prefill_passes") or 0) + int(ctx.metrics.get("decode_passes") or 0)
    fused = fused_gemms(events, ctx.kinds)
    shape = list(shapes.most_common(1)[0][0])
    yield finding_of(
        "quantized-weights-dequantized",
        title=f"{len(pairs)} GEMMs read quantized weights dequantized to float first "
              f"({dequantize_us / US_PER_MS:.2f} ms of dequantizing): use a fused low-bit kernel",
        evidence={
            "dequantize_gemm_pairs": len(pairs),
            "pairs_per_pass": round(len(pairs) / passes, 2) if passes else None,
            "weight_shapes": [{"shape": list(s), "pairs": c} for s, c in shapes.most_common(5)],
            "dequantize_operators": [{"name": n, "calls": c} for n, c in names.most_common(5)],
            "dequantize_ms": round(dequantize_us / US_PER_MS, 4),
            "dense_gemm_ms": round(gemm_us / US_PER_MS, 4),
            "time_measured_on": "gpu kernels" if on_gpu else "host operators",
            "fused_low_bit_gemms_that_ran": fused,
            "why": "the dense GEMM reads a full-width float copy of each weight, so the quantized storage saves "
                   "memory but no bandwidth, and the copy costs a kernel (or a host loop) per call",
        },
        gain=ctx.gain(dequantize_us, "time of the dequantizing operators, which a fused kernel (the int8 or int4 "
                                     "weight read inside the GEMM) does not run; the smaller weight reads it "
                                     "also buys are not counted"),
        fix=Fix(summary="Run a fused weight-only kernel instead of dequantizing: torchao `quantize_` with "
                        "Int8WeightOnlyConfig / Int4WeightOnlyConfig (tinygemm), Marlin for GPTQ/AWQ checkpoints, "
                        "`torch._weight_int8pack_mm` or fbgemm's dynamic int8 Linear on the CPU.",
                code=fix_code(f"a {shape[0]} x {shape[1]} weight the trace dequantizes before each GEMM", shape),
                docs=DOCS),
    )


@rule("weight-only-quantization", "memory", TRACE_KINDS,
      "memory-bound decode on 16- or 32-bit weights: int8/int4 weights cut the bytes each pass must read")
@on_traces
def weight_only_quantization(ctx: TraceContext) -> Iterator[Finding]:
    m = ctx.metrics
    if not memory_bound_float_decode(m):
        return
    mbu, width = m["decode_mbu_pct"], float(m["weight_element_bytes"])
    weight_bytes, ms = m["decode_weight_bytes_per_pass"], m["decode_ms_per_pass"]
    kv_bytes, peak = int(m.get("decode_kv_bytes_per_pass") or 0), m.get("peak_memory_bandwidth_gbps")
    passes = int(m["decode_passes"])
    tokens = m["decode_tokens"] / passes if m.get("decode_tokens") else None
    now = weight_bytes + kv_bytes
    options = {}
    for name, bits in (("int8", 8), ("int4", 4)):
        weights = weight_bytes * bits / 8 / width
        roof = decode_roofline(weights, kv_bytes, tokens, None, peak)
        options[name] = {"bytes_per_pass": int(weights + kv_bytes), "weight_bytes_per_pass": int(weights),
                         "floor_ms_per_pass": roof.get("decode_floor_ms_per_pass"),
                         "tokens_per_s_ceiling": roof.get("decode_tokens_per_s_ceiling"),
                         "ms_per_pass_at_the_same_bandwidth": round(ms * (weights + kv_bytes) / now, 5)}
    saved_us = passes * ms * US_PER_MS * (1 - options["int8"]["bytes_per_pass"] / now)
    dtype = "float32" if width == 4 else "16-bit"
    yield finding_of(
        "weight-only-quantization",
        title=f"Decode is memory-bound ({mbu:.0f}% of peak bandwidth) on {dtype} weights: int8 weights read "
              f"{now / options['int8']['bytes_per_pass']:.1f}x fewer bytes per pass, int4 "
              f"{now / options['int4']['bytes_per_pass']:.1f}x",
        evidence={
            "decode_mbu_pct": mbu, "weight_dtype": dtype, "decode_ms_per_pass": ms,
            "decode_bandwidth_gbps": m.get("decode_bandwidth_gbps"), "peak_memory_bandwidth_gbps": peak,
            "now": {"bytes_per_pass": now, "weight_bytes_per_pass": weight_bytes,
                    "floor_ms_per_pass": m.get("decode_floor_ms_per_pass"),
                    "tokens_per_s_ceiling": m.get("decode_tokens_per_s_ceiling")},
            **options,
            "kv_bytes_per_pass": kv_bytes,
        },
        gain=ctx.gain(saved_us, "decode passes x ms per pass x the share of bytes int8 weights remove: a "
                                "memory-bound pass keeps its achieved bandwidth, so its time follows its bytes "
                                "(scales and the KV cache's bytes unchanged)"),
        fix=Fix(summary="Quantize the weights, weight-only: torchao Int8WeightOnlyConfig (or Int4WeightOnlyConfig, "
                        "fp8 on H100+) then torch.compile; check accuracy on your own evaluation set.",
                code=fix_code(f"weight-only int8 on one {dtype} Linear; this decode reads {now:,} bytes a pass", None),
                docs=DOCS),
    )
