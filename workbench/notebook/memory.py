"""Memory tab: the out-of-memory error (message, failing line, frames), allocated and reserved over
time with the OOM and the device's capacity marked, live memory by category and allocation site (at
the OOM and at the peak, said once when they are the same), the allocator's pools, and the segment
map of a snapshot. Byte axes are in binary units (GiB, MiB), as the tables and torch print them."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from workbench.notebook.parts import Chart, Column, Html, Part, Table, esc, heading, input_title
from workbench.notebook.sources import DashboardData
from workbench.analyses.stacks import is_user_file
from workbench.notebook.style import COLORS
from workbench.units import binary_unit, format_bytes

SITES = [Column("site", "Allocation site"), Column("bytes", "Bytes"), Column("blocks", "Blocks"),
         Column("category", "Category")]
PINNING = SITES + [Column("segments", "Segments"), Column("free_bytes_beside", "Free beside"),
                   Column("allocations_before", "Allocations before"), Column("frees_before", "Frees before")]
POOLS = [Column("pool", "Pool"), Column("segments", "Segments"), Column("reserved_bytes", "Reserved"),
         Column("allocated_bytes", "Allocated"), Column("free_bytes", "Free"),
         Column("largest_free_block_bytes", "Largest free block"), Column("free_blocks", "Free blocks"),
         Column("fragmentation_pct", "Fragmentation %")]
# (at the OOM, at the peak, at the dump, what they are of): both moments are shown, once when the same
SITE_TABLES = ("sites_at_oom", "sites_at_peak", "sites", "Live memory {when} by allocation site")
CATEGORY_TABLES = ("categories_at_oom", "categories_at_peak", None, "Live memory {when} by category")
PINNING_TABLES = (("pinning_sites_at_oom", "Blocks that pin free memory at the OOM, by site"),)
POOL_TABLES = (("pools_at_oom", "Allocator pools at the OOM"), ("pools", "Allocator pools at the dump"))
MEMORY_TABLES = {"memory_curve", "segments_at_oom", *CATEGORY_TABLES[:2], *SITE_TABLES[:3],
                 *(t for t, _ in PINNING_TABLES + POOL_TABLES)}


def parts(data: DashboardData) -> list[Part]:
    out: list[Part] = []
    for input_ in data.report["inputs"]:
        tables = input_.get("tables", {})
        oom = _oom_box(input_)
        if not oom and not MEMORY_TABLES & {name for name, rows in tables.items() if rows}:
            continue
        out += input_title(input_, len(data.report["inputs"]) > 1) + oom
        if tables.get("memory_curve"):
            out += [heading("Allocated and reserved over time"),
                    Chart(curve(tables["memory_curve"], input_["metrics"]))]
        for when, rows in _moments(tables, CATEGORY_TABLES):
            out += [heading(CATEGORY_TABLES[3].format(when=when)), Chart(category_bars(rows))]
        for when, rows in _moments(tables, SITE_TABLES):
            out.append(Table(SITE_TABLES[3].format(when=when), SITES, rows))
        for group, columns in ((PINNING_TABLES, PINNING), (POOL_TABLES, POOLS)):
            name, title = next(((n, t) for n, t in group if tables.get(n)), (None, ""))
            if name:
                out.append(Table(title, columns, tables[name]))
        if tables.get("segments_at_oom"):
            out += [heading("Segment map at the OOM"), Chart(segment_map(tables["segments_at_oom"]))]
    return out


def _moments(tables: dict[str, Any], names: tuple[str | None, ...]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(when, rows) to show of a table kept at the OOM and at the peak: both, or one when they are the same;
    else the table at the dump."""
    at_oom, at_peak, at_dump = (tables.get(n) if n else None for n in names[:3])
    if at_oom and at_peak:
        if at_oom == at_peak:
            return [("at the OOM (the same at the peak)", at_oom)]
        return [("at the OOM", at_oom), ("at the peak", at_peak)]
    if at_oom or at_peak:
        return [("at the OOM", at_oom)] if at_oom else [("at the peak", at_peak)]
    return [("at the dump", at_dump)] if at_dump else []


