"""Parts as ipywidgets: HTML, plotly `FigureWidget`s (the timeline re-asks the analysis on zoom),
sortable tables and fix code, in one `Tab` per dashboard tab."""

from __future__ import annotations

import ipywidgets as w
import plotly.graph_objects as go

from workbench.notebook.frontend import FixCodeWidget, SortableTable
from workbench.notebook.parts import Chart, FixCode, Html, Part, Table, esc
from workbench.notebook.style import CSS

Tabs = list[tuple[str, list[Part]]]


def tab_widget(tabs: Tabs) -> w.Widget:
    tab = w.Tab(children=[w.VBox([to_widget(p) for p in parts]) for _, parts in tabs], titles=[t for t, _ in tabs])
    return w.VBox([w.HTML(CSS), tab], layout=w.Layout(width="100%")).add_class("wb")


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
        return _figure_widget(part)
    raise TypeError(f"unknown dashboard part {type(part).__name__}")


def _figure_widget(chart: Chart) -> go.FigureWidget:
    figure = go.FigureWidget(chart.figure)
    if chart.zoom is not None:
        zoom = chart.zoom

        def follow(layout: object, x_range: tuple[float, float] | None) -> None:
            if not x_range:
                return
            detail = zoom(float(x_range[0]), float(x_range[1]))
            with figure.batch_update():
                for trace, new in zip(figure.data, detail):
                    trace.update(y=new.y, base=new.base, x=new.x, customdata=new.customdata, showlegend=True)

        figure.layout.xaxis.on_change(follow, "range")
    return figure
