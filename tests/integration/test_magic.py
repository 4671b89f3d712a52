"""`%load_ext workbench`, `%%workbench` and `%workbench PATH` in an in-process IPython shell (CPU)."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import SYNTHETIC

pytest.importorskip("torch", reason="the cell magic captures with torch.profiler")
interactiveshell = pytest.importorskip("IPython.core.interactiveshell")


@pytest.fixture
def shell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "workbench.notebook", None)  # the text report, not widgets
    ip = interactiveshell.InteractiveShell.instance()
    ip.run_line_magic("load_ext", "workbench")
    ip.run_cell("import torch\nmodel = torch.nn.Linear(16, 4)")
    return ip


def test_the_cell_magic_runs_the_cell_steps_times_and_shows_the_report(shell, tmp_path, capsys):
    result = shell.run_cell("%%workbench --steps 2 --warmup 1 --out runs/cell\n"
                            "calls = globals().get('calls', 0) + 1\n"
                            "model(torch.randn(8, 16)).sum().backward()\n")
    assert result.success
    assert shell.user_ns["calls"] == 3  # one warm-up run, two recorded
    cap = shell.user_ns["workbench_capture"]
    manifest = json.loads((tmp_path / "runs" / "cell" / "manifest.json").read_text())
    assert manifest["source"] == {"kind": "notebook_cell", "code": cap.cell}
    assert manifest["settings"]["schedule"] == {"wait": 0, "warmup": 1, "active": 2, "repeat": 1}
    out = capsys.readouterr().out
    assert "runs/cell  (capture_run)" in out and "Steps run under capture" in out


def test_an_oom_in_the_cell_shows_the_memory_diagnosis_instead_of_a_traceback(shell, tmp_path, capsys):
    message = next(line for line in (SYNTHETIC / "oom_mps.synthetic.log").read_text().splitlines()
                   if "MPS backend out of memory" in line).split(": ", 1)[1]
    shell.user_ns["message"] = message
    result = shell.run_cell("%%workbench --out runs/oom\nraise RuntimeError(message)\n")
    assert result.success  # handled: the diagnosis is the output
    captured = capsys.readouterr()
    assert "ran out of memory" in captured.err
    assert "(oom_message)" in captured.out and "oom-capacity" in captured.out
    assert list((tmp_path / "runs" / "oom" / "memory").glob("*.oom.txt"))


def test_other_errors_in_the_cell_are_raised(shell, tmp_path):
    result = shell.run_cell("%%workbench --out runs/err\n1 / 0\n")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert json.loads((tmp_path / "runs" / "err" / "manifest.json").read_text())["status"] == "error: ZeroDivisionError"


def test_the_line_magic_analyzes_a_path_and_says_one_line_when_it_cannot(shell, capsys):
    shell.run_line_magic("workbench", str(SYNTHETIC / "xctrace_mps"))
    assert "(xctrace_export" in capsys.readouterr().out
    shell.run_line_magic("workbench", "no/such/path")
    assert capsys.readouterr().err.strip() == "workbench: no/such/path: no such file or directory"


def test_the_notebook_widgets_draw_the_report_when_installed(shell, monkeypatch):
    drawn = []
    monkeypatch.setitem(sys.modules, "workbench.notebook", type("Fake", (), {"show": drawn.append}))
    shell.run_line_magic("workbench", str(SYNTHETIC / "xctrace_mps"))
    assert [r["inputs"][0]["kind"] for r in drawn] == ["xctrace_export"]
