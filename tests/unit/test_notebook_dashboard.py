"""The notebook dashboard on the shipped artifacts: which tabs appear, and that it draws the report's numbers."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
import sys

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")
pytest.importorskip("anywidget")

from tests.conftest import NAIVE, OOM_CAPACITY, OOM_EXPANDABLE, OPTIMIZED, SAMPLES  # noqa: E402
from workbench.notebook import dashboard, diff, distributed  # noqa: E402
from workbench.notebook.parts import Chart, FixCode, Html, StaticOnly, Table  # noqa: E402


@pytest.fixture(scope="module")
def naive():
    return dashboard(NAIVE)


@pytest.mark.parametrize("path, titles", [
    (NAIVE, ["Overview", "Timeline", "Kernels & operators", "Memory", "Findings"]),
    (OOM_CAPACITY, ["Overview", "Memory", "Findings"]),
    (SAMPLES / "h100" / "nccl_timeout", ["Overview", "Distributed", "Findings"]),
    (SAMPLES / "cpu" / "ddp_gloo_straggler", ["Overview", "Timeline", "Distributed", "Findings"]),
])
def test_tabs_appear_only_with_data(path, titles):
    assert dashboard(path).titles == titles


def test_overview_draws_the_reported_breakdown(naive):
    overview = "".join(p.html for p in dict(naive.tabs)["Overview"] if isinstance(p, Html))
    metrics = naive.report["inputs"][0]["metrics"]
    assert metrics["computation_pct"] == pytest.approx(85.285)
    assert "computation 85.3 %" in overview and "idle 12.7 %" in overview
    assert "88.25 ms" in overview  # Step time mean, as the text report prints it
    assert "fp32-matmul" in overview  # the top finding


def test_tables_and_findings_are_the_reports(naive):
    kernels = next(p for p in dict(naive.tabs)["Kernels & operators"] if isinstance(p, Table))
    assert kernels.rows == naive.report["inputs"][0]["tables"]["kernels"]
    assert kernels.texts()[0][2] == "57"  # the SIMT sgemm launched 57 times
    fixes = [p for p in dict(naive.tabs)["Findings"] if isinstance(p, FixCode)]
    assert [(f.finding_id, f.code) for f in fixes] == [(f["id"], f["fix"]["code"]) for f in naive.report["findings"]]


def test_timeline_zoom_asks_the_analysis_for_the_window(naive):
    chart = next(p for p in dict(naive.tabs)["Timeline"] if isinstance(p, Chart))
    rows = naive.report["inputs"][0]["tables"]["timeline"]
    assert sum(len(trace.y or ()) for trace in chart.figure.data) == len(rows)
    assert chart.extent == (min(r["start_ms"] for r in rows), max(r["end_ms"] for r in rows))
    assert tuple(chart.figure.layout.xaxis.range) == chart.extent
    detail = chart.zoom(100.9, 101.4)
    starts = [b for trace in detail.data for b in (trace.base or ())]
    assert starts and all(100.9 <= b <= 101.4 for b in starts)
    assert tuple(detail.layout.xaxis.range) == (100.9, 101.4)  # the slider's window is the axis range
    kernels = next(trace for trace in detail.data if trace.name == "computation")
    assert all(name for name in kernels.text) and any("cublas" in hover for hover in kernels.hovertext)


def test_a_job_s_ranks_share_one_timeline():
    board = dashboard(SAMPLES / "cpu" / "ddp_gloo_straggler")
    charts = [p for p in dict(board.tabs)["Timeline"] if isinstance(p, Chart)]
    assert len(charts) == 1
    lanes = list(charts[0].figure.layout.yaxis.ticktext)
    assert [lane.split()[1] for lane in lanes] == ["0", "1", "2", "3"]
    detail = charts[0].zoom(*charts[0].extent)
    assert {t.name for t in detail.data} == {"operator"} and all(t.text for t in detail.data)


def test_a_dashboard_of_a_report_zooms_by_analyzing_its_input_again(naive):
    from workbench.notebook.sources import DashboardData

    again = dashboard(DashboardData(naive.report))
    chart = next(p for p in dict(again.tabs)["Timeline"] if isinstance(p, Chart))
    assert chart.zoom is not None
    assert {t.name for t in chart.zoom(100.0, 101.0).data} >= {"computation", "launch"}
    job = dashboard(DashboardData(dashboard(SAMPLES / "cpu" / "ddp_gloo_straggler").report))
    chart = next(p for p in dict(job.tabs)["Timeline"] if isinstance(p, Chart))
    detail = chart.zoom(*chart.extent)  # the ranks' traces are loaded again, kept for the zoom
    assert len(detail.layout.yaxis.ticktext) == 4 and all(t.text for t in detail.data)


def test_the_report_s_window_is_drawn_where_the_timeline_cannot_zoom(naive):
    """The static view (HTML report, nbconvert) draws the report's step by name; the widgets zoom instead,
    unless the input's files are not here."""
    from workbench.notebook.widgets import tab_widget

    parts = dict(naive.tabs)["Timeline"]
    (static,) = [p for p in parts if isinstance(p, StaticOnly)]
    heading, chart = static.parts
    assert "In detail: ProfilerStep#4, the step of median duration" in heading.html
    kernels = next(t for t in chart.figure.data if t.name == "computation")
    assert len(kernels.text) > 150 and all(kernels.text) and "launched by cudaLaunch" in kernels.hovertext[0]
    assert "In detail: ProfilerStep#4" in naive.html(include_plotlyjs=False)
    timeline = tab_widget(naive.tabs).children[1].children[naive.titles.index("Timeline")]
    assert len(timeline.children) == len(parts) - 1  # not among the widgets
    moved = {**naive.report, "inputs": [{**naive.report["inputs"][0], "path": "/gone/train_naive.json.gz"}]}
    parts = dict(dashboard(moved).tabs)["Timeline"]
    assert not any(isinstance(p, StaticOnly) for p in parts) and sum(isinstance(p, Chart) for p in parts) == 2


