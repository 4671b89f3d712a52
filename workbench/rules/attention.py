"""Attention written by hand: matmul, scale/mask, softmax, matmul on [batch, heads, seq, seq] tensors."""

from __future__ import annotations

import math
import re
from typing import Any, Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.attention_cost import attention_ops, is_shape
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule
from workbench.rules.summaries import launching_ops

SOFTMAX = re.compile(r"^aten::_?softmax$")
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
        if dims and is_shape(dims[0]) and len(dims[0]) >= 3 and dims[0][-1] >= MIN_SEQ:
            shapes[tuple(dims[0])] = shapes.get(tuple(dims[0]), 0) + 1
    if not shapes:
        return None
    shape = list(max(shapes, key=shapes.get))
    return shape, math.prod(shape[:-2])


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
    ops, head_dim = attention_ops(ctx.events, {(matrices, seq_q, seq_k)})
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
    cost = ctx.attention_cost
    if cost is None or ctx.passes is None:
        return
    backend, calls, gpu, gpu_us = ctx.metrics["attention_backend"], cost.calls, cost.gpu, cost.gpu_us
    host_bound = float(ctx.metrics.get("gpu_busy_pct") or 100.0) < 50
    gain = ctx.gain(cost.host_saved_us if host_bound else max(gpu_us - cost.fused_us, 0.0), (
        f"the GPU is busy {ctx.metrics.get('gpu_busy_pct')}% of the time, so the host sets the pace: host time of "
        f"the {cost.operators} attention operators less one fused call per attention ({len(calls)})" if host_bound else
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
            "attention_host_ms": round(cost.host_us / 1000, 3),
            "attention_operators_per_call": round(cost.operators / len(calls), 2),
            "fused_estimate_ms": round(cost.fused_us / 1000, 3),
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


def _heads(ctx: TraceContext, matrices: int) -> int:
    """Heads per sequence: the decode batch divides the matrices, else one sequence."""
    tokens, passes = ctx.metrics.get("decode_tokens"), ctx.metrics.get("decode_passes")
    batch = tokens // passes if tokens and passes and matrices % max(tokens // passes, 1) == 0 else 1
    return max(matrices // max(batch, 1), 1)
