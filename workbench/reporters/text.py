"""A readable terminal summary built with rich tables, at the terminal's width."""

from __future__ import annotations

import io
import os
import shutil
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from workbench.reporters.common import (
    describe_input, diff_sections, finding_rows, input_sections, metric_rows, rank_section, shorten,
)

TEXT_COLUMNS = {"Input shapes", "Finding ids", "Finding", "Title", "Category", "Fix prevents"}  # left-aligned
# wrap; other columns stay on one line
WRAPPED_COLUMNS = {"Title", "Fix prevents", "Likely cause", "Finding ids", "Outlier ranks"}
NARROW_COLUMNS = {"Fix prevents": 24}  # wrapped columns that leave the room to the title
PIPED_WIDTH = 120  # piped or written to a file, without COLUMNS
MIN_WIDTH, MIN_NAME = 60, 24
SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def terminal(stream: TextIO) -> dict[str, Any]:
    """The width and colour for `stream`: `COLUMNS` when set, else the terminal's width on a TTY
    and PIPED_WIDTH otherwise; colour only on a TTY and without `NO_COLOR`."""
    tty = stream.isatty()
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() else shutil.get_terminal_size((PIPED_WIDTH, 24)).columns if tty \
        else PIPED_WIDTH
    return {"width": max(width, MIN_WIDTH), "color": tty and not os.environ.get("NO_COLOR")}


def _fit_names(header: list[str], rows: list[list[str]], width: int) -> list[list[str]]:
    """Rows whose first column (a kernel, operator or site name) is shortened from the middle so
    that each row fits on one line of `width`; wrapped columns count at their header's width."""
    cells = 3 * len(header)  # rich's padding and separators
    others = sum(max(len(c) for c in [h, *(r[i] for r in rows)]) if h not in WRAPPED_COLUMNS else len(h) + 8
                 for i, h in enumerate(header) if i)
    room = max(width - cells - others, MIN_NAME)
    return [[shorten(r[0], room), *r[1:]] for r in rows]


def _table(title: str, header: list[str], rows: list[list[str]], width: int) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, title_style="bold")
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i == 0 or column in TEXT_COLUMNS else "right",
                         no_wrap=column not in WRAPPED_COLUMNS, overflow="fold",
                         max_width=NARROW_COLUMNS.get(column), min_width=max(map(len, column.split())))
    severity = header.index("Severity") if "Severity" in header else None
    for row in _fit_names(header, rows, width):
        cells = [escape(cell) for cell in row]  # shown as written: `[rank 0]` in a path is no markup
        if severity is not None:
            cells[severity] = f"[{SEVERITY_STYLES.get(row[severity], 'default')}]{cells[severity]}[/]"
        table.add_row(*cells)
    return table


def render(report: dict[str, Any], width: int = PIPED_WIDTH, color: bool = False) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=color, no_color=not color,
                      color_system="standard" if color else None, highlight=False, force_jupyter=False,
                      emoji=False)

    def table(section: tuple[str, list[str], list[list[str]]]) -> None:
        console.print(_table(*section, width=width))

    if "diff" in report:
        diff = report["diff"]
        console.print(f"[bold]diff[/bold] {escape(diff['base'])} → {escape(diff['new'])}")
        for section in diff_sections(diff):
            table(section)
        console.print()
    for input_ in report["inputs"]:
        console.print(f"[bold]{escape(input_['path'])}[/bold]  ({escape(describe_input(input_))})")
        table(("Summary", ["Metric", "Value"], [list(r) for r in metric_rows(input_["metrics"])]))
        if input_.get("ranks"):
            table(rank_section(input_))
        for section in input_sections(input_):
            table(section)
        for warning in input_.get("warnings", []):
            console.print(f"[yellow]warning:[/] {escape(warning)}")
        console.print()
    findings = report.get("findings", [])
    if findings:
        table(("Findings", *finding_rows(findings)))
        for f in findings:
            console.print(f"[bold]{f['id']}[/bold]: {escape(f['fix']['summary'])}")
        console.print("(evidence and fix code: --format json, markdown or html)")
    else:
        console.print("No findings.")
    output = out.getvalue()
    return output if color else "\n".join(line.rstrip() for line in output.split("\n"))  # rich pads titles

