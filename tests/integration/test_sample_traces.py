"""Facts of the real traces shipped in sample_traces/ (always present)."""

from __future__ import annotations

import pytest

from tests.conftest import AMD, GLOO, GRAPH, NAIVE, OPTIMIZED, RANKS
from tests.reference import gpu_busy_pct
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.loaders.kineto import load_kineto


def analyze_one(path):
    (result,) = analyze_path(path, AnalyzeOptions(top=20))
    return result


@pytest.mark.parametrize("path", [NAIVE, OPTIMIZED, GRAPH, AMD, *sorted(RANKS.iterdir())], ids=lambda p: p.name)
def test_gpu_busy_pct_matches_an_independent_computation(path):
    assert analyze_one(path).metrics["gpu_busy_pct"] == pytest.approx(gpu_busy_pct(path), abs=0.5)


def test_train_naive_facts():
    result = analyze_one(NAIVE)
    m = result.metrics
    assert m["gpu_busy_pct"] == pytest.approx(87.27, abs=0.05)
    assert m["step_count"] == 3
    assert m["kernel_count"] == 3348
    assert m["kernels_per_step"] == 1116
    # float32 with TF32 off: the top kernel is a SIMT sgemm (no tensor cores)
    top = result.tables["kernels"][0]
    assert "simt_sgemm" in top["name"]
    assert top["share_pct"] > 20
    # the busy share, the breakdown and idle add up to the window
    parts = m["computation_pct"] + m["communication_pct"] + m["memory_pct"] + m["idle_pct"]
    assert parts == pytest.approx(100.0, abs=0.01)
    assert m["gpu_busy_pct"] == pytest.approx(100.0 - m["idle_pct"], abs=0.01)
    # with DataLoader(num_workers=0) the largest cause of GPU idle time is the host loading input
    causes = {k: m[k] for k in ("idle_input_wait_ms", "idle_sync_ms", "idle_host_busy_ms", "idle_other_ms")}
    assert max(causes, key=causes.get) == "idle_input_wait_ms"


def test_train_naive_operator_table_joins_kernels_to_their_operators():
    ops = {row["name"]: row for row in analyze_one(NAIVE).tables["operators"]}
    assert ops["aten::mm"]["gpu_ms"] > 50
    assert ops["aten::mm"]["input_shapes"] == "[[8192, 768], [768, 3072]]"
    total_op_gpu = sum(row["gpu_ms"] for row in ops.values())
    assert total_op_gpu <= analyze_one(NAIVE).metrics["gpu_busy_ms"] * 1.01


def test_optimized_training_is_faster_and_input_bound():
    naive, optimized = analyze_one(NAIVE).metrics, analyze_one(OPTIMIZED).metrics
    assert optimized["gpu_busy_pct"] == pytest.approx(31.61, abs=0.05)
    assert optimized["step_time_ms_mean"] < naive["step_time_ms_mean"] / 2
    assert optimized["idle_input_wait_ms"] > 0


def test_cuda_graph_decoding_launches_graphs():
    m = analyze_one(GRAPH).metrics
    assert m["gpu_busy_pct"] == pytest.approx(83.55, abs=0.05)
    assert m["step_count"] == 0


def test_trace_metadata_is_read():
    trace = load_kineto(NAIVE)
    assert trace.devices[0]["name"] == "NVIDIA H100 80GB HBM3"
    assert trace.metadata["schemaVersion"] == 1
    assert trace.rank is None  # a single-process run records no distributedInfo


def test_rocm_trace_reads_hex_stream_ids_without_skipping_events():
    result = analyze_one(AMD)
    assert result.metrics["events_skipped"] == 0
    assert result.metrics["launch_count"] == result.metrics["kernel_count"] == 14
    assert result.meta["devices"][0]["name"] == "AMD Radeon Graphics"


def test_cpu_only_gloo_trace_has_its_rank_and_no_gpu_metrics():
    result = analyze_one(GLOO)
    assert result.meta["rank"] == 34 and result.meta["world_size"] == 300 and result.meta["backend"] == "gloo"
    assert "gpu_busy_pct" not in result.metrics
    assert result.metrics["step_count"] == 1


def test_a_folder_of_ranks_is_one_job():
    result = analyze_one(RANKS)
    assert result.kind == "kineto_trace_ranks"
    assert [r.rank for r in result.ranks] == [0, 1]
    assert result.meta["world_size"] == 128
    assert result.metrics["rank_count"] == 2
    assert result.ranks[0].metrics["communication_pct"] > 20


def test_a_folder_of_unrelated_traces_is_analyzed_trace_by_trace():
    results = analyze_path(NAIVE.parent, AnalyzeOptions())
    traces = [r for r in results if r.kind == "kineto_trace"]
    assert {r.path for r in traces} == {str(GRAPH), str(NAIVE), str(OPTIMIZED)}
    # The sub-folders' artifacts are inputs of their own kinds: a hang and two OOM snapshots.
    others = sorted((r.kind, r.path) for r in results if r.kind != "kineto_trace")
    assert others == [("flight_recorder", str(NAIVE.parent / "nccl_timeout")),
                      ("memory_snapshot", str(NAIVE.parent / "oom_capacity" / "oom_capacity.snapshot.pickle.gz")),
                      ("memory_snapshot", str(NAIVE.parent / "oom_frag2_expandable" /
                                              "oom_frag2_expandable.snapshot.pickle.gz"))]


def test_rank_comes_from_distributed_info_whatever_the_spacing(tmp_path):
    import gzip
    import json

    source = sorted(RANKS.iterdir())[1]
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(json.loads(gzip.decompress(source.read_bytes())), separators=(",", ":")))
    assert load_kineto(compact).rank == 1
    assert load_kineto(source).rank == 1
