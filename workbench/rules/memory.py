"""Out-of-memory root causes: fragmentation, capacity, other processes and memory caps."""

from __future__ import annotations

from typing import Any, Iterator

from workbench.inputs.analyzed import AnalyzedInput
from workbench.rules.finding import Finding, Fix, memory_gain
from workbench.rules.memory_facts import (
    ALLOC_CONF_DOCS, MEMORY_KINDS, RECORD_HISTORY_CODE, SNAPSHOT_DOCS, oom_facts, oom_gain,
)
from workbench.rules.memory_fixes import alloc_conf_advice, capacity_fix, fragmentation_code
from workbench.rules.registry import rule
from workbench.units import format_bytes

OTHER_PROCESS_MIN_BYTES = 1 << 30


@rule("oom-fragmentation", "memory", MEMORY_KINDS,
      "OOM while the cache held enough free memory, split into blocks too small for the request")
def oom_fragmentation(input_: AnalyzedInput) -> Iterator[Finding]:
    facts = oom_facts(input_)
    if facts is None or facts.cause() != "fragmentation":
        return
    pattern = _pinning_pattern(input_)
    advice = alloc_conf_advice(facts, input_.metrics)
    largest = (f"the largest free block is {format_bytes(facts.largest_free_block)}"
               if facts.largest_free_block is not None else "no free block was large enough")
    evidence: dict[str, Any] = {**facts.numbers(), "oom_stack": facts.stack[:6], "allocation_pattern": pattern,
                                "allocator_settings": advice["settings"], "alloc_conf": advice["notes"]}
    pools = input_.tables.get("pools_at_oom")
    if pools:
        evidence["pools_at_oom"] = pools
    yield Finding(
        id="oom-fragmentation", severity="critical", category="memory", evidence=evidence,
        title=(f"Out of memory from fragmentation: {format_bytes(facts.cached_free())} reserved but unallocated "
               f"could hold the {format_bytes(facts.requested)} request, but {largest}"),
        estimated_gain=oom_gain("fragmentation OOM"),
        fix=Fix(summary=" ".join([pattern.get("explanation", ""), advice["summary"]]).strip(),
                code=fragmentation_code(advice), docs=[ALLOC_CONF_DOCS, SNAPSHOT_DOCS]),
    )


@rule("oom-capacity", "memory", MEMORY_KINDS, "OOM because live tensors fill the device")
def oom_capacity(input_: AnalyzedInput) -> Iterator[Finding]:
    facts = oom_facts(input_)
    if facts is None or facts.cause() != "capacity":
        return
    categories = input_.tables.get("categories_at_oom") or []
    sites = input_.tables.get("sites_at_oom") or []
    fix = capacity_fix(facts, categories, input_.meta.get("is_training", True))
    evidence: dict[str, Any] = {**facts.numbers(), "oom_stack": facts.stack[:6],
                                "live_by_category": categories[:5], "top_sites": sites[:5]}
    if None not in (facts.device_free, facts.reserved_unallocated, facts.requested):
        evidence["shortfall_bytes"] = max(0, facts.requested - facts.device_free - facts.reserved_unallocated)
        evidence["shortfall"] = format_bytes(evidence["shortfall_bytes"])
    if note := facts.segment_note():
        evidence["request_note"] = note
    where = f"; most of it from {sites[0]['site']} ({format_bytes(sites[0]['bytes'])})" if sites else ""
    live = f"{format_bytes(facts.allocated)} live" if facts.allocated is not None else "live tensors"
    total = f" of {format_bytes(facts.total)}" if facts.total else ""
    request = format_bytes(facts.requested) if facts.requested is not None else "the next allocation"
    segment = f" ({note})" if note else ""
    yield Finding(
        id="oom-capacity", severity="critical", category="memory", evidence=evidence,
        title=f"Out of memory: {live}{total} left no room for {request}{segment}{where}",
        estimated_gain=oom_gain("OOM"),
        fix=fix,
    )


