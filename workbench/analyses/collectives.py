"""Collective calls of one trace: their kind, message size, time and step; statistics per kind.

A call is the host annotation a process group records around each collective
(`nccl:all_reduce`, `gloo:broadcast`...). Its time is the device time of the communication
kernels it launched (joined through the launch's correlation id and the annotation that
encloses the launch on the same thread), NaN when the trace holds none of them; gloo's
annotation runs on the backend's worker thread for the whole collective, so its own
duration is the time. Communication kernels that no call encloses count as calls of the kind
their name says (`ncclDevKernel_AllReduce_...`). Message sizes come from the call's
`Input Dims` and `Input type`, else from the `record_param_comms` around it (In/Out msg
nelems and dtype): the larger of the two counts, as nccl-tests count an all-gather's output.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from workbench.analyses import categories as cat
from workbench.analyses.operators import lookup
from workbench.analyses.steps import step_mask
from workbench.models.comm_args import CommArgs
from workbench.models.trace import MISSING, EventTable, Trace
from workbench.units import US_PER_MS

CALL = re.compile(r"^(nccl|rccl|hccl|xccl|gloo|mpi|ucc):(\w+)$")
HOST_BACKENDS = ("gloo:", "mpi:", "ucc:")  # their annotation spans the whole collective
KERNEL_OP = re.compile(r"(?:nccl|rccl)\w*?Kernel_([A-Za-z]+)")
STEP_NUMBER = re.compile(r"#(\d{1,18})$")
# collectives whose message has the same size on every rank (all_to_all's splits may differ)
SYMMETRIC = frozenset({"all_reduce", "broadcast", "all_gather", "reduce_scatter", "reduce", "barrier"})
DTYPE_BYTES = {
    "double": 8, "long": 8, "long int": 8, "int64": 8, "c10::complex<float>": 8,
    "float": 4, "int": 4, "int32": 4,
    "half": 2, "c10::half": 2, "bfloat16": 2, "c10::bfloat16": 2, "short": 2,
    "signed char": 1, "unsigned char": 1, "char": 1, "byte": 1, "bool": 1, "int8": 1, "uint8": 1,
}


@dataclass
class Collectives:
    """One row per collective call in start order, then one per communication kernel that no call encloses."""

    event: np.ndarray  # index of the call's host event (or of the kernel, for a kernel without call)
    kind: np.ndarray  # object array: all_reduce, all_to_all, all_gather, ...
    process_group: np.ndarray  # object array: "Process Group Name", "" when not recorded
    nelems: np.ndarray  # int64 message elements, MISSING when not recorded
    bytes: np.ndarray  # float64 message bytes, NaN when not recorded
    start_us: np.ndarray  # float64: start of its first kernel (of the call itself for gloo), NaN untimed
    time_us: np.ndarray  # float64: kernel time, or the call's own duration for gloo, NaN untimed
    step: np.ndarray  # int64 ProfilerStep number around the call's start, MISSING outside steps

    def __len__(self) -> int:
        return len(self.event)


def find_collectives(trace: Trace, kinds: np.ndarray) -> Collectives:
    """The collectives of a trace; `kinds` are its events' `categories.gpu_kinds`."""
    events = trace.events
    comm = trace.comm_args or CommArgs()
    host = events.category_mask(cat.ANNOTATION_CATEGORIES | cat.HOST_OP_CATEGORIES)
    calls = np.flatnonzero(host & events.name_mask(CALL.match))
    calls = calls[np.argsort(events.ts[calls], kind="stable")]
    kernels = np.flatnonzero(kinds == cat.COMMUNICATION_KIND)
    call_of_kernel = _call_of_kernels(events, calls, kernels)
    orphans = kernels[call_of_kernel == MISSING]
    n_calls = len(calls)
    linked = call_of_kernel != MISSING
    kernel_us = np.bincount(call_of_kernel[linked], weights=events.dur[kernels][linked], minlength=n_calls)
    launched = np.bincount(call_of_kernel[linked], minlength=n_calls) > 0
    time_us = np.where(launched, kernel_us, np.nan)
    start_us = np.full(n_calls, np.inf)
    np.minimum.at(start_us, call_of_kernel[linked], events.ts[kernels][linked])
    start_us[~launched] = np.nan
    on_host = events.name_mask(lambda name: name.startswith(HOST_BACKENDS))[calls]
    time_us[on_host] = events.dur[calls][on_host]
    start_us[on_host] = events.ts[calls][on_host]
    nelems, dtype_bytes, group = _message(events, comm, calls)
    rows = np.concatenate([calls, orphans])
    kind = np.concatenate([_named(events, calls, _call_kind), _named(events, orphans, _kernel_kind)])
    pad = len(orphans)
    nelems = np.concatenate([nelems, np.full(pad, MISSING, dtype=np.int64)])
    return Collectives(
        event=rows,
        kind=kind,
        process_group=np.concatenate([group, np.full(pad, "", dtype=object)]),
        nelems=nelems,
        bytes=np.where(nelems >= 0, nelems * np.concatenate([dtype_bytes, np.full(pad, np.nan)]), np.nan),
        start_us=np.concatenate([start_us, events.ts[orphans]]),
        time_us=np.concatenate([time_us, events.dur[orphans]]),
        step=step_numbers(events, events.ts[rows]),
    )


