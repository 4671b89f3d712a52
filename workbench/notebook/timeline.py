"""Timeline tab: GPU streams and CPU threads as lanes, steps marked; the ranks of a job on one axis.

Zoomed out it draws the report's `timeline` table (each rectangle in the category that holds
most of its busy time, fainter where the lane was less busy). The window slider asks
`analyses.timeline` for the window's detail (the trace is loaded the first time): a window with
few enough events shows each kernel and operator with its name, and a line from each launch to
its kernel. Below it, the report's own zoomed-in window (`timeline_window`, a step) is drawn the
same way for the views that cannot ask (the HTML report, nbconvert; the widgets too when the
input's files are not here).
"""

from __future__ import annotations

import html
from typing import Any, Callable

import plotly.graph_objects as go

from workbench.analyses.timeline import CATEGORY_NAMES, MAX_EVENTS, Lanes, timeline_lanes, timeline_tables
from workbench.notebook.parts import Chart, Html, Part, StaticOnly, esc, input_title
from workbench.notebook.sources import DashboardData
from workbench.notebook.style import COLORS

ROW_HEIGHT = 22
MARGIN_TOP, MARGIN_BOTTOM = 30, 90  # px: step labels above; the axis, its title and the legend below
LEGEND_BELOW = 58  # px from the axis to the legend, under the axis title
LANE_GAP = 0.6  # blank rows' worth of space between lanes
NAME_CHARS = 90  # longer names are cut in the middle in hover labels
BAR_CHARS = 48  # and on the bars
MAX_STEP_WINDOWS = 100  # steps offered as windows to jump to
AXIS_TITLE = "ms from the trace's first event (of the first rank, for a job)"

Tables = dict[str, list[dict[str, Any]]]


def parts(data: DashboardData) -> list[Part]:
    inputs = data.report["inputs"]
    out: list[Part] = []
    for index, input_ in enumerate(inputs):
        sources = [input_] if "timeline" in input_.get("tables", {}) else [
            r for r in input_.get("ranks", []) if "timeline" in r.get("tables", {})]
        if not sources:
            continue
        out += input_title(input_, len(inputs) > 1)
        several = len(sources) > 1
        if several:
            out.append(Html(f"<div class='wb-sub'>{len(sources)} ranks on one time axis, aligned on "
                            f"{html.escape(str(sources[0]['meta'].get('timeline_aligned_on', 'their first event')))}."
                            "</div>"))
        tables = _joined([(s.get("rank") if several else None, s["tables"]) for s in sources])
        rows = tables["timeline"]
        extent = (min(r["start_ms"] for r in rows), max(r["end_ms"] for r in rows))
        steps = [(f"step {s['step']}", (s["start_ms"], s["end_ms"])) for s in tables.get("timeline_steps", [])]
        zoomable = data.can_zoom(index)
        out.append(Chart(figure(tables, extent), _zoom(data, index, sources) if zoomable else None,
                         extent, [("the whole trace", extent), *steps[:MAX_STEP_WINDOWS]]))
        window = _window(sources, several, tables.get("timeline_steps", []))
        out += [StaticOnly(window)] if zoomable and window else window
    if out:
        out.insert(0, Html("<div class='wb-sub'>Zoomed out, each rectangle takes the category that holds most of its "
                           "busy time (fainter: the lane was idle part of it; hover for its share and longest event). "
                           "In a live notebook, pick a step, move the window slider or drag over the chart: below a few ms, "
                           "each kernel and operator by name, with a line from each launch to its kernel.</div>"))
    return out


def _window(sources: list[dict[str, Any]], several: bool, steps: list[dict[str, Any]]) -> list[Part]:
    """The report's zoomed-in window (of one trace, or one rank of a job), each event by name."""
    shown = next((s for s in sources if s.get("tables", {}).get("timeline_window")), None)
    if shown is None:
        return []
    window = shown["meta"]["timeline_window"]
    span = (window["start_ms"], window["end_ms"])
    of = f"rank {shown.get('rank')}: " if several else ""
    return [Html(f"<h3 class='wb-h'>In detail: {esc(of + window['label'])}</h3><div class='wb-sub'>"
                 f"{window['events']:,} events from {span[0]:.3f} to {span[1]:.3f} ms, each by name (hover for its "
                 "duration, shapes and its launch or kernel).</div>"),
            Chart(figure({"timeline_events": shown["tables"]["timeline_window"],
                          "timeline_steps": [s for s in steps if s["end_ms"] > span[0] and s["start_ms"] < span[1]]},
                         span))]