@rule("oom-other-processes", "memory", MEMORY_KINDS, "OOM while other processes held memory on the same GPU")
def oom_other_processes(input_: AnalyzedInput) -> Iterator[Finding]:
    facts = oom_facts(input_)
    others = (facts.message.get("other_processes") or {}) if facts else {}
    held = sum(others.values())
    if not facts or held < min(OTHER_PROCESS_MIN_BYTES, facts.requested or OTHER_PROCESS_MIN_BYTES):
        return
    decisive = facts.cause() == "other-processes"
    yield Finding(
        id="oom-other-processes", severity="critical" if decisive else "warning", category="memory",
        evidence={**facts.numbers(), "other_processes": {str(pid): format_bytes(n) for pid, n in others.items()},
                  "other_processes_bytes": held, "would_fit_without_them": decisive},
        title=(f"{len(others)} other process(es) hold {format_bytes(held)} on this GPU"
               + ("; without them the request would have fit" if decisive else "")),
        estimated_gain=oom_gain("OOM") if decisive else memory_gain(
            held, 100.0 * held / (facts.total or held), "the memory the other processes hold, and its share of the device"),
        fix=Fix(summary=("Free the GPU before the run: stop stale notebook kernels or jobs holding it (the PIDs "
                         "are in the evidence), or pin each job to its own GPU with CUDA_VISIBLE_DEVICES."),
                code=_OTHER_PROCESSES_CODE, docs=["https://docs.pytorch.org/docs/stable/generated/torch.cuda.list_gpu_processes.html"]),
    )


@rule("oom-memory-cap", "memory", MEMORY_KINDS,
      "CUDA OOM at a per-process memory cap (set_per_process_memory_fraction), not at the device's size")
def oom_memory_cap(input_: AnalyzedInput) -> Iterator[Finding]:
    facts = oom_facts(input_)
    if facts is None or facts.cause() != "memory-cap":
        return
    allowed = facts.message["allowed_bytes"]
    yield Finding(
        id="oom-memory-cap", severity="critical", category="memory",
        evidence={**facts.numbers(), "allowed_bytes": allowed, "allowed": format_bytes(allowed),
                  "message": facts.message.get("text", "")[:400]},
        title=(f"Out of memory at a cap of {format_bytes(allowed)} set by torch.cuda.set_per_process_memory_fraction"
               f" while the device has {format_bytes(facts.total)}"),
        estimated_gain=oom_gain("OOM"),
        fix=Fix(summary=("Raise or remove torch.cuda.set_per_process_memory_fraction for this process, "
                         "or reduce what it keeps alive."),
                code=_CUDA_CAP_CODE,
                docs=["https://docs.pytorch.org/docs/stable/generated/torch.cuda.memory.set_per_process_memory_fraction.html"]),
    )


@rule("oom-without-snapshot", "memory", ("oom_message",),
      "an OOM message with no allocator snapshot: record one to see what was live")
def oom_without_snapshot(input_: AnalyzedInput) -> Iterator[Finding]:
    message = input_.meta.get("oom_message", {})
    if message.get("backend") not in ("cuda", "hip", "xpu") or message.get("kind") == "runtime":
        return
    yield Finding(
        id="oom-without-snapshot", severity="info", category="memory",
        evidence={"message": input_.meta["oom_message"]["text"][:400]},
        title="Only the OOM message was given: record an allocator snapshot to see what was live and where it came from",
        estimated_gain={"pct": 0.1, "method": "no time is saved; the next OOM can be diagnosed to its source line",
                        "prevents": "the next OOM diagnosed without what was live"},
        fix=Fix(summary="Record the allocator history and dump a snapshot when the OOM happens; analyze it with workbench.",
                code=RECORD_HISTORY_CODE, docs=[SNAPSHOT_DOCS]),
    )


@rule("memory-growing-allocations", "memory", ("memory_snapshot",),
      "requests that grow a little every time (torch.cat onto a cache): freed blocks never fit the next one")
