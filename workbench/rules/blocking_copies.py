"""Synchronous memcpy and memset calls: the host blocks until the GPU has done the transfer.

Matches Nsight Systems' `cuda-sync-memcpy` and `cuda-sync-memset` rules: calls of the
non-Async APIs (cudaMemcpy, cudaMemset, cuMemcpyDtoH, ...). Host-to-device copies of 64 KB
or less from pageable memory are left out, as nsys does: the driver stages them and
returns at once.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterator

import numpy as np

from workbench.analyses import categories as cat
from workbench.models.trace import MISSING
from workbench.rules.context import TRACE_KINDS, TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.registry import finding_of, rule
from workbench.rules.summaries import native_stack

SYNC_TRANSFER = re.compile(
    r"^(cuda|hip)(Memcpy|Memcpy2D|Memcpy3D|MemcpyToSymbol|MemcpyFromSymbol|MemcpyPeer|Memset|Memset2D|Memset3D)$"
    r"|^cuMemcpy(HtoD|DtoH|DtoD|Peer|2D|3D)?(_v2)?$|^cuMemsetD(8|16|32|2D8|2D16|2D32)(_v2)?$")
STAGED_PAGEABLE = re.compile(r"^Memcpy HtoD \(Pageable")
STAGED_BYTES = 64 * 1024

CODE = '''import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
host = torch.randn(1 << 20)
if device == "cuda":
    host = host.pin_memory()  # page-locked: the copy below runs asynchronously (cudaMemcpyAsync)
    copy_stream = torch.cuda.Stream()
    with torch.cuda.stream(copy_stream):
        on_gpu = host.to(device, non_blocking=True)
        cleared = torch.zeros(1 << 20, device=device)  # cudaMemsetAsync on the stream, no host wait
    torch.cuda.current_stream().wait_stream(copy_stream)  # order the GPU work, not the host
else:
    on_gpu, cleared = host.clone(), torch.zeros(1 << 20)
# In CUDA C++: cudaMemcpyAsync/cudaMemsetAsync on a stream, from cudaHostAlloc'ed buffers,
# instead of cudaMemcpy/cudaMemset; synchronize once, where the result is needed.
'''


@rule("sync-memcpy", "launch", TRACE_KINDS,
      "synchronous memcpy/memset API calls that block the host (nsys cuda-sync-memcpy, cuda-sync-memset)")
@on_traces
def sync_memcpy(ctx: TraceContext) -> Iterator[Finding]:
    e = ctx.events
    calls = ctx.named(SYNC_TRANSFER, cat.RUNTIME_CATEGORIES)
    if not len(calls):
        return
    gpu = np.flatnonzero(ctx.kinds != cat.NOT_GPU)
    transfers = gpu[np.isin(e.correlation[gpu], e.correlation[calls]) & (e.correlation[gpu] != MISSING)]
    staged = transfers[e.name_mask(STAGED_PAGEABLE.match)[transfers]
                       & (e.bytes[transfers] >= 0) & (e.bytes[transfers] <= STAGED_BYTES)]
    calls = calls[~np.isin(e.correlation[calls], e.correlation[staged])]
    if not len(calls):
        return
    transfers = transfers[np.isin(e.correlation[transfers], e.correlation[calls])]
    blocked_us = float(e.dur[calls].sum())
    gain = ctx.gain(blocked_us, "host time blocked in the synchronous calls: asynchronous copies from pinned "
                                "memory let the host go on queuing work")
    longest = int(calls[np.argmax(e.dur[calls])])
    yield finding_of(
        "sync-memcpy",
        title=f"{len(calls)} synchronous memcpy/memset call(s) block the host",
        evidence={
            "calls": dict(Counter(e.names[c] for c in e.name[calls].tolist())),
            "host_blocked_ms_per_step": round(ctx.per_step_ms(blocked_us), 3),
            "transfers": dict(Counter(e.names[c] for c in e.name[transfers].tolist())),
            "bytes": int(e.bytes[transfers][e.bytes[transfers] > 0].sum()),
            "longest_call": {"call": e.names[e.name[longest]], "start_ns": round(e.ts[longest] * 1000),
                             "ms": round(float(e.dur[longest]) / 1000, 3), "stack": native_stack(ctx, longest)},
        },
        gain=gain,
        fix=Fix(summary="Use cudaMemcpyAsync/cudaMemsetAsync on a stream from pinned memory (in PyTorch: "
                        "pin_memory() and non_blocking=True) and synchronize only where the result is needed.",
                code=CODE,
                docs=["https://docs.nvidia.com/cuda/cuda-runtime-api/api-sync-behavior.html",
                      "https://pytorch.org/docs/stable/notes/cuda.html#use-pinned-memory-buffers"]),
    )