def test_the_widgets_then_the_static_view_with_plotly_js_once(naive, monkeypatch):
    import importlib

    board_module = importlib.import_module("workbench.notebook.dashboard")

    monkeypatch.setattr(board_module, "_PLOTLY_JS_SENT", False)  # a new kernel session
    widgets, static = naive.outputs()
    assert "application/vnd.jupyter.widget-view+json" in widgets and "text/html" not in widgets
    assert "Timeline" in static["text/html"] and "fp32-matmul" in static["text/plain"]
    assert "<script src" not in static["text/html"]  # no CDN: plotly.js is inlined
    assert static["text/html"].count("* plotly.js v") == 1  # inlined, its banner once
    assert "* plotly.js v" not in naive.outputs()[1]["text/html"]  # once a session
    assert sum(naive.payload_bytes().values()) < 1_000_000


def test_a_diff_shows_the_change():
    board = dashboard(diff(NAIVE, OPTIMIZED))
    assert board.titles == ["Overview", "Kernels & operators", "Findings"]
    overview = "".join(p.html for p in dict(board.tabs)["Overview"] if isinstance(p, Html))
    assert "Kernels that changed most" in overview


def test_show_reports_a_bad_path_in_one_line(capsys, tmp_path):
    from workbench.notebook import show

    show(tmp_path / "missing.json")
    assert capsys.readouterr().err.strip() == f"workbench: error: {tmp_path / 'missing.json'}: no such file or directory"


def test_importing_workbench_loads_no_widgets():
    code = "import sys, workbench; print('ipywidgets' in sys.modules, 'plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_oom_box_shows_the_message_and_the_failing_line():
    memory = dict(dashboard(OOM_CAPACITY).tabs)["Memory"]
    box = "".join(p.html for p in memory if isinstance(p, Html))
    assert "CUDA out of memory. Tried to allocate 5.00 GiB." in box
    assert "The line that failed: <code>/home/ml/project/capture_runs.py:50 in forward</code>" in box
    assert "att = (q @ k.transpose(-2, -1))" in box
    # the snapshot's tables at the OOM and at the peak hold the same blocks here: said once
    titles = [p.title for p in memory if isinstance(p, Table)]
    assert "Live memory at the OOM (the same at the peak) by allocation site" in titles
    assert not any(t.startswith("Live memory at the peak") for t in titles)


def test_an_oom_message_alone_has_its_box():
    memory = dict(dashboard(OOM_CAPACITY / "oom_capacity.oom.txt").tabs)["Memory"]
    assert "The line that failed" in "".join(p.html for p in memory if isinstance(p, Html))


def test_memory_charts_are_in_binary_units():
    memory = dict(dashboard(OOM_EXPANDABLE).tabs)["Memory"]
    charts = [p.figure for p in memory if isinstance(p, Chart)]
    curve = charts[0]
    assert curve.layout.yaxis.title.text == "GiB"
    reserved = next(t for t in curve.data if t.name == "reserved")
    assert max(reserved.y) == pytest.approx(62.949, abs=1e-3)  # 62.95 GiB, as the tables print it
    assert any("79.18 GiB" in (a.text or "") for a in curve.layout.annotations)  # the device's capacity
    # here the peak (62.94 GiB live) is not the OOM (20.98 GiB): both are shown
    titles = [p.html for p in memory if isinstance(p, Html)]
    assert any("at the OOM by category" in t for t in titles) and any("at the peak by category" in t for t in titles)