def growing_allocations(input_: AnalyzedInput) -> Iterator[Finding]:
    rows = input_.tables.get("growing_sites") or []
    total = input_.metrics.get("history_requested_bytes") or 0
    for row in rows[:1]:
        share = 100.0 * row["requested_bytes_total"] / total if total else 0.0
        yield Finding(
            id="memory-growing-allocations", severity="critical" if "oom_requested_bytes" in input_.metrics else "warning",
            category="memory", evidence={**row, "share_of_requested_bytes_pct": round(share, 1), "other_sites": rows[1:]},
            title=(f"{row['site']} allocated {row['allocations']} blocks growing from {format_bytes(row['first_bytes'])} "
                   f"to {format_bytes(row['last_bytes'])}, about {format_bytes(row['growth_per_new_size_bytes'])} more "
                   "each time: a tensor grown by concatenation"),
            estimated_gain=memory_gain(row["requested_bytes_total"], share, "the bytes these growing allocations "
                                       "requested, and their share of all bytes requested in the history; each one "
                                       "also copies the whole tensor"),
            fix=Fix(summary=("Preallocate the tensor at its final size (a static KV cache) and write each step into a "
                             "slice, instead of torch.cat onto it: one allocation, no copies, nothing left for the cache "
                             "to fragment."),
                    code=_STATIC_CACHE_CODE,
                    docs=["https://huggingface.co/docs/transformers/main/en/kv_cache#static-cache"]),
        )


def _pinning_pattern(input_: AnalyzedInput) -> dict[str, Any]:
    """Which live blocks split the free memory, and how they came to be there."""
    rows = input_.tables.get("pinning_sites_at_oom") or []
    if not rows:
        return {}
    top = rows[0]
    pattern = {k: top[k] for k in ("site", "bytes", "blocks", "segments", "free_bytes_beside",
                                   "allocations_before", "frees_before", "stack") if k in top}
    churn = (f"{top['site']} allocated {top['allocations_before']} blocks and freed {top['frees_before']} of "
             "them before the OOM; " if top.get("allocations_before") else "")
    pattern["explanation"] = (
        f"{churn}its {top['blocks']} surviving blocks ({format_bytes(top['bytes'])}) sit in {top['segments']} "
        f"segment(s) beside {format_bytes(top['free_bytes_beside'])} of free memory, which they split into "
        "pieces too small for the request.")
    return pattern


_OTHER_PROCESSES_CODE = '''
import os
import torch

if torch.cuda.is_available():
    print(torch.cuda.list_gpu_processes())  # the PIDs and memory of every process on this GPU
    free, total = torch.cuda.mem_get_info()
    print(f"free {free / 2**30:.2f} GiB of {total / 2**30:.2f} GiB before this job allocates anything")
# Give each job its own GPU (set before CUDA initializes, e.g. in the launcher):
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")
'''

_STATIC_CACHE_CODE = '''
import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
batch, heads, head_dim, max_len = 2, 4, 16, 64
k_cache = torch.zeros(batch, heads, max_len, head_dim, device=device)  # allocated once, at its final size
v_cache = torch.zeros_like(k_cache)
for pos in range(max_len):
    k_new, v_new = torch.randn(2, batch, heads, 1, head_dim, device=device)
    # Before: k = torch.cat([k, k_new], dim=2) allocated a larger tensor (and copied the cache) every token
    k_cache[:, :, pos : pos + 1] = k_new
    v_cache[:, :, pos : pos + 1] = v_new
    k, v = k_cache[:, :, : pos + 1], v_cache[:, :, : pos + 1]  # views: what attention reads
'''

_CUDA_CAP_CODE = '''
import torch

if torch.cuda.is_available():
    # A fraction set earlier (here or by a framework) caps this process below the device's size.
    torch.cuda.set_per_process_memory_fraction(0.95)  # raise it, or leave it unset to use the whole GPU
'''
