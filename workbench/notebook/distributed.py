"""Distributed tab: per-rank time per step, stragglers, collectives, and the hang diagnosis."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from workbench.notebook.overview import severity_badge
from workbench.notebook.parts import Chart, Column, Html, Part, Table, esc, heading, inputs_with
from workbench.notebook.sources import DashboardData
from workbench.notebook.style import COLORS

# stacked per rank, ms per step: (ranks-table column, legend name, colour)
RANK_BARS = (("compute_ms_per_step", "compute", "computation"),
             ("exposed_comm_ms_per_step", "exposed communication", "communication"),
             ("input_ms_per_step", "input", "memcpy"), ("wait_ms_per_step", "waiting for other ranks", "idle"))
RANKS = [Column("rank", "Rank"), Column("step_time_ms", "Step ms"), Column("compute_ms_per_step", "Compute"),
         Column("comm_ms_per_step", "Collectives"), Column("exposed_comm_ms_per_step", "Exposed comm."),
         Column("input_ms_per_step", "Input"), Column("wait_ms_per_step", "Waited"),
         Column("caused_wait_ms_per_step", "Others waited for it"), Column("comm_overlap_pct", "Comm. overlap %")]
STRAGGLERS = [Column("rank", "Rank"), Column("outlier_in", "Outlier in"), Column("step_time_ms", "Step ms"),
              Column("excess_compute_ms_per_step", "Excess compute ms/step"),
              Column("others_wait_ms_per_step", "Others waited ms/step"), Column("likely_cause", "Likely cause"),
              Column("slow_kernel", "Slow kernel")]
COLLECTIVES = [Column("kind", "Kind"), Column("count", "Count"), Column("total_ms", "Total ms"),
               Column("mean_us", "Mean µs"), Column("bytes_mean", "Mean message"),
               Column("algbw_gbps", "Alg. bandwidth GB/s")]
HANGS = [Column("kind", "Diagnosis"), Column("group", "Group"), Column("seq", "Collective #"), Column("op", "Op"),
         Column("state", "State"), Column("waiting_ranks", "Waiting ranks"), Column("missing_ranks", "Missing ranks"),
         Column("timeout_ms", "Timeout ms"), Column("ran_for_ms", "Ran for ms"), Column("source", "From")]
POSITIONS = [Column("dump_set", "Dumps"), Column("group", "Group"), Column("rank", "Rank"),
             Column("last_seq", "Last collective #"), Column("last_op", "Op"), Column("last_state", "State"),
             Column("last_completed", "Last completed #"), Column("user_frame", "Called at")]
DISTRIBUTED_TABLES = {"ranks", "stragglers", "collectives", "hang_issues", "rank_positions"}


def parts(data: DashboardData) -> list[Part]:
    report = data.report
    out: list[Part] = []
    for input_, tables, title in inputs_with(report, DISTRIBUTED_TABLES):
        out += title
        if tables.get("hang_issues"):
            diagnosis = [f for f in report["findings"] if f.get("input") == input_["path"]
                         and f["category"] == "communication"]
            out += [heading("Hang diagnosis"), Html(_diagnosis(diagnosis)),
                    Table("What each rank was doing", HANGS, tables["hang_issues"])]
        if tables.get("rank_positions"):
            out.append(Table("Last collective of each rank", POSITIONS, tables["rank_positions"]))
        if tables.get("ranks"):
            out += [heading("Time per step by rank (ms)"), Chart(rank_bars(tables["ranks"])),
                    Table("Ranks, per step (ms)", RANKS, tables["ranks"])]
        if tables.get("stragglers"):
            out.append(Table("Stragglers", STRAGGLERS, tables["stragglers"]))
        if tables.get("collectives"):
            out.append(Table("Collectives", COLLECTIVES, tables["collectives"]))
    return out


def rank_bars(rows: list[dict[str, Any]]) -> go.Figure:
    ranks = [f"rank {r['rank']}" for r in rows]
    fig = go.Figure([go.Bar(name=name, x=ranks, y=[r.get(key) for r in rows], marker_color=COLORS[color])
                     for key, name, color in RANK_BARS if any(r.get(key) for r in rows)])
    fig.add_scatter(x=ranks, y=[r.get("step_time_ms") for r in rows], mode="markers", name="step time",
                    marker=dict(symbol="line-ew-open", size=30, color="black"))
    fig.update_layout(autosize=True, barmode="stack", height=320, margin=dict(l=10, r=10, t=10, b=40),
                      yaxis_title="ms per step", legend_orientation="h")
    return fig


def _diagnosis(findings: list[dict[str, Any]]) -> str:
    items = "".join(f"<li>{severity_badge(f['severity'])}<b>{esc(f['id'])}</b>: {esc(f['title'])}</li>"
                    for f in findings)
    return f"<ul style='list-style:none;padding-left:0'>{items}</ul>" if items else ""
