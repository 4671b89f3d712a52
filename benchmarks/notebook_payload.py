"""What the notebook dashboard sends to the browser for a big trace, and how long it takes to draw.

    python benchmarks/notebook_payload.py [TRACE] [--browser]

Analyzes TRACE (default: the 157 MB ../shared/traces/h100/train_long trace), then times building the
dashboard from the report (tabs, widgets and the static HTML) and measures its payload: the widget
states plus the static HTML and text of the output bundle. With --browser (needs chromium and
jupyterlab), it also times the first render in JupyterLab: from running a cell that shows the saved
report to the tabs drawn, and to the timeline's bars drawn.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT = ROOT.parent / "shared" / "traces" / "h100" / "train_long" / "train_long.pt.trace.json.gz"
LIMIT_BYTES = 5 * 1024 * 1024
STDOUT = ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stdout']"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", nargs="?", default=str(DEFAULT))
    parser.add_argument("--browser", action="store_true", help="also time the first render in JupyterLab")
    args = parser.parse_args()
    started = time.perf_counter()
    import anywidget  # noqa: F401  (what a fresh kernel imports once, before its first dashboard)
    import ipywidgets  # noqa: F401
    import plotly.graph_objects  # noqa: F401

    from workbench.notebook import Dashboard, analyze

    imported = time.perf_counter()
    path = Path(args.trace)
    data = analyze(path)
    analyzed = time.perf_counter()
    board = Dashboard(data)
    outputs = board.outputs()
    built = time.perf_counter()
    payload = board.payload_bytes()
    rows = len(data.report["inputs"][0]["tables"].get("timeline", []))
    print(f"{path.name}: {path.stat().st_size / 1e6:.0f} MB ({_json_bytes(path) / 1e6:.0f} MB of JSON), "
          f"{data.report['inputs'][0]['metrics']['event_count']:,} events")
    print(f"imports {imported - started:.2f} s (once per kernel); analysis {analyzed - imported:.1f} s; "
          f"dashboard from the report (tabs, widgets, static HTML) {built - analyzed:.2f} s")
    print(f"tabs: {', '.join(board.titles)}; timeline rectangles: {rows}")
    total = sum(payload.values())
    print("payload: " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in payload.items())
          + f"; total {total / 1e6:.2f} MB ({'under' if total < LIMIT_BYTES else 'OVER'} the 5 MB budget)")
    assert set(outputs[1]) >= {"text/html", "text/plain"}
    if args.browser:
        _browser(data.report)


def _json_bytes(path: Path) -> int:
    """The uncompressed size of a gzip file (its trailer holds it, modulo 4 GiB)."""
    if path.suffix != ".gz":
        return path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(-4, 2)
        return int.from_bytes(handle.read(4), "little")


def _browser(report: dict) -> None:
    from tests.browser.lab import jupyter_lab, run_notebook

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        with jupyter_lab(folder) as (url, root):
            (root / "report.json").write_text(json.dumps(report))
            code = ("import json, time\nstarted = time.perf_counter()\nimport workbench\n"
                    "workbench.show(json.load(open('report.json')))\n"
                    "print(f'kernel {time.perf_counter() - started:.2f} s')")
            with run_notebook(url, root, code, folder / "profile") as (page, started):
                tabs = page.locator(".jp-OutputArea-output .lm-TabBar-tab")
                tabs.first.wait_for()
                drawn = time.perf_counter()
                kernel = page.locator(STDOUT).inner_text()
                tabs.filter(has_text="Timeline").click()
                page.wait_for_selector(".jp-OutputArea-output .js-plotly-plot .barlayer .point", state="attached")
                timeline = time.perf_counter()
        print(f"browser: tabs drawn {drawn - started:.2f} s after the cell ran ({kernel.strip()} of it in the kernel: "
              f"imports, json.load, show); timeline bars drawn {timeline - drawn:.2f} s after its tab was clicked")


if __name__ == "__main__":
    main()
