"""Attention written by hand: matmul, scale/mask, softmax, matmul on [batch, heads, seq, seq] tensors."""

from __future__ import annotations

import math
import re
from typing import Any, Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.device_peaks import device_peaks
from workbench.analyses.intervals import union_length
from workbench.analyses.roofline import attention_floor_us
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule
from workbench.rules.summaries import launching_ops

SOFTMAX = re.compile(r"^aten::_?softmax$")
MATMUL = re.compile(r"^aten::(matmul|bmm|baddbmm)$")
FUSED_ATTENTION = re.compile(r"scaled_dot_product|flash_attention|efficient_attention|cudnn_attention|"
                             r"fused_sdp|_sdpa", re.IGNORECASE)
MIN_SEQ = 32
FLASH_SPEEDUP = 2.0

CODE = '''import torch
import torch.nn.functional as F

device = "cuda" if torch.cuda.is_available() else "cpu"
# q, k, v: [batch, heads, seq, head_dim]; the trace shows {shape}
q, k, v = (torch.randn(2, {heads}, {seq}, {head_dim}, device=device) for _ in range(3))

# Replaces: att = (q @ k.transpose(-2, -1)) * scale{mask_line}; att = att.softmax(-1); y = att @ v
y = F.scaled_dot_product_attention(q, k, v{causal}){comment}
'''


def _is_shape(dims: Any) -> bool:
    """A tensor's shape: a list of ints (tensor-list inputs record nested lists)."""
    return isinstance(dims, list) and all(type(d) is int for d in dims)


def fused_backend(device: dict[str, Any]) -> str:
    """The fused attention kernel to use on this GPU, from its name, warp size and compute capability."""
    name, major = str(device.get("name") or ""), device.get("computeMajor")
    if device.get("warpSize") == 64 or re.search(r"\bAMD\b|Instinct|\bMI\d{3}", name):
        return ("on AMD Instinct (ROCm) with bf16/fp16 inputs, SDPA's flash backend (AOTriton); in serving "
                "engines CK/aiter attention (vLLM: VLLM_ROCM_USE_AITER=1)")
    if major in (10, 12):
        return ("on Blackwell (sm100) with bf16/fp16 inputs, SDPA's cuDNN backend; in serving engines FlashInfer "
                "or TensorRT-LLM attention")
    if major == 9:
        return ("on H100/H200 (sm90) with bf16/fp16 inputs, SDPA's cuDNN or FlashAttention-2 backend; in serving "
                "engines FlashAttention-3 or FlashInfer")
    if major == 8:
        return "on A100 (sm80) with bf16/fp16 inputs, the FlashAttention-2 backend"
    return "the memory-efficient backend (FlashAttention needs sm80+ and bf16/fp16 inputs)"


def _attention_shape(ctx: TraceContext, softmax: np.ndarray) -> tuple[list[int], int] | None:
    """The most common [.., seq_q, seq_k] softmax input, and its matrix count, if attention-shaped."""
    shapes: dict[tuple[int, ...], int] = {}
    for i in softmax.tolist():
        dims = ctx.input_dims(i)
        if dims and _is_shape(dims[0]) and len(dims[0]) >= 3 and dims[0][-1] >= MIN_SEQ:
            shapes[tuple(dims[0])] = shapes.get(tuple(dims[0]), 0) + 1
    if not shapes:
        return None
    shape = list(max(shapes, key=shapes.get))
    return shape, math.prod(shape[:-2])