def collective_table(c: Collectives) -> list[dict[str, Any]]:
    """Per kind: count, time, message bytes where recorded, and algorithm bandwidth."""
    if not len(c):
        return []
    kinds, code = np.unique(c.kind.astype(str), return_inverse=True)
    n = len(kinds)
    timed = ~np.isnan(c.time_us)
    both = timed & ~np.isnan(c.bytes)
    count = np.bincount(code, minlength=n)
    timed_count = np.bincount(code[timed], minlength=n)
    time_us = np.bincount(code[timed], weights=c.time_us[timed], minlength=n)
    sized_count = np.bincount(code[~np.isnan(c.bytes)], minlength=n)
    sized_bytes = np.bincount(code, weights=np.nan_to_num(c.bytes), minlength=n)
    rated_bytes = np.bincount(code[both], weights=c.bytes[both], minlength=n)
    rated_us = np.bincount(code[both], weights=c.time_us[both], minlength=n)
    rows = []
    for k in np.lexsort((-count, -time_us)).tolist():
        rows.append({
            "kind": str(kinds[k]),
            "count": int(count[k]),
            "total_ms": float(time_us[k]) / US_PER_MS,
            "mean_us": float(time_us[k] / timed_count[k]) if timed_count[k] else None,
            "bytes_total": int(sized_bytes[k]) if sized_count[k] else None,
            "bytes_mean": float(sized_bytes[k] / sized_count[k]) if sized_count[k] else None,
            # algorithm bandwidth: message bytes / time (bytes per µs / 1000 = GB/s)
            "algbw_gbps": float(rated_bytes[k] / rated_us[k] / 1e3) if rated_us[k] else None,
        })
    return rows


def collective_metrics(c: Collectives, metrics: dict[str, Any]) -> dict[str, Any]:
    """Counts and time of the collectives, and exposed communication per step.

    `metrics` are the trace's GPU-time and step metrics: exposed communication is the time a
    collective ran with no compute kernel beside it (`communication_ms`), per step.
    """
    if not len(c):
        return {}
    out: dict[str, Any] = {
        "collective_count": len(c),
        "collective_ms": float(np.nansum(c.time_us)) / US_PER_MS,
        "collective_bytes": int(np.nansum(c.bytes)),
    }
    steps = int(metrics.get("step_count") or 0)
    if "communication_ms" in metrics:
        out["exposed_comm_ms_per_step"] = float(metrics["communication_ms"]) / max(steps, 1)
    return out


def step_numbers(events: EventTable, ts: np.ndarray) -> np.ndarray:
    """The number N of the `ProfilerStep#N` whose span holds each time, MISSING outside steps."""
    steps = np.flatnonzero(step_mask(events))
    steps = steps[np.argsort(events.ts[steps], kind="stable")]
    if not len(steps):
        return np.full(len(ts), MISSING, dtype=np.int64)
    numbers = np.array([int(STEP_NUMBER.search(events.names[c]).group(1)) for c in events.name[steps].tolist()],
                       dtype=np.int64)
    pos = np.searchsorted(events.ts[steps], ts, side="right") - 1
    inside = (pos >= 0) & (ts < events.end[steps][np.maximum(pos, 0)])
    return np.where(inside, numbers[np.maximum(pos, 0)], MISSING)


