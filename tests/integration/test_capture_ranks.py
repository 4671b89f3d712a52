"""The ranks of a distributed job capture into one run folder (CPU, gloo, 2 processes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.inputs import AnalyzeOptions, analyze_path

pytest.importorskip("torch.distributed", reason="the job runs torch.distributed with gloo")
WORKER = Path(__file__).with_name("capture_rank_worker.py")
ROOT = WORKER.parents[2]


def run_job(out: Path, scenario: str) -> list[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    ranks = [subprocess.Popen([sys.executable, str(WORKER), str(out), scenario], env={**env, "RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    results = [r.communicate(timeout=120) for r in ranks]
    assert all(r.returncode == 0 for r in ranks), [err[-2000:] for _, err in results]
    return [stdout.strip().splitlines()[-1] for stdout, _ in results]


def test_two_ranks_share_a_run_folder_and_a_second_job_gets_a_new_one(tmp_path):
    out = tmp_path / "runs" / "ddp"
    assert run_job(out, "ok") == [str(out)] * 2
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names[:2] == ["manifest.json", "manifest.rank1.json"]
    assert [n.split(".")[0] for n in names[2:]] == ["rank0", "rank1"]  # rank<r>.<time>.pt.trace.json.gz
    inputs = {i.kind: i for i in analyze_path(out, AnalyzeOptions())}
    assert inputs["kineto_trace_ranks"].meta["ranks"] == [0, 1]
    assert inputs["capture_run"].meta["ranks"] == [0, 1]
    assert json.loads((out / "manifest.rank1.json").read_text())["worker"] == "rank1"

    assert run_job(out, "fail") == [str(out) + "-1"] * 2
    failed = Path(str(out) + "-1")
    assert sorted(p.name for p in (failed / "fr").iterdir()) == ["fr_rank_0", "fr_rank_1"]
    inputs = {i.kind: i for i in analyze_path(failed, AnalyzeOptions())}
    assert inputs["flight_recorder"].metrics["dump_count"] == 2
    assert len(inputs["capture_run"].warnings) == 2  # each rank ended with the error
