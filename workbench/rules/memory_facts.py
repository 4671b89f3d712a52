"""The facts of an out-of-memory error that the memory rules reason about, from a snapshot or a message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.inputs.analyzed import AnalyzedInput
from workbench.rules.finding import failure_gain
from workbench.units import format_bytes

MEMORY_KINDS = ("memory_snapshot", "oom_message")  # the input kinds the OOM rules read
ALLOC_CONF_DOCS = "https://docs.pytorch.org/docs/stable/notes/cuda.html#optimizing-memory-usage-with-pytorch-cuda-alloc-conf"
SNAPSHOT_DOCS = "https://docs.pytorch.org/docs/stable/torch_cuda_memory.html"


FRAGMENTATION_MIN_SHARE = 0.03  # reserved-but-unallocated below this share of the device is a sliver, not a cause
MEMORY_CAP_SHARE = 0.95
SEGMENT_NOTES = {  # "Tried to allocate" of a small request names the segment cudaMalloc was asked for
    2 << 20: "a 2 MiB segment: the tensor was 1 MiB or less",
    20 << 20: "a 20 MiB segment: the tensor was between 1 and 10 MiB",
}


@dataclass
class OomFacts:
    backend: str
    requested: int | None
    allocated: int | None
    reserved_unallocated: int | None
    largest_free_block: int | None  # only a snapshot knows it
    device_free: int | None
    total: int | None
    settings: dict[str, Any]
    stack: list[str] = field(default_factory=list)  # innermost first; the message's frames carry their code
    message: dict[str, Any] = field(default_factory=dict)

    def cached_free(self) -> int:
        return self.reserved_unallocated or 0

    @property
    def runtime(self) -> bool:
        return self.message.get("kind") == "runtime"

    def fragmented(self) -> bool:
        """The cached free memory alone would hold the request, is more than a sliver of the device,
        and no free block is that large."""
        if self.reserved_unallocated is None or self.requested is None or self.reserved_unallocated < self.requested:
            return False
        if self.total and self.reserved_unallocated < FRAGMENTATION_MIN_SHARE * self.total:
            return False
        return self.largest_free_block is None or self.largest_free_block < self.requested

    def outside_pytorch(self) -> int | None:
        """Device memory neither free nor in PyTorch's cache: other processes, the CUDA context, libraries."""
        if None in (self.total, self.device_free, self.allocated, self.reserved_unallocated):
            return None
        return max(0, self.total - self.device_free - self.allocated - self.reserved_unallocated)

    def others_decide(self) -> bool:
        """Without the other processes' memory, the device's free memory would have held the request."""
        held = sum((self.message.get("other_processes") or {}).values())
        return bool(held) and self.device_free is not None and self.requested is not None \
            and self.device_free + held >= self.requested

    def memory_cap(self) -> bool:
        """A CUDA cap below the device's size was what ran out."""
        allowed = self.message.get("allowed_bytes")
        return bool(allowed) and self.backend != "mps" and self.total is not None \
            and allowed < MEMORY_CAP_SHARE * self.total

    def cause(self) -> str:
        """The one cause the numbers support: runtime, exceeds-device, memory-cap, other-processes,
        fragmentation, inconclusive (the numbers contradict a full device) or capacity."""
        if self.runtime:
            return "runtime"
        if self.requested is not None and self.total and self.requested > self.total:
            return "exceeds-device"
        if self.memory_cap():
            return "memory-cap"
        if self.others_decide():
            return "other-processes"
        if self.fragmented():
            return "fragmentation"
        if self.backend != "mps" and self.requested is not None and self.device_free is not None \
                and self.device_free >= self.requested:
            return "inconclusive"
        outside = self.outside_pytorch()
        if outside is not None and self.requested is not None and outside >= self.requested \
                and outside > self.allocated + self.cached_free():
            return "inconclusive"
        if self.requested is None and self.allocated is None:
            return "inconclusive"
        return "capacity"

    def segment_note(self) -> str | None:
        return SEGMENT_NOTES.get(self.requested) if self.backend != "mps" else None

    def numbers(self) -> dict[str, Any]:
        """The headline numbers as evidence, in bytes and in torch's units."""
        out: dict[str, Any] = {"backend": self.backend}
        if self.message.get("rank") is not None:
            out["rank"] = self.message["rank"]
        for name, value in (("requested", self.requested), ("allocated", self.allocated),
                            ("reserved_unallocated", self.reserved_unallocated),
                            ("largest_free_block", self.largest_free_block), ("device_free", self.device_free),
                            ("device_total", self.total)):
            if value is not None:
                out[f"{name}_bytes"] = value
                out[name] = format_bytes(value)
        return out


def oom_facts(input_: AnalyzedInput) -> OomFacts | None:
    """The OOM of a snapshot (with its message when paired) or of a message alone; None if no OOM."""
    m = input_.metrics
    message = input_.meta.get("oom_message") or {}
    if "oom_requested_bytes" in m:
        return OomFacts(
            backend="cuda", requested=m["oom_requested_bytes"], allocated=m["allocated_bytes_at_oom"],
            reserved_unallocated=m["reserved_unallocated_bytes_at_oom"],
            largest_free_block=m["largest_free_block_bytes_at_oom"], device_free=m.get("device_free_bytes_at_oom"),
            total=message.get("total_bytes"), settings=input_.meta.get("allocator_settings") or {},
            stack=message.get("python_frames") or input_.meta.get("oom_stack") or [],
            message=message)
    if not message:
        return None
    return OomFacts(
        backend=message["backend"], requested=message.get("requested_bytes"), allocated=message.get("allocated_bytes"),
        reserved_unallocated=message.get("reserved_unallocated_bytes"), largest_free_block=None,
        device_free=message.get("free_bytes"), total=message.get("total_bytes"), settings={},
        stack=message.get("python_frames") or [], message=message)


def oom_gain(what: str) -> dict[str, Any]:
    return failure_gain(f"the run stopped at this {what}; fixing it lets the run complete",
                        f"the {what} that stopped the run")


RECORD_HISTORY_CODE = '''
import torch

# Record allocator history, so that the next OOM comes with a snapshot that says what was live.
if torch.cuda.is_available():
    torch.cuda.memory._record_memory_history(max_entries=200_000)
    try:
        pass  # ... the training or inference code that ran out of memory ...
    except torch.OutOfMemoryError:
        torch.cuda.memory._dump_snapshot("oom.snapshot.pickle")  # then: workbench analyze oom.snapshot.pickle
        raise
    finally:
        torch.cuda.memory._record_memory_history(enabled=None)
'''
