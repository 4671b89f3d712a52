"""OOM causes that no allocator setting fixes: a request larger than the device, numbers that
contradict a full device (inconclusive: what to check), and runtime OOMs outside the allocator."""

from __future__ import annotations

from typing import Any, Iterator

from workbench.inputs.analyzed import AnalyzedInput
from workbench.rules.finding import Finding, Fix
from workbench.rules.memory_facts import MEMORY_KINDS, OomFacts, oom_facts, oom_gain
from workbench.rules.registry import rule
from workbench.units import format_bytes

CUDA_DOCS = "https://docs.pytorch.org/docs/stable/notes/cuda.html#memory-management"
MEM_GET_INFO_DOCS = "https://docs.pytorch.org/docs/stable/generated/torch.cuda.mem_get_info.html"


@rule("oom-request-exceeds-device", "memory", MEMORY_KINDS,
      "one allocation larger than the whole device: it cannot fit on this GPU whatever else is freed")
def request_exceeds_device(input_: AnalyzedInput) -> Iterator[Finding]:
    facts = oom_facts(input_)
    if facts is None or facts.cause() != "exceeds-device":
        return
    times = facts.requested / facts.total
    yield Finding(
        id="oom-request-exceeds-device", severity="critical", category="memory",
        evidence={**facts.numbers(), "times_device": round(times, 2), "oom_stack": facts.stack[:6]},
        title=(f"This one allocation of {format_bytes(facts.requested)} cannot fit on this GPU "
               f"({format_bytes(facts.total)} in all, {times:.1f}x its size): no allocator setting or freed "
               "memory can make room for it"),
        estimated_gain=oom_gain("OOM"),
        fix=Fix(summary=("Make the tensor itself smaller: process the batch, sequence or image in chunks (the "
                         "failing line is in the evidence), compute attention with scaled_dot_product_attention "
                         "instead of materializing the scores, use a lower precision, or shard the tensor across "
                         "GPUs. Check the shape first: a request this size is often a broadcast or a wrong dimension."),
                code=_CHUNK_CODE, docs=[CUDA_DOCS]),
    )


@rule("oom-inconclusive", "memory", MEMORY_KINDS,
      "an OOM whose numbers contradict a full device: which causes they allow and what to check")
def inconclusive(input_: AnalyzedInput) -> Iterator[Finding]:
    facts = oom_facts(input_)
    if facts is None or facts.cause() != "inconclusive":
        return
    candidates = _candidates(facts)
    evidence: dict[str, Any] = {**facts.numbers(), "candidates": candidates, "oom_stack": facts.stack[:6]}
    outside = facts.outside_pytorch()
    if outside is not None:
        evidence["outside_pytorch_bytes"], evidence["outside_pytorch"] = outside, format_bytes(outside)
    if note := facts.segment_note():
        evidence["request_note"] = note
    if facts.requested is None:
        title = "Out of memory, but the text gives neither the request nor what PyTorch held"
    elif facts.device_free is not None and facts.device_free >= facts.requested:
        segment = f" ({note})" if note else ""
        title = (f"Not a full GPU: the device reported {format_bytes(facts.device_free)} free, more than the "
                 f"{format_bytes(facts.requested)} request{segment}, while PyTorch held {format_bytes(facts.allocated or 0)}")
    else:
        title = (f"Not PyTorch's memory: {format_bytes(outside or 0)} of the {format_bytes(facts.total or 0)} device "
                 f"is held outside PyTorch's cache (PyTorch holds {format_bytes((facts.allocated or 0) + facts.cached_free())})")
    yield Finding(
        id="oom-inconclusive", severity="critical", category="memory", evidence=evidence, title=title,
        estimated_gain=oom_gain("OOM"),
        fix=Fix(summary="Not a capacity problem, so a smaller batch is not the fix. Check, in this order: "
                        + "; ".join(c["check"] for c in candidates) + ".",
                code=_CHECK_CODE, docs=[MEM_GET_INFO_DOCS, CUDA_DOCS]),
    )


@rule("oom-cuda-runtime", "memory", ("oom_message",),
      "an OOM raised by the CUDA runtime or a library (cuBLAS, cuDNN), outside the caching allocator")
