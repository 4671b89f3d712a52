"""What the dashboard's tabs are made of, independent of how they are drawn (widgets or static HTML).

A tab is a list of parts: HTML fragments, plotly charts (one may zoom), tables and fix code.
`widgets.py` turns parts into ipywidgets, `static_html.py` into one HTML page fragment.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Union

from workbench.units import format_bytes

Part = Union["Html", "Chart", "Table", "FixCode", "StaticOnly"]


@dataclass
class Html:
    html: str


@dataclass
class Chart:
    """A plotly figure; `zoom(start_ms, end_ms)` gives the figure of a window within `extent`, when it can zoom;
    `windows` are named windows to jump to (the steps)."""

    figure: Any
    zoom: Callable[[float, float], Any] | None = None
    extent: tuple[float, float] = (0.0, 0.0)
    windows: list[tuple[str, tuple[float, float]]] = field(default_factory=list)


@dataclass
class StaticOnly:
    """Parts only the static view draws: the widgets show the same on request (the report's zoomed-in window)."""

    parts: list[Part]


@dataclass
class Column:
    key: str
    label: str


@dataclass
class Table:
    """Rows of a report table; sortable by any column in the widget."""

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]

    def texts(self) -> list[list[str]]:
        return [[cell_text(c.key, row.get(c.key)) for c in self.columns] for row in self.rows]

    def values(self) -> list[list[Any]]:
        """The raw values the widget sorts by (numbers stay numbers, anything else its text)."""
        return [[_sortable(row.get(c.key)) for c in self.columns] for row in self.rows]


@dataclass
class FixCode:
    finding_id: str
    code: str
    docs: list[str] = field(default_factory=list)


def cell_text(key: str, value: Any) -> str:
    """A report value as a table cell: bytes in binary units, floats to two decimals."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and "bytes" in key.split("_"):  # `bytes_mean`, `free_bytes_beside` too
        return format_bytes(value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _sortable(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else cell_text("", value)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def heading(text: str, level: int = 3) -> Html:
    return Html(f"<h{level} class='wb-h'>{esc(text)}</h{level}>")


def html_table(header: list[str], rows: list[list[str]]) -> str:
    """Rows of already formatted cells as an HTML table."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td title='{esc(c)}'>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='wb-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def input_title(input_: dict[str, Any], several: bool) -> list[Part]:
    """A heading naming the input, when the report has several."""
    return [heading(f"{input_['path']} ({input_['kind']})", 3)] if several else []


def inputs_with(report: dict[str, Any], names: set[str]) -> Iterator[tuple[dict[str, Any], dict[str, Any], list[Part]]]:
    """(input, its tables, its heading when the report has several) for each input with one of the tables `names`."""
    inputs = report["inputs"]
    for input_ in inputs:
        tables = input_.get("tables", {})
        if names & {name for name, rows in tables.items() if rows}:
            yield input_, tables, input_title(input_, len(inputs) > 1)
