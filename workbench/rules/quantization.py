"""Quantized weights that did not pay (dequantized to float before a dense GEMM, weight-only low-bit kernels at
large M, fp8 GEMMs no faster than 16-bit ones), and the weight-only quantization a memory-bound float decode would
gain from (bytes per pass at int8 and int4)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterator

import numpy as np

from workbench.analyses.device_peaks import device_name, device_peaks
from workbench.analyses.quantized_gemms import FP8_OPS, nested_gpu_us, scaling_ops
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
    if ctx.quantized is None or not ctx.quantized.pairs:
        return
    events = ctx.events
    pairs = ctx.quantized.pairs
    ops = np.array(sorted({i for p in pairs for i in p["dequantize"]}), dtype=np.int64)
    gemms = np.array([p["gemm"] for p in pairs], dtype=np.int64)
    on_gpu = bool(len(ctx.gpu_of_ops(gemms)))
    dequantize_us = ctx.gpu_us_of_ops(ops) if on_gpu else float(events.dur[ops].sum())
    gemm_us = ctx.gpu_us_of_ops(gemms) if on_gpu else float(events.dur[gemms].sum())
    shapes = Counter(tuple(p["weight_shape"]) for p in pairs)
    names = Counter(events.names[events.name[i]] for p in pairs for i in p["dequantize"])
    passes = int(ctx.metrics.get("prefill_passes") or 0) + int(ctx.metrics.get("decode_passes") or 0)
    fused = ctx.quantized.fused
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


LARGE_M = 64  # rows (tokens in the pass) above which a weight-only low-bit GEMM is compute-bound, not memory-bound
DENSE_EFFICIENCY = 0.7  # the share of peak FLOP/s (and bandwidth) a dense 16-bit GEMM is credited with
FP8_MIN_SPEEDUP = 1.2  # an fp8 GEMM (with its casts) below this many times a 16-bit GEMM's speed did not pay

LARGE_M_CODE = '''import torch
import torch.nn.functional as F

# {what}
# Weight-only low-bit kernels (tinygemm int4, _weight_int8pack_mm, Marlin) pay when M is small (decode reads the
# weights once for few rows); for prefill (M = tokens in the pass) run a dense GEMM on a 16-bit copy instead.
n, k = {n}, {k}
w = torch.randn(n, k)
scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127
w_int8 = torch.round(w / scale[:, None]).to(torch.int8)
w_dense = w_int8.to(torch.float32) * scale[:, None]  # once at load (bf16 on the GPU): costs n x k x 2 bytes


def linear(x: torch.Tensor, large_m: int = {large_m}) -> torch.Tensor:
    rows = x.numel() // x.shape[-1]
    if rows <= large_m:  # decode: memory-bound, the low-bit weights read in the kernel
        return torch._weight_int8pack_mm(x.reshape(rows, k), w_int8, scale).reshape(*x.shape[:-1], n)
    return F.linear(x, w_dense)  # prefill: compute-bound, the dense GEMM at full tensor-core speed


decode, prefill = linear(torch.randn(1, 1, k)), linear(torch.randn(1, {rows}, k))
assert decode.shape == (1, 1, n) and prefill.shape == (1, {rows}, n)
# On CUDA with torchao int4 (tinygemm): the same switch on x.shape, w_dense = the dequantized weight in bfloat16
# (or no copy: dequantize per prefill call, cheap next to a compute-bound GEMM); or W8A8 / fp8 dynamic activation
# quantization, which keeps tensor-core GEMMs at large M: quantize_(model, Float8DynamicActivationFloat8WeightConfig())
# vLLM / SGLang: Marlin and Machete kernels switch tiles by M; check the prefill GEMMs after changing the backend.
'''

FP8_CODE = '''import torch

# {what}
m, n, k = {m}, {n}, {k}
x, w = torch.randn(m, k), torch.randn(n, k)
e4m3 = torch.float8_e4m3fn
fmax = torch.finfo(e4m3).max

# Dynamic per-tensor scaling runs an amax, a scale and a cast kernel for the activation (and the weight) before
# every GEMM: at small shapes they cost more than fp8 saves. Scale the weight once, at load:
w_scale = w.abs().amax().clamp(min=1e-12) / fmax
w_fp8 = (w / w_scale).to(e4m3)  # once, not per call

# ... and the activation with a static scale (calibrated once), so one fused cast remains per call:
x_scale = torch.tensor(4.0) / fmax  # from calibration: the activation's observed absolute maximum
x_fp8 = (x / x_scale).clamp(-fmax, fmax).to(e4m3)
y = (x_fp8.float() @ w_fp8.float().t()) * (x_scale * w_scale)  # on CUDA: torch._scaled_mm(x_fp8, w_fp8.t(), x_scale, w_scale, out_dtype=torch.bfloat16)
assert torch.allclose(y, x @ w.t(), rtol=0.2, atol=0.5 * k ** 0.5)

# Where fp8 still loses (M or N, K too small to be compute-bound), keep those layers in bfloat16, e.g. with torchao:
#   convert_to_float8_training(model, module_filter_fn=lambda mod, fqn: mod.in_features >= 4096 and mod.out_features >= 4096)
# and torch.compile the model so the amax/scale/cast of each fp8 GEMM fuse into the ops before it.
'''


def _gemms(ctx: TraceContext) -> list[dict]:
    """The trace's weight-only, fp8 and 16-bit GEMM calls (`quantized_gemms.low_bit_gemm_calls`, found once)."""
    return ctx.quantized.gemms if ctx.quantized is not None else []


