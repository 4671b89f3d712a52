"""Attention written by hand: matmul, scale/mask, softmax, matmul on [batch, heads, seq, seq] tensors."""

from __future__ import annotations

import math
import re
from typing import Any, Iterator

import numpy as np

from workbench.analyses import categories as cat
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


def _backend(major: Any) -> str:
    if major == 9:
        return "on H100 (sm90) with bf16/fp16 inputs, the cuDNN or FlashAttention-2 backend"
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


def _attention_ops(ctx: TraceContext, seq_q: int, seq_k: int, matrices: int) -> tuple[np.ndarray, int | None]:
    """Host ops that touch a [matrices, seq_q, seq_k] tensor or compute one (q @ k^T); and head_dim.

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
        batch_ok = [math.prod(d[:-2]) == matrices for d in tensors]
        if any(ok and d[-2:] == [seq_q, seq_k] for ok, d in zip(batch_ok, tensors)):
            hit[j] = True
        elif len(tensors) == 2 and all(batch_ok) and tensors[0][-2] == seq_q and tensors[1][-1] == seq_k \
                and MATMUL.match(e.names[name]):
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
    ops, head_dim = _attention_ops(ctx, seq_q, seq_k, matrices)
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
            "suggested_backend": _backend(ctx.device.get("computeMajor")),
            "source": ctx.stacks.top_lines(softmax),
        },
        gain=gain,
        fix=Fix(
            summary="Call torch.nn.functional.scaled_dot_product_attention; it dispatches to a fused "
                    f"FlashAttention/cuDNN kernel ({_backend(ctx.device.get('computeMajor'))}).",
            code=CODE.format(shape=[*shape[:-1], head_dim], heads=heads, seq=min(seq_q, 512), head_dim=head_dim,
                             mask_line="; att = att.masked_fill(mask, float('-inf'))" if masked else "",
                             causal=", is_causal=True" if masked else "",
                             comment="  # for a mask that is not causal, pass attn_mask=mask" if masked else ""),
            docs=["https://pytorch.org/docs/stable/generated/torch.nn.functional.scaled_dot_product_attention.html"],
        ),
    )
