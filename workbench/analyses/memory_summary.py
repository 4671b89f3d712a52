"""Allocator snapshots, OOM messages and memory timelines gathered into metrics, tables and meta."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from workbench.analyses.allocator_replay import (
    AllocatorState, allocated_curve, requested_at_window_start, reserved_curve, state_after,
)
from workbench.analyses.memory_growth import growing_sites
from workbench.analyses.memory_layout import (
    Layout, largest_free_if_contiguous, layout_of, pinning_blocks, pool_rows, segment_rows,
)
from workbench.analyses.memory_sites import category_rows, site_name, site_names, site_rows, user_stack
from workbench.analyses.trace_memory import memory_curve
from workbench.analyses.trace_summary import TraceSummary as Summary  # metrics, tables, meta
from workbench.models.memory import (
    ALLOC, FREE_REQUESTED, OOM, AllocatorSnapshot, DeviceMemory, MemoryTimeline, OomMessage,
)

LARGE_REQUEST_BYTES = 1 << 20  # requests above this are served from the large pool
TRAINING_CATEGORIES = ("optimizer state", "gradients and backward temporaries")


def summarize_snapshot(snapshot: AllocatorSnapshot, message: OomMessage | None, top: int) -> Summary:
    device = _device_of_interest(snapshot)
    h = device.history
    ooms = np.flatnonzero(h.action == OOM)
    metrics: dict[str, Any] = {"device": device.device, "history_events": len(h), "oom_events": len(ooms)}
    tables: dict[str, list[dict[str, Any]]] = {}
    meta: dict[str, Any] = {"allocator_settings": snapshot.allocator_settings,
                            "device_ids": [d.device for d in snapshot.devices], "has_history": snapshot.has_history}
    final = state_after(device, len(h) - 1)
    final_layout = layout_of(final)
    tables["pools"] = pool_rows(final_layout)
    metrics.update(_state_metrics(final, tables["pools"], "", LARGE_REQUEST_BYTES + 1))
    tables["sites"] = site_rows(_live(final), top)
    if len(h):
        allocated = allocated_curve(device)
        window_start = requested_at_window_start(device)
        metrics["history_starts_with_bytes_in_use"] = window_start
        metrics["history_requested_bytes"] = int(h.size[h.action == ALLOC].sum())
        meta["history_truncated"] = window_start > 0
        if h.time_us.any():
            tables["memory_curve"] = memory_curve(h.time_us, allocated, reserved_curve(device))
        peak = int(np.argmax(allocated))
        peak_state = state_after(device, peak)
        metrics["peak_allocated_bytes"] = peak_state.allocated_bytes
        metrics["peak_reserved_bytes"] = int(reserved_curve(device).max())
        live_at_peak = _live(peak_state)
        tables["sites_at_peak"] = site_rows(live_at_peak, top)
        tables["categories_at_peak"] = category_rows(live_at_peak)
    if len(ooms):
        _oom_part(device, int(ooms[0]), metrics, tables, meta, top)
    growing = growing_sites(device, int(ooms[0]) if len(ooms) else len(h) - 1)
    if growing:
        tables["growing_sites"] = growing
    live = tables.get("categories_at_oom") or tables.get("categories_at_peak") or []
    meta["is_training"] = any(r["category"] in TRAINING_CATEGORIES for r in live)
    if message is not None:
        meta["oom_message"] = asdict(message)
        _message_metrics(message, metrics)
    return Summary(metrics=metrics, tables=tables, meta=meta)


def summarize_oom_message(message: OomMessage, count: int) -> Summary:
    metrics: dict[str, Any] = {"oom_messages": count}
    _message_metrics(message, metrics)
    return Summary(metrics=metrics, tables={}, meta={"oom_message": asdict(message)})


def summarize_timeline(timeline: MemoryTimeline) -> Summary:
    """Peak memory and what each category held at the peak."""
    total = sum(timeline.bytes_by_category.values())
    peak = int(np.argmax(total)) if len(total) else 0
    rows = [{"category": c, "bytes_at_peak": int(v[peak]), "max_bytes": int(v.max())}
            for c, v in timeline.bytes_by_category.items() if len(v)]
    rows.sort(key=lambda r: r["bytes_at_peak"], reverse=True)
    metrics = {"peak_bytes": int(total[peak]) if len(total) else 0, "timeline_points": len(timeline.time_us),
               "duration_ms": float(timeline.time_us[-1] - timeline.time_us[0]) / 1e3 if len(total) else 0.0}
    metrics.update({f"{r['category']}_bytes_at_peak": r["bytes_at_peak"] for r in rows})
    return Summary(metrics=metrics, tables={"categories_at_peak": rows}, meta={})


def _device_of_interest(snapshot: AllocatorSnapshot) -> DeviceMemory:
    """The device that ran out of memory, else the one with the most memory reserved."""
    with_oom = [d for d in snapshot.devices if (d.history.action == OOM).any()]
    return (with_oom or sorted(snapshot.devices, key=lambda d: -int(d.segments.size.sum())))[0]


def _live(state: AllocatorState) -> list[tuple[int, list]]:
    return [(b.size, b.frames) for b in state.blocks if not b.pending]


def _state_metrics(state: AllocatorState, pools: list[dict[str, Any]], suffix: str, request: int) -> dict[str, Any]:
    """Allocated, reserved and the free block that matters for `request`, from `pool_rows` of the state."""
    pool = "small" if request <= LARGE_REQUEST_BYTES else "large"
    rows = {r["pool"]: r for r in pools}
    largest = rows.get(pool, {}).get("largest_free_block_bytes", 0)
    return {
        f"allocated_bytes{suffix}": state.allocated_bytes,
        f"reserved_bytes{suffix}": state.reserved_bytes,
        f"reserved_unallocated_bytes{suffix}": state.reserved_bytes - state.allocated_bytes,
        f"largest_free_block_bytes{suffix}": largest,
        f"fragmentation_pct{suffix}": rows.get(pool, {}).get("fragmentation_pct", 0.0),
        f"segments{suffix}": len(state.ranges),
    }


def _oom_part(device: DeviceMemory, index: int, metrics: dict[str, Any], tables: dict[str, list[dict[str, Any]]],
              meta: dict[str, Any], top: int) -> None:
    h = device.history
    requested = int(h.size[index])
    state = state_after(device, index)
    layout = layout_of(state)
    metrics["oom_requested_bytes"] = requested
    tables["pools_at_oom"] = pool_rows(layout)
    metrics.update(_state_metrics(state, tables["pools_at_oom"], "_at_oom", requested))
    metrics["device_free_bytes_at_oom"] = h.device_free.get(index, 0)
    metrics["largest_free_if_segments_joined_bytes_at_oom"] = largest_free_if_contiguous(layout)
    partly = pinning_blocks(layout)
    sizes = (layout.range_end - layout.range_start)[layout.block_range[partly]]
    metrics["largest_partly_used_segment_bytes_at_oom"] = int(sizes.max(initial=0))
    metrics["inconsistent_history_events"] = state.inconsistencies
    tables["segments_at_oom"] = segment_rows(layout)
    if h.time_us.any():
        metrics["oom_time_ms"] = round(float(h.time_us[index] - h.time_us.min()) / 1000.0, 3)
    live = _live(state)
    tables["sites_at_oom"] = site_rows(live, top)
    tables["categories_at_oom"] = category_rows(live)
    tables["pinning_sites_at_oom"] = _pinning_sites(state, layout, partly, top)
    churn = _site_churn(device, index)
    for row in tables["pinning_sites_at_oom"]:
        row["allocations_before"], row["frees_before"] = churn.get(row["site"], (0, 0))
    meta["oom_stack"] = user_stack(h.frames[index], limit=10)
    meta["oom_time_us"] = int(h.time_us[index])


def _pinning_sites(state: AllocatorState, layout: Layout, pinning: np.ndarray, top: int) -> list[dict[str, Any]]:
    """Sites of the blocks that sit inside segments with free memory, with the free bytes beside them."""
    by_address = {b.address: b for b in state.blocks}
    free_by_range = np.bincount(layout.free_range, weights=layout.free_size, minlength=len(layout.range_start))
    rows = site_rows(((int(layout.block_size[i]), by_address[int(layout.block_address[i])].frames)
                      for i in pinning.tolist()), top)
    ranges_of_site: dict[str, set[int]] = {}
    for i in pinning.tolist():
        site = site_name(by_address[int(layout.block_address[i])].frames)
        ranges_of_site.setdefault(site, set()).add(int(layout.block_range[i]))
    for row in rows:
        ranges = sorted(ranges_of_site.get(row["site"], ()))
        row["segments"] = len(ranges)
        row["free_bytes_beside"] = int(free_by_range[ranges].sum()) if ranges else 0
    return rows


def _site_churn(device: DeviceMemory, index: int) -> dict[str, tuple[int, int]]:
    """Per allocation site: allocations, and frees of those allocations, in the history up to `index`."""
    h = device.history
    events = np.flatnonzero(np.isin(h.action[: index + 1], (ALLOC, FREE_REQUESTED)))
    allocs = events[h.action[events] == ALLOC]
    site_of_alloc = dict(zip(allocs.tolist(), site_names(h.frames, allocs.tolist())))
    counts: dict[str, list[int]] = {}
    live_site: dict[int, str] = {}
    for j, address in zip(events.tolist(), h.address[events].tolist()):
        site = site_of_alloc.get(j)
        if site is not None:
            live_site[address] = site
            counts.setdefault(site, [0, 0])[0] += 1
        elif address in live_site:
            counts[live_site.pop(address)][1] += 1
    return {site: (a, f) for site, (a, f) in counts.items()}


def _message_metrics(message: OomMessage, metrics: dict[str, Any]) -> None:
    """The message's numbers, named apart from the snapshot's (`message_...`)."""
    fields = ("requested_bytes", "total_bytes", "free_bytes", "process_bytes", "allocated_bytes",
              "reserved_bytes", "reserved_unallocated_bytes", "private_pool_bytes", "allowed_bytes",
              "other_allocations_bytes")
    for name in fields:
        value = getattr(message, name)
        if value is not None:
            metrics[f"message_{name}"] = value
    if message.other_processes:
        metrics["message_other_processes_bytes"] = sum(message.other_processes.values())
