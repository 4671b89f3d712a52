"""The work each rank of a job does, by name, and the work one rank does beyond the others.

Wall-clock time varies between ranks for reasons that are not theirs (a shared node, oversubscribed
cores): on a 2-core machine, 8 gloo ranks' compute per step spreads from 21 to 66 ms. The number of
calls does not: ranks that run the same program call the same annotations (`record_function`
regions), operators and kernels equally often. A rank that calls a name more often per step than
the median rank runs extra work (an extra model branch, an extra augmentation region); that work is
named with its time per step on that rank, the share of its calls above the median's.
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
MAX_ITEMS = 3  # extra work listed per rank
Work = dict[tuple[str, str], tuple[int, float]]  # (kind, name) -> (calls, total µs)


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
        out.update({(kind, e.names[i]): (int(calls[i]), float(time[i])) for i in used.tolist()})
    return out


def extra_work(work: list[Work], steps: np.ndarray) -> list[list[dict[str, Any]]]:
    """Per rank, the names it calls at least MIN_EXTRA_CALLS more often per step than the median rank, with the
    time per step of the calls above the median's: annotations first (the regions the user named), then the
    most time first (at most MAX_ITEMS)."""
    keys = list(dict.fromkeys(k for w in work for k in w))
    if len(work) < 3 or not keys:
        return [[] for _ in work]
    calls = np.array([[w.get(k, (0, 0.0))[0] for k in keys] for w in work], dtype=np.float64) / steps[:, None]
    time = np.array([[w.get(k, (0, 0.0))[1] for k in keys] for w in work], dtype=np.float64) / steps[:, None]
    median = np.median(calls, axis=0)
    extra = calls - median
    share = np.where(calls > 0, np.clip(extra, 0, None) / np.where(calls > 0, calls, 1), 0.0)
    excess_ms = time * share / US_PER_MS
    out = []
    for r in range(len(work)):
        found = np.flatnonzero(extra[r] >= MIN_EXTRA_CALLS)
        named = np.array([keys[i][0] != "annotation" for i in found.tolist()], dtype=bool)
        found = found[np.lexsort((-excess_ms[r, found], named))][:MAX_ITEMS]
        out.append([{"kind": keys[i][0], "name": keys[i][1], "calls_per_step": float(calls[r, i]),
                     "median_calls_per_step": float(median[i]), "excess_ms_per_step": float(excess_ms[r, i])}
                    for i in found.tolist()])
    return out
