"""Every real trace in ../shared/traces loads, and facts of the larger ones hold.

These tests skip, each with its reason, on a checkout without ../shared beside it.
"""

from __future__ import annotations

import pytest

from tests.conftest import SHARED, shared_path
from tests.reference import gpu_busy_pct
from workbench.inputs import AnalyzeOptions, analyze_path

TRACES = sorted(
    str(p.relative_to(SHARED))
    for folder in ("h100", "public")
    for p in (SHARED / folder).rglob("*")
    if p.name.endswith((".json", ".json.gz"))
    and not p.name.endswith((".meta.json", ".memory_timeline.json.gz", "_et.json.gz"))
    and p.name != "execution_details.json"  # TraceLens' note of a capture (batch size, graph mode), not a trace
) if SHARED.exists() else []


def analyze_one(path):
    (result,) = analyze_path(path, AnalyzeOptions(top=10))
    return result


@pytest.mark.skipif(not TRACES, reason="../shared/traces is not present beside the checkout")
@pytest.mark.parametrize("relative", TRACES)
def test_every_real_trace_loads_without_skipping_events(relative):
    result = analyze_one(shared_path(relative))
    assert result.kind == "kineto_trace"
    assert result.metrics["events_skipped"] == 0
    assert result.metrics["event_count"] > 0
    if "gpu_busy_pct" in result.metrics:
        assert 0 < result.metrics["gpu_busy_pct"] <= 100


@pytest.mark.parametrize("relative", [
    "h100/infer_decode/infer_decode.pt.trace.json.gz",
    "public/hta/trace_diff/control/control.json.gz",
    "public/kineto/tb_plugin_samples/resnet50_num_workers_0/worker0.1623143089861.pt.trace.json.gz",
])
def test_gpu_busy_pct_matches_an_independent_computation(relative):
    path = shared_path(relative)
    assert analyze_one(path).metrics["gpu_busy_pct"] == pytest.approx(gpu_busy_pct(path), abs=0.5)


def test_eager_decoding_is_launch_bound():
    m = analyze_one(shared_path("h100/infer_decode/infer_decode.pt.trace.json.gz")).metrics
    assert m["gpu_busy_pct"] == pytest.approx(3.74, abs=0.05)
    assert m["short_kernel_pct"] > 90
    assert m["launch_cpu_ms"] > m["kernel_time_ms"]


def test_train_long_facts():
    m = analyze_one(shared_path("h100/train_long/train_long.pt.trace.json.gz")).metrics
    assert m["event_count"] == 477971
    assert m["step_count"] == 40
    assert m["kernels_per_step"] == 1116  # the same model and step as train_naive
    assert m["gpu_busy_pct"] == pytest.approx(92.15, abs=0.05)


@pytest.mark.parametrize(("relative", "rank", "world_size"), [
    ("public/hta/trace_diff/control/control.json.gz", 3, 8),
    ("public/hta/trace_diff/test/test.json.gz", 1, 2),
    ("public/hta/negative_queue_length/rank0.json.gz", 0, 16),
    ("public/hta/df_index_resolver/df_index_resolver.json.gz", 1, 2),
    ("public/hta/cpu_only_gloo/rank-34.Jul_15_10_52_41.1074.pt.trace.json.gz", 34, 300),
    ("h100/nccl_timeout/nccl_healthy.pt.trace.json.gz", 0, 1),
])
def test_ranks_of_public_multi_rank_traces(relative, rank, world_size):
    meta = analyze_one(shared_path(relative)).meta
    assert (meta["rank"], meta["world_size"]) == (rank, world_size)


def test_old_2021_schema_is_read():
    result = analyze_one(shared_path(
        "public/kineto/tb_plugin_samples/resnet50_num_workers_0/worker0.1623143089861.pt.trace.json.gz"))
    assert result.metrics["step_count"] == 6
    assert result.metrics["kernel_count"] == 8772
    assert result.tables["operators"][0]["gpu_ms"] > 0  # kernels joined to operators through correlation ids


def test_mtia_device_events_count_as_gpu_activity():
    m = analyze_one(shared_path("public/hta/mtia_training/mtia_rank_0.json.gz")).metrics
    assert m["kernel_count"] == 3453
    assert m["gpu_busy_pct"] == pytest.approx(57.75, abs=0.05)


def test_nccl_collectives_count_as_communication():
    m = analyze_one(shared_path("public/hta/nccl_parser_config/nccl_data.json.gz")).metrics
    assert m["communication_total_ms"] > 0


def test_traces_of_different_jobs_are_not_one_job():
    # rank 3 of 8 on an A100 and rank 1 of 2 on a V100: HTA's trace-diff pair, two separate runs
    inputs = analyze_path(shared_path("public/hta/trace_diff"), AnalyzeOptions(top=5))
    assert sorted(i.kind for i in inputs) == ["kineto_trace", "kineto_trace"]
