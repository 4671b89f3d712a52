"""A readable terminal summary built with rich tables."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from rich.table import Table

from workbench.reporters.common import (
    describe_input, diff_sections, finding_rows, input_sections, metric_rows, rank_rows,
)

TEXT_COLUMNS = {"Input shapes", "Finding ids", "Finding", "Title", "Category"}  # left-aligned, like the first column


def _table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i == 0 or column in TEXT_COLUMNS else "right")
    for row in rows:
        table.add_row(*row)
    return table


def render(report: dict[str, Any], width: int = 120) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, no_color=True, highlight=False, force_jupyter=False)
    if "diff" in report:
        diff = report["diff"]
        console.print(f"[bold]diff[/bold] {diff['base']} → {diff['new']}")
        for section in diff_sections(diff):
            console.print(_table(*section))
        console.print()
    for input_ in report["inputs"]:
        console.print(f"[bold]{input_['path']}[/bold]  ({describe_input(input_)})")
        console.print(_table("Summary", ["Metric", "Value"], [list(r) for r in metric_rows(input_["metrics"])]))
        if input_.get("ranks"):
            console.print(_table("Ranks", *rank_rows(input_)))
        for section in input_sections(input_):
            console.print(_table(*section))
        for warning in input_.get("warnings", []):
            console.print(f"warning: {warning}")
        console.print()
    findings = report.get("findings", [])
    if findings:
        console.print(_table("Findings", *finding_rows(findings)))
        for f in findings:
            console.print(f"{f['id']}: {f['fix']['summary']}")
        console.print("(evidence and fix code: --format json or markdown)")
    else:
        console.print("No findings.")
    return out.getvalue()