def enclosing(events: EventTable, outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """For each `inner` event, the latest-starting `outer` event on its thread that holds its start.

    Returns indexes into `outer` (MISSING where none). Threads and times are folded into one
    sortable key: thread number x (trace span + 1) + time since the trace's start.
    """
    if not len(outer) or not len(inner):
        return np.full(len(inner), MISSING, dtype=np.int64)
    both = np.concatenate([outer, inner])
    _, thread = np.unique(np.stack([events.pid[both], events.tid[both]]), axis=1, return_inverse=True)
    thread = thread.ravel().astype(np.float64)
    origin = float(events.ts[both].min())
    span = float(events.end[both].max()) - origin + 1.0
    key = thread * span + (events.ts[both] - origin)
    key_outer, key_inner = key[: len(outer)], key[len(outer):]
    order = np.argsort(key_outer, kind="stable")
    pos = np.searchsorted(key_outer[order], key_inner, side="right") - 1
    found = order[np.maximum(pos, 0)]
    same = thread[found] == thread[len(outer):]
    inside = (pos >= 0) & same & (events.end[outer][found] >= events.ts[inner])
    return np.where(inside, found, MISSING)


def _call_of_kernels(events: EventTable, calls: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Per communication kernel, the row in `calls` whose annotation encloses its launch, or MISSING."""
    runtime = np.flatnonzero(events.category_mask(cat.RUNTIME_CATEGORIES))
    launch = lookup(events.correlation[kernels], events.correlation[runtime], runtime)
    known = launch != MISSING
    out = np.full(len(kernels), MISSING, dtype=np.int64)
    out[known] = enclosing(events, calls, launch[known])
    return out


def _message(events: EventTable, comm: CommArgs, calls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per call: message elements (MISSING unknown), bytes per element (NaN unknown), process group."""
    n = len(calls)
    nelems = np.full(n, MISSING, dtype=np.int64)
    size = np.full(n, np.nan)
    group = np.full(n, "", dtype=object)
    every_row = np.arange(len(comm))
    # the call's own Input Dims and Input type (older traces, gloo)
    rows = lookup(calls, comm.index, every_row)
    own = rows != MISSING
    shapes = events.shapes[calls[own]]
    codes, inverse = np.unique(shapes, return_inverse=True)
    counts = np.array([_elements(events.strings[c]) if c != MISSING else MISSING for c in codes.tolist()],
                      dtype=np.int64)
    nelems[own] = counts[inverse.ravel()]
    size[own] = _element_bytes(comm.input_type)[rows[own]]
    # the record_param_comms around the call (newer traces): In/Out msg nelems, dtype, group
    params = np.flatnonzero(np.array([bool(c) for c in comm.collective], dtype=bool))
    outer = enclosing(events, comm.index[params], calls)
    inside = outer != MISSING
    row = params[outer[inside]]
    group[inside] = np.array(comm.process_group, dtype=object)[row] if len(row) else group[inside]
    fill = np.flatnonzero(inside)[(nelems[inside] == MISSING) | np.isnan(size[inside])]
    fill_row = params[outer[fill]]
    nelems[fill] = np.maximum(comm.in_nelems[fill_row], comm.out_nelems[fill_row])
    size[fill] = _element_bytes(comm.dtype)[fill_row]
    return nelems, size, group


def _element_bytes(dtypes: list[str]) -> np.ndarray:
    """Bytes per element of each dtype name (NaN when unknown or absent)."""
    return np.array([DTYPE_BYTES.get(t.lower(), np.nan) for t in dtypes], dtype=np.float64)


def _elements(dims_json: str) -> int:
    """Elements of the tensors in an `Input Dims` list ([[4096, 384]] -> 1572864), MISSING if unreadable."""
    try:
        dims = json.loads(dims_json)
    except ValueError:
        return MISSING
    tensors = [d for d in dims if isinstance(d, list) and d and all(isinstance(x, int) for x in d)]
    return int(sum(np.prod(t) for t in tensors)) if tensors else MISSING


def _named(events: EventTable, index: np.ndarray, namer: Callable[[str], str]) -> np.ndarray:
    """`namer` of each event's name, called once per distinct name."""
    codes, inverse = np.unique(events.name[index], return_inverse=True)
    return np.array([namer(events.names[c]) for c in codes.tolist()], dtype=object)[inverse.ravel()]


def _call_kind(name: str) -> str:
    """`nccl:_all_gather_base` -> `all_gather`."""
    op = CALL.match(name).group(2).strip("_")
    return op.removesuffix("_base")


def _kernel_kind(name: str) -> str:
    """`ncclDevKernel_AllReduce_Sum_f32_RING_LL` -> `all_reduce`, `multimem_all_reduce_kernel` -> `all_reduce`;
    other kernels -> `other`."""
    match = KERNEL_OP.search(name)
    if match:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", match.group(1)).lower()
    return cat.serving_collective(name) or "other"
