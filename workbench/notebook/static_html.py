"""Parts as static HTML, for where widgets cannot run: nbconvert, GitHub, a notebook opened without its kernel.

Charts are plotly's HTML (plotly.js from its CDN, or inline for an offline file); tables and fix code are plain HTML.
"""

from __future__ import annotations

from workbench.notebook.parts import Chart, FixCode, Html, Part, Table, esc, html_table
from workbench.notebook.style import CSS

Tabs = list[tuple[str, list[Part]]]


def render(tabs: Tabs, include_plotlyjs: bool | str = "cdn") -> str:
    """All tabs one below the other; plotly.js is included (or linked) once, before the first chart."""
    out = [CSS, "<div class='wb'>"]
    first_chart = True
    for title, parts in tabs:
        out.append(f"<h2 class='wb-h' style='font-size:16px'>{esc(title)}</h2>")
        for part in parts:
            if isinstance(part, Chart):
                out.append(part.figure.to_html(full_html=False, include_plotlyjs=include_plotlyjs if first_chart
                                               else False, config={"displaylogo": False}))
                first_chart = False
            else:
                out.append(_html(part))
    out.append("</div>")
    return "\n".join(out)


def _html(part: Part) -> str:
    if isinstance(part, Html):
        return part.html
    if isinstance(part, Table):
        return f"<h3 class='wb-h'>{esc(part.title)}</h3>" + html_table([c.label for c in part.columns], part.texts())
    if isinstance(part, FixCode):
        return f"<pre class='wb-code'>{esc(part.code)}</pre>"
    raise TypeError(f"unknown dashboard part {type(part).__name__}")