def attention_ops(ctx: TraceContext, scores: set[tuple[int, int, int]]) -> tuple[np.ndarray, int | None]:
    """Host ops that touch a [matrices, seq_q, seq_k] score tensor of `scores` or compute one (q @ k^T); and
    head_dim.

    The test runs once per distinct (op name, input shapes) pair, not once per call.
    """
    e = ctx.events
    ops = np.flatnonzero(e.category_mask(cat.HOST_OP_CATEGORIES) & (e.shapes >= 0))
    width = len(e.strings) + 1
    pairs, inverse = np.unique(e.name[ops].astype(np.int64) * width + e.shapes[ops], return_inverse=True)
    hit = np.zeros(len(pairs), dtype=bool)
    head_dim = None
    for j, pair in enumerate(pairs.tolist()):
        name, shapes = divmod(pair, width)
        tensors = [d for d in ctx.dims_of_code(shapes) if _is_shape(d) and len(d) >= 2]
        if any((math.prod(d[:-2]), *d[-2:]) in scores for d in tensors):
            hit[j] = True
        elif len(tensors) == 2 and MATMUL.match(e.names[name]) and math.prod(tensors[0][:-2]) == \
                math.prod(tensors[1][:-2]) and (math.prod(tensors[0][:-2]), tensors[0][-2], tensors[1][-1]) in scores:
            hit[j] = True
            head_dim = tensors[0][-1]
    return ops[hit[inverse.ravel()]], head_dim


@rule("unfused-attention", "compute", TRACE_KINDS,
      "attention written as matmul -> scale/mask -> softmax -> matmul instead of scaled_dot_product_attention")
@on_traces
def unfused_attention(ctx: TraceContext) -> Iterator[Finding]:
    if len(ctx.named(FUSED_ATTENTION, cat.HOST_OP_CATEGORIES)):
        return
    softmax = ctx.named(SOFTMAX, cat.HOST_OP_CATEGORIES)
    found = _attention_shape(ctx, softmax) if len(softmax) else None
    if found is None:
        return
    shape, matrices = found
    seq_q, seq_k = shape[-2:]
    ops, head_dim = attention_ops(ctx, {(matrices, seq_q, seq_k)})
    if head_dim is None:
        return  # a softmax over a square-ish tensor, but no q @ k^T feeding it: not attention
    gpu_us = ctx.gpu_us_of_ops(ops)
    gain = ctx.gain(gpu_us * (1 - 1 / FLASH_SPEEDUP),
                    "GPU time of the ops on the [seq, seq] attention matrices (forward and backward) x 1/2: "
                    "fused kernels never write that matrix to memory; 2-4x is typical for the attention block")
    masked = bool(len(ctx.named(r"^aten::masked_fill_?$", cat.HOST_OP_CATEGORIES)))
    heads = shape[-3] if len(shape) >= 4 else 1
    yield finding_of(
        "unfused-attention",
        title=f"Attention is computed by hand on {shape} score matrices: use scaled_dot_product_attention",
        evidence={
            "softmax_input_shape": shape,
            "head_dim": head_dim,
            "softmax_calls_per_step": round(len(softmax) / max(ctx.steps, 1), 2),
            "attention_gpu_ms_per_step": round(ctx.per_step_ms(gpu_us), 3),
            "operators": launching_ops(ctx, ctx.gpu_of_ops(ops)),
            "mask": "masked_fill on the scores (a causal mask, if it is triangular)" if masked else None,
            "suggested_backend": fused_backend(ctx.device),
            "source": ctx.stacks.top_lines(softmax),
        },
        gain=gain,
        fix=Fix(
            summary="Call torch.nn.functional.scaled_dot_product_attention; it dispatches to a fused "
                    f"FlashAttention/cuDNN kernel ({fused_backend(ctx.device)}).",
            code=CODE.format(shape=[*shape[:-1], head_dim], heads=heads, seq=min(seq_q, 512), head_dim=head_dim,
                             mask_line="; att = att.masked_fill(mask, float('-inf'))" if masked else "",
                             causal=", is_causal=True" if masked else "",
                             comment="  # for a mask that is not causal, pass attn_mask=mask" if masked else ""),
            docs=["https://pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html"],
        ),
    )


SLOW_PATHS = {"manual": "written by hand (matmul, softmax, matmul)", "sdpa_math": "SDPA's math fallback",
              "sdpa_mem_efficient": "SDPA's memory-efficient kernel on float32 inputs"}
