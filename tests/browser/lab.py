"""A JupyterLab server on 127.0.0.1 and Debian's Chromium (through Playwright) running one notebook cell.

Shared by the browser test and `benchmarks/notebook_payload.py --browser`.
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
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LABEXTENSION = Path(__file__).resolve().parents[2] / "workbench" / "labextension"
TOKEN = uuid.uuid4().hex
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # JupyterLab may restore other panels, hidden
NEWS_OFF = {"fetchNews": "false", "checkForUpdates": False}
# the widest bar of a plotly trace (by name) in a chart (an element, or a selector): its middle on the page
WIDEST_BAR = """([chart, name]) => { const gd = typeof chart === 'string' ? document.querySelector(chart) : chart;
    const at = gd.data.findIndex(t => t.name === name);
    const bars = [...gd.querySelectorAll('.barlayer .trace')][at].querySelectorAll('.point path');
    const box = [...bars].map(b => b.getBoundingClientRect()).sort((a, b) => b.width - a.width)[0];
    return [box.x + box.width / 2, box.y + box.height / 2]; }"""
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def jupyter_lab(folder: Path) -> Iterator[tuple[str, Path]]:
    """(url, root): a server over `folder/root`, with its settings and workspaces in `folder`."""
    root, settings = folder / "root", folder / "settings" / "@jupyterlab" / "apputils-extension"
    root.mkdir()
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps(NEWS_OFF))
    # this checkout's prebuilt panel, found before the installed copy (which may be another checkout's)
    extensions = folder / "data" / "labextensions"
    extensions.mkdir(parents=True)
    (extensions / "workbench-lab").symlink_to(LABEXTENSION, target_is_directory=True)
    data_path = os.pathsep.join(p for p in (str(folder / "data"), os.environ.get("JUPYTER_PATH", "")) if p)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(folder),
           "JUPYTER_PATH": data_path}
    port = _free_port()
    log = folder / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("JupyterLab did not answer within 30 s: " + log.read_text())
        yield url, root
    finally:
        server.terminate()
        server.wait(timeout=20)


def _wait_for_idle_kernel(url: str, name: str) -> None:
    """Until the notebook's kernel has started and is idle (the server's sessions say so)."""
    for _ in range(600):
        with urllib.request.urlopen(f"{url}/api/sessions?token={TOKEN}", timeout=5) as answer:
            sessions = json.load(answer)
        if any(s["path"].endswith(name) and s["kernel"]["execution_state"] == "idle" for s in sessions):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the kernel of {name} did not start within 60 s")


@contextmanager
def run_notebook(url: str, root: Path, code: str, profile: Path) -> Iterator[tuple[Any, float]]:
    """(page, time the cell was run): a new notebook holding `code`, opened and run in headless Chromium."""
    from playwright.sync_api import sync_playwright

    name = f"dashboard_{uuid.uuid4().hex[:8]}.ipynb"  # a fresh name: no running kernel to reattach to
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": code}
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (root / name).write_text(json.dumps({"cells": [cell], "metadata": {"kernelspec": kernel},
                                         "nbformat": 4, "nbformat_minor": 5}))
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       viewport={"width": 1400, "height": 1000}, args=BROWSER_ARGS)
        try:
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
            page = context.new_page()
            page.set_default_timeout(45_000)
            page.goto(f"{url}/lab/tree/{name}?reset&token={TOKEN}")
            page.wait_for_selector(f"{PANEL} .jp-Notebook .jp-Cell")
            _wait_for_idle_kernel(url, name)
            page.click(f"{PANEL} .jp-Cell .jp-InputPrompt")
            page.click(f"{PANEL} .jp-Toolbar [data-command='notebook:run-cell-and-select-next']")
            yield page, time.perf_counter()
        finally:
            context.close()