def cuda_runtime(input_: AnalyzedInput) -> Iterator[Finding]:
    facts = oom_facts(input_)
    if facts is None or facts.cause() != "runtime":
        return
    message = facts.message
    library = message.get("library")
    what = (f"{library.replace('CUBLAS', 'cuBLAS').replace('CUDNN', 'cuDNN')} could not allocate its workspace"
            + (f" in {message['library_call']}()" if message.get("library_call") else "")
            if library else "the CUDA runtime itself ran out of memory")
    yield Finding(
        id="oom-cuda-runtime", severity="critical", category="memory",
        evidence={**facts.numbers(), "error_type": message.get("error_type"), "library": library,
                  "library_call": message.get("library_call"), "message": message.get("text", "")[:400],
                  "oom_stack": facts.stack[:6],
                  "unknown": "the request size and what PyTorch held: this error comes from outside the allocator"},
        title=(f"CUDA out of memory outside PyTorch's allocator: {what}; the size is unknown and the traceback may "
               "point at a later call (errors are asynchronous)"),
        estimated_gain=oom_gain("OOM"),
        fix=Fix(summary=("Rerun with CUDA_LAUNCH_BLOCKING=1 to see the call that really failed. Memory outside the "
                         "cache (CUDA context, cuBLAS/cuDNN workspaces, NCCL buffers) needs free device memory: "
                         "check nvidia-smi for other processes on the GPU, call torch.cuda.empty_cache() before the "
                         "first cuBLAS/cuDNN call so the cache returns what it does not use, or cap the cache with "
                         "torch.cuda.set_per_process_memory_fraction to leave room. If memory is plentiful, suspect the "
                         "driver: a GPU in a bad state (nvidia-smi -q, dmesg Xid errors) fails every allocation."),
                code=_RUNTIME_CODE, docs=[CUDA_DOCS]),
    )


def _candidates(facts: OomFacts) -> list[dict[str, str]]:
    """The causes the numbers allow, most likely first, each with its check."""
    out = []
    outside = facts.outside_pytorch()
    if outside is not None and facts.requested is not None and outside >= facts.requested:
        out.append({"cause": f"other processes or non-PyTorch memory of this process hold {format_bytes(outside)}",
                    "check": "nvidia-smi (or torch.cuda.list_gpu_processes()) for other processes on the GPU"})
    if facts.device_free is not None and facts.requested is not None and facts.device_free >= facts.requested:
        out.append({"cause": "a per-process cap (set_per_process_memory_fraction) set by this code or a framework",
                    "check": "whether torch.cuda.set_per_process_memory_fraction is called (torch < 2.1 does not print "
                             "the cap)"})
        out.append({"cause": "free device memory too scattered for one contiguous allocation (outside PyTorch's cache)",
                    "check": "torch.cuda.mem_get_info() at the start of the run against nvidia-smi"})
    out.append({"cause": "a MIG slice, another GPU than intended, or a shared/unified-memory device reporting its "
                         "share", "check": "CUDA_VISIBLE_DEVICES and nvidia-smi -L (MIG devices) for the device used"})
    out.append({"cause": "the driver or a GPU in a bad state",
                "check": "nvidia-smi -q and dmesg for Xid errors, then a reset of the GPU"})
    return out


_CHUNK_CODE = '''
import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Linear(512, 512).to(device)
batch = torch.randn(4096, 512, device=device)
# Before: out = model(batch) asked for one tensor larger than the device.
with torch.inference_mode():
    out = torch.cat([model(chunk) for chunk in batch.split(512)])  # each chunk fits; the result is the same
'''

_CHECK_CODE = '''
import os
import torch

print("CUDA_VISIBLE_DEVICES =", os.environ.get("CUDA_VISIBLE_DEVICES"))
if torch.cuda.is_available():
    free, total = torch.cuda.mem_get_info()
    print(f"{torch.cuda.get_device_name()}: {free / 2**30:.2f} GiB free of {total / 2**30:.2f} GiB")
    print(torch.cuda.list_gpu_processes())  # other processes on this GPU (needs pynvml)
    print(f"PyTorch reserved {torch.cuda.memory_reserved() / 2**30:.2f} GiB, "
          f"allocated {torch.cuda.memory_allocated() / 2**30:.2f} GiB")
'''

_RUNTIME_CODE = '''
import os

os.environ.setdefault("CUDA_LAUNCH_BLOCKING", "1")  # the traceback then points at the call that failed
import torch

if torch.cuda.is_available():
    torch.cuda.empty_cache()  # give the cache's unused memory back before cuBLAS/cuDNN allocate workspaces
    free, total = torch.cuda.mem_get_info()
    print(f"{free / 2**30:.2f} GiB free of {total / 2**30:.2f} GiB")
    print(torch.cuda.list_gpu_processes())
'''
