"""The GPU left without work: long starvation gaps, and low utilization over the run.

These match Nsight Systems' `gpu-starv` and `gpu-low-util` rules and add what the host was
doing meanwhile: the annotations (NVTX ranges, profiler steps) around each gap, the host
calls that filled it on the threads that launch GPU work, with their call stacks when the
trace recorded them.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.gpu_gaps import GAP_MIN_US, LOW_UTILIZATION_PCT, Span, gpu_gaps, low_utilization
from workbench.models.trace import MISSING
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule
from workbench.rules.summaries import native_stack

MAX_GAPS = 5
HOST_CALLS = frozenset({"os_runtime", "cpu_op"}) | cat.RUNTIME_CATEGORIES

CODE_GAPS = '''import queue
import threading
import time

import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Linear(1024, 1024, device=device)  # stands for your model
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

# Move slow host work (checkpoints, evaluation, logging, sleeps, file I/O) off the thread that
# feeds the GPU, and name the phases with NVTX ranges so the next profile shows what a gap is.
jobs: queue.Queue = queue.Queue()


def host_worker() -> None:
    while jobs.get() is not None:
        time.sleep(0.01)  # stands for the host work that left the GPU idle


worker = threading.Thread(target=host_worker, daemon=True)
worker.start()
for step in range(3):
    if torch.cuda.is_available():
        torch.cuda.nvtx.range_push(f"step {step}")
    loss = model(torch.randn(64, 1024, device=device)).pow(2).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    jobs.put(step)  # hand the slow part over; the GPU keeps getting work
    if torch.cuda.is_available():
        torch.cuda.nvtx.range_pop()
jobs.put(None)
worker.join()
'''
CODE_UTILIZATION = '''import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 1024)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
if device == "cuda":
    model = torch.compile(model)  # fewer, larger kernels; mode="reduce-overhead" also replays CUDA graphs
batch = {batch}  # more work per launch: raise the batch until the GPU is busy or memory is full
for _ in range(2):
    loss = model(torch.randn(batch, 1024, device=device)).pow(2).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
'''


def _overlapping(ctx: TraceContext, mask: np.ndarray, gap: Span) -> tuple[np.ndarray, np.ndarray]:
    """Events in `mask` overlapping the gap, and their overlap (µs), largest first."""
    e = ctx.events
    index = np.flatnonzero(mask & (e.ts < gap.end) & (e.end > gap.start))
    overlap = np.minimum(e.end[index], gap.end) - np.maximum(e.ts[index], gap.start)
    order = np.argsort(-overlap, kind="stable")
    return index[order], overlap[order]


def _launch_of(ctx: TraceContext, gpu_event: int) -> int | None:
    """Index of the host call that launched a GPU event (matched by correlation id), None when unknown."""
    e = ctx.events
    if e.correlation[gpu_event] == MISSING:
        return None
    calls = np.flatnonzero(e.category_mask(cat.RUNTIME_CATEGORIES) & (e.correlation == e.correlation[gpu_event]))
    return int(calls[0]) if len(calls) else None


def _gap_evidence(ctx: TraceContext, gap: Span) -> dict[str, Any]:
    """The gap, the launch that ended it, and what that launch's thread did meanwhile."""
    e = ctx.events
    after = np.flatnonzero((ctx.kinds != cat.NOT_GPU) & (e.device == gap.device) & (e.ts >= gap.end))
    work = int(after[np.argmin(e.ts[after])])  # a gap always lies between two GPU activities
    launch = _launch_of(ctx, work)
    thread = (e.pid == e.pid[launch]) & (e.tid == e.tid[launch]) if launch is not None else e.device == MISSING
    notes, notes_us = _overlapping(ctx, e.category_mask(cat.ANNOTATION_CATEGORIES), gap)
    calls, calls_us = _overlapping(ctx, thread & e.category_mask(HOST_CALLS), gap)
    before = np.flatnonzero(e.category_mask(cat.RUNTIME_CATEGORIES) & thread & (e.ts <= gap.start))
    last_call = before[np.argmax(e.ts[before])] if len(before) else None
    return {
        "device": gap.device,
        "start_ns": round(gap.start * 1000),
        "duration_ms": round(gap.duration / 1000, 3),
        "last_cuda_call_before": e.names[e.name[last_call]] if last_call is not None else None,
        "ended_by": {"gpu_work": e.names[e.name[work]],
                     "launched_by": e.names[e.name[launch]] if launch is not None else None,
                     "launched_at_ns": round(e.ts[launch] * 1000) if launch is not None else None},
        "annotations": [{"name": e.names[e.name[i]], "overlap_ms": round(us / 1000, 3)}
                        for i, us in zip(notes[:3].tolist(), notes_us[:3].tolist())],
        "host_calls": [{"call": e.names[e.name[i]], "category": e.categories[e.cat[i]],
                        "overlap_ms": round(us / 1000, 3), "stack": native_stack(ctx, i)}
                       for i, us in zip(calls[:3].tolist(), calls_us[:3].tolist())],
    }


