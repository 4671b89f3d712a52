"""The `--format html` report opened from disk (file://) in Debian's Chromium through Playwright, with
every network request refused: the tabs switch, the charts are drawn offline, the report's zoomed-in
step names a kernel on hover, the memory axis is in GiB, titles are not clipped. Also the notebook's static view in `jupyter nbconvert --to html --execute`, and
the report as a viewer that strips scripts and styles shows it (GitHub's notebook view).
Screenshots are kept under the test's tmp_path. Skips without chromium or Playwright.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.browser.lab import BROWSER_ARGS, CHROMIUM, WIDEST_BAR
from tests.conftest import NAIVE, ROOT
from workbench.cli import main

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("plotly", reason="the html report needs plotly")

TABS = ["Overview", "Timeline", "Kernels & operators", "Memory", "Findings"]
CLIPPED = """els => els.filter(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""
DRAWN = """s => [...document.querySelectorAll(s)].filter(p => p.offsetParent && p._fullLayout
    && p.querySelector('.main-svg') && p.getBoundingClientRect().width > 300).length"""


def browse(tmp_path, url: str, check) -> list[str]:
    """Open `url` in headless Chromium, refusing every request that is not a local file; run `check(page)`."""
    from playwright.sync_api import sync_playwright

    remote: list[str] = []
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM,
                                                       headless=True, viewport={"width": 1280, "height": 900},
                                                       args=BROWSER_ARGS)
        try:
            def refuse(route):
                remote.append(route.request.url)
                route.abort()

            context.route(lambda u: not u.startswith(("file:", "data:", "blob:")), refuse)
            page = context.new_page()
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            check(page)
            assert not [e for e in errors if "Plotly" in e], errors
        finally:
            context.close()
    return remote


def test_the_html_report_opened_from_disk(tmp_path):
    report = tmp_path / "report.html"
    assert main(["analyze", str(NAIVE), "--format", "html", "-o", str(report)]) == 0

    def check(page):
        labels = page.locator(".wb-tabs > label")
        assert [t.strip() for t in labels.all_inner_texts()] == TABS
        page.wait_for_function(DRAWN, arg=".wb-tabs section .js-plotly-plot")  # the overview's charts
        page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
        assert page.eval_on_selector_all("h1, h3, .wb-card, .wb-tabs > label", CLIPPED) == []
        for tab in TABS[1:]:
            labels.filter(has_text=tab).click()
            section = page.locator(f".wb-tabs section[aria-label='{tab}']")
            assert section.is_visible() and section.bounding_box()["height"] > 100
            if tab in ("Timeline", "Memory"):
                page.wait_for_function(DRAWN, arg=f".wb-tabs section[aria-label='{tab}'] .js-plotly-plot")
                width = section.locator(".js-plotly-plot").first.bounding_box()["width"]
                assert width > 0.9 * section.bounding_box()["width"]  # drawn while hidden, at the page's width
            if tab == "Timeline":  # the report's window, event by event: a kernel by name on hover
                assert "In detail: ProfilerStep#4" in section.inner_text()
                window = section.locator(".js-plotly-plot").nth(1)
                window.scroll_into_view_if_needed()
                page.mouse.move(*page.evaluate(WIDEST_BAR, [window.element_handle(), "computation"]))
                hover = window.locator(".hoverlayer .hovertext").first
                hover.wait_for()
                assert "launched by cudaLaunch" in hover.text_content()
            if tab == "Memory":
                assert section.locator(".ytitle").first.text_content() == "GiB"
                ticks = section.locator(".yaxislayer-above .ytick text").all_text_contents()
                assert ticks and all(t.replace(".", "").isdigit() for t in ticks)  # no decimal "G"
            if tab == "Findings":
                assert "torch.backends.cuda.matmul" in section.locator(".wb-code").first.inner_text()
                assert "38.1 ms/step" in section.inner_text() and "%" in section.inner_text()
            assert page.eval_on_selector_all(f".wb-tabs section[aria-label='{tab}'] h3, "
                                             f".wb-tabs section[aria-label='{tab}'] .wb-finding > div", CLIPPED) == []
            page.screenshot(path=str(tmp_path / f"{tab.split()[0].lower()}.png"), full_page=True)

    assert browse(tmp_path, report.as_uri(), check) == []  # nothing fetched from the network
    print(f"\n{report.stat().st_size / 1e6:.1f} MB; screenshots in {tmp_path}")