def _joined(sources: list[tuple[int | None, Tables]]) -> Tables:
    """The tables of one trace, or of a job's ranks with their lanes named after the rank (steps of the first)."""
    if len(sources) < 2:
        return sources[0][1] if sources else {}
    out: Tables = {}
    for rank, tables in sources:
        for name in ("timeline", "timeline_events"):
            offset = len(out.get(name, []))
            out.setdefault(name, []).extend(
                {**r, "lane": f"rank {rank} {r['lane']}",
                 **({"link": r["link"] + offset} if r.get("link") is not None else {})}
                for r in tables.get(name, []))
    out["timeline_steps"] = sources[0][1].get("timeline_steps", [])
    return {name: rows for name, rows in out.items() if rows}


def figure(tables: Tables, x_range: tuple[float, float]) -> go.Figure:
    """The timeline of `tables` (zoomed out or event by event) over `x_range` ms."""
    detailed = "timeline_events" in tables
    rows = tables["timeline_events" if detailed else "timeline"]
    y, ticks = _rows(rows)
    traces = _event_bars(rows, y) if detailed else _column_bars(rows, y)
    steps = tables.get("timeline_steps", [])
    shading = [dict(type="rect", xref="x", yref="paper", x0=s["start_ms"], x1=s["end_ms"], y0=0, y1=1, line_width=0,
                    fillcolor="#888" if i % 2 else "#ccc", opacity=0.15, layer="below") for i, s in enumerate(steps)]
    labels = [dict(x=max(s["start_ms"], x_range[0]), y=1, xref="x", yref="paper", text=f"step {s['step']}",
                   showarrow=False, xanchor="left", yanchor="bottom", font_size=10) for s in steps]
    fig = go.Figure(traces)
    plot_height = ROW_HEIGHT * (max(y, default=0) + 1)
    fig.update_layout(
        shapes=shading, annotations=labels, barmode="overlay", bargap=0, autosize=True,
        height=plot_height + MARGIN_TOP + MARGIN_BOTTOM, margin=dict(l=10, r=10, t=MARGIN_TOP, b=MARGIN_BOTTOM),
        uniformtext=dict(minsize=9, mode="hide"),
        xaxis=dict(title=AXIS_TITLE, range=list(x_range)), hovermode="closest",
        yaxis=dict(tickvals=list(ticks), ticktext=list(ticks.values()), autorange="reversed", automargin=True,
                   zeroline=False, showgrid=False, fixedrange=True),  # a drag zooms in time only
        legend=dict(orientation="h", yanchor="top", y=-LEGEND_BELOW / plot_height))
    return fig


def _rows(rows: list[dict[str, Any]]) -> tuple[list[float], dict[float, str]]:
    """Each rectangle's y position (lanes in order, a lane's nesting rows below it) and the lane labels."""
    lanes = list(dict.fromkeys(r["lane"] for r in rows))
    depths = {lane: sorted({r.get("row", 0) for r in rows if r["lane"] == lane}) for lane in lanes}
    position: dict[tuple[str, int], float] = {}
    ticks: dict[float, str] = {}
    at = 0.0
    for lane in lanes:
        ticks[at] = lane
        for depth in depths[lane]:
            position[(lane, depth)] = at
            at += 1
        at += LANE_GAP
    return [position[(r["lane"], r.get("row", 0))] for r in rows], ticks


