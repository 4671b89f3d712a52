"""The dashboard in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

A notebook shows the dashboard of the shipped `train_naive` trace; the test checks that the tabs
render (with plotly charts), that a finding's insert button creates a new cell holding its fix
code, and saves screenshots under the test's tmp_path. Skips when chromium, Playwright or
JupyterLab is missing (CI installs chromium with apt, see README).
"""

from __future__ import annotations

import time

import pytest

from tests.browser.lab import CHROMIUM, PANEL, jupyter_lab, run_notebook
from tests.conftest import NAIVE

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")

TABS = ["Overview", "Timeline", "Kernels & operators", "Memory", "Findings"]


def test_dashboard_tabs_render_and_insert_creates_a_cell(tmp_path):
    code = f"import workbench\nworkbench.show({str(NAIVE)!r})"
    with jupyter_lab(tmp_path) as (url, root), run_notebook(url, root, code, tmp_path / "profile") as (page, started):
        tabs = page.locator(f"{PANEL} .jp-OutputArea-output .lm-TabBar-tab")
        page.wait_for_selector(f"{PANEL} .jp-OutputArea-output .wb-card")
        print(f"\ndashboard of {NAIVE.name} drawn {time.perf_counter() - started:.1f} s after the cell ran "
              "(analysis included)")
        assert [t.strip() for t in tabs.all_inner_texts()] == TABS
        assert page.locator(f"{PANEL} .jp-Cell").first.locator(".jp-Cell-outputArea > .jp-OutputArea-child").count() == 1
        page.screenshot(path=str(tmp_path / "overview.png"))

        tabs.filter(has_text="Timeline").click()
        page.wait_for_selector(f"{PANEL} .jp-OutputArea-output .js-plotly-plot .barlayer", state="attached")
        page.screenshot(path=str(tmp_path / "timeline.png"))

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
