"""`workbench.capture` on a CPU training loop: the run folder, its manifest, its analysis, OOMs.

The CUDA and MPS calls are replaced by stand-ins (this machine has neither): the stand-in
snapshot is the real H100 one in sample_traces, so the joined OOM diagnosis is a real one.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import OOM_CAPACITY, SYNTHETIC
from workbench.capture import Capture, cuda_memory, mps

torch = pytest.importorskip("torch", reason="capture needs torch (pip install -e '.[dev]')")

TRACE_NAME = re.compile(r"^[^.]+_\d+\.\d+\.pt\.trace\.json\.gz$")  # <hostname>_<pid>.<time>.pt.trace.json.gz
CUDA_OOM = (OOM_CAPACITY / "oom_capacity.oom.txt").read_text().splitlines()[-1].split(": ", 1)[1]
MPS_OOM = next(line for line in (SYNTHETIC / "oom_mps.synthetic.log").read_text().splitlines()
               if "MPS backend out of memory" in line).split(": ", 1)[1]


def train(cap: Capture, steps: int) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for x in cap.wrap(torch.randn(steps, 16, 32)):
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_capture_writes_one_run_folder_that_analyze_reads(workdir):
    with Capture(out="runs/train", steps=2) as cap:
        train(cap, 6)
    assert cap.path == Path("runs/train") and cap.status == "ok"
    (trace,) = [p.name for p in cap.path.glob("*.pt.trace.json.gz")]
    assert TRACE_NAME.match(trace)
    assert files_under(workdir) == {f"runs/train/{trace}", "runs/train/manifest.json"}  # nothing elsewhere

    manifest = json.loads((cap.path / "manifest.json").read_text())
    assert manifest["schema"] == "workbench.capture/1" and manifest["status"] == "ok"
    assert manifest["settings"]["schedule"] == {"wait": 1, "warmup": 1, "active": 2, "repeat": 1}
    assert manifest["settings"]["activities"] == ["CPU"] and manifest["device"] == "cpu"
    assert manifest["versions"]["torch"] == torch.__version__
    assert manifest["timings"]["steps"] == 6 and len(manifest["timings"]["step_ms"]) == 6
    assert manifest["files"] == [{"path": trace, "bytes": (cap.path / trace).stat().st_size}]
    assert manifest["source"]["kind"] in ("command", "notebook_cell")

    report = cap.report()
    kinds = {i["kind"]: i for i in report["inputs"]}
    assert set(kinds) == {"capture_run", "kineto_trace"}
    assert kinds["kineto_trace"]["metrics"]["step_count"] == 2  # the two active steps
    assert kinds["capture_run"]["metrics"]["captured_steps"] == 6
    assert kinds["capture_run"]["meta"]["status"] == "ok"


def test_a_second_capture_with_the_same_out_gets_a_new_suffix(workdir):
    for _ in range(2):
        with Capture(out="runs/same", steps=1, stacks=False) as cap:
            train(cap, 3)
    assert sorted(p.name for p in (workdir / "runs").iterdir()) == ["same", "same-1"]
    assert cap.path == Path("runs/same-1")


def test_the_decorator_form_makes_each_call_a_step(workdir):
    cap = Capture(out="runs/deco", steps=1, stacks=False)
    model = torch.nn.Linear(8, 2)

    @cap
    def step(x):
        return model(x).sum().backward()

    for _ in range(5):  # the schedule ends after 3 calls; later calls run unprofiled
        step(torch.randn(4, 8))
    assert step.capture is cap and cap.status == "ok" and cap.steps_done == 3
    assert json.loads((cap.path / "manifest.json").read_text())["timings"]["steps"] == 3


def test_an_oom_is_recorded_then_raised(workdir):
    cap = Capture(out="runs/oom", steps=1, stacks=False)
    with pytest.raises(torch.OutOfMemoryError):
        with cap:
            train(cap, 2)
            raise torch.OutOfMemoryError(CUDA_OOM)
    oom = (cap.path / "memory").glob("*.oom.txt")
    text = next(oom).read_text()
    assert "Traceback" in text and "test_an_oom_is_recorded_then_raised" in text and CUDA_OOM in text
    manifest = json.loads((cap.path / "manifest.json").read_text())
    assert manifest["status"] == "out of memory" and manifest["error"].startswith("OutOfMemoryError: CUDA out")
    inputs = {i["kind"]: i for i in cap.report()["inputs"]}
    assert inputs["oom_message"]["metrics"]["message_requested_bytes"] == 5 * 1024 ** 3
    frames = inputs["oom_message"]["meta"]["oom_message"]["python_frames"]
    assert frames[0].startswith(__file__) and "raise torch.OutOfMemoryError(CUDA_OOM)" in frames[0]


def test_on_cuda_the_snapshot_joins_the_oom_message(workdir, monkeypatch):
    calls = []
    monkeypatch.setattr(cuda_memory, "start_history", lambda entries: calls.append(("start", entries)))
    monkeypatch.setattr(cuda_memory, "stop_history", lambda: calls.append(("stop",)))
    monkeypatch.setattr(cuda_memory, "dump_snapshot",  # the real H100 snapshot stands in for this one
                        lambda path: shutil.copy(OOM_CAPACITY / "oom_capacity.snapshot.pickle.gz", path))
    monkeypatch.setattr("workbench.capture.manifest.cuda_devices", lambda: [{"type": "cuda", "name": "stand-in"}])
    cap = Capture(out="runs/cuda", steps=1, stacks=False, device="cuda")
    with pytest.raises(torch.OutOfMemoryError):
        with cap:
            train(cap, 2)
            raise torch.OutOfMemoryError(CUDA_OOM)
    assert calls == [("start", 100_000), ("stop",)]
    assert sorted(p.name.split(".", 1)[1] for p in (cap.path / "memory").iterdir()) == ["oom.txt", "snapshot.pickle"]
    report = cap.report()
    (snapshot,) = [i for i in report["inputs"] if i["kind"] == "memory_snapshot"]
    assert snapshot["meta"]["oom_message_path"].endswith(".oom.txt")  # joined: same folder and stem
    assert snapshot["metrics"]["allocated_bytes_at_oom"] == 78538743808
    assert "oom-capacity" in {f["id"] for f in report["findings"]}
    assert json.loads((cap.path / "manifest.json").read_text())["settings"]["activities"] == ["CPU", "CUDA"]


def test_on_mps_memory_is_sampled_per_step_and_the_mps_oom_is_kept(workdir, monkeypatch):
    calls = []
    sample = {"current_allocated_bytes": 1 << 30, "driver_allocated_bytes": 3 << 29, "recommended_max_bytes": 18 << 30}
    monkeypatch.setattr(mps, "start_signposts", lambda: calls.append("start"))
    monkeypatch.setattr(mps, "stop_signposts", lambda: calls.append("stop"))
    monkeypatch.setattr(mps, "memory_sample", lambda: dict(sample))
    cap = Capture(out="runs/mps", steps=1, stacks=False, device="mps")
    with pytest.raises(RuntimeError, match="MPS backend out of memory"):
        with cap:
            train(cap, 3)
            raise RuntimeError(MPS_OOM)
    assert calls == ["start", "stop"]
    report = cap.report()
    inputs = {i["kind"]: i for i in report["inputs"]}
    run = inputs["capture_run"]
    assert run["metrics"]["mps_allocated_peak_bytes"] == 1 << 30
    assert run["metrics"]["mps_recommended_max_bytes"] == 18 << 30
    assert [row["step"] for row in run["tables"]["mps_memory"]] == [0, 1, 2]
    assert run["meta"]["devices"][0]["type"] == "mps" and run["meta"]["settings"]["activities"] == ["CPU"]
    message = inputs["oom_message"]
    assert message["meta"]["oom_message"]["backend"] == "mps"
    assert message["metrics"]["message_requested_bytes"] == 256 << 20
    (finding,) = [f for f in report["findings"] if f["id"] == "oom-capacity"]
    assert "PYTORCH_MPS_HIGH_WATERMARK_RATIO" in json.dumps(finding)