def _bars(rows: list[dict[str, Any]], y: list[float], hover: Callable[[dict[str, Any]], str],
          style: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> list[go.Bar]:
    """One horizontal bar trace per category that has rectangles; `style` gives a trace's own settings."""
    out = []
    for name in CATEGORY_NAMES:
        mine = [(r, at) for r, at in zip(rows, y) if r["category"] == name]
        if mine:
            picked = [r for r, _ in mine]
            out.append(go.Bar(
                name=name, orientation="h", y=[at for _, at in mine], base=[r["start_ms"] for r in picked],
                x=[r["end_ms"] - r["start_ms"] for r in picked], width=0.9, marker_color=COLORS[name],
                hovertext=[hover(r) for r in picked], hovertemplate="%{hovertext}<extra></extra>", **style(picked)))
    return out


def _column_bars(rows: list[dict[str, Any]], y: list[float]) -> list[go.Bar]:
    """The zoomed-out rectangles, opacity by how busy the lane was."""
    return _bars(rows, y, _column_hover, lambda picked: dict(
        marker_line_width=0, marker_opacity=[0.35 + 0.65 * _busy_share(r) for r in picked]))


def _busy_share(row: dict[str, Any]) -> float:
    span = row["end_ms"] - row["start_ms"]
    return min(row["busy_ms"] / span, 1.0) if span > 0 else 1.0


def _column_hover(row: dict[str, Any]) -> str:
    longest = (f"<br>longest: {_name(row['longest'])} ({_ms(row['longest_ms'])})" if row.get("longest") else "")
    return (f"<b>{row['lane']}</b><br>{row['start_ms']:.3f} - {row['end_ms']:.3f} ms: busy {_ms(row['busy_ms'])} "
            f"({100 * _busy_share(row):.0f} %)<br>{row['category']} {row['share_pct']:.0f} % of the busy time, "
            f"{row['events']:,} events start in it{longest}")


def _event_bars(rows: list[dict[str, Any]], y: list[float]) -> list[Any]:
    """Each event as a bar named after it, and the launch-to-kernel lines."""
    out: list[Any] = _bars(rows, y, lambda r: _event_hover(r, rows), lambda picked: dict(
        marker_line=dict(width=0.5, color="white"), text=[_name(r["name"], BAR_CHARS) for r in picked],
        textposition="inside", insidetextanchor="start", textangle=0, textfont=dict(color="white", size=10)))
    xs: list[float | None] = []
    ys: list[float | None] = []
    for row, at in zip(rows, y):
        if row.get("link") is not None and row["category"] in ("launch", "runtime", "synchronization"):
            xs += [row["start_ms"], rows[row["link"]]["start_ms"], None]
            ys += [at, y[row["link"]], None]
    if xs:
        out.append(go.Scatter(x=xs, y=ys, mode="lines", name="launch → kernel", hoverinfo="skip",
                              line=dict(color="rgba(80,80,80,0.5)", width=1)))
    return out


def _event_hover(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    text = (f"<b>{_name(row['name'])}</b><br>{row['category']} on {row['lane']}<br>{_ms(row['dur_ms'])}, "
            f"{row['start_ms']:.3f} - {row['end_ms']:.3f} ms")
    if row.get("shapes"):
        text += f"<br>shapes: {_name(row['shapes'])}"
    if row.get("link_name"):
        linked = rows[row["link"]]["lane"] if row.get("link") is not None else "outside this window"
        verb = "launched by" if row["category"] in CATEGORY_NAMES[:4] else "launches"
        text += (f"<br>{verb} {_name(row['link_name'])} at {row['link_start_ms']:.3f} ms ({linked}), "
                 f"correlation {row['correlation']}")
    return text


def _name(name: str, chars: int = NAME_CHARS) -> str:
    """A name for a label: cut in the middle (the distinguishing end stays), HTML-escaped."""
    if len(name) > chars:
        name = name[: chars * 2 // 3] + "…" + name[-(chars // 3):]
    return html.escape(name)


def _ms(value: float) -> str:
    return f"{value * 1000:.1f} µs" if value < 1 else f"{value:.3f} ms"


def _zoom(data: DashboardData, index: int, sources: list[dict[str, Any]]) -> Callable[[float, float], go.Figure]:
    """The figure of a window, from the analysis of the input's traces (loaded on first use).

    The ranks of a job share the event budget; when one of them is drawn zoomed out, all are. Each trace's
    lanes are computed at its first zoom only (a 3 ms window of train_long: 56 ms, 11 ms with its lanes at hand).
    """
    several = len(sources) > 1
    lanes: dict[int, tuple[Any, Lanes]] = {}  # id(trace) -> (trace, its lanes)

    def lanes_of(trace: Any) -> Lanes:
        hit = lanes.get(id(trace))
        if hit is None or hit[0] is not trace:
            hit = lanes[id(trace)] = (trace, timeline_lanes(trace))
        return hit[1]

    def window(start: float, end: float) -> go.Figure:
        model = data.model_of(index)
        by_rank = {r.rank: r.trace for r in model.ranks} if model else {}
        traces = [by_rank.get(s.get("rank")) if several else next(iter(by_rank.values()), None) for s in sources]
        pairs = [(s, t) for s, t in zip(sources, traces) if t is not None]

        def tables_of(max_events: int) -> list[Tables]:
            return [timeline_tables(trace, start, end, origin_us=s.get("meta", {}).get("timeline_origin_us"),
                                    max_events=max_events, lanes=lanes_of(trace)) for s, trace in pairs]
        per_rank = tables_of(MAX_EVENTS // max(len(pairs), 1))
        if any("timeline" in t for t in per_rank) and any("timeline_events" in t for t in per_rank):
            per_rank = tables_of(0)
        tables = _joined([(s.get("rank") if several else None, t) for (s, _), t in zip(pairs, per_rank)])
        return figure({"timeline": [], **tables}, (start, end))
    return window
