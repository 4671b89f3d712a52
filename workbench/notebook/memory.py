"""Memory tab: allocated and reserved over time with the OOM marked, live memory by category and
allocation site, the allocator's pools, and the segment map of a snapshot."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from workbench.notebook.parts import Chart, Column, Html, Part, Table, esc, heading, inputs_with
from workbench.notebook.sources import DashboardData
from workbench.notebook.style import COLORS, WIDTH

SITES = [Column("site", "Allocation site"), Column("bytes", "Bytes"), Column("blocks", "Blocks"),
         Column("category", "Category")]
PINNING = SITES + [Column("segments", "Segments"), Column("free_bytes_beside", "Free beside"),
                   Column("allocations_before", "Allocations before"), Column("frees_before", "Frees before")]
POOLS = [Column("pool", "Pool"), Column("segments", "Segments"), Column("reserved_bytes", "Reserved"),
         Column("allocated_bytes", "Allocated"), Column("free_bytes", "Free"),
         Column("largest_free_block_bytes", "Largest free block"), Column("free_blocks", "Free blocks"),
         Column("fragmentation_pct", "Fragmentation %")]
# (table, title): the dashboard shows the first of each group that the input has
SITE_TABLES = (("sites_at_oom", "Live memory at the OOM by allocation site"),
               ("sites_at_peak", "Live memory at the peak by allocation site"),
               ("sites", "Live memory at the dump by allocation site"))
CATEGORY_TABLES = ("categories_at_oom", "categories_at_peak")
PINNING_TABLES = (("pinning_sites_at_oom", "Blocks that pin free memory at the OOM, by site"),)
POOL_TABLES = (("pools_at_oom", "Allocator pools at the OOM"), ("pools", "Allocator pools at the dump"))
MEMORY_TABLES = {"memory_curve", "segments_at_oom", *CATEGORY_TABLES,
                 *(t for t, _ in SITE_TABLES + PINNING_TABLES + POOL_TABLES)}


def parts(data: DashboardData) -> list[Part]:
    out: list[Part] = []
    for input_, tables, title in inputs_with(data.report, MEMORY_TABLES):
        out += title + _oom_line(input_)
        if tables.get("memory_curve"):
            out += [heading("Allocated and reserved over time"),
                    Chart(curve(tables["memory_curve"], input_["metrics"]))]
        categories = next((tables[t] for t in CATEGORY_TABLES if tables.get(t)), None)
        if categories:
            out += [heading("Live memory by category"), Chart(category_bars(categories))]
        for group, columns in ((SITE_TABLES, SITES), (PINNING_TABLES, PINNING), (POOL_TABLES, POOLS)):
            name, title = next(((n, t) for n, t in group if tables.get(n)), (None, ""))
            if name:
                out.append(Table(title, columns, tables[name]))
        if tables.get("segments_at_oom"):
            out += [heading("Segment map at the OOM"), Chart(segment_map(tables["segments_at_oom"]))]
    return out


def _oom_line(input_: dict[str, Any]) -> list[Part]:
    stack = input_.get("meta", {}).get("oom_stack") or []
    if "oom_requested_bytes" not in input_["metrics"] and not stack:
        return []
    frames = "<br>".join(esc(f) for f in stack[:6]) if isinstance(stack, list) else esc(stack)
    return [heading("The out-of-memory error"), Html(f"<div class='wb-code'>{frames or 'no stack recorded'}</div>")]


def curve(rows: list[dict[str, Any]], metrics: dict[str, Any]) -> go.Figure:
    fig = go.Figure()
    for key, name in (("allocated_bytes", "allocated"), ("reserved_bytes", "reserved")):
        fig.add_scatter(x=[r["time_ms"] for r in rows], y=[r[key] for r in rows], name=name, mode="lines",
                        line=dict(color=COLORS[name], shape="hv"))
    if metrics.get("oom_time_ms") is not None:
        fig.add_vline(x=metrics["oom_time_ms"], line_color=COLORS["critical"], line_dash="dash",
                      annotation_text="OOM", annotation_font_color=COLORS["critical"])
    fig.update_layout(width=WIDTH, height=300, margin=dict(l=10, r=10, t=20, b=40), xaxis_title="ms",
                      yaxis_title="bytes", yaxis_tickformat=".3s", legend_orientation="h")
    return fig


def category_bars(rows: list[dict[str, Any]]) -> go.Figure:
    key = "bytes" if "bytes" in rows[0] else "bytes_at_peak"
    fig = go.Figure(go.Bar(orientation="h", y=[r["category"] for r in rows], x=[r[key] for r in rows],
                           marker_color=COLORS["allocated"]))
    fig.update_layout(width=WIDTH, height=60 + 28 * len(rows), margin=dict(l=10, r=10, t=10, b=30),
                      xaxis_tickformat=".3s", yaxis=dict(autorange="reversed", automargin=True))
    return fig


def segment_map(rows: list[dict[str, Any]]) -> go.Figure:
    """Each segment as a bar of its bytes in use and free, by address."""
    labels = [f"{r['pool']} {r['segment']}" for r in rows]
    fig = go.Figure([go.Bar(name=name, x=labels, y=[r[key] for r in rows], marker_color=COLORS[color])
                     for name, key, color in (("in use", "allocated_bytes", "allocated"),
                                              ("free", "free_bytes", "free"))])
    fig.update_layout(width=WIDTH, barmode="stack", height=300, margin=dict(l=10, r=10, t=10, b=40),
                      yaxis_tickformat=".3s", xaxis=dict(showticklabels=False, title="segments by address"),
                      legend_orientation="h")
    return fig
