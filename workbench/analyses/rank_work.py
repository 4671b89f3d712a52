"""The work each rank of a job does, by name, and the work one rank does beyond the others.

Wall-clock time varies between ranks for reasons that are not theirs (a shared node, oversubscribed
cores): on a 2-core machine, 8 gloo ranks' compute per step spreads from 21 to 66 ms. The number of
calls does not: ranks that run the same program call the same annotations (`record_function`
regions), operators and kernels equally often. A rank that calls a name more often per step than
the median rank runs extra work (an extra model branch, an extra augmentation region); that work is
named with its time per step on that rank, the share of its calls above the median's.

A rank that calls a name as often as the others but takes much longer per call does more work in
each call (longer sequences, a larger batch). Noise lengthens calls too, so a name's time per call is
its shortest call of at least MIN_CALLS (preemption never shortens one; on 8 gloo ranks sharing 2
cores, sample_traces/cpu/ddp_gloo_extra_compute and ddp_gloo_balanced, mean times per call differ up
to 109x between ranks, shortest calls at most 1.7x: docs/jobs.md), and it
counts only when SLOW_FACTOR times the median rank's, beyond the other ranks' spread (a robust
z-score, `stragglers.robust_outliers`, among the ranks that call it as often as the median rank), and
SLOW_FACTOR times further out than the rank's typical name (a slow node slows all).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.steps import step_mask
from workbench.models.trace import Trace
from workbench.units import US_PER_MS

MAX_NAMES = 200  # names kept per rank and kind, the longest first
MIN_EXTRA_CALLS = 0.5  # calls per step above the median rank's: at least one every other step
SLOW_FACTOR = 2.0  # shortest call against the median rank's, and against the rank's typical ratio
MIN_CALLS = 8  # calls of a name on a rank for its shortest call to count
MAX_ITEMS = 3  # extra work listed per rank
Work = dict[str, tuple[list[str], np.ndarray, np.ndarray, np.ndarray]]  # kind -> names, calls, total µs, shortest µs


def work_summary(trace: Trace, kinds: np.ndarray) -> Work:
    """Calls and total time per name of a rank's annotations (steps aside), operators and GPU kernels."""
    e = trace.events
    masks = {"annotation": e.category_mask(cat.ANNOTATION_CATEGORIES) & ~step_mask(e),
             "operator": e.category_mask(cat.HOST_OP_CATEGORIES),
             "kernel": kinds == cat.COMPUTE}
    out: Work = {}
    for kind, mask in masks.items():
        calls = np.bincount(e.name[mask], minlength=len(e.names))
        time = np.bincount(e.name[mask], weights=e.dur[mask], minlength=len(e.names))
        used = np.flatnonzero(calls)
        used = used[np.argsort(-time[used], kind="stable")][:MAX_NAMES]
        out[kind] = ([e.names[i] for i in used.tolist()], calls[used].astype(np.int64), time[used].astype(np.float64),
                     _shortest_calls(e.name[mask], e.dur[mask], len(e.names))[used])
    return out


def _shortest_calls(names: np.ndarray, durations: np.ndarray, size: int) -> np.ndarray:
    """Per name index, its shortest call (µs): preemption only ever lengthens calls, so this is the work's own time."""
    out = np.full(size, np.inf)
    np.minimum.at(out, names, durations)
    return out


def extra_work(work: list[Work], steps: np.ndarray, min_slow_ms: float) -> list[list[dict[str, Any]]]:
    """Per rank, the names it calls at least MIN_EXTRA_CALLS more often per step than the median rank (with the
    time per step of the calls above the median's), then the names it runs slower per call (module docstring;
    worth at least `min_slow_ms` per step): annotations first (the regions the user named), then the most time
    first, at most MAX_ITEMS. Each rank's `work` is read by its `items()` only, once a pass over the ranks (a
    large job's is packed: `inputs.analyzed.Packed`)."""
    if len(work) < 3:
        return [[] for _ in work]
    keys, calls, time, shortest = _per_step(work, steps)
    out: list[list[dict[str, Any]]] = [[] for _ in work]
    for r, c, k in _sparse_items(work, steps, keys):
        out[r].append(_item(k, c[0], 0.0, c[2], float("nan"), c[1] / US_PER_MS))
    if keys:
        median = np.median(calls, axis=0)
        extra = calls - median
        share = np.where(calls > 0, np.clip(extra, 0, None) / np.where(calls > 0, calls, 1), 0.0)
        median_shortest = _median_present(shortest)
        loading = np.array([bool(cat.DATA_LOADING.search(name)) for _, name in keys], dtype=bool)  # its own cause
        slow = _slow(shortest, median_shortest, (extra < MIN_EXTRA_CALLS) & ~loading)
        with np.errstate(divide="ignore", invalid="ignore"):  # its time, less what the median rank's calls take
            slow_ms = time * (1 - median_shortest / shortest) / US_PER_MS
        for r in range(len(work)):
            for i in np.flatnonzero(extra[r] >= MIN_EXTRA_CALLS).tolist():
                out[r].append(_item(keys[i], calls[r, i], median[i], shortest[r, i], median_shortest[i],
                                    time[r, i] * share[r, i] / US_PER_MS))
            for i in np.flatnonzero(slow[r] & (slow_ms[r] >= max(min_slow_ms, 1e-9))).tolist():
                out[r].append(_item(keys[i], calls[r, i], median[i], shortest[r, i], median_shortest[i], slow_ms[r, i],
                                    slower=True))
    return [sorted(items, key=lambda w: (w["slower_per_call"], w["kind"] != "annotation", -w["excess_ms_per_step"]))
            [:MAX_ITEMS] for items in out]