@rule("gpu-gaps", "launch", TRACE_KINDS,
      "the GPU starves: gaps of 500 ms or more with no kernel, memcpy or memset (nsys gpu-starv)")
@on_traces
def gpu_gaps_rule(ctx: TraceContext) -> Iterator[Finding]:
    gaps = gpu_gaps(ctx.events, ctx.kinds)
    window_ms = float(ctx.metrics.get("gpu_window_ms") or 0.0)
    if not gaps or not window_ms:
        return
    total_ms = sum(g.duration for g in gaps) / 1000
    pct = round(100.0 * total_ms / window_ms, 2)
    yield finding_of(
        "gpu-gaps",
        title=f"{len(gaps)} GPU gap(s) of {GAP_MIN_US / 1e6:g} s or more: {total_ms / 1000:.2f} s "
              f"({pct:.0f}% of the GPU window) with no GPU work",
        evidence={"gap_count": len(gaps), "gap_total_ms": round(total_ms, 3), "gpu_window_ms": round(window_ms, 3),
                  "gaps": [_gap_evidence(ctx, g) for g in gaps[:MAX_GAPS]]},
        gain={"time_ms": round(total_ms, 3), "pct": pct,
              "method": "the gaps' length as a share of the GPU window: work queued across them "
                        "would have kept the GPU busy"},
        fix=Fix(summary="Find what the host did in each gap (host_calls, annotations) and move it off the thread "
                        "that feeds the GPU, or overlap it with GPU work; warm up libraries before timing.",
                code=CODE_GAPS,
                docs=["https://docs.nvidia.com/nsight-systems/UserGuide/index.html#expert-systems-analysis",
                      "https://pytorch.org/docs/stable/cuda.html#nvidia-tools-extension-nvtx"]),
    )


@rule("low-gpu-utilization", "launch", TRACE_KINDS,
      "the GPU is busy less than half of its window (nsys gpu-low-util)")
@on_traces
def low_gpu_utilization(ctx: TraceContext) -> Iterator[Finding]:
    busy = ctx.metrics.get("gpu_busy_pct")
    if busy is None or busy >= LOW_UTILIZATION_PCT:
        return
    m = ctx.metrics
    window_ms = float(m["gpu_window_ms"])
    gaps_ms = sum(g.duration for g in gpu_gaps(ctx.events, ctx.kinds)) / 1000
    idle_ms = max(float(m["idle_other_ms"]) - gaps_ms, 0.0)
    pct = round(100.0 * idle_ms / window_ms, 2) if window_ms else 0.0
    causes = {k: round(float(m.get(f"idle_{k}_ms") or 0.0), 3) for k in ("input_wait", "sync", "host_busy", "other")}
    yield finding_of(
        "low-gpu-utilization",
        title=f"The GPU is busy {busy:.1f}% of its {window_ms:.1f} ms window",
        evidence={
            "gpu_busy_pct": busy,
            "gpu_window_ms": round(window_ms, 3),
            "idle_ms_by_host_activity": causes,
            "idle_ms_in_long_gaps": round(gaps_ms, 3),
            "low_utilization_regions": [
                {"device": r.device, "start_ns": round(r.start * 1000), "duration_ms": round(r.duration / 1000, 3),
                 "busy_pct": r.busy_pct} for r in low_utilization(ctx.events, ctx.kinds)],
        },
        gain={"time_ms": round(idle_ms, 3), "pct": pct,
              "method": "GPU idle time that neither the long gaps (gpu-gaps) nor the host's input waits, "
                        "syncs and launches (input-bound, host-sync, launch-bound, host-bound) account "
                        "for, as a share of the GPU window"},
        fix=Fix(summary="Give the GPU more work per launch (a larger batch, fused or compiled kernels, CUDA "
                        "graphs) and see the launch-bound/host-bound findings for where the host time goes.",
                code=CODE_UTILIZATION.format(batch=1024),
                docs=["https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html"]),
    )
