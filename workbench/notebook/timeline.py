"""Timeline tab: GPU streams and CPU threads as lanes, busy intervals coloured by category, steps marked.

The report's `timeline` table is already bounded (a few thousand rectangles at most). When the
dashboard analyzed the trace itself, zooming asks `analyses.timeline` for the visible window's detail.
"""

from __future__ import annotations

from typing import Any, Callable

import plotly.graph_objects as go

from workbench.analyses.timeline import CATEGORY_NAMES, timeline_tables
from workbench.notebook.parts import Chart, Html, Part, heading, input_title
from workbench.notebook.sources import DashboardData
from workbench.notebook.style import COLORS, WIDTH

LANE_HEIGHT = 34


def parts(data: DashboardData) -> list[Part]:
    inputs = data.report["inputs"]
    out: list[Part] = []
    for index, input_ in enumerate(inputs):
        model = data.model_of(index)
        sources = [(input_, model.ranks[0].trace if model and model.ranks else None)]
        if "timeline" not in input_.get("tables", {}):
            traces = [r.trace for r in model.ranks] if model else []
            sources = [(rank, traces[i] if i < len(traces) else None) for i, rank in enumerate(input_.get("ranks", []))]
        sources = [(s, trace) for s, trace in sources if "timeline" in s.get("tables", {})]
        if sources:
            out += input_title(input_, len(inputs) > 1)
        for source, trace in sources:
            if source is not input_:
                out.append(heading(f"rank {source['rank']}", 4))
            end = max(r["end_ms"] for r in source["tables"]["timeline"])
            out.append(Chart(figure(source["tables"]), _zoom(trace), (0.0, end)))
    if out:
        out.insert(0, Html("<div class='wb-sub'>Busy intervals per lane; nearby intervals are merged into one "
                           "rectangle (hover for the time really busy and the event count). Drag to zoom; where the "
                           "dashboard analyzed the trace itself, the window slider redraws a window in detail.</div>"))
    return out


def figure(tables: dict[str, list[dict[str, Any]]]) -> go.Figure:
    rows = tables.get("timeline", [])
    lanes = list(dict.fromkeys(r["lane"] for r in rows))
    steps = tables.get("timeline_steps", [])
    shading = [dict(type="rect", xref="x", yref="paper", x0=s["start_ms"], x1=s["end_ms"], y0=0, y1=1, line_width=0,
                    fillcolor="#888" if i % 2 else "#ccc", opacity=0.15, layer="below") for i, s in enumerate(steps)]
    labels = [dict(x=s["start_ms"], y=1, xref="x", yref="paper", text=f"step {s['step']}", showarrow=False,
                   xanchor="left", yanchor="bottom", font_size=10) for s in steps]
    fig = go.Figure(bars(rows))
    fig.update_layout(shapes=shading, annotations=labels, barmode="overlay", height=100 + LANE_HEIGHT * len(lanes),
                      width=WIDTH, margin=dict(l=10, r=10, t=30, b=40), xaxis_title="ms from the trace's first event",
                      yaxis=dict(categoryorder="array", categoryarray=lanes[::-1], automargin=True))
    return fig


def bars(rows: list[dict[str, Any]]) -> list[go.Bar]:
    """One horizontal bar trace per category that has rectangles."""
    out = []
    for name in CATEGORY_NAMES:
        mine = [r for r in rows if r["category"] == name]
        if not mine:
            continue
        out.append(go.Bar(
            name=name, orientation="h", y=[r["lane"] for r in mine], base=[r["start_ms"] for r in mine],
            x=[r["end_ms"] - r["start_ms"] for r in mine], marker_color=COLORS[name], marker_line_width=0,
            customdata=[[r["busy_ms"], r["events"], r["end_ms"]] for r in mine],
            hovertemplate=(f"{name}<br>%{{base:.3f}} - %{{customdata[2]:.3f}} ms<br>busy %{{customdata[0]:.3f}} ms"
                           "<br>%{customdata[1]} events<extra>%{y}</extra>")))
    return out


def _zoom(trace: Any) -> Callable[[float, float], go.Figure] | None:
    """The figure of a window, from the analysis of the trace (when the dashboard has the model)."""
    if trace is None:
        return None
    return lambda start, end: figure(timeline_tables(trace, start_ms=start, end_ms=end))