def _device_peaks(ctx: TraceContext) -> tuple[float | None, float | None]:
    return device_peaks(next((n for n in map(device_name, ctx.trace.devices) if n), None))


@rule("low-bit-gemm-large-m", "compute", TRACE_KINDS,
      "weight-only int4/int8 GEMM kernels at large M (prefill, big batches): slower than a dense 16-bit GEMM")
@on_traces
def low_bit_gemm_large_m(ctx: TraceContext) -> Iterator[Finding]:
    gbps, tflops = _device_peaks(ctx)
    calls = [c for c in _gemms(ctx) if c["kind"] == "weight_only"]
    if not (gbps and tflops) or not calls:
        return
    large = [c for c in calls if c["shape"][0] > LARGE_M]
    if not large:
        return
    rows, saved_us = {}, 0.0
    for c in large:
        m, n, k = c["shape"]
        flop_us = 2 * m * n * k / (tflops * 1e12) * 1e6
        byte_us = 2 * (m * k + n * k + m * n) / (gbps * 1e9) * 1e6
        # a dense 16-bit GEMM of this shape, credited with DENSE_EFFICIENCY of the peaks, plus writing the weight's
        # 16-bit copy (no copy is needed when one is kept)
        dense_us = max(flop_us, byte_us) / DENSE_EFFICIENCY + 2 * n * k / (gbps * 1e9) * 1e6
        row = rows.setdefault((c["name"], c["shape"]), {
            "operator": c["name"], "kernel": c["kernel"], "m": m, "n": n, "k": k, "calls": 0, "time_us": 0.0,
            "bf16_floor_us_per_call": round(max(flop_us, byte_us), 3), "dense_estimate_us_per_call": round(dense_us, 3)})
        row["calls"] += 1
        row["time_us"] += c["us"]
        saved_us += max(c["us"] - dense_us, 0.0)
    if saved_us <= 0:
        return
    table = sorted(rows.values(), key=lambda r: -r["time_us"])
    for r in table:
        r["us_per_call"] = round(r["time_us"] / r["calls"], 3)
        r["tflops"] = round(2 * r["m"] * r["n"] * r["k"] / (r["us_per_call"] * 1e6), 2)
        r["time_over_bf16_floor"] = round(r["us_per_call"] / r["bf16_floor_us_per_call"], 2)
        r["time_ms"] = round(r.pop("time_us") / US_PER_MS, 4)
    small = [c for c in calls if c["shape"][0] <= LARGE_M]
    large_us = sum(c["us"] for c in large)
    top = table[0]
    yield finding_of(
        "low-bit-gemm-large-m",
        title=f"{len(large)} weight-only low-bit GEMMs ran at M > {LARGE_M} ({large_us / US_PER_MS:.2f} ms, "
              f"{top['us_per_call']:.0f} us a call at M={top['m']}: {top['time_over_bf16_floor']:.1f}x a bf16 GEMM's "
              f"floor): dequantize for prefill, keep low-bit weights for decode",
        evidence={
            "large_m_threshold": LARGE_M,
            "large_m_calls": len(large), "large_m_ms": round(large_us / US_PER_MS, 4),
            "small_m_calls": len(small), "small_m_ms": round(sum(c["us"] for c in small) / US_PER_MS, 4),
            "by_shape": table[:10],
            "peak_tflops": tflops, "peak_memory_bandwidth_gbps": gbps,
            "why": "weight-only kernels dequantize every weight tile inside the GEMM and run it on 16-bit tensor cores "
                   "at a fraction of a dense kernel's rate: they win only while the GEMM is memory-bound (few rows)",
        },
        gain=ctx.gain(saved_us, f"each large-M call's time over a dense bf16 GEMM of its shape at "
                                f"{DENSE_EFFICIENCY:.0%} of the device's peak FLOP/s (or bandwidth), plus writing "
                                f"the weight's 16-bit copy; calls already under that estimate count zero"),
        fix=Fix(summary="Keep the low-bit weights for decode (small M) and run prefill on a dense 16-bit GEMM: switch on "
                        "the rows (a dequantized copy, or dequantize per prefill call), or use W8A8 / fp8 activation "
                        "quantization, whose GEMMs stay on tensor cores at large M.",
                code=LARGE_M_CODE.format(what=f"{top['operator']} ran {top['calls']} times at M={top['m']} "
                                              f"(N={top['n']}, K={top['k']})",
                                         n=min(top["n"], 512), k=min(top["k"], 512), large_m=LARGE_M,
                                         rows=min(top["m"], 256)),
                docs=DOCS + ["https://github.com/pytorch/ao/tree/main/torchao/quantization#benchmarks"]),
    )


