"""The report as one self-contained HTML file: the notebook dashboard's tabs, charts and findings
with their fix code, plotly.js inlined once (opens offline, no CDN). Needs plotly (`notebook` extra)."""

from __future__ import annotations

from typing import Any

from workbench.errors import WorkbenchError


def render(report: dict[str, Any]) -> str:
    try:
        import plotly.graph_objects  # noqa: F401
    except ImportError:
        raise WorkbenchError("--format html needs plotly: pip install 'workbench[notebook]'") from None
    from workbench.notebook.dashboard import Dashboard
    from workbench.notebook.parts import esc
    from workbench.notebook.sources import DashboardData

    board = Dashboard(DashboardData(report))
    inputs = [i["path"] for i in report["inputs"]]
    title = f"workbench diff: {inputs[0]} → {inputs[1]}" if "diff" in report else "workbench: " + ", ".join(inputs)
    return ("<!DOCTYPE html>\n<html lang='en'>\n<head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(title)}</title></head>\n<body style='margin: 12px 20px'>\n"
            f"<h1 class='wb' style='font-size: 18px; margin: 4px 0 8px; overflow-wrap: anywhere'>{esc(title)}</h1>\n"
            f"{board.html(include_plotlyjs=True)}\n"
            f"<p class='wb wb-sub'>workbench {esc(report.get('tool', {}).get('version', ''))}, "
            f"{esc(report['schema'])}</p>\n</body>\n</html>\n")
