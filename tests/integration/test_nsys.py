"""Nsight Systems SQLite exports: the real H100 export with planted problems, older schemas, NVIDIA's rules.

Facts checked against the files with sqlite3 on their own: nsys_small's kernels, memcpys and
memsets cover 15,608,601 ns of a 5,129,404,702 ns span (0.304 %), its NVTX ranges are
`step 0`..`step 29`, its memcpys are 34 HtoD pageable -> device (65,032,192 bytes), 30 DtoH
device -> pinned of 4 bytes and 30 DtoD; con_kernel's cover 258,745,872 of 258,758,865 ns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, shared_path
from workbench.analyses import categories as cat
from workbench.cli import main
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.rules import run_rules

NSYS_SMALL = "h100/nsys_small/h100_nsys_small.sqlite"
NVIDIA_OUTPUT = "h100/nsys_small/nsys2022.4.2_analyze_output.txt"
EX_GPU = "public/nsys/extrap/ex-gpu.s10.sqlite"
CON_KERNEL = SAMPLES / "public" / "nsys" / "con_kernel.sqlite"
# nsys analyze's rules and ours for the same problem.
SAME_PROBLEM = {"cuda-async-memcpy": "pageable-memcpy", "cuda-sync-memcpy": "sync-memcpy",
                "cuda-sync-memset": "sync-memcpy", "cuda-sync-api": "host-sync", "gpu-starv": "gpu-gaps",
                "gpu-low-util": "low-gpu-utilization"}


def analyzed(path: Path):
    inputs = analyze_path(path, AnalyzeOptions())
    return inputs[0], {f.id: f for f in run_rules(inputs)}


@pytest.fixture(scope="module")
def small():
    return analyzed(shared_path(NSYS_SMALL))


def test_nsys_small_metrics(small):
    input_, _ = small
    assert input_.kind == "nsys_sqlite"
    m = input_.metrics
    assert round(m["gpu_busy_pct"], 2) == 0.30
    assert m["gpu_busy_ms"] == pytest.approx(15.608601)
    assert m["gpu_window_ms"] == pytest.approx(5129.404702)
    assert m["step_count"] == 30
    assert m["step_time_ms_max"] == pytest.approx(269.862883)  # step 0: cuBLAS and lazy module loading
    assert (m["kernel_count"], m["memcpy_count"], m["memset_count"]) == (480, 94, 60)
    meta = input_.meta
    assert meta["devices"][0]["name"] == "NVIDIA H100 80GB HBM3" and meta["devices"][0]["computeMajor"] == 9
    assert meta["schema_version"] == "3.20.3"
    assert meta["profiler"]["product_version"] == "2025.3.2.0"
    assert meta["profiler"]["metadata_table"] == "META_DATA_EXPORT"
    assert meta["profiler"]["processes"] == [{"pid": 693, "name": "python3"}]


def test_nsys_small_events_map_onto_kineto_names(small):
    e = small[0].ranks[0].trace.events
    names = {n: int((e.name == i).sum()) for i, n in enumerate(e.names)}
    assert names["Memcpy HtoD (Pageable -> Device)"] == 34
    assert names["Memcpy DtoH (Device -> Pinned)"] == 30
    assert names["Memcpy DtoD (Device -> Device)"] == 30
    assert names["cudaStreamSynchronize"] == 34 and names["cudaDeviceSynchronize"] == 3
    assert names["ProfilerStep#29"] == 1
    assert "cudaMemcpyAsync_v3020" not in names


def test_nsys_small_findings(small):
    _, found = small
    assert {"pageable-memcpy", "host-sync", "fp32-matmul", "gpu-gaps", "low-gpu-utilization"} <= set(found)
    assert found["pageable-memcpy"].title.startswith("34 host-to-device copies")
    assert found["pageable-memcpy"].evidence["bytes_per_step"] == round(65_032_192 / 30)
    sync = found["host-sync"].evidence
    assert sync["calls"] == {"cudaStreamSynchronize": 30}  # one per step, after the loss's .item()
    assert sync["scalar_reads_to_host_per_step"] == 1.0  # the 4-byte device-to-host copy
    fp32 = found["fp32-matmul"].evidence
    assert fp32["compute_capability"] == "9.0"
    assert any("simt_sgemm" in k["name"] for k in fp32["kernels"])
    gaps = found["gpu-gaps"].evidence["gaps"]
    assert [(g["start_ns"], round(g["duration_ms"])) for g in gaps] == [
        (3624718955, 3549), (7468944046, 602), (8092758670, 602)]
    for gap in gaps:
        assert gap["ended_by"] == {"gpu_work": "Memcpy HtoD (Pageable -> Device)", "launched_by": "cudaMemcpyAsync",
                                   "launched_at_ns": gap["ended_by"]["launched_at_ns"]}
    # the planted time.sleep(0.6): the launching thread sleeps through the gap, between NVTX steps 9/10 and 19/20
    for gap, steps in zip(gaps[1:], [{"ProfilerStep#9", "ProfilerStep#10"}, {"ProfilerStep#19", "ProfilerStep#20"}]):
        assert gap["host_calls"][0]["call"] == "clock_nanosleep" and gap["host_calls"][0]["overlap_ms"] > 600
        assert gap["host_calls"][0]["stack"][0] == "clock_nanosleep (libc.so.6)"
        assert {a["name"] for a in gap["annotations"]} == steps


def parse_nvidia_output(text: str) -> dict[str, list[list[str]]]:
    """`nsys analyze` output: rule id -> table rows (split on runs of spaces); [] when it found nothing."""
    rules: dict[str, list[list[str]]] = {}
    for section in re.split(r"\n(?=Processing \[)", text):
        rule = re.search(r"\*\* .+ \(([\w-]+)\):", section)
        if not rule:
            continue
        table = section.split(" -----", 1)
        rows = table[1].split("\n\n")[0].strip().splitlines()[1:] if len(table) > 1 else []
        rules[rule.group(1)] = [row.split() for row in rows]
    return rules


def test_every_problem_nvidia_reports_we_report(small):
    _, found = small
    nvidia = parse_nvidia_output(shared_path(NVIDIA_OUTPUT).read_text())
    assert set(nvidia) == set(SAME_PROBLEM)
    reported = {rule for rule, rows in nvidia.items() if rows}
    assert reported == {"cuda-async-memcpy", "cuda-sync-api", "gpu-starv", "gpu-low-util"}
    for rule in reported:
        assert SAME_PROBLEM[rule] in found, rule
    # the same rows: 34 pageable copies, the same three gaps, the same low-utilization region
    assert len(nvidia["cuda-async-memcpy"]) == 34 and found["pageable-memcpy"].title.startswith("34 ")
    ours = {(g["start_ns"], round(g["duration_ms"] * 1e6, -3)) for g in found["gpu-gaps"].evidence["gaps"]}
    assert ours == {(int(r[2]), round(int(r[1]), -3)) for r in nvidia["gpu-starv"]}
    region = found["low-gpu-utilization"].evidence["low_utilization_regions"]
    assert [(r["start_ns"], round(r["busy_pct"], 1)) for r in region] == [
        (int(r[3]), float(r[1])) for r in nvidia["gpu-low-util"]]
    # cuda-sync-api lists all 37 sync calls; host-sync reports the 30 inside steps, the other 7 (model
    # upload, the synchronize before each planted sleep) precede the gaps that gpu-gaps reports.
    e = small[0].ranks[0].trace.events
    syncs = e.name_mask(cat.SYNCHRONIZATION.search) & e.category_mask(cat.RUNTIME_CATEGORIES)
    assert {round(t * 1000) for t in e.ts[syncs].tolist()} == {int(r[1]) for r in nvidia["cuda-sync-api"]}
    assert sum(found["host-sync"].evidence["calls"].values()) == 30
    # what we add to NVIDIA's rules on this file
    added = set(found) - {SAME_PROBLEM[r] for r in reported}
    print("findings nsys analyze does not make:", sorted(added))
    assert added == {"fp32-matmul", "launch-bound"}


def test_pre_2022_export_without_metadata_table():
    input_, found = analyzed(shared_path(EX_GPU))
    assert input_.meta["profiler"]["metadata_table"] is None and input_.meta["schema_version"] is None
    assert [d["name"] for d in input_.meta["devices"]] == ["A100-PCIE-40GB"] * 4
    assert input_.metrics["kernel_count"] == 6 and input_.metrics["memcpy_count"] == 0
    sync = found["sync-memcpy"].evidence  # one cudaMemcpy, with the stack nsys recorded for it
    assert sync["calls"] == {"cudaMemcpy": 1}
    assert sync["longest_call"]["stack"][:2] == ["cudaMemcpy (ex-gpu)", "main (ex-gpu)"]


def test_sample_2022_export_matches_nvidia_finding_nothing():
    input_, found = analyzed(CON_KERNEL)
    m = input_.metrics
    assert m["gpu_busy_ms"] == pytest.approx(258.745872) and m["gpu_window_ms"] == pytest.approx(258.758865)
    assert (m["kernel_count"], m["memcpy_count"], m["memset_count"], m["step_count"]) == (9, 11, 1, 0)
    e = input_.ranks[0].trace.events
    assert int(e.name_mask("Memcpy HtoD (Pinned -> Device)".__eq__).sum()) == 5
    assert int(e.name_mask("Memcpy DtoH (Device -> Pinned)".__eq__).sum()) == 6
    # the Intel and Microsoft adapters in TARGET_INFO_GPU are not CUDA devices
    assert [d["name"] for d in input_.meta["devices"]] == ["GeForce GTX 1060 with Max-Q Design"]
    assert input_.meta["schema_version"] == "2.9.1" and input_.meta["profiler"]["metadata_table"] == "EXPORT_META_DATA"
    assert found == {}  # nsys analyze 2022.4.2 flags nothing on it either


@pytest.mark.parametrize("path", [str(CON_KERNEL), EX_GPU, NSYS_SMALL])
def test_cli_report_and_read_only(path, capsys, tmp_path):
    file = Path(path) if Path(path).is_absolute() else shared_path(path)
    before = (file.read_bytes(), file.stat().st_mtime_ns)
    assert main(["analyze", str(file), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["inputs"][0]["kind"] == "nsys_sqlite" and report["inputs"][0]["metrics"]["kernel_count"] > 0
    assert (file.read_bytes(), file.stat().st_mtime_ns) == before
    assert not list(file.parent.glob(file.name + "-*"))  # no -journal, -wal or -shm left behind
