"""The dashboard in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

A notebook shows the dashboard of the shipped `train_naive` trace; the test checks that the tabs
render (with plotly charts), that a finding's insert button creates a new cell holding its fix
code, and saves screenshots under the test's tmp_path. Skips when chromium, Playwright or
JupyterLab is missing (CI installs chromium with apt, see README).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import NAIVE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")

TOKEN = uuid.uuid4().hex
NEWS_OFF = {"fetchNews": "false", "checkForUpdates": False}
TABS = ["Overview", "Timeline", "Kernels & operators", "Memory", "Findings"]
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 over a fresh root, settings and workspace folder."""
    root, settings = tmp_path / "root", tmp_path / "settings"
    root.mkdir()
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps(NEWS_OFF))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path)}
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("JupyterLab did not answer within 30 s: " + (tmp_path / "server.log").read_text())
        yield url, root
    finally:
        server.terminate()
        server.wait(timeout=20)


def _notebook(root: Path) -> str:
    name = f"dashboard_{uuid.uuid4().hex[:8]}.ipynb"  # a fresh name: no kernel to reattach to
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": f"import workbench\nworkbench.show({str(NAIVE)!r})"}
    document = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                             "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (root / name).write_text(json.dumps(document))
    return name


def test_dashboard_tabs_render_and_insert_creates_a_cell(lab, tmp_path):
    url, root = lab
    name = _notebook(root)
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, viewport={"width": 1400, "height": 1000},
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                  "--disable-component-update", "--disable-sync"])
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        page = context.new_page()
        page.set_default_timeout(45_000)
        page.goto(f"{url}/lab/tree/{name}?reset&token={TOKEN}")
        page.wait_for_selector(f"{PANEL} .jp-Notebook .jp-Cell")
        page.wait_for_selector(f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']", state="attached")
        page.click(f"{PANEL} .jp-Cell .jp-InputPrompt")
        started = time.perf_counter()
        page.keyboard.press("Shift+Enter")
        tabs = page.locator(f"{PANEL} .jp-OutputArea-output .lm-TabBar-tab")
        tabs.first.wait_for()
        page.wait_for_selector(f"{PANEL} .jp-OutputArea-output .wb-card")
        print(f"\ndashboard of {NAIVE.name} drawn {time.perf_counter() - started:.1f} s after Shift+Enter "
              "(analysis included)")
        assert [t.strip() for t in tabs.all_inner_texts()] == TABS
        assert page.locator(f"{PANEL} .jp-Cell").first.locator(".jp-OutputArea-output").count() == 1
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
        first_line = page.locator(f"{PANEL} .wb-code").first.inner_text().splitlines()[0]
        new_cell = cells.nth(1).locator(".cm-content")
        page.wait_for_function("([cell, line]) => cell.innerText.includes(line)",
                               arg=[new_cell.element_handle(), first_line])
        page.screenshot(path=str(tmp_path / "inserted.png"), full_page=True)
        status = page.locator(f"{PANEL} .wb-insert + .wb-copy + .wb-sub").first.inner_text()
        context.close()
    assert status == "inserted below"
    print(f"screenshots: {tmp_path}/overview.png, timeline.png, inserted.png")
