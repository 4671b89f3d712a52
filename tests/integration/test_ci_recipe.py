"""`workbench ci -- COMMAND`: a tiny CPU training script run with its optimizer steps captured, then gated.

The step counts are read from the traces the runs write (their `ProfilerStep#N` events); the
baseline, sample_traces/cpu/capture_mlp, has a mean step of 3.58 ms (see test_diff_run_folder.py).
"""

from __future__ import annotations

import gzip
import json
import shlex
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLES
from tests.report_schema import assert_valid_report
from workbench.cli import main

pytest.importorskip("torch", reason="the recipe runs a torch training script (pip install -e '.[dev]')")

BASELINE = SAMPLES / "cpu" / "capture_mlp"
TRAIN = """\
import sys
import torch
torch.manual_seed(0)
torch.set_num_threads(1)  # on shared cores, a step of several threads can stall a timeslice at each barrier
width, steps = int(sys.argv[1]), int(sys.argv[2])
model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, 4))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for _ in range(steps):
    loss = model(torch.randn(64, width)).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"trained {steps} steps")
"""
SCRIPTS = {
    "train.py": TRAIN,
    "fail.py": """\
import torch
model = torch.nn.Linear(8, 8)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for step in range(6):
    if step == 3:
        raise ValueError("bad batch")
    model(torch.randn(2, 8)).sum().backward()
    optimizer.step()
""",
    "no_optimizer.py": 'print("nothing to train")\n',
    "own_capture.py": """\
import torch
import workbench
model = torch.nn.Linear(8, 8)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
with workbench.capture(out="elsewhere", steps=1, stacks=False) as cap:
    for x in cap.wrap(torch.randn(4, 2, 8)):
        model(x).sum().backward()
        optimizer.step()
""",
}


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    """The scripts in an empty folder (no workbench.toml or pyproject.toml above it is read)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    for name, text in SCRIPTS.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def ci(capfd, *args: str) -> tuple[int, str, str]:
    """`workbench ci ARGS`: exit code, stdout and stderr (the command's output included)."""
    code = main(["ci", *map(str, args)])
    out, err = capfd.readouterr()
    return code, out, err


def python(*args: str) -> list[str]:
    return ["--", sys.executable, *args]


def trace_steps(folder: Path) -> list[str]:
    """The `ProfilerStep#N` names in the run folder's one trace, read from the JSON."""
    (trace,) = folder.glob("*.pt.trace.json.gz")
    events = json.loads(gzip.decompress(trace.read_bytes()))["traceEvents"]
    return sorted(e["name"] for e in events if e.get("name", "").startswith("ProfilerStep#"))


def test_the_optimizer_steps_are_captured_and_gated(capfd, workdir, monkeypatch):
    site = workdir / "site"  # a sitecustomize of the environment, which the recipe's own must not hide
    site.mkdir()
    (site / "sitecustomize.py").write_text('import sys\nprint("environment sitecustomize", file=sys.stderr)\n')
    monkeypatch.setenv("PYTHONPATH", str(site))
    code, out, err = ci(capfd, "--steps", "2", "--fail-on", "info", "--format", "json", "-o", "report.json",
                        *python("train.py", "32", "6"))
    assert code == 0 and out == ""
    assert "trained 6 steps" in err  # the script's output goes to stderr
    assert "environment sitecustomize" in err
    run = workdir / "runs" / "ci"
    assert sorted(p.name for p in run.iterdir() if not p.name.endswith(".pt.trace.json.gz")) == ["manifest.json"]
    assert trace_steps(run) == ["ProfilerStep#1", "ProfilerStep#2"]  # step 1 skipped, step 2 the warm-up
    report = json.loads((workdir / "report.json").read_text())
    assert_valid_report(report)
    inputs = {i["kind"]: i for i in report["inputs"]}
    assert inputs["kineto_trace"]["metrics"]["step_count"] == 2
    assert inputs["capture_run"]["metrics"]["captured_steps"] == 3  # the optimizer steps after the first
    assert inputs["capture_run"]["meta"]["status"] == "ok"
    assert inputs["capture_run"]["meta"]["source"]["argv"] == ["train.py", "32", "6"]
    assert report["gate"]["fail_on"] == "info" and report["gate"]["passed"] is True


def test_a_slowdown_against_the_baseline_fails_and_a_speedup_passes(capfd, workdir):
    code, out, err = ci(capfd, "--steps", "2", "--baseline", BASELINE, "--max-slowdown", "10", "--format", "json",
                        *python("train.py", "2048", "5"))
    assert code == 1
    report = json.loads(out)  # stdout holds only the report
    assert_valid_report(report)
    diff = report["diff"]
    assert diff["base"] == str(next(BASELINE.glob("*.pt.trace.json.gz")))
    assert Path(diff["new"]).parent == Path("runs/ci") and diff["per_step"] is True
    assert diff["step_time_change_pct"] > 100 and report["gate"]["slowdown_exceeded"] is True
    assert f"workbench: step time {diff['step_time_change_pct']:+.1f} % exceeds --max-slowdown 10 %" in err
    assert "slower operator (self CPU): aten::" in err  # what got slower
    code, out, _ = ci(capfd, "--steps", "2", "--baseline", "runs/ci", "--max-slowdown", "10", "--format", "json",
                      *python("train.py", "32", "5"))
    report = json.loads(out)
    assert code == 0 and report["diff"]["step_time_change_pct"] < 0
    assert Path(report["diff"]["new"]).parent == Path("runs/ci-1")  # a new run folder, beside the first


def test_a_failed_or_empty_run_is_exit_2_with_one_line(capfd, workdir):
    code, _, err = ci(capfd, "--steps", "2", *python("fail.py"))
    command = shlex.join([sys.executable, "fail.py"])
    assert code == 2 and "ValueError: bad batch" in err  # the script's traceback, then one line
    assert err.splitlines()[-1] == f"workbench: error: `{command}` exited with status 1; what it captured is in runs/ci"
    manifest = json.loads((workdir / "runs" / "ci" / "manifest.json").read_text())
    assert (manifest["status"], manifest["error"]) == ("error: ValueError", "ValueError: bad batch")
    code, _, err = ci(capfd, *python("no_optimizer.py"))
    assert code == 2 and err.splitlines()[-1].startswith(
        f"workbench: error: `{shlex.join([sys.executable, 'no_optimizer.py'])}` captured nothing: "
        "it ran no optimizer step (torch.optim), or profiled itself with torch.profiler")


def test_usage_and_settings_errors_come_before_the_run(capfd, workdir):
    assert ci(capfd)[2] == ("workbench: error: give the command to run after --, "
                            "as in: workbench ci --steps 3 -- python train.py\n")
    code, _, err = ci(capfd, "--max-slowdown", "5", *python("train.py", "32", "6"))
    assert code == 2 and "--max-slowdown needs --baseline" in err
    code, _, err = ci(capfd, "--baseline", "missing", *python("train.py", "32", "6"))
    assert (code, err) == (2, "workbench: error: missing: no such file or directory\n")
    (workdir / "workbench.toml").write_text('fail-on = "sometimes"\n')
    code, _, err = ci(capfd, *python("train.py", "32", "6"))
    assert code == 2 and err.startswith(f"workbench: error: {workdir / 'workbench.toml'}: fail-on must be one of")
    assert not (workdir / "runs").exists()  # nothing ran


def test_a_script_that_captures_itself_writes_into_the_run_folder(capfd, workdir):
    code, _, _ = ci(capfd, "--steps", "3", "-o", "report.txt", *python("own_capture.py"))
    assert code == 0 and not (workdir / "elsewhere").exists()
    assert trace_steps(workdir / "runs" / "ci") == ["ProfilerStep#2"]  # its own schedule (steps=1), one trace


def test_stop_ends_the_script_once_the_steps_are_recorded(capfd, workdir):
    code, _, err = ci(capfd, "--steps", "1", "--stop", "-o", "report.txt", *python("train.py", "32", "100000"))
    assert code == 0 and "trained" not in err
    manifest = json.loads((workdir / "runs" / "ci" / "manifest.json").read_text())
    assert manifest["timings"]["steps"] == 2 and manifest["status"] == "ok"


def test_a_short_run_warns_and_a_script_with_its_own_profiler_is_left_alone(capfd, workdir):
    code, _, err = ci(capfd, "--steps", "3", "-o", "report.txt", *python("train.py", "32", "3"))
    assert code == 0 and (f"workbench: warning: `{shlex.join([sys.executable, 'train.py', '32', '3'])}` ended early: "
                          "its capture saw 2 of the 4 steps of its schedule") in err
    example = str(ROOT / "examples" / "ci_profile.py")
    code, _, err = ci(capfd, "--out", "runs/own", *python(example, "--steps", "1", "--out", "traces"))
    assert code == 2 and "profiled itself with torch.profiler" in err  # one profiler at a time, no crash
    assert len(list((workdir / "traces").glob("*.pt.trace.json.gz"))) == 1 and not (workdir / "runs" / "own").exists()
