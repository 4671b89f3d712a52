"""The bounded timeline table, on the shipped H100 training trace.

Figures read independently from the JSON: 3,591 GPU events (3,348 kernels, 198 memsets,
45 memcpys) all on device 0 stream 7; 16,513 host events (cpu_op, cuda_runtime, cuda_driver) on
threads 444 (9,565) and 484 (6,948); ProfilerStep#4 starts 0.874 ms after the first event.
"""

from __future__ import annotations

import pytest

from tests.conftest import NAIVE, SAMPLES
import msgspec

from workbench.analyses.report_window import WINDOW_BYTES, WINDOW_EVENTS, report_window
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


def _drawn_ms(rows, lane_prefix="GPU"):
    drawn = {}
    for r in rows:
        if r["lane"].startswith(lane_prefix):
            drawn[r["category"]] = drawn.get(r["category"], 0.0) + r["end_ms"] - r["start_ms"]
    return drawn


def test_zoomed_out_the_gpu_lane_reads_as_what_it_mostly_did(trace):
    # 85.3 % of the trace is computation, 2.0 % memory traffic (198 short memsets, 45 memcpys):
    # each pixel column takes its dominant category, so memsets never cover the kernels around them
    rows = timeline_tables(trace)["timeline"]
    drawn = _drawn_ms(rows)
    assert set(drawn) == {"computation", "memcpy"}
    assert drawn["computation"] / sum(drawn.values()) > 0.95
    assert all(50.0 <= r["share_pct"] <= 100.0 for r in rows if r["lane"].startswith("GPU"))
    assert all(r["longest"] for r in rows if r["events"])


def test_train_long_gpu_lane_is_computation(shared):
    trace = load_kineto(shared("h100/train_long/train_long.pt.trace.json.gz"), lambda fraction: None)
    rows = timeline_tables(trace)["timeline"]
    drawn = _drawn_ms(rows)
    assert drawn["computation"] / sum(drawn.values()) > 0.99
    assert len(rows) <= 2000


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


def test_a_zoomed_in_window_names_each_event(trace):
    window = timeline_tables(trace, start_ms=100.0, end_ms=101.0, max_events=4000)
    assert "timeline" not in window
    rows = window["timeline_events"]
    assert rows and all(100.0 - 1e-9 <= r["start_ms"] <= r["end_ms"] <= 101.0 + 1e-9 for r in rows)
    # every kernel overlapping the window, read straight off the event columns
    events, origin = trace.events, float(trace.events.ts.min())
    kernels = trace.events.category_mask({"kernel"}) & (events.end > origin + 100_000) & (events.ts < origin + 101_000)
    assert sorted(r["name"] for r in rows if r["category"] == "computation") == sorted(
        events.names[c] for c in events.name[kernels].tolist())
    assert {r["category"] for r in rows} == {"computation", "operator", "launch", "runtime"}
    # recorded with record_shapes: every operator carries its input shapes
    masked_fill = next(r for r in rows if r["name"] == "aten::masked_fill")
    assert masked_fill["shapes"] == "[[16, 12, 512, 512], [1, 1, 512, 512], []]"
    assert all(r["shapes"] for r in rows if r["category"] == "operator")
    assert [s["step"] for s in window["timeline_steps"]] == ["5"]


def test_a_step_links_each_launch_to_its_kernel(trace):
    step = timeline_tables(trace)["timeline_steps"][0]
    rows = timeline_tables(trace, start_ms=step["start_ms"], end_ms=step["end_ms"], max_events=4000)["timeline_events"]
    assert len(rows) <= 4000
    linked = [r for r in rows if r["category"] == "computation" and r["link"] is not None]
    assert len(linked) > 1000
    for r in linked:
        launch = rows[r["link"]]
        assert launch["category"] == "launch" and launch["correlation"] == r["correlation"]
        assert launch["start_ms"] <= r["start_ms"] and rows[launch["link"]] is r
    # nested host operators sit on rows below their parents
    assert max(r["row"] for r in rows if r["lane"].startswith("CPU")) >= 3


