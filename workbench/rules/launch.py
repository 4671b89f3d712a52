"""Launch-bound runs: the GPU waits on the host to launch many short kernels."""

from __future__ import annotations

import re
from typing import Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.pacing import (MAX_GRAPH_SHARE, MIN_HOST_IDLE_PCT, graph_launched_share, host_idle_pct,
                                   is_launch_bound)
from workbench.rules.registry import finding_of, rule

CAT = re.compile(r"^aten::cat$")
HOST_OVERHEAD_SAVED = 0.5

CODE = '''import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.GELU(), torch.nn.Linear(256, 256)).to(device).eval()
x = torch.randn(1, 256, device=device)  # static shapes: the same size every call

if device == "cuda":
    # Capture the step once and replay it as a CUDA graph: one launch instead of one per kernel.
    model = torch.compile(model, mode="reduce-overhead")
with torch.no_grad():
    for _ in range(3):
        y = model(x)
'''
CODE_COMPILE = '''import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Sequential(torch.nn.Linear(128, 512), torch.nn.GELU(), torch.nn.Linear(512, 128)).to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
if device == "cuda":
    model = torch.compile(model)  # fuses elementwise ops; mode="max-autotune" also captures CUDA graphs
for _ in range(2):
    loss = model(torch.randn(32, 128, device=device)).pow(2).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
'''
CODE_KV_CACHE = '''
# Grow nothing inside the decode loop: preallocate the KV cache once and write in place.
batch, heads, max_len, head_dim = 1, 12, 512, 64
cache_k = torch.zeros(batch, heads, max_len, head_dim, device=device)
k_new = torch.randn(batch, heads, 1, head_dim, device=device)
pos = 32
cache_k[:, :, pos : pos + 1] = k_new  # instead of cache_k = torch.cat([cache_k, k_new], dim=2)
keys = cache_k[:, :, : pos + 1]
'''


@rule("launch-bound", "launch", TRACE_KINDS,
      "the GPU is mostly idle, kernels are short, and launching them costs more CPU time than they run")
@on_traces
def launch_bound(ctx: TraceContext) -> Iterator[Finding]:
    if not is_launch_bound(ctx):
        return
    m = ctx.metrics
    busy, short = m["gpu_busy_pct"], m["short_kernel_pct"]
    idle_us = float(m.get("idle_host_busy_ms") or 0.0) * 1000
    gain = ctx.gain(idle_us, "GPU idle time while the host was busy in operators and launches: a CUDA graph "
                             "replays the kernels back to back with one launch")
    cats = ctx.named(CAT, cat.HOST_OP_CATEGORIES)
    growing_cache = len(cats) and not ctx.is_training and _growing(ctx, cats)
    yield finding_of(
        "launch-bound",
        title=f"Launch-bound: the GPU is busy {busy:.0f}% of the time running {short:.0f}% kernels under 10 µs",
        evidence={
            "gpu_busy_pct": busy,
            "short_kernel_pct": short,
            "kernel_count": m["kernel_count"],
            "kernel_mean_us": m.get("kernel_mean_us"),
            "launch_cpu_ms": m["launch_cpu_ms"],
            "kernel_time_ms": m["kernel_time_ms"],
            "cuda_graph_launched_share": round(graph_launched_share(ctx), 3),
            "growing_cat_calls": int(len(cats)) if growing_cache else 0,
        },
        gain=gain,
        fix=Fix(
            summary="Remove per-kernel launch cost: torch.compile(mode=\"reduce-overhead\") or CUDA graphs, with "
                    "static shapes" + ("; grow no tensor with torch.cat inside the loop (preallocate the KV cache)"
                                       if growing_cache else "") + ".",
            code=CODE + (CODE_KV_CACHE if growing_cache else ""),
            docs=["https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs",
                  "https://pytorch.org/docs/stable/generated/torch.compile.html"],
        ),
    )


def _growing(ctx: TraceContext, cats: np.ndarray) -> bool:
    """Whether torch.cat's first input grows along the run (a cache extended one step at a time)."""
    sizes = []
    for i in cats.tolist():
        dims = ctx.input_dims(i)
        first = dims[0] if dims and isinstance(dims[0], list) else None
        if first and isinstance(first[0], list):
            first = first[0]  # cat takes a tensor list: its first tensor
        if first and all(type(d) is int for d in first):
            sizes.append(int(np.prod(first)))
    return len(set(sizes)) > 2 and sizes[-1] > sizes[0]


@rule("host-bound", "launch", TRACE_KINDS,
      "the GPU waits while the host runs operators (Python and dispatcher overhead), kernels not tiny")
@on_traces
def host_bound(ctx: TraceContext) -> Iterator[Finding]:
    m = ctx.metrics
    idle_pct = host_idle_pct(m)
    if idle_pct is None or idle_pct < MIN_HOST_IDLE_PCT or is_launch_bound(ctx):
        return
    idle_host = float(m.get("idle_host_busy_ms") or 0.0)
    if graph_launched_share(ctx) >= MAX_GRAPH_SHARE:
        return
    gain = ctx.gain(idle_host * 1000 * HOST_OVERHEAD_SAVED,
                    "half the GPU idle time while the host was busy in operators: torch.compile fuses the "
                    "small ops and cuts the per-op Python/dispatcher cost (CUDA graphs remove the rest)")
    phases = ctx.named(r"^#+ .* #+$", cat.ANNOTATION_CATEGORIES)
    by_phase: dict[str, float] = {}
    for i in phases.tolist():
        name = ctx.events.names[ctx.events.name[i]]
        by_phase[name] = by_phase.get(name, 0.0) + float(ctx.events.dur[i])
    yield finding_of(
        "host-bound",
        title=f"The GPU idles {idle_pct:.0f}% of the time while the host runs operators",
        evidence={
            "gpu_busy_pct": m.get("gpu_busy_pct"),
            "gpu_idle_host_busy_ms_per_step": round(ctx.per_step_ms(idle_host * 1000), 3),
            "gpu_idle_host_busy_pct": round(idle_pct, 2),
            "kernels_per_step": m.get("kernels_per_step"),
            "kernel_mean_us": m.get("kernel_mean_us"),
            "host_phase_ms_per_step": {k: round(ctx.per_step_ms(v), 3) for k, v in by_phase.items()},
        },
        gain=gain,
        fix=Fix(summary="Cut host overhead: torch.compile the model (fewer, fused kernels), or give each step "
                        "more work (a larger batch) so that the GPU stays ahead of the host.",
                code=CODE_COMPILE,
                docs=["https://pytorch.org/docs/stable/generated/torch.compile.html"]),
    )
