"""Host-device synchronizations inside steps: the host waits, then the GPU waits for the host."""

from __future__ import annotations

import re
from typing import Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule

SCALAR = re.compile(r"^aten::_local_scalar_dense$")
SCALAR_READ = re.compile(r"^Memcpy DtoH")  # with at most SCALAR_BYTES: an .item() or a bool check
SCALAR_BYTES = 8
MAX_BUSY_PCT_HOST_BOUND = 50.0
MIN_SYNCS_WITHOUT_STEPS = 10  # without steps, a few syncs at the edges of the run are not a pattern

CODE = '''import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Linear(16, 1, device=device)  # stands for your model
losses = []
for step in range(10):
    loss = model(torch.randn(8, 16, device=device)).pow(2).mean()
    loss.backward()
    losses.append(loss.detach())  # keep it on the GPU: no .item() inside the step
    if step % 10 == 9:  # read values back once in a while, in one transfer
        print(torch.stack(losses).mean().item())
        losses.clear()
'''
CODE_OPTIMIZER = '''import torch

model = torch.nn.Linear(16, 16)  # stands for your model
# The single-tensor optimizer path reads each parameter's step count back to the host (.item()).
# foreach/fused implementations keep the step on the device.
optimizer = torch.optim.AdamW(model.parameters(), fused=torch.cuda.is_available(),
                              foreach=not torch.cuda.is_available())
model(torch.randn(4, 16)).sum().backward()
optimizer.step()
'''


@rule("host-sync", "launch", TRACE_KINDS,
      "host-device synchronizations inside steps (.item(), stream/device synchronize, blocking copies)")
@on_traces
def host_sync(ctx: TraceContext) -> Iterator[Finding]:
    e = ctx.events
    scalar = ctx.in_steps(ctx.named(SCALAR, cat.HOST_OP_CATEGORIES))
    runtime = ctx.in_steps(ctx.named(cat.SYNCHRONIZATION, cat.RUNTIME_CATEGORIES))
    syncs = np.concatenate([scalar, runtime])
    if not len(syncs) or (not ctx.steps and len(syncs) < MIN_SYNCS_WITHOUT_STEPS):
        return
    per_step = len(syncs) / max(ctx.steps, 1)
    reads = ctx.in_steps(ctx.named(SCALAR_READ, cat.MEMCPY_CATEGORIES))
    reads = reads[(e.bytes[reads] > 0) & (e.bytes[reads] <= SCALAR_BYTES)]
    read_calls = np.isin(e.correlation, e.correlation[reads]) & e.category_mask(cat.RUNTIME_CATEGORIES)
    read_calls = np.setdiff1d(np.flatnonzero(read_calls), ctx.within(scalar, read_calls))  # not inside .item()
    blocked_us = float(e.dur[syncs].sum() + e.dur[read_calls].sum())
    idle_us = float(ctx.metrics.get("idle_sync_ms") or 0.0) * 1000
    host_bound = float(ctx.metrics.get("gpu_busy_pct") or 0.0) < MAX_BUSY_PCT_HOST_BOUND
    gain = ctx.gain(max(idle_us, blocked_us if host_bound else 0.0),
                    "GPU idle time while the host was blocked in a synchronization (the queue drains at each "
                    "sync; without it the host runs ahead), or, when the GPU is mostly idle, the host's own time "
                    "in the syncs and scalar reads if larger")
    source = ctx.stacks.top_lines(scalar if len(scalar) else runtime)
    in_optimizer = bool(source) and all("torch/optim/" in str(s["innermost_frame"]) for s in source[:1])
    calls = {}
    for code in e.name[syncs].tolist():
        calls[e.names[code]] = calls.get(e.names[code], 0) + 1
    yield finding_of(
        "host-sync",
        title=f"{per_step:.0f} host-device synchronizations per step"
              + (" (most from the optimizer's single-tensor path)" if in_optimizer else ""),
        evidence={
            "syncs_per_step": round(per_step, 2),
            "calls": calls,
            "scalar_reads_to_host_per_step": round(len(reads) / max(ctx.steps, 1), 2),
            "host_blocked_ms_per_step": round(ctx.per_step_ms(blocked_us), 3),
            "gpu_idle_during_sync_ms_per_step": round(ctx.per_step_ms(idle_us), 3),
            "source": source,
        },
        gain=gain,
        fix=Fix(
            summary=("Use a foreach or fused optimizer (its step count stays on the GPU), and keep losses "
                     "on the GPU instead of calling .item() every step." if in_optimizer else
                     "Keep values on the GPU inside the step; read them back every N steps, in one transfer."),
            code=CODE_OPTIMIZER + "\n" + CODE if in_optimizer else CODE,
            docs=["https://pytorch.org/docs/stable/generated/torch.cuda.set_sync_debug_mode.html"],
        ),
    )