def test_a_window_with_too_many_events_is_drawn_zoomed_out(trace):
    window = timeline_tables(trace, start_ms=0.0, end_ms=60.0, max_events=500)
    assert "timeline_events" not in window
    assert window["timeline"] and all(r["end_ms"] <= 60.0 + 1e-9 for r in window["timeline"])


def test_the_report_s_window_is_a_step_by_name_within_its_bounds(trace):
    window, rows = report_window(trace)
    # steps of 86.0, 85.2 and 93.5 ms: #4 is the median; its first part fits the bytes
    assert window["label"] == "ProfilerStep#4, the step of median duration (its first part)"
    assert window["start_ms"] == pytest.approx(0.874, abs=1e-3) and window["start_ms"] < window["end_ms"] < 86.9
    assert window["events"] == len(rows) <= WINDOW_EVENTS
    assert len(msgspec.json.encode(rows)) <= WINDOW_BYTES
    assert all(window["start_ms"] <= r["start_ms"] <= r["end_ms"] <= window["end_ms"] for r in rows)
    kernels = [r for r in rows if r["category"] == "computation"]
    launches = [r for r in rows if r["category"] == "launch"]
    # 178 kernels and 587 launches in this part of the step: the host runs ahead of the GPU
    assert 150 < len(kernels) < len(launches) and all(r["name"] and len(r["name"]) <= 96 for r in rows)
    assert all(r["link_name"] in ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel") for r in kernels)
    assert "timeline_window" in summarize_trace(trace).tables


def test_the_report_s_window_of_train_long_is_as_bounded(shared):
    window, rows = report_window(load_kineto(shared("h100/train_long/train_long.pt.trace.json.gz")))
    assert window["label"].startswith("ProfilerStep#32, the step of median duration")  # of 40 steps
    assert len(rows) <= WINDOW_EVENTS and len(msgspec.json.encode(rows)) <= WINDOW_BYTES


def test_ranks_share_one_time_axis():
    from workbench.inputs import AnalyzeOptions, analyze_path

    job = analyze_path(SAMPLES / "cpu" / "ddp_gloo_straggler", AnalyzeOptions())[0]
    starts = []
    for rank in job.ranks:
        assert rank.meta["timeline_aligned_on"] == "the start of ProfilerStep#2"
        starts.append(next(s["start_ms"] for s in rank.tables["timeline_steps"] if s["step"] == "2"))
    assert max(starts) - min(starts) < 1e-6
    # one rank's window in the report, on the job's axis: within its step 2 (the median of 3)
    (shown,) = [r for r in job.ranks if "timeline_window" in r.tables]
    window = shown.meta["timeline_window"]
    step = next(s for s in shown.tables["timeline_steps"] if s["step"] == "2")
    assert window["start_ms"] == pytest.approx(step["start_ms"]) and window["end_ms"] <= step["end_ms"] + 1e-6
    assert all(window["start_ms"] - 1e-6 <= r["start_ms"] for r in shown.tables["timeline_window"])


def test_ranks_without_a_common_step_align_on_their_first_collective():
    # synthetic: every real job here has common steps; rank 1 calls an all_reduce before its first broadcast
    import numpy as np

    from workbench.analyses.collectives import Collectives
    from workbench.analyses.rank_alignment import rank_origins

    def calls(kinds, starts):
        n = len(kinds)
        return Collectives(event=np.arange(n), kind=np.array(kinds, dtype=object),
                           process_group=np.array([""] * n, dtype=object), nelems=np.full(n, -1),
                           bytes=np.full(n, np.nan), start_us=np.array(starts, dtype=float),
                           time_us=np.ones(n), step=np.full(n, -1))

    origins, label = rank_origins([0.0, 500.0], [{}, {"ProfilerStep#1": 600.0}],
                                  [calls(["broadcast", "all_reduce"], [10.0, 20.0]),
                                   calls(["all_reduce", "broadcast"], [700.0, 710.0])])
    assert label == "the start of the first broadcast"
    assert origins == [0.0, 700.0]  # both broadcasts start 10 µs after their rank's 0
    assert rank_origins([0.0, 5.0], [{}, {}], [calls([], []), calls([], [])]) == ([0.0, 5.0], "each rank's first event")