def _per_step(work: list[Work], steps: np.ndarray) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray, np.ndarray]:
    """The names that at least half the ranks run, and by rank (ranks x names) their calls and µs per step and the
    shortest call in ms (NaN where a rank has fewer than MIN_CALLS): at most 2 x 3 x MAX_NAMES names whatever the ranks' count."""
    seen: dict[tuple[str, str], int] = {}
    for w in work:
        for kind, (names, *_) in w.items():
            for name in names:
                seen[kind, name] = seen.get((kind, name), 0) + 1
    keys = [k for k, n in seen.items() if 2 * n >= len(work)]
    index = {k: i for i, k in enumerate(keys)}
    calls = np.zeros((len(work), len(keys)))
    time = np.zeros((len(work), len(keys)))
    shortest = np.full((len(work), len(keys)), np.nan)
    for r, w in enumerate(work):
        for kind, (names, c, t, m) in w.items():
            at = [(j, index[kind, n]) for j, n in enumerate(names) if (kind, n) in index]
            if at:
                mine, theirs = np.array(at).T
                calls[r, theirs], time[r, theirs] = c[mine], t[mine]
                shortest[r, theirs] = np.where(c[mine] >= MIN_CALLS, m[mine] / US_PER_MS, np.nan)
    return keys, calls / steps[:, None], time / steps[:, None], shortest


def _sparse_items(work: list[Work], steps: np.ndarray, keys: list[tuple[str, str]]):
    """(rank, (calls, µs per step, shortest call in ms), key) of the names fewer than half the ranks run (the median
    rank: none)."""
    dense = set(keys)
    for r, w in enumerate(work):
        for kind, (names, c, t, m) in w.items():
            for j, name in enumerate(names):
                if (kind, name) not in dense and c[j] / steps[r] >= MIN_EXTRA_CALLS:
                    yield r, (c[j] / steps[r], t[j] / steps[r], m[j] / US_PER_MS), (kind, name)


def _median_present(values: np.ndarray) -> np.ndarray:
    """Per column, the median of the ranks that have a value (NaN where none has)."""
    out = np.full(values.shape[1], np.nan)
    known = ~np.isnan(values)
    for i in np.flatnonzero(known.any(axis=0)).tolist():
        out[i] = np.median(values[known[:, i], i])
    return out


def _slow(shortest: np.ndarray, median: np.ndarray, same_calls: np.ndarray) -> np.ndarray:
    """(ranks x names) a rank's time per call SLOW_FACTOR times the median rank's, a robust outlier among the ranks
    that call the name as often as the median rank does (at least 3), and SLOW_FACTOR times its own typical ratio
    (noise slows all of a rank's names alike)."""
    from workbench.analyses.stragglers import robust_outliers  # stragglers reduces this module's work

    known = ~np.isnan(shortest) & same_calls
    ratio = np.where(known, shortest / np.where(median > 0, median, np.nan), np.nan)
    outlier = np.zeros(shortest.shape, dtype=bool)
    for i in np.flatnonzero(known.sum(axis=0) >= 3).tolist():
        outlier[:, i] = robust_outliers(np.where(known[:, i], shortest[:, i], np.nan), 0.0)
    typical = np.array([np.nanmedian(row) if not np.isnan(row).all() else 1.0 for row in ratio])
    with np.errstate(invalid="ignore"):
        return outlier & (ratio >= SLOW_FACTOR) & (ratio >= SLOW_FACTOR * np.maximum(typical, 1.0)[:, None])


def _item(key: tuple[str, str], calls: float, median_calls: float, shortest_ms: float, median_shortest_ms: float,
          excess_ms: float, slower: bool = False) -> dict[str, Any]:
    return {"kind": key[0], "name": key[1], "calls_per_step": float(calls), "median_calls_per_step": float(median_calls),
            "shortest_call_ms": _finite(shortest_ms), "median_shortest_call_ms": _finite(median_shortest_ms),
            "slower_per_call": slower, "excess_ms_per_step": float(excess_ms)}


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
