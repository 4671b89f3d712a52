"""Findings on the real H100 traces, and the sample code of every finding runs."""

from __future__ import annotations

import pytest

from tests.conftest import GRAPH, NAIVE, OPTIMIZED, RANKS, SYNTHETIC, shared_path
from workbench.inputs import AnalyzeOptions, analyze_path
from workbench.rules import RULES, run_rules
from workbench.rules.finding import SEVERITIES, worth_pct

DECODE = "h100/infer_decode/infer_decode.pt.trace.json.gz"
RESNET = "public/kineto/tb_plugin_samples/resnet50_num_workers_0/worker0.1623143089861.pt.trace.json.gz"


def findings_of(path, ignore=()):
    return {f.id: f for f in run_rules(analyze_path(path, AnalyzeOptions()), ignore=ignore)}


def test_train_naive_findings():
    found = findings_of(NAIVE)
    assert {"fp32-matmul", "unfused-attention", "unfused-optimizer", "host-sync", "input-bound"} <= set(found)
    assert found["fp32-matmul"].severity == "critical"
    assert "simt_sgemm" in found["fp32-matmul"].evidence["kernels"][0]["name"]
    attention = found["unfused-attention"].evidence
    assert attention["softmax_input_shape"] == [16, 12, 512, 512] and attention["head_dim"] == 64
    assert attention["source"][0]["user_frame"].endswith(": forward")
    optimizer = found["unfused-optimizer"].evidence
    assert optimizer["optimizer"] == "AdamW" and optimizer["parameters"] == 77
    sync = found["host-sync"].evidence
    assert sync["calls"]["aten::_local_scalar_dense"] == 234  # 78 .item() per step: 77 from AdamW, 1 loss.item()
    assert "torch/optim/" in sync["source"][0]["innermost_frame"]
    assert found["input-bound"].evidence["dataloader_iterators"] == ["_SingleProcessDataLoaderIter"]


def test_findings_are_ordered_by_severity_then_gain():
    findings = run_rules(analyze_path(NAIVE, AnalyzeOptions()))
    keys = [(-SEVERITIES.index(f.severity), -worth_pct(f.estimated_gain)) for f in findings]
    assert keys == sorted(keys)


def test_train_optimized_is_host_bound_not_input_bound():
    found = findings_of(OPTIMIZED)
    assert not {"fp32-matmul", "unfused-attention", "unfused-optimizer", "host-sync"} & set(found)
    # With 4 loader workers the GPU idles only ~1 ms of the 98 ms window in the data phase; it idles
    # while the host runs the forward and backward operators.
    assert "input-bound" not in found
    assert found["host-bound"].evidence["gpu_idle_host_busy_pct"] == pytest.approx(50.0, abs=1.0)


def test_cuda_graph_decoding_is_not_launch_bound():
    assert "launch-bound" not in findings_of(GRAPH)


def test_eager_decoding_is_launch_bound_and_not_told_to_quantize():
    """GPU busy 3.7 %: smaller weights would shorten kernels the GPU already waits between (0.65 % MBU)."""
    found = findings_of(shared_path(DECODE))
    assert "launch-bound" in found and "quantize-weights" not in found
    assert found["launch-bound"].severity == "critical"
    assert found["launch-bound"].evidence["growing_cat_calls"] > 0  # the KV cache grows by torch.cat


@pytest.mark.parametrize("metrics, paced", [
    ({"gpu_busy_pct": 30.0, "gpu_window_ms": 100.0, "idle_host_busy_ms": 25.0}, True),  # idle while the host works
    ({"gpu_busy_pct": 30.0, "gpu_window_ms": 100.0, "idle_host_busy_ms": 10.0}, False),  # idle, the host idle too
    ({"gpu_busy_pct": 60.0, "gpu_window_ms": 100.0, "idle_host_busy_ms": 40.0}, False),  # the GPU busy most
    ({"gpu_busy_pct": 30.0}, False),  # no window
], ids=["host-idle", "both-idle", "gpu-busy", "no-window"])
def test_host_paced_reads_the_gpu_idle_share_while_the_host_works(metrics, paced):
    """quantize-weights' silence beyond launch-bound runs (`rules.pacing.host_paced`), on metrics alone: without
    short-kernel figures no run is launch-bound."""
    from types import SimpleNamespace

    from workbench.rules.pacing import host_paced

    assert host_paced(SimpleNamespace(metrics=metrics)) is paced


def test_a_gpu_bound_decode_without_a_known_peak_is_told_to_quantize():
    """The bf16 GEMV decode of memory_bound_decode on a GPU whose peak bandwidth is unknown: no MBU, so no
    weight-only-quantization; GPU busy 92.9 %, every kernel a weight-bound GEMV."""
    found = findings_of(SYNTHETIC / "unknown_peak_decode.synthetic.pt.trace.json.gz")
    assert "weight-only-quantization" not in found
    evidence = found["quantize-weights"].evidence
    assert (evidence["weight_dtype"], evidence["weight_bound_share_of_kernel_time_pct"]) == ("bfloat16/float16", 100.0)


def test_resnet_gets_channels_last():
    found = findings_of(shared_path(RESNET))
    assert "channels-last" in found
    assert found["channels-last"].evidence["convolution_share_of_kernel_time_pct"] > 30


def test_ignore_turns_a_rule_off():
    assert "fp32-matmul" not in findings_of(NAIVE, ignore=["fp32-matmul"])


def test_multi_rank_findings_name_their_ranks():
    for finding in run_rules(analyze_path(RANKS, AnalyzeOptions())):
        if finding.id == "straggler-rank":  # one finding per straggler
            assert finding.evidence["rank"] in (0, 1) and "(rank " in finding.input
        else:  # one finding per rule and cause, on the ranks it holds on
            assert set(finding.evidence["ranks"]) <= {0, 1} and f"of 2 ranks" in finding.title
            assert finding.evidence["worst_rank"]["rank"] in finding.evidence["ranks"]


def test_every_rule_has_a_kebab_case_id_and_known_category():
    run_rules([])
    assert len(RULES) >= 10
    for rule in RULES.values():
        assert rule.category in {"compute", "memory", "input", "launch", "communication", "precision"}
