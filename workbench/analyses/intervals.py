"""Interval arithmetic on numpy arrays of (start, end) pairs."""

from __future__ import annotations

import numpy as np


def merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals as sorted, disjoint (start, end) arrays."""
    if len(starts) == 0:
        return np.empty(0), np.empty(0)
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], np.maximum.accumulate(ends[order])
    # a new segment begins where an interval starts after everything before it has ended
    new = np.empty(len(s), dtype=bool)
    new[0] = True
    new[1:] = s[1:] > e[:-1]
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, len(s) - 1)
    return s[first], e[last]


def union_length(starts: np.ndarray, ends: np.ndarray) -> float:
    """Total length covered by at least one interval."""
    s, e = merge(starts, ends)
    return float((e - s).sum())


def covered_in(starts: np.ndarray, ends: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per window [lo, hi), the length of the intervals' union inside it (one sorted pass, any number of windows)."""
    s, e = merge(starts, ends)
    if not len(s):
        return np.zeros(len(lo))
    done = np.concatenate([[0.0], np.cumsum(e - s)])  # union length of the first k segments

    def before(t: np.ndarray) -> np.ndarray:  # union length before each t
        k = np.searchsorted(s, t, side="right")  # segments starting at or before t
        return done[k] - np.where(k > 0, np.clip(e[np.maximum(k - 1, 0)] - t, 0.0, None), 0.0)  # less a cut one's rest

    return before(np.asarray(hi, dtype=np.float64)) - before(np.asarray(lo, dtype=np.float64))


def starts_inside(starts: np.ndarray, ends: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Whether each of `points` lies in the union of the intervals [start, end) (a bool mask)."""
    if not len(starts):
        return np.zeros(len(points), dtype=bool)
    order = np.argsort(starts)
    starts, ends = starts[order], np.maximum.accumulate(ends[order])
    pos = np.searchsorted(starts, points, side="right") - 1
    return (pos >= 0) & (points < ends[np.maximum(pos, 0)])


def clip(starts: np.ndarray, ends: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Intervals cut to [lo, hi]; those entirely outside are dropped."""
    s, e = np.maximum(starts, lo), np.minimum(ends, hi)
    keep = e > s
    return s[keep], e[keep]


def overlap_length(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Length of the intersection of the unions of two interval sets."""
    both = (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
    return union_length(*a) + union_length(*b) - union_length(*both)


def layered_lengths(layers: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """For layers in priority order, the length each adds to the union of those before it.

    The result partitions the union of all layers: time covered by several layers is
    counted once, for the first of them.
    """
    lengths = []
    starts, ends = np.empty(0), np.empty(0)
    covered = 0.0
    for s, e in layers:
        starts, ends = np.concatenate([starts, s]), np.concatenate([ends, e])
        total = union_length(starts, ends)
        lengths.append(total - covered)
        covered = total
    return lengths