def _oom_box(input_: dict[str, Any]) -> list[Part]:
    """The error message, the line that failed (the innermost frame in the user's code) and the frames."""
    meta = input_.get("meta", {})
    message = meta.get("oom_message") or {}
    stack = meta.get("oom_stack") or []
    if "oom_requested_bytes" not in input_["metrics"] and not stack and not message:
        return []
    frames = message.get("python_frames") or []
    failing = next((f for f in frames if is_user_file(f.split(":", 1)[0])), None)
    html = [f"<div class='wb-code wb-wrap'>{esc(message['text'])}</div>"] if message.get("text") else []
    if failing:
        where, _, code = failing.partition(": ")
        html.append(f"<div class='wb-h'>The line that failed: <code>{esc(where)}</code></div>"
                    + (f"<div class='wb-code'>{esc(code)}</div>" if code else ""))
    listed = stack if isinstance(stack, list) else [stack]
    if listed:
        html.append("<div class='wb-sub'>Where the failing allocation was made (the snapshot's frames, innermost "
                    "first):</div><div class='wb-code'>" + "<br>".join(esc(f) for f in listed[:8]) + "</div>")
    elif frames:
        html.append("<div class='wb-sub'>The traceback, innermost first:</div><div class='wb-code'>"
                    + "<br>".join(esc(f) for f in frames[:8]) + "</div>")
    return [heading("The out-of-memory error"), Html("".join(html) or "<div class='wb-sub'>no stack recorded</div>")]


def curve(rows: list[dict[str, Any]], metrics: dict[str, Any]) -> go.Figure:
    """Allocated and reserved bytes over time, the OOM and the device's capacity (from the OOM message) marked."""
    capacity = metrics.get("message_total_bytes")
    unit, size = binary_unit(max([r["reserved_bytes"] for r in rows] + [capacity or 0]))
    fig = go.Figure()
    for key, name in (("allocated_bytes", "allocated"), ("reserved_bytes", "reserved")):
        fig.add_scatter(x=[r["time_ms"] for r in rows], y=[r[key] / size for r in rows], name=name, mode="lines",
                        line=dict(color=COLORS[name], shape="hv"), hovertemplate=f"%{{y:.2f}} {unit}")
    if metrics.get("oom_time_ms") is not None:
        fig.add_vline(x=metrics["oom_time_ms"], line_color=COLORS["critical"], line_dash="dash",
                      annotation_text="OOM", annotation_font_color=COLORS["critical"])
    if capacity:
        fig.add_hline(y=capacity / size, line_color=COLORS["critical"], line_dash="dot",
                      annotation_text=f"device capacity {format_bytes(capacity)}", annotation_position="bottom left")
    fig.update_layout(autosize=True, height=300, margin=dict(l=10, r=10, t=20, b=40), xaxis_title="ms",
                      yaxis_title=unit, yaxis_rangemode="tozero", legend_orientation="h")
    return fig


def category_bars(rows: list[dict[str, Any]]) -> go.Figure:
    key = "bytes" if "bytes" in rows[0] else "bytes_at_peak"
    unit, size = binary_unit(max(r[key] for r in rows))
    fig = go.Figure(go.Bar(orientation="h", y=[r["category"] for r in rows], x=[r[key] / size for r in rows],
                           marker_color=COLORS["allocated"], hovertemplate=f"%{{y}}: %{{x:.2f}} {unit}<extra></extra>"))
    fig.update_layout(autosize=True, height=80 + 28 * len(rows), margin=dict(l=10, r=10, t=10, b=30),
                      xaxis_title=unit, yaxis=dict(autorange="reversed", automargin=True))
    return fig


def segment_map(rows: list[dict[str, Any]]) -> go.Figure:
    """Each segment as a bar of its bytes in use and free, by address."""
    labels = [f"{r['pool']} {r['segment']}" for r in rows]
    unit, size = binary_unit(max(r["allocated_bytes"] + r["free_bytes"] for r in rows))
    fig = go.Figure([go.Bar(name=name, x=labels, y=[r[key] / size for r in rows], marker_color=COLORS[color],
                            hovertemplate=f"%{{x}}: %{{y:.2f}} {unit}")
                     for name, key, color in (("in use", "allocated_bytes", "allocated"),
                                              ("free", "free_bytes", "free"))])
    fig.update_layout(autosize=True, barmode="stack", height=300, margin=dict(l=10, r=10, t=10, b=40),
                      yaxis_title=unit, xaxis=dict(showticklabels=False, title="segments by address"),
                      legend_orientation="h")
    return fig