SDPA_OUTER = re.compile(r"^aten::(scaled_dot_product_attention|_scaled_dot_product_(attention_math|efficient_attention))$")
EFFICIENT_F32 = re.compile(r"fmha_cutlassF_f32|efficient.*float>", re.IGNORECASE)
FUSED_BYTES = 2  # the fused kernels run on bf16/fp16

CODE_INFERENCE = '''import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

device = "cuda" if torch.cuda.is_available() else "cpu"
dtype = torch.bfloat16 if device == "cuda" else torch.float32  # flash/cuDNN kernels need bf16/fp16 inputs
# one decode step of the trace: q {q}, keys/values {kv} (batch, heads, positions, head_dim)
q = torch.randn({q}, device=device, dtype=dtype)
k, v = (torch.randn({kv}, device=device, dtype=dtype) for _ in range(2))

# Replaces: att = (q @ k.transpose(-2, -1)) * scale; att = att.masked_fill(mask, -inf).softmax(-1); y = att @ v
# a decode query attends to every cached position: no mask (prefill: is_causal=True)
backends = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
with sdpa_kernel(backends if device == "cuda" else [SDPBackend.MATH, SDPBackend.FLASH_ATTENTION]):
    y = F.scaled_dot_product_attention(q, k, v)
reference = ((q.float() @ k.float().transpose(-2, -1)) / {head_dim} ** 0.5).softmax(-1) @ v.float()
assert torch.allclose(y.float(), reference, atol=2e-2)
'''


@rule("attention-backend", "compute", TRACE_KINDS,
      "inference attention written by hand, on SDPA's math fallback, or on the memory-efficient kernel because "
      "its inputs are float32: the fused kernel to use on this GPU and what it would save")
