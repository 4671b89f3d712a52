"""The dashboard in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

A notebook shows the dashboard of the shipped `train_naive` trace; the test checks that the tabs
render (with plotly charts taking the output's width), that moving the timeline's window slider
(typing a window in its readout) sets the chart's x range and names each kernel on hover, that
plotly's own zoom does the same (a double click back to the whole trace, then a drag over 3 ms), that the
memory chart's axis is in GiB, that a finding's insert button creates a new cell holding its fix
code, and saves screenshots under the test's tmp_path. Skips when chromium, Playwright or
JupyterLab is missing (CI installs chromium with apt, see README).
"""

from __future__ import annotations

import time

import pytest

from tests.browser.lab import CHROMIUM, PANEL, WIDEST_BAR, jupyter_lab, run_notebook
from tests.conftest import NAIVE

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")

TABS = ["Overview", "Timeline", "Kernels & operators", "Memory", "Findings"]
WIDTH_FOLLOWS = """([plot, output]) => { const gd = document.querySelector(plot);
    const w = gd && gd._fullLayout && gd._fullLayout.width, o = output.clientWidth; return w > 0.8 * o && w <= o; }"""
X_RANGE = "(s => { const gd = document.querySelector(s); return gd && gd._fullLayout && gd._fullLayout.xaxis.range; })"
# the page's x of each time (ms) on the chart's axis, and the y of the plot area's middle
PIXELS = """([s, times]) => { const gd = document.querySelector(s), xa = gd._fullLayout.xaxis;
    const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
    return [times.map(t => box.left + xa.l2p(t)), box.top + box.height / 2]; }"""
SLIDER_INSIDE = """([readout, output]) => readout.getBoundingClientRect().right <= output.getBoundingClientRect().right"""


