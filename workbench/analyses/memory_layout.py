"""Free memory inside reserved segments: free blocks, fragmentation per pool, and what pins it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.analyses.allocator_replay import AllocatorState

POOLS = ("large", "small")
BETWEEN, SEGMENT_END, EMPTY_SEGMENT = 0, 1, 2


@dataclass
class Layout:
    """Reserved ranges and the blocks in use inside them, as arrays (blocks sorted by address)."""

    range_start: np.ndarray
    range_end: np.ndarray
    range_small: np.ndarray  # bool
    block_address: np.ndarray
    block_size: np.ndarray
    block_pending: np.ndarray  # bool
    block_range: np.ndarray  # index of the range holding each block
    free_size: np.ndarray  # one entry per free block
    free_range: np.ndarray  # the range holding each free block
    free_where: np.ndarray  # BETWEEN (before a block in use), SEGMENT_END (after the last one), EMPTY_SEGMENT

    def range_used(self) -> np.ndarray:
        """Bytes in use per range."""
        return np.bincount(self.block_range, weights=self.block_size, minlength=len(self.range_start))


def layout_of(state: AllocatorState) -> Layout:
    """Free blocks are the gaps between blocks in use (adjacent free blocks are always merged)."""
    start = np.array([r[0] for r in state.ranges], dtype=np.int64)
    end = np.array([r[1] for r in state.ranges], dtype=np.int64)
    small = np.array([r[2] for r in state.ranges], dtype=bool)
    address = np.array([b.address for b in state.blocks], dtype=np.int64)
    size = np.array([b.size for b in state.blocks], dtype=np.int64)
    pending = np.array([b.pending for b in state.blocks], dtype=bool)
    rid = np.searchsorted(start, address, side="right") - 1
    inside = (rid >= 0) & (address + size <= end[np.maximum(rid, 0)])
    address, size, pending, rid = address[inside], size[inside], pending[inside], rid[inside]
    block_end = address + size
    first = np.r_[True, rid[1:] != rid[:-1]] if len(rid) else np.zeros(0, bool)
    last = np.r_[rid[1:] != rid[:-1], True] if len(rid) else np.zeros(0, bool)
    previous_end = np.where(first, start[rid], np.r_[0, block_end[:-1]][: len(rid)])
    empty = np.setdiff1d(np.arange(len(start)), rid)
    gaps = np.concatenate([address - previous_end, end[rid[last]] - block_end[last], end[empty] - start[empty]])
    gap_range = np.concatenate([rid, rid[last], empty])
    where = np.repeat(np.array([BETWEEN, SEGMENT_END, EMPTY_SEGMENT], np.int8), [len(rid), int(last.sum()), len(empty)])
    keep = gaps > 0
    return Layout(start, end, small, address, size, pending, rid, gaps[keep], gap_range[keep], where[keep])


def pool_rows(layout: Layout) -> list[dict[str, object]]:
    """Per pool: reserved, allocated and free bytes, the largest free block and fragmentation.

    Fragmentation is 1 - largest free block / total free: 0 when all free memory is one block,
    near 1 when it is scattered in many small pieces.
    """
    rows = []
    used = layout.range_used()
    for pool in POOLS:
        in_pool = layout.range_small if pool == "small" else ~layout.range_small
        if not in_pool.any():
            continue
        free_in_pool = in_pool[layout.free_range]
        free = layout.free_size[free_in_pool]
        where = layout.free_where[free_in_pool]
        blocks = in_pool[layout.block_range]
        total_free = int(free.sum())
        largest = int(free.max()) if len(free) else 0
        partly = in_pool & (used > 0) & (used < layout.range_end - layout.range_start)
        rows.append({
            "pool": pool,
            "segments": int(in_pool.sum()),
            "reserved_bytes": int((layout.range_end - layout.range_start)[in_pool].sum()),
            "allocated_bytes": int(layout.block_size[blocks & ~layout.block_pending].sum()),
            "free_bytes": total_free,
            "free_blocks": len(free),
            "largest_free_block_bytes": largest,
            "fragmentation_pct": round(100.0 * (1 - largest / total_free), 2) if total_free else 0.0,
            "free_bytes_between_blocks": int(free[where == BETWEEN].sum()),
            "free_bytes_at_segment_ends": int(free[where == SEGMENT_END].sum()),
            "free_bytes_in_empty_segments": int(free[where == EMPTY_SEGMENT].sum()),
            "partly_used_segments": int(partly.sum()),
            "inactive_split_blocks": int(np.isin(layout.free_range, np.flatnonzero(partly)).sum()),
        })
    return rows


def segment_rows(layout: Layout, limit: int = 1000) -> list[dict[str, object]]:
    """Each segment by address with its bytes in use and free; beyond `limit`, neighbours are summed."""
    used = layout.range_used().astype(np.int64)
    free = layout.range_end - layout.range_start - used
    group = max(1, -(-len(used) // limit))
    starts = np.arange(0, len(used), group)
    pools = np.where(layout.range_small[starts], "small", "large")
    return [{"segment": int(i), "segments": int(min(group, len(used) - i)), "pool": str(pool),
             "allocated_bytes": int(u), "free_bytes": int(f)}
            for i, pool, u, f in zip(starts.tolist(), pools.tolist(), np.add.reduceat(used, starts).tolist(),
                                     np.add.reduceat(free, starts).tolist())] if len(used) else []


def pinning_blocks(layout: Layout, pool: str = "large") -> np.ndarray:
    """Indexes (into the layout's blocks) of blocks in use inside segments that also hold free
    memory: the blocks that keep that free memory from being one piece or released."""
    used = layout.range_used()
    full = layout.range_end - layout.range_start
    partly = (used > 0) & (used < full) & ((layout.range_small) if pool == "small" else ~layout.range_small)
    return np.flatnonzero(partly[layout.block_range])


def largest_free_if_contiguous(layout: Layout, pool: str = "large") -> int:
    """The largest free run if the pool's segments were one address range in address order.

    This is what expandable segments give at best: free memory at the end of one segment joins
    free memory at the start of the next, but blocks in use still split it.
    """
    in_pool = layout.range_small if pool == "small" else ~layout.range_small
    size = layout.range_end - layout.range_start
    head = size.copy()  # free bytes before the first block in use (all of an empty range)
    tail = np.zeros_like(size)
    first_free = layout.free_where == BETWEEN
    first_block = np.r_[True, layout.block_range[1:] != layout.block_range[:-1]] if len(layout.block_range) else []
    used_ranges = layout.block_range[first_block] if len(first_block) else np.zeros(0, np.int64)
    head[used_ranges] = layout.block_address[first_block] - layout.range_start[used_ranges]
    ends = layout.free_where == SEGMENT_END
    tail[layout.free_range[ends]] = layout.free_size[ends]
    best = int(layout.free_size[first_free & in_pool[layout.free_range]].max(initial=0))
    run = 0
    for r in np.flatnonzero(in_pool).tolist():
        if head[r] == size[r]:
            run += int(size[r])
            continue
        best = max(best, run + int(head[r]))
        run = int(tail[r])
    return max(best, run)
