"""Inference dominated by weight-bound matrix-vector products on float weights."""

from __future__ import annotations

import json
import math
import re
from typing import Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.pacing import host_paced
from workbench.rules.quantization import memory_bound_float_decode
from workbench.rules.registry import finding_of, rule
from workbench.rules.summaries import kernel_rows, launching_ops

LINEAR = re.compile(r"^aten::(addmm|mm|linear|matmul)$")
MAX_ROWS = 16  # activations this thin make a GEMM a GEMV: time goes into reading the weights
MIN_SHARE = 0.3
BF16 = re.compile(r"bf16|bfloat16", re.IGNORECASE)
HALF = re.compile(r"half|f16|fp16", re.IGNORECASE)

CODE = '''import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
# stands for your model; the trace's weight-bound GEMMs: {shapes}
model = torch.nn.Sequential(torch.nn.Linear({k}, {n}), torch.nn.GELU(), torch.nn.Linear({n}, {k})).eval()
x = torch.randn(1, {k}, device=device)

try:
    from torchao.quantization import Int8WeightOnlyConfig, quantize_  # pip install torchao
except ImportError:
    quantize_ = None
if device == "cuda" and quantize_ is not None:
    model = model.to(device=device, dtype=torch.bfloat16)
    quantize_(model, Int8WeightOnlyConfig())  # int8 weights, bf16 activations: half the bytes of bf16
    x = x.to(torch.bfloat16)
elif device == "cpu":
    model = torch.ao.quantization.quantize_dynamic(model, {{torch.nn.Linear}}, dtype=torch.qint8)
with torch.no_grad():
    y = model(x)
# Check accuracy on your own evaluation set before shipping: int8 weights usually cost little, int4 more.
'''


def _weight_bytes(name: str) -> int:
    return 2 if BF16.search(name) or HALF.search(name) else 4


@rule("quantize-weights", "memory", TRACE_KINDS,
      "inference dominated by weight-bound GEMV/thin GEMMs on float weights, the GPU (not the host) setting the pace")
@on_traces
def quantize_weights(ctx: TraceContext) -> Iterator[Finding]:
    if ctx.is_training or memory_bound_float_decode(ctx.metrics):  # weight-only-quantization says it per pass
        return
    if host_paced(ctx):  # launch- or host-bound: smaller weights shorten kernels the GPU already waits between
        return
    ops = ctx.named(LINEAR, cat.HOST_OP_CATEGORIES)
    thin = np.array([_rows(ctx, i) <= MAX_ROWS for i in ops.tolist()], dtype=bool)
    thin_ops = ops[thin] if len(ops) else ops
    gpu = ctx.gpu_of_ops(thin_ops)
    kernel_us = float(ctx.metrics.get("kernel_time_ms") or 0.0) * 1000
    thin_us = float(ctx.events.dur[gpu].sum())
    if not kernel_us or thin_us / kernel_us < MIN_SHARE:
        return
    rows = kernel_rows(ctx, gpu)
    width = _weight_bytes(rows[0]["name"])
    saved = 0.75 * (1 - 1 / width)  # int8 weights: width x fewer bytes read; 3/4 of the ideal is realistic
    gain = ctx.gain(thin_us * saved,
                    f"time of the weight-bound GEMMs x {saved:.2f}: int8 weights are {width}x fewer bytes than "
                    f"{'float32' if width == 4 else '16-bit'} ones; three quarters of that ideal is assumed")
    ops_rows = launching_ops(ctx, gpu)
    k, n = _weight_shape(ops_rows[0]["input_shapes"] if ops_rows else None)
    yield finding_of(
        "quantize-weights",
        title=f"{100 * thin_us / kernel_us:.0f}% of GPU time reads {'float32' if width == 4 else '16-bit'} "
              "weights in matrix-vector products: quantize the weights",
        evidence={
            "weight_bound_share_of_kernel_time_pct": round(100 * thin_us / kernel_us, 2),
            "weight_dtype": "float32" if width == 4 else "bfloat16/float16",
            "kernels": rows,
            "operators": ops_rows,
            "expected_effect": f"weights {width}x smaller in memory; these GEMMs up to {width}x faster",
        },
        gain=gain,
        fix=Fix(summary="Quantize the Linear weights to int8 (torchao weight-only on GPU; dynamic int8 on CPU); "
                        "check accuracy on your own evaluation set.",
                code=CODE.format(shapes=", ".join(r["input_shapes"] or "" for r in ops_rows[:2]), k=k, n=n),
                docs=["https://github.com/pytorch/ao#quantization"]),
    )


def _rows(ctx: TraceContext, index: int) -> int:
    """Rows of the activation (all but the last dim of the first tensor input), or a large number."""
    for dims in ctx.input_dims(index):
        if isinstance(dims, list) and len(dims) >= 2 and all(type(d) is int for d in dims):
            return math.prod(dims[:-1])
    return 1 << 30


def _weight_shape(shapes: str | None) -> tuple[int, int]:
    """(in_features, out_features) from a linear-like call's input shapes, or a default."""
    try:
        dims = [d for d in json.loads(shapes or "[]") if isinstance(d, list) and len(d) == 2]
        k, n = dims[-1]
        return int(k), int(n)
    except (ValueError, TypeError):
        return 768, 768
