"""CUDA caching-allocator snapshots, OOM messages and memory timelines as typed models.

A snapshot holds the allocator's segments (reserved memory) and their blocks at dump time,
plus, when history was recorded, a ring buffer of allocator events per device. The history is
kept columnar (numpy) for replay; each event's Python frames stay as the unpickled lists and
are only turned into text for the few events a report names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# History actions, as small integer codes.
ALLOC, FREE_REQUESTED, FREE_COMPLETED = 0, 1, 2
SEGMENT_ALLOC, SEGMENT_FREE, SEGMENT_MAP, SEGMENT_UNMAP = 3, 4, 5, 6
OOM, SNAPSHOT, OTHER = 7, 8, 9
ACTION_CODES = {
    "alloc": ALLOC, "free_requested": FREE_REQUESTED, "free_completed": FREE_COMPLETED,
    "segment_alloc": SEGMENT_ALLOC, "segment_free": SEGMENT_FREE,
    "segment_map": SEGMENT_MAP, "segment_unmap": SEGMENT_UNMAP,
    "oom": OOM, "snapshot": SNAPSHOT,
}
# A free block's state in the final segments; pending frees still hold their memory.
ALLOCATED_STATES = frozenset({"active_allocated"})
PENDING_STATES = frozenset({"active_pending_free"})
SMALL_SEGMENT_BYTES = 2 << 20  # the small pool's segments are exactly 2 MiB

Frames = list[dict[str, Any]]


@dataclass
class Segments:
    """Reserved memory ranges of one device at dump time (one row per segment)."""

    address: np.ndarray  # int64
    size: np.ndarray  # int64
    stream: np.ndarray  # int64
    small: np.ndarray  # bool: small pool (blocks of 1 MiB or less)
    expandable: np.ndarray  # bool
    private: np.ndarray  # bool: a private pool (CUDA graphs, MemPool)

    def __len__(self) -> int:
        return len(self.address)


@dataclass
class Blocks:
    """Blocks in use at dump time: allocated, or freed by the user but pending stream work."""

    address: np.ndarray  # int64
    size: np.ndarray  # int64
    requested: np.ndarray  # int64
    pending: np.ndarray  # bool: active_pending_free
    frames: list[Frames]

    def __len__(self) -> int:
        return len(self.address)


@dataclass
class History:
    """The recorded allocator events of one device, oldest first."""

    action: np.ndarray  # int8 codes above
    address: np.ndarray  # int64
    size: np.ndarray  # int64
    stream: np.ndarray  # int64
    time_us: np.ndarray  # int64, 0 where the snapshot has no times
    frames: list[Frames]
    device_free: dict[int, int] = field(default_factory=dict)  # event index -> free device bytes (oom)

    def __len__(self) -> int:
        return len(self.action)


@dataclass
class DeviceMemory:
    """One device's part of a snapshot."""

    device: int
    segments: Segments
    blocks: Blocks
    history: History


@dataclass
class AllocatorSnapshot:
    path: str
    devices: list[DeviceMemory]
    allocator_settings: dict[str, Any]
    annotations: list[dict[str, Any]]
    has_history: bool


@dataclass
class OomMessage:
    """The numbers of one out-of-memory error message (None where a wording lacks them)."""

    backend: str  # "cuda", "hip" or "mps"
    text: str
    requested_bytes: int | None  # None where the text names no size (runtime errors, a quote without it)
    device: int | None = None
    total_bytes: int | None = None
    free_bytes: int | None = None
    process_bytes: int | None = None  # this process, including non-PyTorch memory
    allocated_bytes: int | None = None
    reserved_unallocated_bytes: int | None = None
    reserved_bytes: int | None = None
    private_pool_bytes: int | None = None
    allowed_bytes: int | None = None  # a per-process memory fraction cap
    other_processes: dict[int, int] = field(default_factory=dict)  # pid -> bytes
    other_allocations_bytes: int | None = None  # MPS: memory of other allocations
    pool: str | None = None  # MPS: "private pool" or "shared pool"
    python_frames: list[str] = field(default_factory=list)  # the traceback above the message
    kind: str = "allocator"  # "allocator" (the caching allocator's message) or "runtime" (CUDA error: out of memory)
    library: str | None = None  # runtime: the library whose allocation failed (CUBLAS, CUDNN)
    library_call: str | None = None  # runtime: the call that failed (cublasCreate)
    error_type: str | None = None  # RuntimeError, torch.OutOfMemoryError, torch.AcceleratorError
    rank: int | None = None  # from a `[rankN]:` prefix


@dataclass
class MemoryTimeline:
    """`torch.profiler` `export_memory_timeline` data: bytes per category over time."""

    path: str
    time_us: np.ndarray  # int64
    bytes_by_category: dict[str, np.ndarray]  # category -> int64 bytes at each time
