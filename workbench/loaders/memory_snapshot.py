"""CUDA caching-allocator snapshots (`torch.cuda.memory._dump_snapshot`) to `AllocatorSnapshot`.

Reads the pickle with the restricted unpickler. Accepts the dict of torch >= 2.0
(`segments`, `device_traces`, and from 2.1 `allocator_settings`, `external_annotations`) and
the bare segment list of `torch.cuda.memory_snapshot()`; fields that older versions lack get
neutral defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import InputError
from workbench.loaders import safe_pickle
from workbench.models.memory import (
    ACTION_CODES, ALLOCATED_STATES, OOM, OTHER, PENDING_STATES, SMALL_SEGMENT_BYTES, AllocatorSnapshot, Blocks, DeviceMemory,
    History, Segments,
)


def is_snapshot(path: Path, head: bytes) -> bool:
    """A pickle (any protocol) whose first bytes hold the keys of an allocator snapshot."""
    return b"total_size" in head and (b"segments" in head or b"blocks" in head) and safe_pickle.looks_like_pickle(head)


MAX_FRAMES = 1024  # innermost frames kept per block or event: deeper stacks are cut, bounding the work


def load_snapshot(path: str | Path) -> AllocatorSnapshot:
    data = safe_pickle.load_file(path)
    if isinstance(data, list):  # torch.cuda.memory_snapshot(): segments only
        data = {"segments": data}
    if not isinstance(data, dict) or not isinstance(data.get("segments"), list):
        raise InputError(path, "not a CUDA allocator snapshot (expected a dict with a 'segments' list)")
    traces = data.get("device_traces") or []
    if not isinstance(traces, list):
        raise InputError(path, "'device_traces' is not a list of per-device histories")
    try:
        devices = _devices(data["segments"], traces)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise InputError(path, f"malformed allocator snapshot ({type(exc).__name__}: {exc})") from None
    if not devices:
        raise InputError(path, "allocator snapshot holds no segments and no history (nothing was allocated?)")
    settings = data.get("allocator_settings")
    annotations = data.get("external_annotations")
    return AllocatorSnapshot(
        path=str(path), devices=devices,
        allocator_settings=settings if isinstance(settings, dict) else {},
        annotations=annotations if isinstance(annotations, list) else [],
        has_history=any(len(t) for t in traces if isinstance(t, list)),
    )


def _devices(segments: list[dict[str, Any]], traces: list[Any]) -> list[DeviceMemory]:
    by_device: dict[int, list[dict[str, Any]]] = {}
    for segment in segments:
        by_device.setdefault(int(segment.get("device", 0)), []).append(segment)
    ids = sorted(set(by_device) | {i for i, t in enumerate(traces) if t})
    return [DeviceMemory(device=d, segments=_segments(by_device.get(d, [])),
                         blocks=_blocks(by_device.get(d, [])),
                         history=_history(traces[d] if d < len(traces) and traces[d] else []))
            for d in ids]


def _segments(segments: list[dict[str, Any]]) -> Segments:
    size = _sizes([s["total_size"] for s in segments], "total_size")
    kind = [s.get("segment_type") for s in segments]
    return Segments(
        address=np.array([s["address"] for s in segments], dtype=np.int64),
        size=size,
        stream=np.array([s.get("stream", 0) for s in segments], dtype=np.int64),
        small=np.array([k == "small" if k else n == SMALL_SEGMENT_BYTES for k, n in zip(kind, size.tolist())],
                       dtype=bool),
        expandable=np.array([bool(s.get("is_expandable", False)) for s in segments], dtype=bool),
        private=np.array([tuple(s.get("segment_pool_id") or (0, 0)) != (0, 0) for s in segments], dtype=bool),
    )


def _blocks(segments: list[dict[str, Any]]) -> Blocks:
    """The blocks still in use at dump time, with their addresses computed when a version omits them."""
    address, size, requested, pending, frames = [], [], [], [], []
    for segment in segments:
        offset = int(segment["address"])
        for block in segment.get("blocks", []):
            state = block.get("state") or ("active_allocated" if block.get("allocated") else "inactive")
            if state in ALLOCATED_STATES or state in PENDING_STATES:
                address.append(int(block.get("address", offset)))
                size.append(int(block["size"]))
                requested.append(int(block.get("requested_size", block["size"])))
                pending.append(state in PENDING_STATES)
                frames.append(_block_frames(block))
            offset += int(block["size"])
    return Blocks(np.array(address, dtype=np.int64), _sizes(size, "block size"),
                  _sizes(requested, "requested_size"), np.array(pending, dtype=bool), frames)


def _sizes(values: list[Any], field: str) -> np.ndarray:
    """Byte counts as an int64 column; `ValueError` naming the field for a negative one."""
    column = np.array(values, dtype=np.int64)
    if len(column) and column.min() < 0:
        raise ValueError(f"{field} {int(column.min())} is negative")
    return column


def _block_frames(block: dict[str, Any]) -> list[dict[str, Any]]:
    frames = block.get("frames")
    if frames is None and block.get("history"):  # torch 2.0: per-block history
        frames = block["history"][-1].get("frames")
    return (frames or [])[:MAX_FRAMES]


def _history(entries: list[dict[str, Any]]) -> History:
    action = np.array([ACTION_CODES.get(e["action"], OTHER) for e in entries], dtype=np.int8)
    device_free = {i: int(entries[i].get("device_free", 0)) for i in np.flatnonzero(action == OOM).tolist()}
    return History(
        action=action,
        address=np.array([e.get("addr", 0) for e in entries], dtype=np.int64),
        size=_sizes([e.get("size", 0) for e in entries], "history size"),
        stream=np.array([e.get("stream", 0) for e in entries], dtype=np.int64),
        time_us=np.array([e.get("time_us", 0) for e in entries], dtype=np.int64),
        frames=[(e.get("frames") or [])[:MAX_FRAMES] for e in entries],  # a list shared by entries costs MAX_FRAMES each
        device_free=device_free,
    )
