"""How long each rank waited in collectives for the others, and whom it waited for.

A collective ends at about the same moment on every rank of its group, so the rank that
arrives last has the shortest kernel (or gloo call) and every other rank's extra time is
time spent waiting for it. Durations are compared rather than start times, so clocks need
not agree across hosts. The same collective is found on each rank by its kind, process
group, ProfilerStep number, message size (for collectives whose size is the same on every
rank) and its order among the calls sharing those; only collectives found on every rank
count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from workbench.analyses.collectives import SYMMETRIC, Collectives
from workbench.analyses.intervals import merge

ANY_SIZE = -2


@dataclass
class Waits:
    """Per rank (in the order given): time waited for others, and others' wait blamed on it.

    Waits are wall-clock time: a rank waiting in two collectives at once (two gloo threads,
    two streams) waits once. A wait is taken to open the collective: [start, start + wait].
    """

    waited_us: np.ndarray  # float64, this rank's own waiting in matched collectives
    caused_us: np.ndarray  # float64, the mean over the other ranks of their waiting blamed on this rank
    late_count: np.ndarray  # int64, matched collectives this rank was the last to join
    matched: int  # collectives found on every rank


def collective_waits(per_rank: Sequence[Collectives]) -> Waits:
    """The waits of the ranks whose collective calls are `per_rank` (each rank's taken once: a large job reads
    them back one at a time)."""
    n = len(per_rank)
    empty = Waits(np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64), 0)
    if n < 2:
        return empty
    labels: dict[tuple[str, str], int] = {}  # (process group, kind) -> its number, across the ranks
    parts = [_timed_calls(r, per_rank[r], labels) for r in range(n)]
    rank, label, size, step, order_in_rank, time, start = (np.concatenate(column) for column in zip(*parts))
    del parts
    if not len(time):
        return empty
    # the k-th call of each (rank, group and kind, step, size), in the rank's call order
    occurrence = _nth(np.lexsort((order_in_rank, size, step, label, rank)), rank, label, step, size)
    del order_in_rank
    # one instance of a collective: the k-th call of a group and kind, step and size on each rank
    by_call = np.lexsort((occurrence, size, step, label))
    instance = np.empty(len(by_call), dtype=np.int64)
    instance[by_call] = np.cumsum(_starts(by_call, label, step, size, occurrence)) - 1
    del by_call, label, step, size, occurrence
    on_all = np.bincount(instance) == n
    full = on_all[instance]
    rank, instance, time, start = rank[full], instance[full], time[full], start[full]
    if not len(instance):
        return empty
    fastest = np.full(instance.max() + 1, np.inf)
    np.minimum.at(fastest, instance, time)
    wait = time - fastest[instance]
    # the last to arrive: the rank with the shortest time (the lowest rank on a tie)
    by_time = np.lexsort((rank, time, instance))
    is_first = np.ones(len(by_time), dtype=bool)
    is_first[1:] = instance[by_time][1:] != instance[by_time][:-1]
    late = np.empty(instance.max() + 1, dtype=np.int64)
    late[instance[by_time][is_first]] = rank[by_time][is_first]
    used = np.flatnonzero(on_all)
    blamed = late[instance]
    pair, pair_wait = merged_per_group(blamed * n + rank, start, start + wait)  # the pairs that waited only:
    pairs, at = np.unique(pair, return_inverse=True)                           # never n x n
    return Waits(
        waited_us=union_per_group(rank, start, start + wait, n),
        caused_us=np.bincount(pairs // n, weights=np.bincount(at.ravel(), weights=pair_wait), minlength=n) / (n - 1),
        late_count=np.bincount(late[used], minlength=n),
        matched=len(used),
    )


def _starts(order: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """In `order`, where the `keys` (together) change: True at each run's first element."""
    starts = np.zeros(len(order), dtype=bool)
    starts[:1] = True
    for key in keys:
        ordered = key[order]
        starts[1:] |= ordered[1:] != ordered[:-1]
    return starts


def _nth(order: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Per element, its position among those with the same `keys`, in `order`."""
    position = np.arange(len(order))
    first = np.maximum.accumulate(np.where(_starts(order, *keys), position, 0))
    out = np.empty(len(order), dtype=np.int64)
    out[order] = position - first
    return out


def _timed_calls(r: int, calls: Collectives, labels: dict[tuple[str, str], int]) -> tuple[np.ndarray, ...]:
    """Rank `r`'s timed calls: its number, their label's (numbered in `labels`), message size (ANY_SIZE for kinds
    whose size may differ between ranks), step, order among its calls, time and start."""
    label = np.array([labels.setdefault((g, k), len(labels)) for g, k in zip(calls.process_group, calls.kind)],
                     dtype=np.int64)
    size = np.where(np.array([k in SYMMETRIC for k in calls.kind], dtype=bool), calls.nelems, ANY_SIZE)
    timed = ~np.isnan(calls.time_us)
    return tuple(a[timed] for a in (np.full(len(calls), r, dtype=np.int64), label, size, calls.step,
                                    np.arange(len(calls)), calls.time_us, calls.start_us))


def union_per_group(group: np.ndarray, starts: np.ndarray, ends: np.ndarray, groups: int) -> np.ndarray:
    """Length of the union of each group's intervals (groups numbered 0..groups-1).

    Groups are laid end to end on one axis (group x span + time), so one sorted pass merges
    the intervals of every group without letting two groups' intervals touch.
    """
    out = np.zeros(groups)
    np.add.at(out, *merged_per_group(group, starts, ends))
    return out


def merged_per_group(group: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each group's intervals merged: per merged interval, its group and its length (groups in ascending order)."""
    if not len(starts):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    origin = float(starts.min())
    span = float(ends.max()) - origin + 1.0
    merged_starts, merged_ends = merge(group * span + (starts - origin), group * span + (ends - origin))
    return (merged_starts // span).astype(np.int64), merged_ends - merged_starts
