"""The Workbench side panel in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium via Playwright.

The root holds a copy of the shipped `train_naive` trace and an empty notebook. The test opens
the panel, sees the trace listed as not analyzed, clicks it, waits for its five findings, inserts
the first one's fix into the notebook, opens the trace's dashboard in a new notebook, and saves
screenshots under the test's tmp_path. Skips when chromium, Playwright or JupyterLab is missing
(CI installs chromium with apt, see README).
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests.browser.lab import BROWSER_ARGS, CHROMIUM, TOKEN, jupyter_lab
from tests.conftest import NAIVE

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
FINDINGS = ["fp32-matmul", "unfused-optimizer", "input-bound", "unfused-attention", "host-sync"]


def test_panel_lists_analyzes_and_inserts_a_fix(tmp_path):
    with jupyter_lab(tmp_path) as (url, root):
        shutil.copy(NAIVE, root / "train_naive.pt.trace.json.gz")
        (root / "fixes.ipynb").write_text(json.dumps({
            "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": "x = 1"}],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}))
        with sync_api.sync_playwright() as p:
            context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                           headless=True, viewport={"width": 1400, "height": 1000},
                                                           args=BROWSER_ARGS)
            try:
                page = context.new_page()
                page.set_default_timeout(45_000)
                page.goto(f"{url}/lab/tree/fixes.ipynb?reset&token={TOKEN}")
                page.wait_for_selector(f"{NOTEBOOK} .jp-Cell")
                page.click(".jp-SideBar .lm-TabBar-tab[data-id='workbench-panel']")
                item = page.locator(".jp-Workbench-item[data-path='train_naive.pt.trace.json.gz']")
                assert item.locator(".jp-Workbench-status").inner_text() == "not analyzed"

                item.click()
                page.wait_for_selector(".jp-Workbench-finding")
                ids = page.eval_on_selector_all(".jp-Workbench-finding", "nodes => nodes.map(n => n.dataset.id)")
                assert ids == FINDINGS
                assert item.locator(".jp-Workbench-badge").all_inner_texts() == ["2 critical", "2 warning", "1 info"]

                first = page.locator(".jp-Workbench-finding").first
                first.locator("summary").click()
                code = first.locator(".jp-Workbench-code").inner_text()
                assert "torch.backends.cuda.matmul.allow_tf32 = True" in code
                page.screenshot(path=str(tmp_path / "workbench_panel.png"))

                first.get_by_role("button", name="Insert fix into notebook").click()
                page.wait_for_function(f"document.querySelectorAll('{NOTEBOOK} .jp-Cell').length == 2")
                cells = page.locator(f"{NOTEBOOK} .jp-Cell .cm-content").all_inner_texts()
                assert "torch.backends.cuda.matmul.allow_tf32 = True" in cells[1]

                page.get_by_role("button", name="Open dashboard").click()
                page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .cm-content:has-text('workbench.show')")
                source = page.locator(f"{NOTEBOOK} .jp-Cell .cm-content").first.inner_text()
                assert source.startswith("import workbench")
                assert 'workbench.show("train_naive.pt.trace.json.gz")' in source
                page.wait_for_selector(f"{NOTEBOOK} .jp-OutputArea-output")  # the command ran the cell
                page.screenshot(path=str(tmp_path / "dashboard.png"))
            finally:
                context.close()
    assert (tmp_path / "workbench_panel.png").stat().st_size > 10_000
