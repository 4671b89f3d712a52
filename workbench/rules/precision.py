"""Rules on numeric precision: float32 GEMMs that leave the tensor cores idle."""

from __future__ import annotations

import json
import re
from typing import Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule
from workbench.rules.summaries import kernel_rows, launching_ops

# cuBLAS/CUTLASS float32 GEMMs on the SIMT (FFMA) path: sgemm, cutlass simt, xmma f32f32 (not tf32).
FP32_GEMM = re.compile(r"sgemm|_simt_|xmma_gemm_f32f32", re.IGNORECASE)
NOT_GEMM = re.compile(r"gemv|conv", re.IGNORECASE)
TF32_SPEEDUP = 3.0

CODE_TF32 = '''import torch

# Let float32 matmuls and convolutions run on TF32 tensor cores (Ampere, Hopper and newer).
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.set_float32_matmul_precision("high")

# Or, for a larger gain, run the forward pass under bfloat16 autocast (the weights stay float32).
device = "cuda" if torch.cuda.is_available() else "cpu"
layer = torch.nn.Linear({k}, {n}, device=device)  # stands for your model; the trace's top GEMM: {op} {shapes}
x = torch.randn(64, {k}, device=device)  # your activations: {m} rows
with torch.autocast(device_type=device, dtype=torch.bfloat16):
    y = layer(x)
'''
CODE_FP16 = '''import torch

# This GPU's tensor cores take float16: run the forward pass under float16 autocast with a grad scaler.
device = "cuda" if torch.cuda.is_available() else "cpu"
layer = torch.nn.Linear({k}, {n}, device=device)  # stands for your model; the trace's top GEMM: {op} {shapes}
optimizer = torch.optim.SGD(layer.parameters(), lr=0.01)
scaler = torch.amp.GradScaler(device, enabled=device == "cuda")
x = torch.randn(64, {k}, device=device)
with torch.autocast(device_type=device, dtype=torch.float16 if device == "cuda" else torch.bfloat16):
    loss = layer(x).float().pow(2).mean()
scaler.scale(loss).backward()
scaler.step(optimizer)
scaler.update()
'''


def _gemm_dims(shapes: str | None) -> tuple[int, int, int]:
    """(m, k, n) of an mm/addmm-like call from its input shapes, or a default."""
    try:
        dims = [d for d in json.loads(shapes or "[]") if isinstance(d, list) and len(d) >= 2]
        (m, k), (_, n) = dims[-2][-2:], dims[-1][-2:]
        return int(m), int(k), int(n)
    except (ValueError, IndexError, TypeError):
        return 64, 1024, 1024


@rule("fp32-matmul", "precision", TRACE_KINDS,
      "float32 GEMMs on SIMT kernels (no tensor cores) on a GPU that has tensor cores")
@on_traces
def fp32_matmul(ctx: TraceContext) -> Iterator[Finding]:
    major = ctx.device.get("computeMajor")
    if not isinstance(major, int) or major < 7 or "AMD" in str(ctx.device.get("name")):
        return
    kernels = np.flatnonzero(ctx.kinds == cat.COMPUTE)
    names = ctx.events.name[kernels]
    fp32 = np.array([bool(FP32_GEMM.search(n)) and not NOT_GEMM.search(n) for n in ctx.events.names])
    hits = kernels[fp32[names]] if len(kernels) else kernels
    if not len(hits):
        return
    total_us = float(ctx.events.dur[hits].sum())
    kernel_us = float(ctx.events.dur[kernels].sum())
    gain = ctx.gain(total_us * (1 - 1 / TF32_SPEEDUP),
                    f"float32 SIMT GEMM time x (1 - 1/{TF32_SPEEDUP:g}): TF32 or bf16 tensor-core GEMMs run at "
                    "least 3x faster on Ampere/Hopper (8x or more at peak)")
    ops = launching_ops(ctx, hits)
    top = ops[0] if ops else {"op": "aten::mm", "input_shapes": None}
    m, k, n = _gemm_dims(top["input_shapes"])
    ampere = major >= 8
    code = (CODE_TF32 if ampere else CODE_FP16).format(m=m, k=k, n=n, op=top["op"], shapes=top["input_shapes"])
    yield finding_of(
        "fp32-matmul",
        title=f"{100 * total_us / kernel_us:.0f}% of GPU kernel time is float32 GEMMs without tensor cores",
        evidence={
            "device": ctx.device.get("name"),
            "compute_capability": f"{major}.{ctx.device.get('computeMinor')}",
            "fp32_gemm_ms_per_step": round(ctx.per_step_ms(total_us), 3),
            "fp32_gemm_share_of_kernel_time_pct": round(100 * total_us / kernel_us, 2),
            "kernels": kernel_rows(ctx, hits),
            "operators": ops,
        },
        gain=gain,
        fix=Fix(
            summary=("Turn on TF32 for float32 matmuls, or train under bfloat16 autocast." if ampere else
                     "Train under float16 autocast with a GradScaler: this GPU's tensor cores need float16."),
            code=code,
            docs=["https://pytorch.org/docs/stable/notes/cuda.html#tensorfloat-32-tf32-on-ampere-and-later-devices",
                  "https://pytorch.org/docs/stable/amp.html"],
        ),
    )
