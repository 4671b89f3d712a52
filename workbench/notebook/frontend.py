"""The small front-end widgets (anywidget): a sortable table, fix code with insert and copy buttons, and
the relay of a timeline's drag-zoom.

Inserting a cell needs the notebook front end. In JupyterLab 4 and Notebook 7 the button does what
a user would: from the widget's own cell, in command mode, `B` (insert below) and `Enter` (edit),
then pastes the code into the new cell's editor. Where there is no such notebook around the widget
(another front end), it asks the kernel, whose `set_next_input` fills a new cell when the next
cell runs.

Plotly's own zoom (a drag, the mode bar, a double click) happens in the browser, on a chart drawn
by the front end's plotly renderer, which tells the kernel nothing. The relay, placed beside the
chart, listens to the `plotly_relayout` events of the charts in its box and sends the kernel the new
x range (or that the axis was reset), so that the chart can be drawn again at the zoom's detail.
"""

from __future__ import annotations

from typing import Any, Callable

import anywidget
import traitlets

TABLE_JS = r"""
function render({ model, el }) {
  const table = document.createElement("table");
  table.className = "wb-table";
  let column = -1, ascending = false;
  const compare = (x, y) => {
    const nx = typeof x === "number", ny = typeof y === "number";
    if (nx && ny) return x - y;
    if (nx !== ny) return nx ? 1 : -1;
    return String(x).localeCompare(String(y));
  };
  function draw() {
    const columns = model.get("columns"), texts = model.get("texts"), values = model.get("values");
    const order = texts.map((_, i) => i);
    if (column >= 0) order.sort((a, b) => (ascending ? 1 : -1) * compare(values[a][column], values[b][column]));
    table.replaceChildren();
    const head = table.createTHead().insertRow();
    columns.forEach((label, j) => {
      const th = document.createElement("th");
      th.textContent = label + (j === column ? (ascending ? " \u25B2" : " \u25BC") : "");
      th.title = "sort by " + label;
      th.onclick = () => { ascending = j === column ? !ascending : false; column = j; draw(); };
      head.appendChild(th);
    });
    const body = table.createTBody();
    for (const i of order) {
      const tr = body.insertRow();
      for (const text of texts[i]) { const td = tr.insertCell(); td.textContent = text; td.title = text; }
    }
  }
  draw();
  model.on("change:texts", draw);
  el.appendChild(table);
}
export default { render };
"""

FIX_JS = r"""
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function press(target, key, code, keyCode) {
  for (const type of ["keydown", "keyup"]) {
    const init = { key, code, keyCode, which: keyCode, bubbles: true, cancelable: true };
    target.dispatchEvent(new KeyboardEvent(type, init));
  }
}

async function waitFor(find, ms = 3000) {
  for (let t = 0; t < ms; t += 50) { const found = find(); if (found) return found; await sleep(50); }
  return null;
}

async function insertBelow(el, code) {
  const notebook = el.closest(".jp-Notebook"), cell = el.closest(".jp-Cell");
  if (!notebook || !cell) return false;
  if (notebook.classList.contains("jp-mod-editMode")) { press(notebook, "Escape", "Escape", 27); await sleep(50); }
  const before = notebook.querySelectorAll(".jp-Cell").length;
  cell.focus();
  press(cell, "b", "KeyB", 66);
  const added = await waitFor(() => {
    const active = notebook.querySelector(".jp-Cell.jp-mod-active");
    return notebook.querySelectorAll(".jp-Cell").length > before && active !== cell ? active : null;
  });
  if (!added) return false;
  added.focus();
  press(added, "Enter", "Enter", 13);
  const editor = await waitFor(() => added.querySelector(".cm-content"));
  if (!editor) return false;
  editor.focus();
  const data = new DataTransfer();
  data.setData("text/plain", code);
  editor.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  return true;
}

async function copy(text) {
  try { await navigator.clipboard.writeText(text); return true; } catch (error) {
    const area = document.createElement("textarea");
    area.value = text; document.body.appendChild(area); area.select();
    const done = document.execCommand("copy"); area.remove(); return done;
  }
}

function render({ model, el }) {
  const pre = document.createElement("pre");
  pre.className = "wb-code";
  pre.textContent = model.get("code");
  const bar = document.createElement("div");
  const status = document.createElement("span");
  status.className = "wb-sub";
  const button = (label, action) => {
    const b = document.createElement("button");
    b.className = "jp-Button jp-mod-styled wb-button";
    b.textContent = label;
    b.onclick = action;
    bar.appendChild(b);
    return b;
  };
  button("Insert in a new cell below", async () => {
    if (await insertBelow(el, model.get("code"))) { status.textContent = "inserted below"; return; }
    model.send({ event: "insert" });
    status.textContent = "the code will appear in a new cell when the next cell runs";
  }).classList.add("wb-insert");
  button("Copy", async () => { status.textContent = (await copy(model.get("code"))) ? "copied" : "copy failed"; })
    .classList.add("wb-copy");
  bar.appendChild(status);
  el.append(pre, bar);
}
export default { render };
"""


RELAY_JS = r"""
function render({ model, el }) {
  el.style.display = "none";
  const hooked = new WeakSet();
  const relay = (event) => {
    if (event["xaxis.autorange"]) { model.send({ event: "range", range: null }); return; }
    const range = event["xaxis.range"] || [event["xaxis.range[0]"], event["xaxis.range[1]"]];
    if (range.every((x) => typeof x === "number")) model.send({ event: "range", range });
  };
  // each redraw replaces the chart's element: look for new ones (drawn once plotly has set them up)
  const timer = setInterval(() => {
    const box = el.closest(".widget-box") || el.parentElement;
    if (!el.isConnected || !box) return;
    for (const chart of box.querySelectorAll(".js-plotly-plot")) {
      if (!hooked.has(chart) && typeof chart.on === "function") { hooked.add(chart); chart.on("plotly_relayout", relay); }
    }
  }, 250);
  return () => clearInterval(timer);
}
export default { render };
"""


class SortableTable(anywidget.AnyWidget):
    _esm = TABLE_JS
    columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    texts = traitlets.List().tag(sync=True)
    values = traitlets.List().tag(sync=True)


class FixCodeWidget(anywidget.AnyWidget):
    _esm = FIX_JS
    code = traitlets.Unicode().tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_msg(self._message)

    def _message(self, widget: Any, content: dict[str, Any], buffers: Any) -> None:
        if content.get("event") == "insert":
            from IPython import get_ipython

            shell = get_ipython()
            if shell is not None:
                shell.set_next_input(self.code, replace=False)


class RangeRelay(anywidget.AnyWidget):
    """Calls `on_range((start, end))` when plotly's zoom of a chart in its box moves the x axis, `on_range(None)`
    when the axis is reset (a double click)."""

    _esm = RELAY_JS

    def __init__(self, on_range: Callable[[tuple[float, float] | None], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_range = on_range
        self.on_msg(self._message)

    def _message(self, widget: Any, content: dict[str, Any], buffers: Any) -> None:
        if content.get("event") == "range":
            window = content.get("range")
            self._on_range(tuple(window) if window else None)