def test_an_offered_report_is_shown_while_its_files_are_unchanged(naive, tmp_path):
    import json
    import os
    import shutil

    from workbench.notebook.sources import load, offer_report

    trace = tmp_path / NAIVE.name
    shutil.copy(NAIVE, trace)
    offered = {**naive.report, "findings": []}  # told apart from a fresh analysis by its findings
    offer_report(trace, json.dumps(offered))
    assert load(str(trace)).report["findings"] == []
    assert "JupyterLab server" in dashboard(str(trace)).tabs[0][1][0].html  # the Overview says whose report
    assert load(trace).inputs == []  # nothing analyzed yet: the timeline zoom analyzes on first use
    os.utime(trace, ns=(1, 1))  # the file changed: its report is made again
    assert load(trace).report["findings"]


def test_the_timeline_offers_its_steps_as_windows(naive):
    from workbench.notebook.widgets import to_widget

    chart = next(p for p in dict(naive.tabs)["Timeline"] if isinstance(p, Chart))
    steps = naive.report["inputs"][0]["tables"]["timeline_steps"]
    assert [label for label, _ in chart.windows] == ["the whole trace", "step 4", "step 5", "step 6"]
    jump, slider, _, out = to_widget(chart).children
    jump.value = (steps[1]["start_ms"], steps[1]["end_ms"])  # step 5 chosen: the slider and the chart follow
    assert slider.value == pytest.approx((steps[1]["start_ms"], steps[1]["end_ms"]))
    layout = out.outputs[0]["data"]["application/vnd.plotly.v1+json"]["layout"]
    assert layout["xaxis"]["range"] == pytest.approx(list(slider.value))


def test_plotly_s_own_zoom_draws_the_window_it_selects(naive):
    """What the browser's relay sends when a drag zooms the chart, then when a double click resets it."""
    from workbench.notebook.frontend import RangeRelay
    from workbench.notebook.widgets import PLOTLY_MIME, to_widget

    chart = next(p for p in dict(naive.tabs)["Timeline"] if isinstance(p, Chart))
    _, slider, relay, out = to_widget(chart).children
    assert isinstance(relay, RangeRelay)

    def drawn():
        figure = out.outputs[0]["data"][PLOTLY_MIME]
        return figure["layout"]["xaxis"]["range"], {t["name"]: t for t in figure["data"]}

    relay._message(relay, {"event": "range", "range": [100.9, 101.4]}, [])  # a drag over half a millisecond
    assert slider.value == (100.9, 101.4)
    x_range, traces = drawn()
    assert x_range == [100.9, 101.4]
    assert any(name.startswith("void at::native::vectorized_elem") for name in traces["computation"]["text"])  # named
    relay._message(relay, {"event": "range", "range": [-50.0, 1e9]}, [])  # a zoom out past the ends: the whole trace
    assert slider.value == chart.extent
    relay._message(relay, {"event": "range", "range": [100.9, 101.4]}, [])
    relay._message(relay, {"event": "range", "range": None}, [])  # a double click: the overview again
    x_range, traces = drawn()
    assert slider.value == chart.extent and x_range == list(chart.extent)
    assert "text" not in traces["computation"] and "events start in it" in traces["computation"]["hovertext"][0]


def test_inference_tab_draws_the_passes_and_the_roofline():
    from tests.conftest import shared_path

    board = dashboard(shared_path("h100/infer_decode/infer_decode.pt.trace.json.gz"))
    assert "Inference" in board.titles
    parts = dict(board.tabs)["Inference"]
    html = "".join(p.html for p in parts if isinstance(p, Html))
    metrics = board.report["inputs"][0]["metrics"]
    assert "concat" in html and "manual" in html and f"{metrics['decode_ms_per_pass']:.3f} ms" in html
    assert sum(isinstance(p, Chart) for p in parts) == 2  # the phase strip and the MBU bar
    (table,) = [p for p in parts if isinstance(p, Table)]
    assert len(table.rows) == 97


@pytest.fixture(scope="module")
def job():
    """A real 8-rank gloo job (rank 5 runs an extra branch, rank 7 waits on its loader)."""
    return dashboard(SAMPLES / "cpu" / "ddp_gloo_extra_compute")


def _job_charts(board):
    charts = [p.figure for p in dict(board.tabs)["Distributed"] if isinstance(p, Chart)]
    heatmap = next(f for f in charts if any(t.type == "heatmap" for t in f.data))
    spread = next(f for f in charts if any(t.name == "p50 to p90" for t in f.data))
    return heatmap, spread


