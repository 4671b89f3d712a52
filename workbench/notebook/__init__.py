"""Workbench in Jupyter: `show(report | path | capture)` draws a report as a tabbed dashboard.

Needs the `notebook` extra (ipywidgets, plotly, anywidget). `dashboard()` builds it without
displaying; `diff(base, new)` gives what `workbench diff` reports, to show.
"""

from __future__ import annotations

import sys
from typing import Any

from workbench.errors import WorkbenchError
from workbench.notebook.dashboard import Dashboard
from workbench.notebook.sources import DashboardData, analyze, diff, load

__all__ = ["Dashboard", "DashboardData", "analyze", "dashboard", "diff", "show"]


def dashboard(source: Any, top: int = 50) -> Dashboard:
    """The dashboard of a report dict, a path (file or folder), a capture, or `diff(base, new)`."""
    return Dashboard(load(source, top))


def show(source: Any, top: int = 50) -> None:
    """Display the dashboard under the cell; a bad input is one line, not a traceback."""
    from IPython.display import display

    try:
        board = dashboard(source, top)
    except WorkbenchError as exc:
        print(f"workbench: error: {exc}", file=sys.stderr)
        return
    display(board)
