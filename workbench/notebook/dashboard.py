"""The dashboard: the tabs that have data, drawn as widgets in a live notebook and as static HTML elsewhere."""

from __future__ import annotations

import json
from typing import Any, Callable

from workbench.notebook import distributed, findings, inference, memory, overview, tables, timeline
from workbench.notebook.parts import Part
from workbench.notebook.sources import DashboardData
from workbench.reporters import FORMATS

TABS: list[tuple[str, Callable[[DashboardData], list[Part]]]] = [
    ("Overview", overview.parts), ("Timeline", timeline.parts), ("Kernels & operators", tables.parts),
    ("Memory", memory.parts), ("Distributed", distributed.parts), ("Inference", inference.parts),
    ("Findings", findings.parts)]
# A diff report's tables are cut to its top rows: of its inputs, it shows the tabs that stay whole.
DIFF_TABS = ("Overview", "Kernels & operators", "Findings")


_PLOTLY_JS_SENT = False  # whether this kernel session's notebook has plotly.js in a static view already


class Dashboard:
    """A report's dashboard. In a notebook it displays as two outputs: the widgets, and the static view
    (HTML, the report's Markdown as text) for where widgets cannot run (nbconvert, GitHub, no kernel);
    the widgets' stylesheet hides the static view where they run (JupyterLab, Notebook 7).
    """

    def __init__(self, data: DashboardData) -> None:
        self.data = data
        shown = [(t, build) for t, build in TABS if "diff" not in data.report or t in DIFF_TABS]
        self.tabs = [(title, parts) for title, build in shown if (parts := build(data))]
        self._widget: Any = None

    @property
    def report(self) -> dict[str, Any]:
        return self.data.report

    @property
    def titles(self) -> list[str]:
        return [title for title, _ in self.tabs]

    @property
    def widget(self) -> Any:
        """The ipywidgets tree (built on first use)."""
        if self._widget is None:
            from workbench.notebook.widgets import tab_widget

            self._widget = tab_widget(self.tabs)
        return self._widget

    def html(self, include_plotlyjs: bool | str = True) -> str:
        """The static rendering (the `--format html` report's body): the tabs, plotly.js inlined once."""
        from workbench.notebook.static_html import render

        return render(self.tabs, include_plotlyjs)

    def text(self) -> str:
        """The report as Markdown text (rich's text report would draw itself into the notebook)."""
        return FORMATS["markdown"](self.report)

    def outputs(self) -> list[dict[str, Any]]:
        """The two outputs' mime bundles: the widgets, then the static view (plotly.js inlined in the
        session's first one only). nbconvert prefers a widget whose state it saved, which it cannot draw
        offline: in an output of its own, the static view is not an alternative that loses to it."""
        global _PLOTLY_JS_SENT
        widgets = {**self.widget._repr_mimebundle_(), "text/plain": "(the dashboard's widgets; the report follows)"}
        static = {"text/html": self.html(include_plotlyjs=not _PLOTLY_JS_SENT), "text/plain": self.text()}
        _PLOTLY_JS_SENT = True
        return [widgets, static]

    def _ipython_display_(self) -> None:
        from IPython.display import display

        for bundle in self.outputs():
            display(bundle, raw=True)

    def payload_bytes(self) -> dict[str, int]:
        """What displaying the dashboard sends to the browser: widget states, static HTML, text (plotly.js,
        4.8 MB, comes once more with the first dashboard of a kernel session)."""
        from ipywidgets import Widget

        states = Widget.get_manager_state(drop_defaults=False, widgets=_tree(self.widget))["state"]
        return {"widget_state": len(json.dumps(states, default=str)), "html": len(self.html(include_plotlyjs=False)),
                "text": len(self.text())}


def _tree(root: Any) -> list[Any]:
    """The widget and every widget below it (the models a front end receives)."""
    from ipywidgets import Widget

    seen: dict[str, Any] = {}
    stack = [root]
    while stack:
        widget = stack.pop()
        if widget.model_id in seen:
            continue
        seen[widget.model_id] = widget
        for name in widget.keys:
            value = getattr(widget, name)
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(item, Widget):
                    stack.append(item)
    return list(seen.values())
