"""The `workbench analyze` command line: formats, output file, exit codes, no torch needed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import NAIVE, RANKS, ROOT
from workbench.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_report_contract(capsys):
    code, out, err = run(capsys, "analyze", str(NAIVE), "--format", "json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert report["schema"] == "workbench.report/1"
    assert report["findings"] == [] or isinstance(report["findings"], list)
    (input_,) = report["inputs"]
    assert input_["path"] == str(NAIVE) and input_["kind"] == "kineto_trace"
    metrics = input_["metrics"]
    for key in ("gpu_busy_pct", "step_time_ms_mean", "kernel_count", "idle_pct", "short_kernel_pct"):
        assert key in metrics
    assert all(k == k.lower() and " " not in k for k in metrics)
    assert {"kernels", "operators"} <= set(input_["tables"])


def test_multi_rank_report_has_per_rank_metrics(capsys):
    code, out, _ = run(capsys, "analyze", str(RANKS), "--format", "json")
    assert code == 0
    (input_,) = json.loads(out)["inputs"]
    assert [r["rank"] for r in input_["ranks"]] == [0, 1]
    assert all("gpu_busy_pct" in r["metrics"] for r in input_["ranks"])


def test_text_and_markdown_formats(capsys):
    code, text, _ = run(capsys, "analyze", str(NAIVE))
    assert code == 0 and "GPU busy" in text and "87.3 %" in text
    code, markdown, _ = run(capsys, "analyze", str(NAIVE), "--format", "markdown")
    assert code == 0 and markdown.startswith("# workbench report") and "| GPU busy | 87.3 % |" in markdown


def test_output_file(tmp_path, capsys):
    target = tmp_path / "report.json"
    code, out, _ = run(capsys, "analyze", str(NAIVE), "--format", "json", "-o", str(target))
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["inputs"][0]["metrics"]["step_count"] == 3


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["analyze"])
    assert info.value.code == 2


def test_console_entry_point_runs_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch would now fail
        "from workbench.cli import main\n"
        f"raise SystemExit(main(['analyze', {str(NAIVE)!r}, '--format', 'json', '-o', '/dev/null']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_python_dash_m(tmp_path):
    result = subprocess.run([sys.executable, "-m", "workbench", "analyze", str(tmp_path / "missing.json")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("workbench: error:") and "missing.json" in result.stderr


def test_html_report_is_one_file_with_plotly_inlined(capsys, tmp_path):
    pytest.importorskip("plotly")
    target = tmp_path / "report.html"
    assert main(["analyze", str(NAIVE), "--format", "html", "-o", str(target)]) == 0
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("* plotly.js v") == 1 and "<script src" not in page
    assert "fp32-matmul" in page and "torch.backends.cuda.matmul.allow_tf32 = True" in page  # findings, fix code
    assert [page.count(f">{tab}</label>") for tab in ("Overview", "Timeline", "Findings")] == [1, 1, 1]


def test_html_without_plotly_says_so_in_one_line(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)  # as if plotly were not installed
    code, out, err = run(capsys, "analyze", str(NAIVE), "--format", "html")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["workbench: error: --format html needs plotly: pip install 'workbench[notebook]'"]