@rule("fp8-gemm-not-faster", "compute", TRACE_KINDS,
      "fp8 GEMMs (with their amax/scale/cast kernels) no faster than 16-bit GEMMs of the same shapes")
@on_traces
def fp8_gemm_not_faster(ctx: TraceContext) -> Iterator[Finding]:
    calls = _gemms(ctx)
    fp8 = [c for c in calls if c["kind"] == "fp8"]
    dense = [c for c in calls if c["kind"] == "16bit"]
    if not fp8 or not dense:
        return
    events, (gpu, launcher) = ctx.events, ctx.launcher
    casts = scaling_ops(events, [c["index"] for c in fp8 if c["name"] in FP8_OPS])
    by_shape: dict[tuple, list[float]] = {}
    by_flops: dict[int, list[float]] = {}
    for c in dense:
        by_shape.setdefault(c["shape"], []).append(c["us"])
        by_flops.setdefault(2 * math.prod(c["shape"]), []).append(c["us"])
    rows: dict[tuple, dict] = {}
    for c in fp8:
        flops = 2 * math.prod(c["shape"])
        match, how = by_shape.get(c["shape"]), "same (M, N, K)"
        if match is None:
            match, how = by_flops.get(flops), "same FLOPs per call"
        if match is None:
            continue
        row = rows.setdefault(c["shape"], {"m": c["shape"][0], "n": c["shape"][1], "k": c["shape"][2],
                                           "fp8_kernel": c["kernel"], "matched_by": how, "fp8_calls": 0, "fp8_us": [],
                                           "cast_us": 0.0, "cast_ops": 0, "bf16_calls": len(match),
                                           "bf16_us_per_call": round(float(np.median(match)), 3), "flops": flops})
        row["fp8_calls"] += 1
        row["fp8_us"].append(c["us"])
        ops = casts.get(c["index"], [])
        row["cast_ops"] += len(ops)
        row["cast_us"] += nested_gpu_us(events, gpu, launcher, ops)
    findings, saved_us = [], 0.0
    for row in rows.values():
        fp8_us = float(np.median(row.pop("fp8_us")))
        cast_us = row["cast_us"] / row["fp8_calls"]
        bf16_us, flops = row["bf16_us_per_call"], row.pop("flops")
        row.update({"fp8_us_per_call": round(fp8_us, 3), "cast_us_per_call": round(cast_us, 3),
                    "cast_ops_per_gemm": round(row.pop("cast_ops") / row["fp8_calls"], 2),
                    "fp8_tflops": round(flops / fp8_us / 1e6, 2),
                    "fp8_with_casts_tflops": round(flops / (fp8_us + cast_us) / 1e6, 2),
                    "bf16_tflops": round(flops / bf16_us / 1e6, 2),
                    "speedup_over_bf16": round(bf16_us / (fp8_us + cast_us), 3)})
        row["cast_us"] = round(row["cast_us"], 3)
        if row["speedup_over_bf16"] < FP8_MIN_SPEEDUP:
            row["saved_us"] = round(row["fp8_calls"] * (cast_us + max(fp8_us - bf16_us, 0.0)), 3)
            saved_us += row["saved_us"]
            findings.append(row)
    if not findings or saved_us <= 0:
        return
    findings.sort(key=lambda r: -r["saved_us"])
    top = findings[0]
    yield finding_of(
        "fp8-gemm-not-faster",
        title=f"fp8 GEMMs of {len(findings)} shape(s) run at {top['speedup_over_bf16']:.2f}x the speed of bf16 ones "
              f"(M={top['m']}, N={top['n']}, K={top['k']}: {top['fp8_us_per_call']:.1f} us + "
              f"{top['cast_us_per_call']:.1f} us of amax/scale/cast against {top['bf16_us_per_call']:.1f} us)",
        evidence={
            "fp8_gemm_calls": len(fp8), "bf16_gemm_calls": len(dense), "min_speedup": FP8_MIN_SPEEDUP,
            "shapes": findings[:10],
            "why": "fp8 halves the bytes and doubles the tensor-core rate only when the GEMM is large enough to be "
                   "compute-bound; dynamic scaling adds an amax, a scale and a cast kernel per operand and call",
        },
        gain=ctx.gain(saved_us, "per shape below the speedup: fp8 calls x (amax/scale/cast time per call + any fp8 "
                                "GEMM time over the bf16 GEMM's median of the same shape): the casts fused or static, "
                                "and the GEMMs that lose run in bf16"),
        fix=Fix(summary="Scale the weights once at load and the activations statically (or let torch.compile fuse the "
                        "amax/cast into the op before), and keep small GEMMs in bf16 (torchao's module_filter_fn).",
                code=FP8_CODE.format(what=f"fp8 GEMM of M={top['m']}, N={top['n']}, K={top['k']} ran "
                                          f"{top['fp8_calls']} times at {top['speedup_over_bf16']:.2f}x bf16's speed",
                                     m=min(top["m"], 256), n=min(top["n"], 256), k=min(top["k"], 256)),
                docs=["https://github.com/pytorch/ao/tree/main/torchao/float8",
                      "https://docs.pytorch.org/docs/stable/generated/torch._scaled_mm.html"]),
    )
