"""The input pipeline: the GPU waiting on data loading, and copies from pageable host memory."""

from __future__ import annotations

import re
from typing import Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule

MIN_INPUT_WAIT_PCT = 3.0
LOADER = re.compile(r"DataLoader\)#(_\w+)\.__next__")
PAGEABLE_H2D = re.compile(r"^Memcpy HtoD \(Pageable")
PINNED_SPEEDUP = 2.0

CODE_LOADER = '''import torch
from torch.utils.data import DataLoader, TensorDataset

dataset = TensorDataset(torch.randn(256, 16), torch.randn(256, 1))  # stands for your dataset
loader = DataLoader(
    dataset, batch_size=32, shuffle=True,
    num_workers=4,            # prepare batches in worker processes{workers_note}
    pin_memory=True,          # page-locked batches: asynchronous host-to-device copies
    persistent_workers=True,  # keep the workers between epochs
    prefetch_factor=4,        # batches each worker keeps ready
)
device = "cuda" if torch.cuda.is_available() else "cpu"
for x, y in loader:
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
'''
CODE_PINNED = '''import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
batch = torch.randn(16, 512)  # a host tensor, as in the trace's {count} pageable copies
if device == "cuda":
    batch = batch.pin_memory()  # or DataLoader(..., pin_memory=True)
x = batch.to(device, non_blocking=True)
'''


@rule("input-bound", "input", TRACE_KINDS,
      "the GPU idles while the host is loading input (DataLoader, host-to-device copies)")
@on_traces
def input_bound(ctx: TraceContext) -> Iterator[Finding]:
    wait_ms = float(ctx.metrics.get("idle_input_wait_ms") or 0.0)
    window_ms = float(ctx.metrics.get("gpu_window_ms") or 0.0)
    if not window_ms or 100 * wait_ms / window_ms < MIN_INPUT_WAIT_PCT:
        return
    e = ctx.events
    loading = ctx.named(cat.DATA_LOADING, cat.ANNOTATION_CATEGORIES | cat.HOST_OP_CATEGORIES)
    iterators = sorted({m.group(1) for c in np.unique(e.name[loading]).tolist()
                        if (m := LOADER.search(e.names[c]))})
    single = "_SingleProcessDataLoaderIter" in iterators
    gain = ctx.gain(wait_ms * 1000, "GPU idle time while the host was in data loading: batches prepared ahead "
                                    "by workers would be ready when the GPU asks")
    yield finding_of(
        "input-bound",
        title=f"The GPU idles {100 * wait_ms / window_ms:.0f}% of the time waiting for input",
        evidence={
            "gpu_idle_waiting_for_input_ms_per_step": round(ctx.per_step_ms(wait_ms * 1000), 3),
            "gpu_idle_waiting_for_input_pct": round(100 * wait_ms / window_ms, 2),
            "data_loading_ms_per_step": round(ctx.per_step_ms(float(e.dur[loading].sum())), 3),
            "dataloader_iterators": iterators,
            "num_workers": 0 if single else ("> 0" if iterators else None),
            "source": ctx.stacks.top_lines(loading),
        },
        gain=gain,
        fix=Fix(
            summary=("Load batches in worker processes (num_workers > 0) with pinned memory and "
                     "non-blocking copies." if single else
                     "The loader's workers do not keep up: raise num_workers and prefetch_factor, or make "
                     "__getitem__ cheaper (pre-tokenize, cache decoded samples)."),
            code=CODE_LOADER.format(workers_note=" (you had none)" if single else "; raise if still waiting"),
            docs=["https://pytorch.org/docs/stable/data.html#multi-process-data-loading"],
        ),
    )


@rule("pageable-memcpy", "input", TRACE_KINDS, "host-to-device copies from pageable (not pinned) memory")
@on_traces
def pageable_memcpy(ctx: TraceContext) -> Iterator[Finding]:
    copies = ctx.named(PAGEABLE_H2D, frozenset({"gpu_memcpy"}))
    if not len(copies):
        return
    e = ctx.events
    total_us = float(e.dur[copies].sum())
    nbytes = int(e.bytes[copies][e.bytes[copies] > 0].sum())
    gain = ctx.gain(total_us * (1 - 1 / PINNED_SPEEDUP),
                    "copy time x 1/2: pinned copies run at about twice the bandwidth and do not block the host")
    yield finding_of(
        "pageable-memcpy",
        title=f"{len(copies)} host-to-device copies from pageable memory",
        evidence={
            "copies_per_step": round(len(copies) / max(ctx.steps, 1), 2),
            "bytes_per_step": round(nbytes / max(ctx.steps, 1)),
            "copy_ms_per_step": round(ctx.per_step_ms(total_us), 3),
            "bandwidth_gb_per_s": round(nbytes / total_us / 1000, 2) if total_us else None,
        },
        gain=gain,
        fix=Fix(summary="Pin the host tensors (DataLoader(pin_memory=True) or .pin_memory()) and copy with "
                        "non_blocking=True.",
                code=CODE_PINNED.format(count=len(copies)),
                docs=["https://pytorch.org/docs/stable/notes/cuda.html#use-pinned-memory-buffers"]),
    )
