"""Distributed performance: ranks that hold the others back, and communication left exposed."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from workbench.inputs.analyzed import AnalyzedInput
from workbench.inputs.kineto import KIND_RANKS, KIND_TRACE
from workbench.rules.context import TraceContext, on_traces
from workbench.rules.finding import Finding, Fix
from workbench.rules.input import CODE_LOADER
from workbench.rules.registry import finding_of, rule

MIN_EXPOSED_PCT = 5.0  # exposed communication worth reporting, as a share of the step
MAX_OVERLAP_PCT = 50.0  # communication hidden behind compute at least this much is well overlapped
DDP_DOCS = "https://pytorch.org/docs/stable/generated/torch.nn.parallel.DistributedDataParallel.html"

CODE_BALANCE = '''import torch
import torch.distributed as dist

dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())  # torchrun sets these up
world, rank = dist.get_world_size(), dist.get_rank()
lengths = torch.randint(16, 512, (1024,))  # stands for your samples' sizes (tokens, rows, ids)
# Deal the samples out by size so that every rank gets about the same amount of work.
order = torch.argsort(lengths, descending=True)
mine = order[rank::world]
# Check the balance: the work of every rank, gathered.
work = torch.tensor([float(lengths[mine].sum())])
everyone = [torch.zeros(1) for _ in range(world)]
dist.all_gather(everyone, work)
print("work per rank:", [t.item() for t in everyone])
dist.destroy_process_group()
'''
CODE_HOST = '''import os
import torch

# A rank whose host is slower (oversubscribed cores, another process, throttling) launches late.
local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
torch.set_num_threads(max(1, cores // local_ranks))  # do not let the ranks of a node fight for cores
print("intra-op threads per rank:", torch.get_num_threads())
'''
CODE_OVERLAP = '''import contextlib
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("gloo", rank=0, world_size=1, store=dist.HashStore())  # torchrun sets these up
device = "cuda" if torch.cuda.is_available() else "cpu"
model = DDP(
    torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64)),
    bucket_cap_mb=25,              # smaller buckets: all-reduces start earlier in the backward pass
    gradient_as_bucket_view=True,  # gradients live in the buckets: no copy before each all-reduce
)
# With FSDP: FSDP(model, backward_prefetch=BackwardPrefetch.BACKWARD_PRE, forward_prefetch=True),
# or fully_shard(...) with module.set_modules_to_forward_prefetch(...) to gather the next layer early.
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
accumulation = 4
for i in range(8):
    last = (i + 1) % accumulation == 0
    with contextlib.nullcontext() if last else model.no_sync():  # all-reduce once per accumulated step
        model(torch.randn(8, 64)).sum().backward()
    if last:
        optimizer.step()
        optimizer.zero_grad()
dist.destroy_process_group()
'''


@rule("straggler-rank", "communication", (KIND_RANKS,),
      "a rank whose compute or step time is an outlier, or for whom the other ranks wait in collectives for a cause "
      "of its own")
def straggler_rank(input_: AnalyzedInput) -> Iterator[Finding]:
    step_ms = _median_step_ms(input_)
    for row in input_.tables.get("stragglers", []):
        blamed = "others waited" in row["outlier_in"]
        waited = float(row["others_wait_ms_per_step"] or 0.0)
        excess = float(np.nan_to_num(row["excess_compute_ms_per_step"]))
        if not blamed and excess <= 0:
            excess = float(row["step_time_ms"]) - step_ms if step_ms else 0.0
        gain = _gain(waited if blamed else excess, step_ms,
                     "the other ranks' wait for this rank in collectives, per step (what they would save if it "
                     "kept pace)" if blamed else "this rank's time above the other ranks' median, per step")
        cause = row["likely_cause"]
        work = row.get("extra_work") or []
        named = f"{cause}: {_work_named(work[0])}" if cause == "extra work" and work else cause
        yield finding_of(
            "straggler-rank",
            title=f"Rank {row['rank']} is a straggler" + (f" ({named})" if cause else "")
                  + (f": the other ranks wait {waited:.1f} ms/step for it in collectives" if blamed
                     else f": {excess:.1f} ms/step more {', '.join(row['outlier_in'])} than the median"),
            input=f"{input_.path} (rank {row['rank']})",
            evidence={**{k: v for k, v in row.items() if v is not None}, "median_step_time_ms": step_ms},
            gain=gain,
            fix=_straggler_fix(cause),
        )


@rule("exposed-communication", "communication", (KIND_TRACE, KIND_RANKS),
      "collectives that run with no computation beside them (poorly overlapped communication)")
@on_traces
def exposed_communication(ctx: TraceContext) -> Iterator[Finding]:
    exposed = ctx.metrics.get("exposed_comm_ms_per_step")
    overlap = ctx.metrics.get("communication_overlapped_pct")
    if exposed is None or not ctx.base_ms or 100 * exposed / ctx.base_ms < MIN_EXPOSED_PCT:
        return
    if overlap is not None and overlap >= MAX_OVERLAP_PCT:
        return
    compute = ctx.per_step_ms(float(ctx.metrics.get("computation_ms") or 0.0) * 1000)
    gain = ctx.gain(min(exposed, compute) * 1000 * max(ctx.steps, 1),
                    "exposed communication per step, at most the step's compute time that it could hide behind")
    kinds = ctx.tables.get("collectives", [])
    all_to_all = bool(kinds) and kinds[0]["kind"] == "all_to_all"
    yield finding_of(
        "exposed-communication",
        title=f"{exposed:.1f} ms/step of communication runs with nothing to hide behind "
              f"({overlap or 0:.0f}% overlapped with compute)",
        evidence={
            "exposed_comm_ms_per_step": round(exposed, 3),
            "comm_overlap_pct": overlap,
            "compute_ms_per_step": round(compute, 3),
            "collectives_by_time": [{k: c[k] for k in ("kind", "count", "total_ms", "algbw_gbps")} for c in kinds[:5]],
        },
        gain=gain,
        fix=Fix(
            summary=("Start gradient all-reduces during the backward pass and do fewer of them: DDP "
                     "bucket_cap_mb and gradient_as_bucket_view, no_sync() over accumulation steps, FSDP "
                     "forward/backward prefetch" + ("; all_to_all dominates: pipeline the embedding input "
                                                     "distribution with the previous batch's compute"
                                                     if all_to_all else "") + "."),
            code=CODE_OVERLAP,
            docs=[DDP_DOCS, "https://pytorch.org/docs/stable/notes/ddp.html"],
        ),
    )


def _work_named(work: dict[str, Any]) -> str:
    """`kind name`, and how much longer its calls take than the median rank's when that is what is extra."""
    named = f"{work['kind']} {work['name']}"
    if work.get("slower_per_call"):
        named += f", {work['shortest_call_ms'] / work['median_shortest_call_ms']:.1f}x the median rank's time per call"
    return named


