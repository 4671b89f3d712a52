"""Pasted text: `workbench analyze -` reads standard input, `workbench.explain(text)` shows the same
diagnosis, and a file of any name or extension that holds an error message is an input when named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, wild_messages
from workbench.commands.analyze import analyze_report
from workbench.config import Config
from workbench.inputs import AnalyzeOptions

OOM = next(m for m in wild_messages() if m["url"].endswith("pytorch/pytorch/issues/31252"))["text"]


def _cli(*args: str, stdin: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "workbench", "analyze", *args], input=stdin.encode(),
                          capture_output=True, env=env, timeout=120)


def test_stdin_is_analyzed_like_a_file():
    done = _cli("-", "--format", "json", stdin=OOM)
    assert done.returncode == 0, done.stderr
    assert b'"path": "<stdin>"' in done.stdout and b'"oom-fragmentation"' in done.stdout


def test_empty_stdin_is_one_line_error():
    done = _cli("-", stdin="  \n")
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines() == [
        "workbench: error: <stdin>: empty input: paste or pipe an OOM message, a NCCL or torchrun log, or a traceback"]


def test_text_without_an_error_is_one_line_error():
    done = _cli("-", stdin="training finished, loss 0.12\n")
    assert done.returncode == 2 and len(done.stderr.decode().strip().splitlines()) == 1


def test_explain_gives_the_cli_diagnosis(capsys):
    import workbench

    report = workbench.explain(OOM)
    assert report["inputs"][0]["path"] == "<text>"
    assert report["findings"][0]["id"] == "oom-fragmentation"
    assert "oom-fragmentation" in capsys.readouterr().out  # shown as text outside a notebook


def test_a_markdown_file_holding_an_oom_is_an_input_when_named(tmp_path: Path):
    notes = tmp_path / "issue.md"
    notes.write_text("## My error\n\n```\n" + OOM + "\n```\n", encoding="utf-8")
    report = analyze_report([str(notes)], AnalyzeOptions(), Config(), [], None)
    assert report["findings"][0]["id"] == "oom-fragmentation"


def test_a_caught_runtime_oom_counts_as_out_of_memory():
    """%%workbench keeps what a cell that ran out of memory left: runtime OOMs too (torch.AcceleratorError is a RuntimeError)."""
    import pytest

    pytest.importorskip("torch")
    from workbench.capture.cuda_memory import is_out_of_memory

    assert is_out_of_memory(RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"))
    assert is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"))
    assert not is_out_of_memory(RuntimeError("CUDA error: device-side assert triggered"))
