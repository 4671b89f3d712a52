"""The Workbench side panel in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium via Playwright.

The root holds a copy of the shipped `train_naive` trace, the `oom_capacity` snapshot and OOM
message, a memory timeline export (from ../shared when present), two dozen OOM logs (a long list)
and an empty notebook. The test opens the panel, sees the trace listed as not analyzed, clicks it,
waits for its five findings, inserts the first one's fix into the notebook, checks what a person
sees (titles wrapped, not clipped; the findings in view below a long list; kinds named as what
they are), opens the trace's dashboard twice (one notebook named after it) and saves screenshots
under the test's tmp_path. Skips when chromium, Playwright or JupyterLab is missing (CI installs
chromium with apt, see README).
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.browser.lab import BROWSER_ARGS, CHROMIUM, TOKEN, jupyter_lab
from tests.conftest import NAIVE, OOM_CAPACITY, SHARED

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
FINDINGS = ["fp32-matmul", "unfused-optimizer", "input-bound", "unfused-attention", "host-sync"]
MEMORY_TIMELINE = SHARED / "h100" / "train_naive" / "train_naive.memory_timeline.json.gz"
LOGS = 24
# each finding title: nothing cut off (its text fits its box) and inside the panel
CLIPPED_TITLES = """panel => Array.from(panel.querySelectorAll('.jp-Workbench-title, .jp-Workbench-path')).filter(t => {
    const box = t.getBoundingClientRect(), outer = panel.getBoundingClientRect();
    return t.scrollWidth > t.clientWidth + 1 || box.right > outer.right + 1 || box.left < outer.left - 1;
}).map(t => t.textContent)"""


def _root(root):
    shutil.copy(NAIVE, root / "train_naive.pt.trace.json.gz")
    shutil.copytree(OOM_CAPACITY, root / "oom_capacity")
    if MEMORY_TIMELINE.exists():
        shutil.copy(MEMORY_TIMELINE, root / MEMORY_TIMELINE.name)
    message = (OOM_CAPACITY / "oom_capacity.oom.txt").read_bytes()
    for n in range(LOGS):
        (root / "logs" / f"job{n:02d}").mkdir(parents=True)
        (root / "logs" / f"job{n:02d}" / "stderr.txt").write_bytes(message)
    (root / "fixes.ipynb").write_text(json.dumps({
        "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": "x = 1"}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}))


def _in_view(page, selector: str) -> bool:
    return page.eval_on_selector(selector, """n => { const b = n.getBoundingClientRect();
        return b.height > 40 && b.top >= 0 && b.top < window.innerHeight - 40 && b.bottom <= window.innerHeight + 1; }""")


def test_panel_lists_analyzes_and_inserts_a_fix(tmp_path):
    with jupyter_lab(tmp_path) as (url, root):
        _root(root)
        with sync_api.sync_playwright() as p:
            context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                           headless=True, viewport={"width": 1400, "height": 900},
                                                           args=BROWSER_ARGS)
            try:
                page = context.new_page()
                page.set_default_timeout(45_000)
                page.goto(f"{url}/lab/tree/fixes.ipynb?reset&token={TOKEN}")
                page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
                page.click(".jp-SideBar .lm-TabBar-tab[data-id='workbench-panel']")
                item = page.locator(".jp-Workbench-item[data-path='train_naive.pt.trace.json.gz']")
                assert item.locator(".jp-Workbench-status").inner_text() == "not analyzed"
                assert page.locator(".jp-Workbench-item").count() == LOGS + 2 + MEMORY_TIMELINE.exists()
                where = page.locator(".jp-Workbench-item[data-path='logs/job00/stderr.txt'] .jp-Workbench-where")
                assert where.inner_text() == "OOM message · logs/job00/"
                if MEMORY_TIMELINE.exists():
                    timeline = page.locator(f".jp-Workbench-item[data-path='{MEMORY_TIMELINE.name}'] .jp-Workbench-where")
                    assert timeline.inner_text() == "memory timeline export · ./"

                item.click()
                page.wait_for_selector(".jp-Workbench-finding")
                ids = page.eval_on_selector_all(".jp-Workbench-finding", "nodes => nodes.map(n => n.dataset.id)")
                assert ids == FINDINGS
                assert item.locator(".jp-Workbench-badge").all_inner_texts() == ["2 critical", "2 warning", "1 info"]
                assert page.eval_on_selector("#workbench-panel", CLIPPED_TITLES) == []
                assert _in_view(page, ".jp-Workbench-details")  # below a list of 26 artifacts, still in view

                first = page.locator(".jp-Workbench-finding").first
                first.locator("summary").click()
                code = first.locator(".jp-Workbench-code").inner_text()
                assert "torch.backends.cuda.matmul.allow_tf32 = True" in code
                page.screenshot(path=str(tmp_path / "workbench_panel.png"))

                first.get_by_role("button", name="Insert fix into notebook").click()
                page.wait_for_function(f"document.querySelectorAll('{NOTEBOOK} .jp-Cell').length == 2")
                cells = page.locator(f"{NOTEBOOK} .jp-Cell .cm-content").all_inner_texts()
                assert "torch.backends.cuda.matmul.allow_tf32 = True" in cells[1]

                # the OOM: a long title naming a file, wrapped inside the panel; its kind named from the report
                oom = page.locator(".jp-Workbench-item[data-path='oom_capacity']")
                # before the analysis, what its files' first bytes say; after, the report's kinds (the message joined)
                assert oom.locator(".jp-Workbench-where").inner_text() == "allocator snapshot + OOM message · ./"
                oom.click()
                page.wait_for_selector(".jp-Workbench-finding[data-id='oom-capacity']")
                assert oom.locator(".jp-Workbench-where").inner_text() == "allocator snapshot · ./"
                title = page.locator(".jp-Workbench-finding[data-id='oom-capacity'] .jp-Workbench-title")
                assert "/home/ml/project/capture_runs.py:52" in title.inner_text()
                assert title.bounding_box()["height"] > 30  # wrapped onto several lines
                assert page.eval_on_selector("#workbench-panel", CLIPPED_TITLES) == []
                assert _in_view(page, ".jp-Workbench-details")
                page.screenshot(path=str(tmp_path / "workbench_panel_oom.png"))

                item.click()
                page.wait_for_selector(".jp-Workbench-finding[data-id='fp32-matmul']")
                for _ in range(2):  # the second time reopens the same notebook
                    page.get_by_role("button", name="Open dashboard").click()
                    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .cm-content:has-text('workbench.show')")
                    page.wait_for_selector(f"{NOTEBOOK} .jp-OutputArea-output .wb-card")  # the command ran the cell
                # the dashboard shows the report the server made, handed over by the panel
                source_line = page.locator(f"{NOTEBOOK} .jp-OutputArea-output .wb-source").first.inner_text()
                assert "The report the JupyterLab server made" in source_line
                source = page.locator(f"{NOTEBOOK} .jp-Cell .cm-content").first.inner_text()
                assert 'workbench.show("train_naive.pt.trace.json.gz")' in source
                tabs = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab")
                assert tabs.filter(has_text="train_naive.dashboard.ipynb").count() == 1
                page.screenshot(path=str(tmp_path / "dashboard.png"))
            finally:
                context.close()
        names = sorted(p.name for p in root.glob("*.ipynb"))
    assert names == ["fixes.ipynb", "train_naive.dashboard.ipynb"]  # no Untitled*.ipynb left behind
    assert (tmp_path / "workbench_panel.png").stat().st_size > 10_000