def test_the_job_heatmap_scales_each_metric_and_hovers_the_reported_value(job):
    heatmap, _ = _job_charts(job)
    tables = job.report["inputs"][0]["tables"]
    cells = next(t for t in heatmap.data if t.type == "heatmap")
    assert list(cells.y) == [f"rank {r['rank']}" for r in tables["ranks"]]
    distribution = {d["metric"]: d for d in tables["rank_distribution"]}
    metrics = [m for m, _ in distributed.RANK_METRICS if m in distribution]
    assert len(cells.x) == len(metrics) and "step" in cells.x and "waited" in cells.x
    for row, values, scaled in zip(tables["ranks"], cells.customdata, cells.z):
        assert list(values) == [row[m] for m in metrics]  # the hover shows the report's value
        for metric, value in zip(metrics, scaled):
            d = distribution[metric]
            assert value == pytest.approx((row[metric] - d["min"]) / (d["max"] - d["min"]))
    outlined = next(t for t in heatmap.data if t.name == "outlier")
    expected = {(label, f"rank {rank}") for m, label in distributed.RANK_METRICS if m in distribution
                for rank in distribution[m]["outlier_ranks"]}
    assert set(zip(outlined.x, outlined.y)) == expected and ("others waited for it", "rank 5") in expected


def test_the_job_distributions_are_the_reports_with_outlier_ranks_in_red(job):
    _, spread = _job_charts(job)
    tables = job.report["inputs"][0]["tables"]
    step = next(d for d in tables["rank_distribution"] if d["metric"] == "step_time_ms")
    ranges = [t for t in spread.data if t.name == "min to max"]
    middles = [t for t in spread.data if t.name == "p50 to p90"]
    assert list(ranges[0].y) == [step["min"], step["max"]] and list(middles[0].y) == [step["p50"], step["p90"]]
    caused = next(d for d in tables["rank_distribution"] if d["metric"] == "caused_wait_ms_per_step")
    column = [m for m, _ in distributed.RANK_METRICS if m in {d["metric"] for d in tables["rank_distribution"]}]
    red = [t for t in spread.data if t.name == "outlier ranks" and list(t.x) and t.x[0] == column.index(
        "caused_wait_ms_per_step") + 0.25]
    assert sorted(red[0].text) == sorted(f"rank {r}" for r in caused["outlier_ranks"])


def test_a_large_job_draws_its_stragglers_and_outliers_first(job, monkeypatch):
    monkeypatch.setattr(distributed, "MAX_RANKS", 4)
    from workbench.notebook.sources import DashboardData

    heatmap, _ = _job_charts(dashboard(DashboardData(job.report)))
    shown = list(next(t for t in heatmap.data if t.type == "heatmap").y)
    stragglers = [s["rank"] for s in job.report["inputs"][0]["tables"]["stragglers"]]
    assert len(shown) == 4 and {f"rank {r}" for r in stragglers} <= set(shown)
    # the ranks its report would detail (`rank_distribution.detailed_ranks`): straggler 5, median-step rank 4, then
    # the first metric's ends (step time: max rank 2, min rank 6)
    assert shown == [f"rank {r}" for r in (2, 4, 5, 6)]
    headings = [p.html for p in dict(dashboard(DashboardData(job.report)).tabs)["Distributed"] if isinstance(p, Html)]
    assert any("4 of 8 ranks: the stragglers, the median rank" in h for h in headings)


def test_the_html_report_of_a_job_has_its_heatmap(tmp_path):
    from workbench.cli import main

    out = tmp_path / "job.html"
    assert main(["analyze", str(SAMPLES / "cpu" / "ddp_gloo_extra_compute"), "--workers", "1", "--format", "html",
                 "-o", str(out)]) == 0
    page = out.read_text()
    assert "Ranks by metric" in page and '"type":"heatmap"' in page and "Distribution over the ranks" in page


class _Text(HTMLParser):
    """The text a viewer that strips scripts and styles shows (GitHub's notebook view), headings apart."""

    def __init__(self) -> None:
        super().__init__()
        self.skip, self.text, self.headings, self.tag = 0, [], [], ""

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")
        self.tag = tag

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style")
        self.tag = ""

    def handle_data(self, data):
        if not self.skip:
            self.text.append(data)
            if self.tag == "h2":
                self.headings.append(data)


def test_without_scripts_and_styles_the_static_view_keeps_findings_and_numbers(naive):
    """What GitHub shows of the static view: no charts, but every tab under its heading, the key numbers,
    the findings with their gains, fixes and code as plain text."""
    from workbench.reporters.common import gain_text, metric_rows

    page = _Text()
    page.feed(naive.html(include_plotlyjs=False))
    text = " ".join(" ".join(page.text).split())
    assert page.headings == naive.titles  # each tab's content under its own heading
    for label, value in metric_rows(naive.report["inputs"][0]["metrics"]):
        assert f"{value} {label.strip()}" in text  # a card: 87.3 % GPU busy
    for finding in naive.report["findings"]:
        for shown in (finding["id"], finding["title"], gain_text(finding["estimated_gain"]), finding["fix"]["summary"]):
            assert " ".join(shown.split()) in text
        assert " ".join(finding["fix"]["code"].split()) in text
    assert naive.report["inputs"][0]["tables"]["kernels"][0]["name"][:40] in text
