"""The bounded timeline table, on the shipped H100 training trace.

Figures read independently from the JSON: 3,591 GPU events (3,348 kernels, 198 memsets,
45 memcpys) all on device 0 stream 7; 16,513 host events (cpu_op, cuda_runtime, cuda_driver) on
threads 444 (9,565) and 484 (6,948); ProfilerStep#4 starts 0.874 ms after the first event.
"""

from __future__ import annotations

import pytest

from tests.conftest import NAIVE
from workbench.analyses.timeline import timeline_tables
from workbench.analyses.trace_summary import summarize_trace
from workbench.loaders.kineto import load_kineto


@pytest.fixture(scope="module")
def trace():
    return load_kineto(NAIVE, lambda fraction: None)


def test_lanes_hold_every_gpu_and_host_event(trace):
    rows = timeline_tables(trace)["timeline"]
    assert [lane for lane in dict.fromkeys(r["lane"] for r in rows)] == [
        "GPU 0 stream 7", "CPU thread 444 (python3)", "CPU thread 484 (pt_autograd_0)"]
    events = {}
    for r in rows:
        events[r["lane"]] = events.get(r["lane"], 0) + r["events"]
    assert events == {"GPU 0 stream 7": 3591, "CPU thread 444 (python3)": 9565, "CPU thread 484 (pt_autograd_0)": 6948}
    gpu = {r["category"] for r in rows if r["lane"].startswith("GPU")}
    assert gpu == {"computation", "memcpy", "memset"}


def test_busy_time_survives_the_merging(trace):
    busy = summarize_trace(trace).metrics["gpu_busy_ms"]
    for max_rects in (2000, 100):
        rows = timeline_tables(trace, max_rects=max_rects)["timeline"]
        assert len(rows) <= max_rects
        assert sum(r["busy_ms"] for r in rows if r["lane"].startswith("GPU")) == pytest.approx(busy, rel=1e-9)
        assert all(r["start_ms"] <= r["end_ms"] and r["busy_ms"] <= r["end_ms"] - r["start_ms"] + 1e-9 for r in rows)


def test_steps_are_marked(trace):
    steps = timeline_tables(trace)["timeline_steps"]
    assert [s["step"] for s in steps] == ["4", "5", "6"]
    assert steps[0]["start_ms"] == pytest.approx(0.873936, abs=1e-5)


def test_a_window_gives_its_detail_cut_to_it(trace):
    window = timeline_tables(trace, start_ms=100.0, end_ms=101.0)
    rows = window["timeline"]
    assert rows and all(100.0 <= r["start_ms"] <= r["end_ms"] <= 101.0 for r in rows)
    # at this zoom every kernel is its own rectangle: none is merged with its neighbour
    assert all(r["events"] == 1 for r in rows if r["lane"].startswith("GPU"))
    assert [s["step"] for s in window["timeline_steps"]] == ["5"]
