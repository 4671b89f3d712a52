"""Parts as ipywidgets: HTML, plotly charts, sortable tables and fix code, in one `Tab` per dashboard tab.

A chart is an `Output` widget holding the figure as plotly's mime bundle, drawn by the plotly
extension of JupyterLab and Notebook 7 with the plotly.js it already has: the kernel sends the
figure's data only (plotly's `FigureWidget` would send its 5 MB of JavaScript with each chart).
Charts take the output's width. A timeline that can zoom gets a window slider that asks the
analysis for the window's detail and sets the chart's x range to it, a menu of the steps to
jump to, and plotly's own zoom moves the slider (`RangeRelay`): a drag draws the window it selects,
a double click the whole chart again.
"""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as w

from workbench.notebook.frontend import FixCodeWidget, RangeRelay, SortableTable
from workbench.notebook.parts import Chart, FixCode, Html, Part, StaticOnly, Table, esc
from workbench.notebook.style import CSS, HIDE_STATIC_CSS

Tabs = list[tuple[str, list[Part]]]
PLOTLY_MIME = "application/vnd.plotly.v1+json"
SLIDER_STEPS = 1000


def tab_widget(tabs: Tabs) -> w.Widget:
    tab = w.Tab(children=[w.VBox([to_widget(p) for p in parts if not isinstance(p, StaticOnly)]) for _, parts in tabs],
                titles=[t for t, _ in tabs])
    return w.VBox([w.HTML(CSS + HIDE_STATIC_CSS), tab], layout=w.Layout(width="100%")).add_class("wb").add_class(
        "wb-widgets")


def to_widget(part: Part) -> w.Widget:
    if isinstance(part, Html):
        return w.HTML(part.html)
    if isinstance(part, Table):
        title = f"<h3 class='wb-h'>{esc(part.title)}</h3>"
        return w.VBox([w.HTML(title), SortableTable(columns=[c.label for c in part.columns], texts=part.texts(),
                                                     values=part.values())])
    if isinstance(part, FixCode):
        return FixCodeWidget(code=part.code)
    if isinstance(part, Chart):
        return _chart(part)
    raise TypeError(f"unknown dashboard part {type(part).__name__}")


def _chart(chart: Chart) -> w.Widget:
    out = w.Output()
    _draw(out, chart.figure)
    if chart.zoom is None:
        return out
    zoom = chart.zoom
    low, high = chart.extent
    slider = w.FloatRangeSlider(value=(low, high), min=low, max=high, step=(high - low) / SLIDER_STEPS or 1.0,
                                description="Window ms", continuous_update=False, readout_format=".1f",
                                layout=w.Layout(width="100%"), style={"description_width": "initial"})
    slider.observe(lambda change: _draw(out, zoom(*change["new"])), names="value")
    relay = RangeRelay(lambda window: _zoomed(slider, window))
    if len(chart.windows) < 2:
        return w.VBox([slider, relay, out])
    jump = w.Dropdown(options=chart.windows, value=chart.windows[0][1], description="Show")
    jump.observe(lambda change: setattr(slider, "value", change["new"]), names="value")
    return w.VBox([jump, slider, relay, out])


def _zoomed(slider: w.FloatRangeSlider, window: tuple[float, float] | None) -> None:
    """Plotly's zoom moved the x axis to `window` (None: reset): the slider takes it, within its bounds."""
    low, high = (slider.min, slider.max) if window is None else (max(window[0], slider.min), min(window[1], slider.max))
    if low < high:
        slider.value = (low, high)


def _draw(out: w.Output, figure: Any) -> None:
    """Show `figure` in `out` as plotly's mime bundle (its data and layout as JSON)."""
    data = {PLOTLY_MIME: {**json.loads(figure.to_json()), "config": {"displaylogo": False, "responsive": True}},
            "text/plain": "plotly chart"}
    out.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)