def test_dashboard_tabs_render_and_insert_creates_a_cell(tmp_path):
    code = f"import workbench\nworkbench.show({str(NAIVE)!r})"
    with jupyter_lab(tmp_path) as (url, root), run_notebook(url, root, code, tmp_path / "profile") as (page, started):
        tabs = page.locator(f"{PANEL} .jp-OutputArea-output .lm-TabBar-tab")
        # the widgets' tab bar, not a card: the static view (a second output, hidden once the widgets'
        # stylesheet is in) has cards of its own and can show first
        page.wait_for_selector(f"{PANEL} .jp-OutputArea-output .lm-TabBar-tab")
        page.wait_for_selector(f"{PANEL} .jp-OutputArea-output .wb-card")
        print(f"\ndashboard of {NAIVE.name} drawn {time.perf_counter() - started:.1f} s after the cell ran "
              "(analysis included)")
        assert [t.strip() for t in tabs.all_inner_texts()] == TABS
        assert page.locator(f"{PANEL} .jp-Cell").first.locator(".jp-Cell-outputArea > .jp-OutputArea-child:visible").count() == 1  # the static view hidden
        page.screenshot(path=str(tmp_path / "overview.png"))

        tabs.filter(has_text="Timeline").click()
        page.wait_for_selector(f"{PANEL} .jp-OutputArea-output .js-plotly-plot .barlayer", state="attached")
        output = page.locator(f"{PANEL} .jp-OutputArea-output").first
        plot = f"{PANEL} .wb .js-plotly-plot"  # a selector: each redraw replaces the element
        # drawn in a tab that was hidden, the chart still takes the output's width
        page.wait_for_function(WIDTH_FOLLOWS, arg=[plot, output.element_handle()])
        page.screenshot(path=str(tmp_path / "timeline.png"))
        page.click(".jp-SideBar .lm-TabBar-tab.lm-mod-current")  # the side panel closes: the chart widens
        page.wait_for_function(WIDTH_FOLLOWS, arg=[plot, output.element_handle()])

        readout = page.locator(f"{PANEL} .wb .widget-readout").first
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("100.9 - 101.4")
        page.keyboard.press("Enter")
        page.wait_for_function(f"s => {{ const r = {X_RANGE}(s); return r && Math.abs(r[0] - 100.9) < 1e-6; }}", arg=plot)
        assert page.evaluate(X_RANGE, plot) == [100.9, 101.4]  # the slider's window is the axis range
        assert readout.inner_text().replace(" ", "") in ("100.9–101.4", "100.9-101.4")
        assert page.evaluate(SLIDER_INSIDE, [readout.element_handle(), output.element_handle()])
        kernels = page.evaluate("s => document.querySelector(s).data.findIndex(t => t.name === 'computation')", plot)
        # plotly's drag layer lies over the bars and finds what is under the pointer
        box = page.locator(f"{plot} .barlayer .trace:nth-of-type({kernels + 1}) .point path").nth(1).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        hover = page.locator(f"{PANEL} .hoverlayer .hovertext").first
        hover.wait_for()
        text = hover.text_content()
        assert text.startswith("void at::native::vectorized_elementwise_kernel<4") and "134.7 µs" in text
        assert "launched by cudaLaunchKernel at 97.802 ms" in text  # its launch, by correlation id
        page.screenshot(path=str(tmp_path / "timeline_zoomed.png"))

        # plotly's own zoom: a double click goes back to the whole trace, a drag draws the window it selects
        (x,), y = page.evaluate(PIXELS, [plot, [101.0]])
        page.mouse.dblclick(x, y)
        page.wait_for_function(f"s => {{ const r = {X_RANGE}(s); return r && r[1] - r[0] > 100; }}", arg=plot)
        (x0, x1), y = page.evaluate(PIXELS, [plot, [100.0, 103.0]])
        page.mouse.move(x0, y)
        page.mouse.down()
        page.mouse.move(x1, y, steps=8)
        page.mouse.up()
        page.wait_for_function(f"s => {{ const r = {X_RANGE}(s); return r && r[1] - r[0] < 4; }}", arg=plot)
        low, high = page.evaluate(X_RANGE, plot)
        assert abs(low - 100.0) < 0.5 and abs(high - 103.0) < 0.5  # the pixels' times
        # plotly zooms at once; the kernel then draws the window again, event by event
        page.wait_for_function("s => { const gd = document.querySelector(s); return gd && gd.data && "
                               "gd.data.some(t => t.text && t.text.length); }", arg=plot)
        page.mouse.move(*page.evaluate(WIDEST_BAR, [plot, "computation"]))
        hover.wait_for()
        text = hover.text_content()
        assert "launched by cudaLaunch" in text and "events start in it" not in text  # a kernel by name
        page.screenshot(path=str(tmp_path / "timeline_drag_zoomed.png"))

        tabs.filter(has_text="Memory").click()
        memory = page.locator(f"{PANEL} .wb .js-plotly-plot:visible").first
        memory.locator(".ytitle").wait_for()
        assert memory.locator(".ytitle").text_content() == "GiB"
        ticks = memory.locator(".yaxislayer-above .ytick text").all_text_contents()
        assert ticks and all(t.replace(".", "").isdigit() for t in ticks)  # 0, 1, 2 ... GiB, no decimal "G"
        page.screenshot(path=str(tmp_path / "memory.png"))

        tabs.filter(has_text="Findings").click()
        insert = page.locator(f"{PANEL} .wb-insert").first
        insert.wait_for()
        cells = page.locator(f"{PANEL} .jp-Notebook .jp-Cell")
        before = cells.count()
        insert.click()
        page.wait_for_function(f"document.querySelectorAll('{PANEL} .jp-Notebook .jp-Cell').length > {before}")
        first_line = max(page.locator(f"{PANEL} .wb-code").first.inner_text().splitlines(), key=len)
        new_cell = cells.nth(1).locator(".cm-content")
        page.wait_for_function("([cell, line]) => cell.innerText.includes(line)",
                               arg=[new_cell.element_handle(), first_line])
        page.screenshot(path=str(tmp_path / "inserted.png"), full_page=True)
        status = page.locator(f"{PANEL} .wb-insert + .wb-copy + .wb-sub").first.inner_text()
    assert status == "inserted below"
    print(f"screenshots: {tmp_path}/overview.png, timeline.png, inserted.png")
