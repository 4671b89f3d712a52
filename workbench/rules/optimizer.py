"""Optimizer steps that launch kernels parameter by parameter."""

from __future__ import annotations

import re
from typing import Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule

OPTIMIZER_STEP = re.compile(r"^Optimizer\.step#(\w+)\.step$")
MULTI_TENSOR = re.compile(r"^aten::_(foreach|fused)_")
ACCUMULATE_GRAD = re.compile(r"^torch::autograd::AccumulateGrad$")
FUSED_SHARE = 0.5  # a fused/foreach step's kernels take about half the GPU time: each tensor is read once
FUSABLE = {"Adam", "AdamW", "SGD", "Adagrad"}  # torch.optim classes that take both `fused` and `foreach`
KERNELS_PER_PARAM = 2  # more launches per parameter than this means one kernel per op per parameter

CODE = '''import torch

model = torch.nn.Linear(64, 64)  # stands for your model
# fused=True: one kernel for the whole step (CUDA); foreach=True: a few kernels per op over all parameters.
fused = torch.cuda.is_available()
optimizer = torch.optim.{name}(model.parameters(), lr=1e-3, fused=fused, foreach=not fused)
model(torch.randn(8, 64)).sum().backward()
optimizer.step()
optimizer.zero_grad(set_to_none=True)
'''


@rule("unfused-optimizer", "launch", TRACE_KINDS,
      "optimizer steps that launch kernels per parameter (foreach and fused off)")
@on_traces
def unfused_optimizer(ctx: TraceContext) -> Iterator[Finding]:
    steps = ctx.named(OPTIMIZER_STEP, cat.ANNOTATION_CATEGORIES | cat.HOST_OP_CATEGORIES)
    if not len(steps):
        return
    e = ctx.events
    host_ops = e.category_mask(cat.HOST_OP_CATEGORIES)
    inside = ctx.within(steps, host_ops)
    if any(MULTI_TENSOR.match(e.names[c]) for c in np.unique(e.name[inside]).tolist()):
        return
    launched = ctx.gpu_of_ops(inside)
    params = len(ctx.named(ACCUMULATE_GRAD, cat.HOST_OP_CATEGORIES)) / len(steps)
    kernels_per_step = len(launched) / len(steps)
    if not params or kernels_per_step < KERNELS_PER_PARAM * params:
        return
    step_us = float(e.dur[steps].sum())
    gpu_us = float(e.dur[launched].sum())
    gain = ctx.gain(max(0.0, step_us - FUSED_SHARE * gpu_us),
                    "the optimizer step's wall time minus half the GPU time of its kernels: a fused step keeps "
                    "the arithmetic, reads each tensor once and drops the per-parameter launches")
    name = OPTIMIZER_STEP.match(e.names[e.name[steps[0]]]).group(1)
    yield finding_of(
        "unfused-optimizer",
        title=f"{name}.step launches {kernels_per_step:.0f} kernels per step for {params:.0f} parameters",
        evidence={
            "optimizer": name,
            "parameters": round(params),
            "kernels_per_optimizer_step": round(kernels_per_step),
            "optimizer_step_ms": round(step_us / len(steps) / 1000, 3),
            "optimizer_gpu_ms": round(gpu_us / len(steps) / 1000, 3),
            "multi_tensor_ops": 0,
        },
        gain=gain,
        fix=Fix(summary=f"Create {name} with fused=True (CUDA) or foreach=True.",
                code=CODE.format(name=name if name in FUSABLE else "AdamW"),
                docs=["https://pytorch.org/docs/stable/optim.html#algorithms"]),
    )
