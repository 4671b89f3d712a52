"""Real hangs: 2-3 gloo processes on 127.0.0.1 per planted fault, then `workbench analyze` names it.

All scenarios run at once (each bounded by a 3 s process-group timeout) so the whole module
takes a few tens of seconds on two cores. Starting 13 torch processes at once is what a loaded
machine slows down (at load 20 they took over 90 s), so the deadline for the processes is generous;
the hangs themselves still end on the process-group timeout.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.commands.analyze import analyze_report
from workbench.config import Config
from workbench.inputs import AnalyzeOptions

from workbench.cli import main

pytest.importorskip("torch", reason="the hang scenarios need torch")

WORKER = Path(__file__).with_name("gloo_hang_worker.py")
TIMEOUT_S = 3
SCENARIOS = {"stuck": 3, "missing": 3, "order": 2, "p2p": 2, "sizes": 3}
DEADLINE_S = 600  # a bound, not an expectation: the runs end in tens of seconds on a quiet machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run every scenario's ranks in parallel; each rank's stderr is its log."""
    env = {**os.environ, "TORCH_FR_BUFFER_SIZE": "200", "OMP_NUM_THREADS": "1"}
    procs, folders = [], {}
    for scenario, world in SCENARIOS.items():
        folder = folders[scenario] = tmp_path_factory.mktemp(scenario)
        port = _free_port()
        for rank in range(world):
            log = open(folder / f"rank{rank}.log", "w")
            cmd = [sys.executable, str(WORKER), scenario, str(rank), str(world), str(port), str(folder), str(TIMEOUT_S)]
            procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
    start = time.monotonic()
    for proc, log in procs:
        try:
            proc.wait(timeout=max(1.0, DEADLINE_S - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return folders


def analyze(folder: Path, capsys) -> list[dict]:
    assert main(["analyze", str(folder), "--format", "json"]) == 0
    return [f for f in json.loads(capsys.readouterr().out)["findings"] if f["id"].startswith("nccl-")]


def test_every_rank_dumped(runs):
    for scenario, world in SCENARIOS.items():
        if scenario == "sizes":  # the rank that aborts in C++ cannot dump
            continue
        logs = {p.name: p.read_text(errors="replace")[-400:] for p in sorted(runs[scenario].glob("rank*.log"))}
        dumped = sorted(p.name for p in runs[scenario].glob("fr_rank_*"))
        assert dumped == [f"fr_rank_{r}" for r in range(world)], (scenario, logs)


def test_a_rank_stuck_before_a_collective_is_named(runs, capsys):
    findings = analyze(runs["stuck"], capsys)
    assert findings[0]["id"] == "nccl-rank-missing"
    evidence = findings[0]["evidence"]
    assert evidence["missing_ranks"] == [2] and evidence["waiting_ranks"] == [0, 1]
    assert evidence["seq"] == 3 and evidence["op"] == "all_reduce" and not evidence["skipped"]
    stuck = next(f for f in findings if f["id"] == "nccl-stuck-collective")
    assert stuck["evidence"]["waiting_for"] == [2]


def test_a_collective_skipped_under_a_rank_dependent_if_is_named(runs, capsys):
    findings = analyze(runs["missing"], capsys)
    assert findings[0]["id"] == "nccl-rank-missing"
    evidence = findings[0]["evidence"]
    assert evidence["skipped"] and evidence["missing_ranks"] == [2] and evidence["seq"] == 3
    line = next(i for i, text in enumerate(WORKER.read_text().splitlines(), 1) if "# metrics, all ranks" in text)
    assert f"gloo_hang_worker.py:{line}" in findings[0]["title"]  # the metrics all_reduce under `if`


def test_collectives_in_a_different_order_are_a_mismatch(runs, capsys):
    findings = analyze(runs["order"], capsys)
    assert findings[0]["id"] == "nccl-mismatch"
    evidence = findings[0]["evidence"]
    assert evidence["seq"] == 3 and evidence["mismatch"] == "op"
    assert {r: e["op"] for r, e in evidence["ranks"].items()} == {"0": "all_reduce", "1": "broadcast"}


def test_a_send_without_a_recv_is_unpaired(runs, capsys):
    findings = analyze(runs["p2p"], capsys)
    assert findings[0]["id"] == "nccl-p2p-unpaired"
    evidence = findings[0]["evidence"]
    assert evidence["p2p_rank"] == 0 and evidence["p2p_op"] == "send" and evidence["peer"] == 1
    assert evidence["peer_position"]["op"] == "all_reduce"


def test_a_gloo_rank_that_aborted_on_a_size_mismatch_is_joined_with_the_dumps(runs):
    """A rank aborts in C++ (gloo::EnforceNotMet, no dump of its own); its peers' dumps and logs name the collective."""
    report = analyze_report([str(runs["sizes"])], AnalyzeOptions(), Config(), [], None)
    root = report["findings"][0]
    assert root["id"] in ("nccl-mismatch", "gloo-size-mismatch"), root["title"]
    assert root["evidence"]["crashed_rank"] in (0, 1, 2) and root["evidence"]["enforce"]["right"] > 0
    assert "aborted in gloo" in root["title"]
