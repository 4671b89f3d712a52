"""`workbench analyze` on real OOM snapshots, OOM messages and memory timelines."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import subprocess
import sys

import pytest

from tests.conftest import OOM_CAPACITY, OOM_EXPANDABLE, SYNTHETIC, shared_path
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.rules import run_rules

GIB = 1 << 30
HALF_CENT_GIB = 0.005 * GIB  # torch prints GiB with two decimals


def analyze(path):
    inputs = analyze_path(path, AnalyzeOptions())
    return inputs, run_rules(inputs)


def snapshot_input(inputs):
    return next(i for i in inputs if i.kind == "memory_snapshot")


def folder(name: str):
    sample = {"oom_capacity": OOM_CAPACITY, "oom_frag2_expandable": OOM_EXPANDABLE}.get(name)
    return sample if sample else shared_path(f"h100/{name}")


@pytest.mark.parametrize("name", ["oom_capacity", "oom_frag2", "oom_frag2_expandable"])
def test_state_at_oom_matches_the_oom_message(name):
    inputs, _ = analyze(folder(name))
    assert len(inputs) == 1, "the message joins the snapshot of the same run"
    m = snapshot_input(inputs).metrics
    assert m["oom_requested_bytes"] == pytest.approx(m["message_requested_bytes"], abs=HALF_CENT_GIB)
    assert m["allocated_bytes_at_oom"] == pytest.approx(m["message_allocated_bytes"], abs=HALF_CENT_GIB)
    assert m["reserved_unallocated_bytes_at_oom"] == pytest.approx(m["message_reserved_unallocated_bytes"],
                                                                   abs=2 * HALF_CENT_GIB)
    assert m["device_free_bytes_at_oom"] == pytest.approx(m["message_free_bytes"], abs=HALF_CENT_GIB)


@pytest.mark.parametrize("name, unallocated_gib", [("oom_frag2", 48.96), ("oom_frag2_expandable", 41.97)])
def test_fragmentation_ooms(name, unallocated_gib):
    inputs, findings = analyze(folder(name))
    m = snapshot_input(inputs).metrics
    assert m["oom_requested_bytes"] / GIB == pytest.approx(15.73, abs=0.005)
    assert m["reserved_unallocated_bytes_at_oom"] / GIB == pytest.approx(unallocated_gib, abs=0.005)
    assert m["largest_free_block_bytes_at_oom"] == 14 << 20
    ids = [f.id for f in findings]
    assert "oom-fragmentation" in ids and "oom-capacity" not in ids
    finding = next(f for f in findings if f.id == "oom-fragmentation")
    pattern = finding.evidence["allocation_pattern"]
    assert pattern["site"].endswith("capture_runs.py:346 in body")
    assert (pattern["blocks"], pattern["allocations_before"], pattern["frees_before"]) == (3581, 10741, 7160)


def test_expandable_fix_does_not_recommend_what_is_on():
    _, findings = analyze(OOM_EXPANDABLE)
    finding = next(f for f in findings if f.id == "oom-fragmentation")
    assert finding.evidence["allocator_settings"]["expandable_segments"] is True
    assert "PYTORCH_CUDA_ALLOC_CONF" not in finding.fix.code
    assert "expandable_segments" not in finding.fix.summary
    assert any("already on" in note and "did not help" in note for note in finding.evidence["alloc_conf"])


def test_fragmentation_without_expandable_explains_it_would_not_help():
    _, findings = analyze(folder("oom_frag2"))
    finding = next(f for f in findings if f.id == "oom-fragmentation")
    assert "expandable_segments" not in finding.fix.code
    assert any("would not help" in note for note in finding.evidence["alloc_conf"])


def test_capacity_oom():
    inputs, findings = analyze(OOM_CAPACITY)
    m = snapshot_input(inputs).metrics
    assert m["allocated_bytes_at_oom"] / GIB == pytest.approx(73.14, abs=0.005)
    ids = [f.id for f in findings]
    assert "oom-capacity" in ids and "oom-fragmentation" not in ids
    finding = next(f for f in findings if f.id == "oom-capacity")
    top = finding.evidence["top_sites"]
    assert top[0]["site"].endswith("capture_runs.py:52 in forward")  # the attention block's scores
    assert finding.evidence["live_by_category"][0]["category"] == "activations and forward temporaries"
    assert "scaled_dot_product_attention" in finding.fix.code


@pytest.mark.parametrize("file, rule", [
    ("oom_other_processes.synthetic.log", "oom-other-processes"),
    ("oom_memory_fraction.synthetic.txt", "oom-memory-cap"),
    ("oom_mps.synthetic.log", "oom-capacity"),
])
def test_message_only_causes(file, rule):
    inputs, findings = analyze(SYNTHETIC / file)
    assert [i.kind for i in inputs] == ["oom_message"]
    assert findings[0].id == rule


def test_memory_timeline_peak_by_category():
    path = shared_path("h100/train_naive/train_naive.memory_timeline.json.gz")
    times, sizes = json.loads(gzip.open(path).read())
    totals = [sum(row) for row in sizes]
    peak = totals.index(max(totals))
    inputs, _ = analyze(path)
    m = inputs[0].metrics
    assert inputs[0].kind == "memory_timeline"
    assert m["peak_bytes"] == max(totals)
    assert m["parameter_bytes_at_peak"] == sizes[peak][1]
    assert m["optimizer_state_bytes_at_peak"] == sizes[peak][2] == 2 * sizes[peak][6]  # AdamW: 2x the gradients


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_hostile_snapshot_is_refused_and_runs_nothing(tmp_path):
    path = tmp_path / "evil.snapshot.pickle"
    path.write_bytes(pickle.dumps({"segments": [{"total_size": 1, "blocks": [], "x": _Boom()}]}))
    run = subprocess.run([sys.executable, "-m", "workbench", "analyze", str(path)], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "unsafe pickle" in run.stderr and "posix.system" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "PWNED").exists()


def test_cli_json_report_of_an_oom_folder(tmp_path):
    out = tmp_path / "report.json"
    run = subprocess.run([sys.executable, "-m", "workbench", "analyze", str(OOM_EXPANDABLE), "--format", "json",
                          "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert [i["kind"] for i in report["inputs"]] == ["memory_snapshot"]
    assert report["inputs"][0]["meta"]["oom_message_path"].endswith("oom_frag2_expandable.oom.txt")
    assert report["findings"][0]["id"] == "oom-fragmentation"


def test_trace_memory_events_peak():
    from tests.conftest import NAIVE

    events = json.loads(gzip.open(NAIVE).read())["traceEvents"]
    gpu = [e["args"] for e in events if e.get("name") == "[memory]" and e["args"].get("Device Id", -1) >= 0]
    inputs, _ = analyze(NAIVE)
    m = inputs[0].metrics
    assert m["memory_peak_allocated_bytes"] == max(a["Total Allocated"] for a in gpu)
    assert m["memory_peak_reserved_bytes"] == max(a["Total Reserved"] for a in gpu)
    assert m["memory_allocations"] == sum(a["Bytes"] > 0 for a in gpu)
    curve = inputs[0].tables["memory_curve"]
    assert max(p["allocated_bytes"] for p in curve) == m["memory_peak_allocated_bytes"]


def test_raw_memory_timeline_from_hta():
    path = shared_path("public/hta/memory_timeline/memory_timeline.raw.gz")
    rows = json.loads(gzip.open(path).read())
    first = min(t for t, _, _, _ in rows if t >= 0)
    totals: dict[int, int] = {}
    running = 0
    for t, _, size, _ in sorted(rows, key=lambda r: r[0] if r[0] >= 0 else first):
        running += size
        totals[t if t >= 0 else first] = running
    inputs, _ = analyze(path)
    assert inputs[0].kind == "memory_timeline"
    assert inputs[0].metrics["peak_bytes"] == max(totals.values())


def test_growing_allocations_of_a_concatenated_cache():
    # synthetic (tools/synthetic/kv_cache_growth_snapshot.py): no real snapshot shows torch.cat growth
    inputs, findings = analyze(SYNTHETIC / "kv_cache_growth.synthetic.snapshot.pickle.gz")
    (row,) = inputs[0].tables["growing_sites"]
    assert (row["allocations"], row["distinct_sizes"], row["growth_per_new_size_bytes"]) == (384, 96, 65536)
    assert [f.id for f in findings] == ["memory-growing-allocations"]


def test_a_batch_doubling_search_is_not_concatenation_growth():
    inputs, findings = analyze(OOM_CAPACITY)  # the batch doubled 1, 2, 4, ... until the OOM
    assert "growing_sites" not in inputs[0].tables
    assert "memory-growing-allocations" not in [f.id for f in findings]


def _cli(path):
    return subprocess.run([sys.executable, "-m", "workbench", "analyze", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("case, problem", [
    ("truncated_gzip", "truncated gzip"),
    ("half_written_pickle", "not a readable pickle"),
    ("not_a_snapshot", "not a CUDA allocator snapshot"),
    ("empty_snapshot", "holds no segments and no history"),
])
def test_bad_snapshots_get_one_line(tmp_path, case, problem):
    real = (OOM_EXPANDABLE / "oom_frag2_expandable.snapshot.pickle.gz").read_bytes()
    data = {
        "truncated_gzip": real[: len(real) // 2],
        "half_written_pickle": gzip.compress(gzip.decompress(real)[:100_000]),
        "not_a_snapshot": pickle.dumps({"segments": "total_size"}),
        "empty_snapshot": pickle.dumps({"segments": [], "device_traces": [[]], "total_size": 0}),
    }[case]
    path = tmp_path / f"{case}.snapshot.pickle.gz"
    path.write_bytes(data)
    run = _cli(path)
    assert run.returncode == 2
    assert problem in run.stderr and str(path) in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_snapshot_curve_and_segment_map_for_the_dashboard():
    inputs, _ = analyze(OOM_EXPANDABLE)
    m, tables = inputs[0].metrics, inputs[0].tables
    segments = tables["segments_at_oom"]
    assert sum(r["allocated_bytes"] + r["free_bytes"] for r in segments) == m["reserved_bytes_at_oom"]
    assert sum(r["allocated_bytes"] for r in segments) == m["allocated_bytes_at_oom"]
    curve = tables["memory_curve"]
    assert len(curve) <= 400
    # the curve counts requested bytes; here every request is a whole 6 MiB block
    assert max(r["allocated_bytes"] for r in curve) == m["peak_allocated_bytes"]
    assert 0 < m["oom_time_ms"] <= curve[-1]["time_ms"] + 1
