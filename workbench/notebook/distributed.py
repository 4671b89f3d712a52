"""Distributed tab: a job's ranks by metric (heatmap, distributions), stragglers, collectives, the hang diagnosis.

A job of any size draws a bounded number of ranks: up to `MAX_RANKS`, all of them; beyond, the ranks
a large job's report details (`rank_distribution.detailed_ranks`), then the slowest.
The distributions themselves are the report's (`rank_distribution`: min, p50, p90, max of every rank).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from workbench.analyses.rank_distribution import detailed_ranks
from workbench.notebook.overview import severity_badge
from workbench.notebook.parts import Chart, Column, Html, Part, Table, esc, heading, inputs_with
from workbench.notebook.sources import DashboardData
from workbench.notebook.style import COLORS
from workbench.reporters.common import rank_limit, slowest_ranks, top_rank_rows

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
# the heatmap's and the distributions' columns, ms per step: (`ranks`/`rank_distribution` metric, label)
RANK_METRICS = (("step_time_ms", "step"), ("compute_ms_per_step", "compute"),
                ("exposed_comm_ms_per_step", "exposed comm."), ("comm_ms_per_step", "collectives"),
                ("input_ms_per_step", "input"), ("wait_ms_per_step", "waited"),
                ("caused_wait_ms_per_step", "others waited for it"))
MAX_RANKS = 64  # ranks drawn in the heatmap, the bars and the distributions' points
OUTLIER = "#C62828"


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
            out += rank_parts(input_, tables)
        if tables.get("stragglers"):
            title, rows = top_rank_rows("Stragglers", tables, "stragglers", rank_limit(input_))
            out.append(Table(title, STRAGGLERS, rows))
        if tables.get("collectives"):
            out.append(Table("Collectives", COLLECTIVES, tables["collectives"]))
    return out


def rank_parts(input_: dict[str, Any], tables: dict[str, Any]) -> list[Part]:
    """A job's ranks: the rank x metric heatmap and each metric's distribution (outliers highlighted), time per
    step by rank, and the ranks table (its `--top` slowest rows)."""
    rows, distribution = tables["ranks"], tables.get("rank_distribution", [])
    shown = shown_ranks(tables)
    drawn = "" if len(shown) == len(rows) else (f" ({len(shown)} of {len(rows)} ranks: the stragglers, the median "
                                                "rank, the ranks at the ends of each metric and its outliers, then the "
                                                "slowest)")
    out: list[Part] = []
    if distribution:
        out += [heading("Ranks by metric, each column scaled from its lowest to its highest rank" + drawn),
                Chart(rank_heatmap(shown, distribution)),
                heading("Distribution over the ranks (ms per step): min to max, p50 to p90, ranks as points"),
                Chart(rank_spread(shown, distribution))]
    title, top = top_rank_rows("Ranks, per step (ms)", tables, "ranks", rank_limit(input_))
    return out + [heading("Time per step by rank (ms)" + drawn), Chart(rank_bars(shown)), Table(title, RANKS, top)]


def shown_ranks(tables: dict[str, Any]) -> list[dict[str, Any]]:
    """The `ranks` rows drawn, in rank order: all up to MAX_RANKS; else those `detailed_ranks` picks (the
    stragglers, the median rank, the ranks at both ends of each metric and its outliers), then the slowest,
    MAX_RANKS in all."""
    rows = tables["ranks"]
    if len(rows) <= MAX_RANKS:
        return rows
    slowest = [r["rank"] for r in slowest_ranks(rows, "step_time_ms", MAX_RANKS)]
    chosen = set(detailed_ranks(tables, MAX_RANKS, then=slowest))
    return [r for r in rows if r["rank"] in chosen]


def rank_heatmap(rows: list[dict[str, Any]], distribution: list[dict[str, Any]]) -> go.Figure:
    """Ranks (rows) x metrics (columns): a cell's colour is its value between the metric's lowest and highest
    rank (the report's min and max), its hover the value; outlier cells are outlined."""
    columns = _columns(distribution)
    labels = [f"rank {r['rank']}" for r in rows]

    def scaled(value: Any, d: dict[str, Any]) -> float | None:
        if not isinstance(value, (int, float)):
            return None
        return (value - d["min"]) / (d["max"] - d["min"]) if d["max"] > d["min"] else 0.0

    fig = go.Figure(go.Heatmap(
        z=[[scaled(r.get(key), d) for key, _, d in columns] for r in rows], x=[label for _, label, _ in columns],
        y=labels, customdata=[[r.get(key) for key, _, _ in columns] for r in rows], zmin=0, zmax=1,
        colorscale="Blues", colorbar=dict(title="lowest → highest rank", tickvals=[0, 1], ticktext=["min", "max"]),
        hovertemplate="%{y}<br>%{x}: %{customdata:.2f} ms/step<extra></extra>", xgap=1, ygap=1))
    outliers = [(label, f"rank {rank}") for _, label, d in columns for rank in d["outlier_ranks"]
                if f"rank {rank}" in labels]
    if outliers:
        fig.add_scatter(x=[x for x, _ in outliers], y=[y for _, y in outliers], mode="markers", name="outlier",
                        marker=dict(symbol="square-open", size=14, color=OUTLIER, line_width=2), hoverinfo="skip")
    fig.update_layout(autosize=True, height=min(120 + 16 * len(rows), 1200), margin=dict(l=10, r=10, t=10, b=40),
                      yaxis=dict(autorange="reversed", type="category"), legend_orientation="h",
                      showlegend=bool(outliers))
    return fig


def rank_spread(rows: list[dict[str, Any]], distribution: list[dict[str, Any]]) -> go.Figure:
    """Per metric, the report's distribution over every rank (a line from min to max, a bar from p50 to p90) and
    the drawn ranks as points beside it, the outlier ranks in red."""
    columns = _columns(distribution)
    fig = go.Figure()
    legend: set[str] = set()  # the point groups with a legend entry (one, on their first column with points)
    for i, (key, label, d) in enumerate(columns):
        first = i == 0
        fig.add_scatter(x=[i, i], y=[d["min"], d["max"]], mode="lines+markers", name="min to max",
                        line=dict(color=COLORS["idle"], width=2), marker=dict(symbol="line-ew", size=12, line_width=2),
                        legendgroup="range", showlegend=first,
                        text=[f"min (rank {d['min_rank']})", f"max (rank {d['max_rank']})"],
                        hovertemplate=f"{label}: %{{text}} %{{y:.2f}} ms/step<extra></extra>")
        fig.add_scatter(x=[i, i], y=[d["p50"], d["p90"]], mode="lines", name="p50 to p90",
                        line=dict(color=COLORS["computation"], width=10), legendgroup="mid", showlegend=first,
                        text=["p50", "p90"], hovertemplate=f"{label}: %{{text}} %{{y:.2f}} ms/step<extra></extra>")
        outliers = set(d["outlier_ranks"])
        for name, color, group in (("ranks", COLORS["operator"], [r for r in rows if r["rank"] not in outliers]),
                                   ("outlier ranks", OUTLIER, [r for r in rows if r["rank"] in outliers])):
            points = [r for r in group if isinstance(r.get(key), (int, float))]
            fig.add_scatter(x=[i + 0.25] * len(points), y=[r[key] for r in points], mode="markers", name=name,
                            marker=dict(color=color, size=7 if name == "ranks" else 10, opacity=0.7),
                            legendgroup=name, showlegend=bool(points) and name not in legend,
                            text=[f"rank {r['rank']}" for r in points],
                            hovertemplate=f"%{{text}}: {label} %{{y:.2f}} ms/step<extra></extra>")
            legend.update([name] if points else [])
    fig.update_layout(autosize=True, height=340, margin=dict(l=10, r=10, t=10, b=40), yaxis_title="ms per step",
                      xaxis=dict(tickvals=list(range(len(columns))), ticktext=[label for _, label, _ in columns],
                                 range=[-0.5, len(columns) - 0.3]), legend_orientation="h")
    return fig


def _columns(distribution: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(metric, label, its `rank_distribution` row) of the drawn metrics the job has."""
    rows = {d["metric"]: d for d in distribution}
    return [(key, label, rows[key]) for key, label in RANK_METRICS if key in rows]


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
