"""`workbench analyze` on real hang artifacts: the H100 NCCL watchdog timeout and the gloo scenarios.

Expected diagnoses are those of ../shared/traces/nccl_cpu/README.md and h100/README.md, checked
against the files (seq ids, ops, sizes, source lines).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, shared_path
from workbench.cli import main
from workbench.inputs import AnalyzeOptions, analyze_path

NCCL_TIMEOUT = SAMPLES / "h100" / "nccl_timeout"
GLOO = SAMPLES / "nccl_cpu"


def hang_findings(path: Path, capsys) -> list[dict]:
    assert main(["analyze", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    return [f for f in report["findings"] if f["id"].startswith("nccl-")]


@pytest.mark.parametrize("folder", [NCCL_TIMEOUT, "h100/nccl_timeout"])
def test_nccl_watchdog_timeout_names_the_stuck_all_reduce(folder, capsys):
    path = folder if isinstance(folder, Path) else shared_path(folder)
    findings = hang_findings(path, capsys)
    stuck = findings[0]
    assert stuck["id"] == "nccl-stuck-collective" and stuck["severity"] == "critical"
    evidence = stuck["evidence"]
    assert evidence["seq"] == 11 and evidence["op"] == "all_reduce"
    assert evidence["numel"] == 1048576 and evidence["input_dtypes"] == ["Float"]
    assert evidence["never_started"] is True and evidence["state"] == "scheduled"
    assert evidence["ran_for_ms"] == 20044 and evidence["timeout_ms"] == 20000  # joined from the log
    frames = evidence["ranks"]["0"]["frames"]
    assert [(f["name"], f["line"]) for f in frames] == [
        ("all_reduce", 3068), ("wrapper", 83), ("sc_nccl_timeout", 383), ("<module>", 443)]
    assert "Collective 11 (all_reduce of 1048576 Float elements) never started" in stuck["title"]
    assert {f["id"] for f in findings} == {"nccl-stuck-collective", "nccl-timeout-too-low"}


def test_the_log_alone_gives_the_watchdog_diagnosis_and_asks_for_the_dump(capsys):
    findings = hang_findings(NCCL_TIMEOUT / "stdout_stderr.log", capsys)
    assert [f["id"] for f in findings] == ["nccl-stuck-collective", "nccl-enable-flight-recorder"]
    evidence = findings[0]["evidence"]
    assert (evidence["seq"], evidence["op"], evidence["numel"]) == (11, "all_reduce", 1048576)
    assert evidence["ranks"]["0"]["frames"][2] == {"name": "sc_nccl_timeout", "file": "/home/ml/project/capture_runs.py",
                                                  "line": 383}
    assert "TORCH_FR_DUMP_TEMP_FILE" in findings[1]["fix"]["code"]


def test_skipped_collective(capsys):
    findings = hang_findings(GLOO / "missing", capsys)
    assert len(findings) == 1 and findings[0]["id"] == "nccl-rank-missing"
    evidence = findings[0]["evidence"]
    assert evidence["skipped"] and evidence["missing_ranks"] == [2] and evidence["waiting_ranks"] == [0, 1]
    assert evidence["seq"] == 5 and "train_dist.py:42" in findings[0]["title"]
    assert evidence["issued_instead"]["2"]["user_frame"].endswith("train_dist.py:40)")
    assert evidence["last_seq"] == {"0": 7, "1": 7, "2": 6}


def assert_order_mismatch(path: Path, capsys, lines: tuple[int, int]) -> dict:
    """One nccl-mismatch at collective 4: all_reduce on rank 0 vs broadcast on rank 1, at `lines`."""
    findings = hang_findings(path, capsys)
    assert len(findings) == 1 and findings[0]["id"] == "nccl-mismatch"
    evidence = findings[0]["evidence"]
    assert evidence["seq"] == 4 and evidence["mismatch"] == "op"
    assert {r: (e["op"], e["user_frame"].rsplit(":", 1)[1]) for r, e in evidence["ranks"].items()} == {
        "0": ("all_reduce", f"{lines[0]})"), "1": ("broadcast", f"{lines[1]})")}
    return evidence


def test_order_mismatch(capsys):
    assert assert_order_mismatch(GLOO / "order", capsys, (47, 50))["source"] == "flight_recorder"


def test_send_without_recv(capsys):
    findings = hang_findings(GLOO / "p2p", capsys)
    assert [f["id"] for f in findings] == ["nccl-p2p-unpaired", "nccl-stuck-collective"]
    evidence = findings[0]["evidence"]
    assert (evidence["p2p_rank"], evidence["p2p_op"], evidence["peer"]) == (0, "send", 1)
    assert evidence["p2p_frame"].endswith("train_dist.py:64)")
    assert evidence["peer_position"]["seq"] == 3 and evidence["peer_position"]["user_frame"].endswith(":66)")


def test_rank_stuck_in_data_loading(capsys):
    findings = hang_findings(GLOO / "stuck_rank", capsys)
    assert findings[0]["id"] == "nccl-rank-missing"
    evidence = findings[0]["evidence"]
    assert evidence["missing_ranks"] == [2] and evidence["waiting_ranks"] == [0, 1] and evidence["seq"] == 4
    assert evidence["dump_set"] == "fr_rank_#.midhang" and not evidence["skipped"]
    assert "load_batch (train_dist_stuck.py:28)" in findings[0]["title"]  # from py-spy
    assert findings[1]["id"] == "nccl-stuck-collective" and findings[1]["evidence"]["waiting_for"] == [2]


def test_healthy_run_has_no_hang(capsys):
    assert hang_findings(shared_path("nccl_cpu/healthy"), capsys) == []


def test_detail_order_mismatch_from_the_fingerprint_log(capsys):
    assert assert_order_mismatch(shared_path("nccl_cpu/detail_order"), capsys, (33, 36))["source"] == "log"


def test_detail_missing_names_the_skipped_line(capsys):
    findings = hang_findings(shared_path("nccl_cpu/detail_missing"), capsys)
    assert len(findings) == 1 and findings[0]["id"] == "nccl-rank-missing"
    evidence = findings[0]["evidence"]
    assert evidence["skipped"] and evidence["missing_ranks"] == [2] and evidence["seq"] == 5
    assert "train_dist_detail.py:42" in findings[0]["title"]
    assert evidence["logs"]["0"]["error"].endswith("Ranks 2 failed to pass monitoredBarrier in 5000 ms")


def test_a_folder_of_scenarios_gives_one_diagnosis_per_folder():
    inputs = analyze_path(shared_path("nccl_cpu"), AnalyzeOptions())
    assert sorted(Path(i.path).name for i in inputs) == [
        "detail_missing", "detail_order", "healthy", "missing", "order", "p2p", "stuck_rank"]
