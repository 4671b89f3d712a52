"""The allocator's state at any point of a snapshot's history, replayed backwards from the dump.

Snapshots are usually dumped after an OOM unwound, so their segments show memory already
freed. The final state is complete, though, and the history ends at the dump: undoing the
events after a point, newest first, gives the exact state at that point, even when the ring
buffer dropped the beginning of the run (blocks allocated before the window are in the final
segments or come back when their later frees are undone).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from workbench.models.memory import (
    ALLOC, FREE_COMPLETED, FREE_REQUESTED, SEGMENT_ALLOC, SEGMENT_FREE, SEGMENT_MAP, SEGMENT_UNMAP,
    SMALL_SEGMENT_BYTES, DeviceMemory, Frames,
)

MIN_BLOCK_BYTES = 512
LARGE_SPLIT_REMAINDER_BYTES = 1 << 20  # the large pool splits a block only if more remains


@dataclass
class LiveBlock:
    address: int
    size: int  # the block's bytes (what `allocated_bytes` counts)
    requested: int  # the bytes asked for
    pending: bool  # freed by the user, waiting for stream work: still holds memory
    frames: Frames
    frames_from_alloc: bool  # False: only the frames of its later free were recorded


@dataclass
class AllocatorState:
    """Blocks in use and reserved ranges just after history event `index` (-1: before the window)."""

    index: int
    blocks: list[LiveBlock]
    ranges: list[tuple[int, int, bool, bool]]  # (start, end, small pool, expandable)
    inconsistencies: int  # undone events that contradict the final state (a damaged history)

    @property
    def allocated_bytes(self) -> int:
        return sum(b.size for b in self.blocks if not b.pending)

    @property
    def reserved_bytes(self) -> int:
        return sum(r[1] - r[0] for r in self.ranges)


def _allocated_deltas(device: DeviceMemory) -> np.ndarray:
    h = device.history
    return np.where(h.action == ALLOC, h.size, np.where(h.action == FREE_REQUESTED, -h.size, 0))


def requested_at_window_start(device: DeviceMemory) -> int:
    """Bytes in use (requested, not freed) before the first recorded event: > 0 when the ring
    buffer lost the start of the run, or recording started late."""
    final = int(device.blocks.requested[~device.blocks.pending].sum())
    return final - int(_allocated_deltas(device).sum())


def allocated_curve(device: DeviceMemory) -> np.ndarray:
    """Bytes requested and not yet freed by the user, just after each history event.

    History events carry requested sizes; block sizes (rounding, unsplit remainders) are only
    known once a state is rebuilt, so this curve locates peaks and `state_after` measures them.
    """
    blocks = device.blocks
    return _after_each(_allocated_deltas(device), int(blocks.requested[~blocks.pending].sum()))


def reserved_curve(device: DeviceMemory) -> np.ndarray:
    """Bytes reserved from the device just after each history event."""
    h = device.history
    grow = np.isin(h.action, (SEGMENT_ALLOC, SEGMENT_MAP))
    shrink = np.isin(h.action, (SEGMENT_FREE, SEGMENT_UNMAP))
    delta = np.where(grow, h.size, np.where(shrink, -h.size, 0))
    return _after_each(delta, int(device.segments.size.sum()))


def _after_each(delta: np.ndarray, final: int) -> np.ndarray:
    """Running value after each event, anchored at the known final value."""
    cumulative = np.cumsum(delta, dtype=np.int64)
    total = int(cumulative[-1]) if len(cumulative) else 0
    return final - total + cumulative


def state_after(device: DeviceMemory, index: int) -> AllocatorState:
    """Undo the events after `index`, newest first, starting from the final segments and blocks."""
    h, final = device.history, device.blocks
    live: dict[int, LiveBlock] = {
        a: LiveBlock(a, s, r, p, f, True)
        for a, s, r, p, f in zip(final.address.tolist(), final.size.tolist(), final.requested.tolist(),
                                 final.pending.tolist(), final.frames)
    }
    ranges = _Ranges(device)
    bad = 0
    actions, addresses, sizes = h.action.tolist(), h.address.tolist(), h.size.tolist()
    for j in range(len(actions) - 1, index, -1):
        action, address, size = actions[j], addresses[j], sizes[j]
        if action == ALLOC:
            bad += live.pop(address, None) is None
        elif action == FREE_REQUESTED:
            block = live.get(address)
            if block is not None and block.pending:
                block.pending = False
            else:
                bad += block is not None
                live[address] = LiveBlock(address, size, size, False, h.frames[j], False)
        elif action == FREE_COMPLETED:
            bad += address in live
            live[address] = LiveBlock(address, size, size, True, h.frames[j], False)
        elif action in (SEGMENT_ALLOC, SEGMENT_MAP):
            bad += not ranges.remove(address, size)
        elif action in (SEGMENT_FREE, SEGMENT_UNMAP):
            ranges.add(address, size, action == SEGMENT_UNMAP)
    _frames_from_allocations(device, index, live)
    blocks = sorted(live.values(), key=lambda b: b.address)
    rows = ranges.rows()
    _block_sizes(blocks, rows)
    return AllocatorState(index, blocks, rows, bad)


def _block_sizes(blocks: list[LiveBlock], ranges: list[tuple[int, int, bool, bool]]) -> None:
    """Turn requested sizes into block sizes, as the allocator carves them.

    Sizes round up to 512 bytes; in the large pool of fixed segments a free block is only
    split when more than 1 MiB would remain, so a gap of at most 1 MiB after a block up to
    the next block in use (or the segment's end) is part of the block.
    """
    starts = [r[0] for r in ranges]
    for i, block in enumerate(blocks):
        block.size = max(block.size, -(-block.size // MIN_BLOCK_BYTES) * MIN_BLOCK_BYTES)
        r = bisect.bisect_right(starts, block.address) - 1
        if r < 0:
            continue
        _, end, small, expandable = ranges[r]
        following = blocks[i + 1].address if i + 1 < len(blocks) and blocks[i + 1].address < end else end
        gap = following - block.address - block.size
        if not small and not expandable and 0 < gap <= LARGE_SPLIT_REMAINDER_BYTES:
            block.size += gap


def _frames_from_allocations(device: DeviceMemory, index: int, live: dict[int, LiveBlock]) -> None:
    """Give blocks known only from their frees the frames of their allocation, when in the window."""
    h = device.history
    wanted = {a for a, b in live.items() if not b.frames_from_alloc}
    if not wanted:
        return
    allocs = np.flatnonzero(h.action[: index + 1] == ALLOC)
    last_alloc = dict(zip(h.address[allocs].tolist(), allocs.tolist()))
    for address in wanted:
        j = last_alloc.get(address)
        if j is not None:
            live[address].frames, live[address].frames_from_alloc = h.frames[j], True


class _Ranges:
    """Reserved address ranges, kept sorted; expandable segments grow and shrink by mappings."""

    def __init__(self, device: DeviceMemory) -> None:
        s = device.segments
        self.starts: list[int] = []
        self.info: dict[int, tuple[int, bool, bool]] = {}  # start -> (end, small, expandable)
        for start, size, small, expandable in zip(s.address.tolist(), s.size.tolist(), s.small.tolist(),
                                                  s.expandable.tolist()):
            self._insert(start, start + size, small, expandable)

    def _insert(self, start: int, end: int, small: bool, expandable: bool) -> None:
        bisect.insort(self.starts, start)
        self.info[start] = (end, small, expandable)

    def remove(self, address: int, size: int) -> bool:
        """Take [address, address + size) out of the range holding it; False if none holds it."""
        i = bisect.bisect_right(self.starts, address) - 1
        if i < 0:
            return False
        start = self.starts[i]
        end, small, expandable = self.info[start]
        if address + size > end:
            return False
        del self.starts[i], self.info[start]
        if start < address:
            self._insert(start, address, small, expandable)
        if address + size < end:
            self._insert(address + size, end, small, expandable)
        return True

    def add(self, address: int, size: int, expandable: bool) -> None:
        """Put a range back; a mapping joins the expandable ranges it touches."""
        start, end = address, address + size
        if expandable:
            i = bisect.bisect_right(self.starts, start) - 1
            if i >= 0 and self.info[self.starts[i]][0] == start and self.info[self.starts[i]][2]:
                start = self.starts.pop(i)
                del self.info[start]
            after = self.info.get(end)
            if after is not None and after[2]:
                self.starts.remove(end)
                end = self.info.pop(end)[0]
        self._insert(start, end, size == SMALL_SEGMENT_BYTES and not expandable, expandable)

    def rows(self) -> list[tuple[int, int, bool, bool]]:
        return [(s, *self.info[s]) for s in self.starts]
