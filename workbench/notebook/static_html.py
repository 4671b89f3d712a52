"""Parts as static HTML, for where widgets cannot run: the `--format html` report, nbconvert, GitHub,
a notebook opened without its kernel.

The tabs are radio buttons and CSS (no script needed to switch them); a hidden tab keeps its width,
so the charts drawn in it have the page's width when it is shown. Charts are plotly's HTML, with
plotly.js inlined once before the first chart (or, in a notebook, once per kernel session); tables
and fix code are plain HTML. Where a viewer strips scripts and styles (GitHub's notebook view), the
charts are missing and every tab shows, one after the other under its own heading: the numbers,
tables, findings and fix code stay as text.
"""

from __future__ import annotations

import uuid

from workbench.notebook.parts import Chart, FixCode, Html, Part, StaticOnly, Table, esc, html_table
from workbench.notebook.style import CSS

Tabs = list[tuple[str, list[Part]]]
MAX_TABS = 8
# the N-th radio button shows the N-th panel; an unchecked tab's panel is cut to no height, not removed
TAB_CSS = "<style>\n" + "\n".join(
    f".wb-tabs > input:nth-of-type({n}):checked ~ section:nth-of-type({n})"
    " { height: auto; visibility: visible; overflow: visible; }" for n in range(1, MAX_TABS + 1)) + """
.wb-tabs > input { position: absolute; opacity: 0; pointer-events: none; }
.wb-tabs > label { display: inline-block; padding: 6px 14px; cursor: pointer; font-weight: 500;
                   border-bottom: 2px solid transparent; color: var(--jp-ui-font-color2, #555); }
.wb-tabs > input:checked + label { border-bottom-color: var(--jp-brand-color1, #1976d2);
                                   color: var(--jp-ui-font-color1, #111); }
.wb-tabs > input:focus-visible + label { outline: 2px solid var(--jp-brand-color1, #1976d2); }
.wb-static pre.wb-code { background: var(--jp-cell-editor-background, #f5f5f5); padding: 6px; font-size: 12px;
                         line-height: 1.35; white-space: pre;
                         font-family: var(--jp-code-font-family, monospace), monospace; }  /* over nbconvert's and JupyterLab's rendered-HTML pre */
.wb-tabs > section { height: 0; overflow: hidden; visibility: hidden; padding-top: 6px;
                     border-top: 1px solid var(--jp-border-color2, #ddd); }
.wb-tabs > section > .wb-tab-title { display: none; }  /* the tab's label says it; shown without styles */
</style>"""


def render(tabs: Tabs, include_plotlyjs: bool | str = True) -> str:
    """The tabs (the first one open); plotly.js is included once, before the first chart."""
    key = uuid.uuid4().hex[:8]  # radio groups of two dashboards on one page stay apart
    out = [CSS, TAB_CSS, "<div class='wb wb-static'><div class='wb-tabs'>"]
    for i, (title, _) in enumerate(tabs[:MAX_TABS]):
        out.append(f"<input type='radio' name='wb-{key}' id='wb-{key}-{i}'{' checked' if i == 0 else ''}>"
                   f"<label for='wb-{key}-{i}'>{esc(title)}</label>")
    first_chart = True
    for title, parts in tabs[:MAX_TABS]:
        out.append(f"<section aria-label='{esc(title)}'><h2 class='wb-tab-title'>{esc(title)}</h2>")
        for part in (p for part in parts for p in (part.parts if isinstance(part, StaticOnly) else [part])):
            if isinstance(part, Chart):
                out.append(part.figure.to_html(full_html=False, include_plotlyjs=include_plotlyjs if first_chart
                                               else False, config={"displaylogo": False, "responsive": True}))
                first_chart = False
            else:
                out.append(_html(part))
        out.append("</section>")
    out.append("</div></div>")
    return "\n".join(out)


def _html(part: Part) -> str:
    if isinstance(part, Html):
        return part.html
    if isinstance(part, Table):
        return f"<h3 class='wb-h'>{esc(part.title)}</h3>" + html_table([c.label for c in part.columns], part.texts())
    if isinstance(part, FixCode):
        return f"<pre class='wb-code'>{esc(part.code)}</pre>"
    raise TypeError(f"unknown dashboard part {type(part).__name__}")