# what GitHub's notebook view keeps of an HTML output, at most: plain elements, no scripts, styles, classes or ids
GITHUB_TAGS = ["h1", "h2", "h3", "div", "span", "p", "br", "b", "a", "ul", "li", "pre", "code", "table", "thead",
               "tbody", "tr", "td", "th", "details", "summary"]


def test_the_report_without_scripts_and_styles_is_readable(tmp_path):
    bleach = pytest.importorskip("bleach")
    report = tmp_path / "report.html"
    assert main(["analyze", str(NAIVE), "--format", "html", "-o", str(report)]) == 0
    page = re.sub(r"<(script|style)\b.*?</\1>", "", report.read_text(), flags=re.S | re.I)
    stripped = tmp_path / "stripped.html"
    stripped.write_text(bleach.clean(page, tags=GITHUB_TAGS, attributes={}, strip=True))

    def check(page):
        assert page.locator("h2").all_inner_texts() == TABS  # every tab, one after the other
        for seen in ("fp32-matmul", "38.1 ms/step (43.2 % of the time)", "GPU busy",
                     "torch.backends.cuda.matmul.allow_tf32 = True"):
            assert page.get_by_text(seen).first.is_visible()
        page.screenshot(path=str(tmp_path / "stripped.png"), full_page=True)

    browse(tmp_path, stripped.as_uri(), check)
    print(f"\n{stripped.stat().st_size / 1e3:.0f} KB without scripts and styles; screenshot in {tmp_path}")


def test_the_widgets_stylesheet_hides_the_static_view_in_a_vs_code_webview(tmp_path):
    """VS Code draws a cell's outputs side by side in one webview (its body carries the theme's data attribute):
    once the widgets are drawn, their stylesheet hides the static view after them; elsewhere (nbconvert) it shows.
    A mock of that page: VS Code itself is not run here."""
    from workbench.notebook.style import HIDE_STATIC_CSS

    outputs = (f"<div class='output'><div class='wb wb-widgets'>{HIDE_STATIC_CSS}widgets</div></div>"
               "<div class='output'><div class='wb wb-static'>static view</div></div>")
    for body, hidden in (("<body data-vscode-theme-kind='vscode-light'>", True), ("<body>", False)):
        page = tmp_path / f"outputs_{hidden}.html"
        page.write_text(f"<!DOCTYPE html><html>{body}{outputs}</body></html>")
        browse(tmp_path, page.as_uri(), lambda p: _assert_visible(p, ".wb-static", not hidden))


def _assert_visible(page, selector: str, visible: bool) -> None:
    assert page.locator(selector).is_visible() is visible


@pytest.mark.skipif(shutil.which("jupyter") is None, reason="jupyter (nbconvert) is not installed")
def test_nbconvert_of_a_dashboard_notebook_shows_the_static_view(tmp_path):
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", "--output-dir",
                    str(tmp_path), "01_quickstart.ipynb"], cwd=ROOT / "notebooks", check=True, capture_output=True,
                   timeout=300)

    def check(page):
        static = page.locator(".wb-static").first
        assert static.is_visible()
        page.wait_for_function(DRAWN, arg=".wb-static .js-plotly-plot")  # charts drawn, offline
        static.locator(".wb-tabs > label").filter(has_text="Findings").click()
        assert static.locator("section[aria-label='Findings'] .wb-code").first.is_visible()
        page.screenshot(path=str(tmp_path / "nbconvert.png"), full_page=False)

    browse(tmp_path, (tmp_path / "01_quickstart.html").as_uri(), check)  # nbconvert's page asks CDNs: refused
