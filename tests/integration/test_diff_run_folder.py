"""`workbench diff` on capture run folders: each side is compared by the trace inside the folder.

sample_traces/cpu/capture_mlp holds manifest.json and one trace whose ProfilerStep#2..4 last
904.097, 9130.309 and 712.690 us (read from the JSON): a mean of 3.5824 ms.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import NAIVE, SAMPLES
from workbench.cli import main

RUN = SAMPLES / "cpu" / "capture_mlp"
(RUN_TRACE,) = RUN.glob("*.pt.trace.json.gz")


@pytest.fixture(autouse=True)
def no_config_around(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def diff_json(capsys, *args) -> tuple[int, dict, str]:
    code = main(["diff", *map(str, args), "--format", "json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else {}, err


def test_a_run_folder_against_itself_changes_nothing(capsys):
    code, report, err = diff_json(capsys, RUN, RUN, "--max-slowdown", "0")
    assert code == 0 and err == ""
    diff = report["diff"]
    assert diff["base"] == diff["new"] == str(RUN_TRACE)  # the trace, not the manifest
    assert [i["kind"] for i in report["inputs"]] == ["kineto_trace", "kineto_trace"]
    step = next(m for m in diff["metrics"] if m["name"] == "step_time_ms_mean")
    assert step["base"] == step["new"] == pytest.approx(3.5824, abs=1e-4)  # rounded in the report
    assert diff["step_time_change_pct"] == 0.0 and report["gate"]["slowdown_exceeded"] is False


def test_a_run_folder_against_a_trace_file(capsys):
    code, report, _ = diff_json(capsys, RUN_TRACE, RUN)
    assert code == 0 and report["diff"]["step_time_change_pct"] == 0.0
    code, report, _ = diff_json(capsys, RUN, NAIVE)  # CPU MLP -> H100 training step: 3.58 -> 88.25 ms
    assert report["diff"]["step_time_change_pct"] == pytest.approx(100 * (88.252154 / 3.582365 - 1), abs=0.01)

