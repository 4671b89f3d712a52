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