def _straggler_fix(cause: str | None) -> Fix:
    if cause == "extra work":
        return Fix("This rank runs work the others do not (the extra_work evidence names it, with its calls per step "
                   "and its shortest call against the median rank's): make the branch conditional on all ranks alike, "
                   "or deal that work out evenly (sequences of like lengths on every rank: bucket or pack them).", CODE_BALANCE, ["https://pytorch.org/docs/stable/distributed.html#torch.distributed.all_gather"])
    if cause == "data loading":
        return Fix("This rank waits on its input: load batches in worker processes with pinned memory, and check "
                   "its storage (a slow disk or network mount on one node).",
                   CODE_LOADER.format(workers_note=""),
                   ["https://pytorch.org/docs/stable/data.html#multi-process-data-loading"])
    if cause == "host-bound":
        return Fix("This rank's host is slower to launch work: give each rank its own cores and look for other "
                   "processes or throttling on its node.", CODE_HOST,
                   ["https://pytorch.org/docs/stable/generated/torch.set_num_threads.html"])
    return Fix("This rank computes more than the others: balance the work (batch sizes, sequence lengths, "
               "embedding table sharding) and check its GPU for throttling (nvidia-smi -q -d CLOCK).",
               CODE_BALANCE, ["https://pytorch.org/docs/stable/distributed.html#torch.distributed.all_gather"])


def _gain(ms_per_step: float, step_ms: float | None, method: str) -> dict[str, Any]:
    pct = 100.0 * ms_per_step / step_ms if step_ms else 0.0
    return {"time_ms_per_step": round(ms_per_step, 3), "pct": round(pct, 2), "method": method}


def _median_step_ms(input_: AnalyzedInput) -> float | None:
    values = [r.metrics.get("step_time_ms_mean") for r in input_.ranks] or [input_.metrics.get("step_time_ms_mean")]
    known = [float(v) for v in values if isinstance(v, (int, float))]
    return float(np.median(known)) if known else None