@on_traces
def attention_backend(ctx: TraceContext) -> Iterator[Finding]:
    backend = ctx.metrics.get("attention_backend")
    if backend not in SLOW_PATHS or ctx.passes is None:
        return
    found = _sdpa_calls(ctx, backend) if backend != "manual" else _manual_calls(ctx)
    if found is None:
        return
    calls, ops = found
    gpu = ctx.gpu_of_ops(ops)
    gpu_us = float(ctx.events.dur[gpu].sum())
    kernels = np.flatnonzero(ctx.kinds == cat.COMPUTE)
    least_us = float(np.median(ctx.events.dur[kernels])) if len(kernels) else 0.0
    peak_gbps, peak_tflops = device_peaks(ctx.metrics.get("device_name"))
    fused_us = sum(max(attention_floor_us(*call, FUSED_BYTES, peak_gbps, peak_tflops), least_us) for call in calls)
    host_us = union_length(ctx.events.ts[ops], ctx.events.end[ops])
    outer = len(_outermost(ctx, ops))
    host_saved = host_us * max(1 - len(calls) / outer, 0.0) if outer else 0.0
    host_bound = float(ctx.metrics.get("gpu_busy_pct") or 100.0) < 50
    saved = host_saved if host_bound else max(gpu_us - fused_us, 0.0)
    gain = ctx.gain(saved, (
        f"the GPU is busy {ctx.metrics.get('gpu_busy_pct')}% of the time, so the host sets the pace: host time of "
        f"the {outer} attention operators less one fused call per attention ({len(calls)})" if host_bound else
        "GPU time of the attention kernels less one fused kernel per call, each at least the trace's median kernel "
        "time or its bytes (Q, K, V, O once, 16-bit) and FLOPs at the device's peaks"))
    matrices, seq_q, seq_k, head_dim = calls[-1]
    heads = _heads(ctx, matrices)
    q, kv = [matrices // heads, heads, seq_q, head_dim], [matrices // heads, heads, seq_k, head_dim]
    yield finding_of(
        "attention-backend",
        title=f"Attention in the {ctx.metrics.get('decode_passes') or 0} decode and "
              f"{ctx.metrics.get('prefill_passes') or 0} prefill passes is {SLOW_PATHS[backend]}: "
              f"{gpu_us / 1000:.2f} ms of GPU time in {len(gpu)} kernels for {len(calls)} calls",
        evidence={
            "attention_backend": backend,
            "attention_calls": len(calls),
            "attention_gpu_ms": round(gpu_us / 1000, 3),
            "attention_kernels": int(len(gpu)),
            "attention_host_ms": round(host_us / 1000, 3),
            "attention_operators_per_call": round(outer / len(calls), 2),
            "fused_estimate_ms": round(fused_us / 1000, 3),
            "last_call_q_kv_shapes": [q, kv],
            "input_element_bytes": ctx.metrics.get("weight_element_bytes"),
            "device": ctx.metrics.get("device_name"),
            "suggested_backend": fused_backend(ctx.device),
            "operators": launching_ops(ctx, gpu),
        },
        gain=gain,
        fix=Fix(summary="Call torch.nn.functional.scaled_dot_product_attention on bf16/fp16 inputs; it dispatches to "
                        f"a fused kernel ({fused_backend(ctx.device)}).",
                code=CODE_INFERENCE.format(q=tuple(q), kv=tuple(kv), head_dim=head_dim),
                docs=["https://pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html",
                      "https://pytorch.org/docs/stable/backends.html#torch.backends.cuda.sdp_kernel"]),
    )


def _manual_calls(ctx: TraceContext) -> tuple[list[tuple[int, int, int, int]], np.ndarray] | None:
    """Each hand-written attention call as (matrices, seq_q, seq_k, head_dim), one per softmax on scores; the
    host ops on its score tensors."""
    softmax = ctx.named(re.compile(r"^aten::softmax$"), cat.HOST_OP_CATEGORIES)
    shapes = [d[0] for d in map(ctx.input_dims, softmax.tolist()) if d and _is_shape(d[0]) and len(d[0]) >= 3]
    scores = {(math.prod(s[:-2]), s[-2], s[-1]) for s in shapes}
    ops, head_dim = attention_ops(ctx, scores) if scores else (np.empty(0, np.int64), None)
    if head_dim is None:
        return None
    return [(math.prod(s[:-2]), s[-2], s[-1], head_dim) for s in shapes], ops


def _sdpa_calls(ctx: TraceContext, backend: str) -> tuple[list[tuple[int, int, int, int]], np.ndarray] | None:
    """SDPA calls on the math path, or on the memory-efficient kernel with float32 inputs, as (matrices, seq_q,
    seq_k, head_dim); the host ops inside them."""
    if backend == "sdpa_mem_efficient" and not len(ctx.named(EFFICIENT_F32)):
        return None
    outer = _outermost(ctx, ctx.named(SDPA_OUTER, cat.HOST_OP_CATEGORIES))
    calls = []
    for i in outer.tolist():
        dims = ctx.input_dims(i)
        if len(dims) >= 2 and all(_is_shape(d) and len(d) >= 3 for d in dims[:2]):
            calls.append((math.prod(dims[0][:-2]), dims[0][-2], dims[1][-2], dims[0][-1]))
    if not calls:
        return None
    return calls, np.union1d(outer, ctx.within(outer, ctx.events.category_mask(cat.HOST_OP_CATEGORIES)))


def _outermost(ctx: TraceContext, ops: np.ndarray) -> np.ndarray:
    """Those of `ops` not inside another of them (on one thread)."""
    order = ops[np.argsort(ctx.events.ts[ops], kind="stable")]
    if not len(order):
        return order
    ends = np.maximum.accumulate(ctx.events.end[order])
    inside = np.append(False, ctx.events.ts[order][1:] < ends[:-1])
    return order[~inside]


def _heads(ctx: TraceContext, matrices: int) -> int:
    """Heads per sequence: the decode batch divides the matrices, else one sequence."""
    tokens, passes = ctx.metrics.get("decode_tokens"), ctx.metrics.get("decode_passes")
    batch = tokens // passes if tokens and passes and matrices % max(tokens // passes, 1) == 0 else 1
    return max(matrices // max(batch, 1), 1)
